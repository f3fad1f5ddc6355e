"""Split an API request path `/<user>/<options>/<image URL>` into its parts (pure).

Works on the *raw* request path: the image URL arrives either as typed (`/http://host/a.png`,
its own escapes such as `%2F` untouched) or percent-encoded as one segment, the way the official
PHP client sends it (`/http%3A%2F%2Fhost%2Fa.png`). Each form is decoded exactly once; letting
the framework decode first and decoding again would turn a URL's own `%2F` into `/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

# `scheme%3A...`: the whole URL was percent-encoded as one segment.
_ENCODED = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*%3[Aa]")
# Proxies and some clients merge `//` into `/`: `http:/host/a.png` means `http://host/a.png`.
_LOOKS_LIKE_URL = re.compile(r"^(https?:|[A-Za-z][A-Za-z0-9+.-]*%3[Aa])", re.IGNORECASE)
_COLLAPSED = re.compile(r"^(https?):/(?=[^/])", re.IGNORECASE)


@dataclass(frozen=True)
class ApiPath:
    user: str | None  # None on the root page
    options: str | None  # None when the segment is missing (or empty before an upload)
    url: str | None  # None when no URL follows: the image is expected as an upload

    @property
    def is_root(self) -> bool:
        return self.user is None


def split(raw_path: bytes, query_string: bytes = b"") -> ApiPath:
    text = raw_path.decode("latin-1").lstrip("/")
    if not text:
        return ApiPath(None, None, None)
    parts = text.split("/", 2)
    user = unquote(parts[0])
    if len(parts) > 1 and _LOOKS_LIKE_URL.match(parts[1]):
        # `/<user>/<URL>`: the options were left out; say so rather than "unknown token http:".
        options, rest = None, text.split("/", 1)[1]
    else:
        options = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        rest = parts[2] if len(parts) > 2 else ""
    if not rest:
        return ApiPath(user, options, None)
    if _ENCODED.match(rest):
        url = unquote(rest)
    else:
        url = _COLLAPSED.sub(r"\1://", rest)
    # The request's query string belongs to the image URL: `/u/full/http://h/a.png?v=2`.
    if query_string:
        url += "?" + query_string.decode("latin-1")
    return ApiPath(user, options, url)
