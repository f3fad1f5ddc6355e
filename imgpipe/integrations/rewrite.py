"""Rewrite plain `<img>` tags in generated HTML, leaving every other byte as it was.

A full parse-and-reserialise (BeautifulSoup and friends) would normalise quoting, entities and
whitespace of the whole page and fight with other plugins' output; instead the stdlib HTML
tokenizer (html.parser) finds where each real `<img>` start tag begins and ends, and only
those spans are replaced. A tokenizer, not a regular expression: `<img` written inside another
tag's attribute (`<a title="<img src=x.jpg>">`), a comment or a script is text, not a tag.
Tags inside `<picture>` (already responsive), `<template>`, `<noscript>`, `<textarea>` and
`<svg>` are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

Attrs = dict[str, str | None]  # as written; None for a bare attribute such as `hidden`
Replace = Callable[[Attrs], str | None]  # new markup, or None to keep the tag as it is

# Elements whose contents are never rewritten (script and style content is raw text to the
# tokenizer already).
_LEAVE_ALONE = frozenset({"picture", "template", "noscript", "textarea", "svg"})


def _attrs(pairs: list[tuple[str, str | None]]) -> Attrs:
    attrs: Attrs = {}
    for name, value in pairs:
        attrs.setdefault(name, value)  # the first of a repeated attribute wins
    return attrs


class _TagReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: Attrs | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.attrs is None:
            self.attrs = _attrs(attrs)

    handle_startendtag = handle_starttag


def attributes(tag: str) -> Attrs:
    """The attributes of one start tag, names lower-cased and entities decoded."""
    reader = _TagReader()
    reader.feed(tag)
    reader.close()
    return reader.attrs or {}


class _ImgFinder(HTMLParser):
    """Collects (start offset, end offset, attributes) of every `<img>` start tag that is
    not inside an element left alone."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        # getpos() gives (line, column); html.parser counts lines by "\n" only.
        self._line_starts = [0]
        newline = html.find("\n")
        while newline != -1:
            self._line_starts.append(newline + 1)
            newline = html.find("\n", newline + 1)
        self._open: dict[str, int] = {}
        self.found: list[tuple[int, int, Attrs]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LEAVE_ALONE:
            self._open[tag] = self._open.get(tag, 0) + 1
        elif tag == "img":
            self._img(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self._img(attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._open.get(tag):
            self._open[tag] -= 1

    def _img(self, attrs: list[tuple[str, str | None]]) -> None:
        if any(self._open.values()):
            return
        line, column = self.getpos()
        start = self._line_starts[line - 1] + column
        text = self.get_starttag_text() or ""
        self.found.append((start, start + len(text), _attrs(attrs)))


def rewrite_images(html: str, replace: Replace) -> str:
    """`html` with each `<img>` outside comments, scripts and `<picture>` passed to `replace`."""
    finder = _ImgFinder(html)
    finder.feed(html)
    finder.close()
    parts: list[str] = []
    last = 0
    for start, end, attrs in finder.found:
        new = replace(attrs)
        if new is not None:
            parts.append(html[last:start])
            parts.append(new)
            last = end
    if not parts:
        return html
    parts.append(html[last:])
    return "".join(parts)


def call_arguments(attrs: Attrs) -> tuple[str | None, str | None, dict[str, str | bool]]:
    """An `<img>`'s attributes as the template API takes them: alt (None when empty or
    missing, so the configured alt applies), sizes, and the rest (src and srcset dropped:
    the renditions replace them; a bare attribute becomes True)."""
    rest: dict[str, str | bool] = {}
    for name, value in attrs.items():
        if name not in ("src", "srcset", "alt", "sizes"):
            rest[name] = True if value is None else value
    return attrs.get("alt") or None, attrs.get("sizes"), rest
