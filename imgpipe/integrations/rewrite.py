"""Rewrite plain `<img>` tags in generated HTML, leaving every other byte as it was.

A full parse-and-reserialise (BeautifulSoup and friends) would normalise quoting, entities and
whitespace of the whole page and fight with other plugins' output; instead a tokenising regex
finds the `<img>` tags (skipping comments, scripts and existing `<picture>` elements) and
html.parser reads the attributes of each one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

# Alternatives tried left to right at each position: regions to leave alone first, then a tag.
# Attribute values may contain `>`, so quoted strings are consumed whole.
_TOKENS = re.compile(
    r"""(?P<skip><!--.*?-->
          |<(?P<raw>script|style|textarea|template|noscript|picture|svg)\b.*?</(?P=raw)\s*>)
        |(?P<img><img\b(?:[^>"']|"[^"]*"|'[^']*')*>)""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)

Attrs = dict[str, str | None]  # as written; None for a bare attribute such as `hidden`
Replace = Callable[[Attrs], str | None]  # new markup, or None to keep the tag as it is


class _TagReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: Attrs | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.attrs is None:
            self.attrs = {}
            for name, value in attrs:
                self.attrs.setdefault(name, value)  # the first of a repeated attribute wins

    handle_startendtag = handle_starttag


def attributes(tag: str) -> Attrs:
    """The attributes of one start tag, names lower-cased and entities decoded."""
    reader = _TagReader()
    reader.feed(tag)
    reader.close()
    return reader.attrs or {}


def rewrite_images(html: str, replace: Replace) -> str:
    """`html` with each `<img>` outside comments, scripts and `<picture>` passed to `replace`."""
    parts: list[str] = []
    last = 0
    for match in _TOKENS.finditer(html):
        if match.group("img") is None:
            continue
        new = replace(attributes(match.group("img")))
        if new is not None:
            parts.append(html[last:match.start()])
            parts.append(new)
            last = match.end()
    if not parts:
        return html
    parts.append(html[last:])
    return "".join(parts)


def call_arguments(attrs: Attrs) -> tuple[str, str | None, dict[str, str | bool]]:
    """An `<img>`'s attributes as the template API takes them: alt, sizes, and the rest (src
    and srcset dropped: the renditions replace them; a bare attribute becomes True)."""
    rest: dict[str, str | bool] = {}
    for name, value in attrs.items():
        if name not in ("src", "srcset", "alt", "sizes"):
            rest[name] = True if value is None else value
    return attrs.get("alt") or "", attrs.get("sizes"), rest
