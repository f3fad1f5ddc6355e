"""The site being audited: served from a folder on 127.0.0.1 for the run (or already served at
an http:// URL), its pages, and what imgpipe's manifests and config say about its images.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from ..layout import MANIFEST_NAME
from .findings import Origin

if TYPE_CHECKING:
    from ..config import Config

MAX_PAGES = 1000  # a crawl of an http:// site stops here
# What a link to a page looks like: a directory, an .html file or a name without extension.
_INDEX = re.compile(r"(^|/)index\.html?$")
_PAGE_PATH = re.compile(r"^(.*/)?([^./]*|[^/]*\.html?)$")


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".avif": "image/avif",
        ".webp": "image/webp",
        ".webm": "video/webm",
        ".mp4": "video/mp4",
    }

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def serve_directory(directory: Path) -> ThreadingHTTPServer:
    """Serve `directory` on a free 127.0.0.1 port from a daemon thread."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def served(target: str) -> Iterator[tuple[str, Path | None]]:
    """(base URL ending in /, the folder or None) for a folder or an http:// URL."""
    if re.match(r"^https?://", target):
        yield (target if target.endswith("/") else target + "/"), None
        return
    folder = Path(target)
    server = serve_directory(folder)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


def folder_pages(folder: Path) -> list[str]:
    """Every HTML page of a built site, as site-relative paths, sorted. Fragments (imgpipe's
    own `_snippets`, a theme's partials) are not pages: a page starts with a doctype or
    `<html>`."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.htm*")
        if p.suffix in (".html", ".htm") and _is_page(p)
    )


def _is_page(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(1024).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def crawl(
    base: str, start: list[str], is_page: Callable[[str], tuple[bool, list[str]]]
) -> list[str]:
    """The pages reachable by links from `start` (site-relative) under `base`."""
    seen, queue, pages = set(start), list(start), list[str]()
    while queue and len(pages) < MAX_PAGES:
        page = queue.pop(0)
        ok, found = is_page(urljoin(base, page))
        if not ok:
            continue
        pages.append(page)
        for url in found:
            rel = _INDEX.sub(r"\1", url[len(base) :].split("?")[0])  # dir/index.html = dir/
            if url.startswith(base) and _PAGE_PATH.match(rel) and rel not in seen:
                seen.add(rel)
                queue.append(rel)
    return sorted(pages)


@dataclass(frozen=True)
class _Entry:
    source: str  # the manifest's key: the source's path under `source`
    group: str | None  # the srcset group the file belongs to
    source_width: int
    config: Config | None  # the config whose manifest listed it


class Manifests:
    """imgpipe's manifests of the site: the config's own (whose rules it can name), those
    given (the MkDocs plugin keeps its manifest out of the site, in .imgpipe-cache/site/), and
    any `imgpipe-manifest.json` in an image's directory or above it on the server."""

    def __init__(self, base: str, config: Config | None, files: Sequence[Path] = ()) -> None:
        self.base = base
        self.origin = "{0.scheme}://{0.netloc}/".format(urlsplit(base))
        self.by_name: dict[str, list[tuple[str, _Entry]]] = {}
        self.tried: set[str] = set()
        if config is not None and config.manifest.is_file():
            self._add(json.loads(config.manifest.read_text()), config)
        for path in files:  # given with the config (MkDocs' `config_file:`): its rules count
            self._add(json.loads(Path(path).read_text()), config)

    def _add(self, manifest: dict[str, Any], config: Config | None) -> None:
        for source, entry in manifest.get("sources", {}).items():
            groups = {
                url: name
                for name, group in entry.get("srcsets", {}).items()
                for items in group.get("formats", {}).values()
                for url in (item["url"] for item in items)
            }
            for rendition in entry.get("renditions", {}).values():
                path = quote(rendition["path"], safe="/")
                found = _Entry(source, groups.get(rendition["url"]), entry["width"], config)
                self.by_name.setdefault(posixpath.basename(path), []).append((path, found))

    def _find(self, url: str) -> _Entry | None:
        path = urlsplit(url).path
        for known, entry in self.by_name.get(posixpath.basename(path), []):
            if path.endswith("/" + known):
                return entry
        return None

    def origin_of(self, url: str) -> Origin:
        """What imgpipe knows about the image at `url` (fetching manifests as needed)."""
        local = url.startswith(self.origin)
        entry = self._find(url)
        if entry is None and local:
            directory = url.rsplit("/", 1)[0] + "/"
            while entry is None and directory.startswith(self.base) and directory not in self.tried:
                self.tried.add(directory)
                manifest = _fetch_json(directory + MANIFEST_NAME)
                if manifest is not None:
                    self._add(manifest, None)
                    entry = self._find(url)
                directory = directory.rstrip("/").rsplit("/", 1)[0] + "/"
        if entry is None:
            return Origin(local=local, made_by_imgpipe=False)
        if entry.config is None:
            return Origin(local, True, entry.source_width)
        return Origin(
            local,
            True,
            entry.source_width,
            rule_of(entry.config, entry.source, entry.group, "sizes"),
            rule_of(entry.config, entry.source, entry.group, "widths"),
        )


def _fetch_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - http(s) only
            manifest = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def rule_of(config: Config, source: str, group: str | None, key: str) -> str | None:
    """Where `key` of the rule that made `source`'s srcset group is set, as
    `imgpipe.toml:21 (rules[1].sizes)` (the rule's header line when the key is not set)."""
    if group is None:
        return None
    for rule in config.rules:
        if rule.srcset is not None and rule.srcset.name == group and rule.matches(source):
            line = _line_of(config.path, rule.index, key)
            where = f"{rule.where}.{key}" if line and line[1] else rule.where
            place = f"{config.path.name}:{line[0]}" if line else config.path.name
            return f"{place} ({where})"
    return None


_RULE_HEADER = re.compile(r"^\s*\[\[\s*(tool\.imgpipe\.)?rules\s*\]\]")
_TABLE = re.compile(r"^\s*\[")


def _line_of(path: Path, index: int, key: str) -> tuple[int, bool] | None:
    """(line number, whether it is the `key =` line) of rule `index` in a TOML file written
    with `[[rules]]` headers; None for other spellings (tomllib keeps no line numbers)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    headers = [n for n, text in enumerate(lines) if _RULE_HEADER.match(text)]
    if index >= len(headers):
        return None
    start = headers[index]
    for n in range(start + 1, len(lines)):
        if _TABLE.match(lines[n]):
            break
        if re.match(rf"^\s*{key}\s*=", lines[n]):
            return n + 1, True
    return start + 1, False
