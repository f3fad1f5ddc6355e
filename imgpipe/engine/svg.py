"""SVG sources: published as they are by default, rasterised only when a rule opts in.

An SVG is a program more than an image: a DOCTYPE can declare entities that read local files or
grow to gigabytes (billion laughs), and librsvg follows references to other files and URLs
(`<image href>`, `<use href>`, CSS `url()` and `@import`, `xi:include`). A copied SVG is never
parsed by anything here (the browser renders `<img src=x.svg>` in its secure static mode, with
no scripts and no external loads). Before librsvg sees an SVG to rasterise, `prescan` refuses
everything that could reach outside the file or blow up, and the loader itself is unblocked only
for that one call (engine/load.py).

Inline rasters (`data:image/png;base64,...`) are allowed, and librsvg decodes each in full
whatever size it is drawn at: their headers are read first and their pixels count against the
limits with the canvas' (an SVG of a few KB could otherwise embed a 20000x20000 PNG).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import urllib.parse
import xml.etree.ElementTree as ET

from ..model import Limits, Rendition, SourceInfo
from ..options import Recipe
from .failure import fail, megapixels
from .load import check_pixels, identify, read_header
from .sniff import Kind

SVG = Kind("svg", "SVG", "svgload_buffer")

# CSS pixels per unit, as browsers and librsvg count them (96 dpi).
_UNITS = {
    "": 1.0,
    "px": 1.0,
    "pt": 4 / 3,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 96 / 25.4,
    "q": 96 / 101.6,
    "em": 16.0,
    "ex": 8.0,
}
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
# What a browser gives a replaced element without an intrinsic size: used for the width and
# height of a copied SVG that declares none (the snippet still needs a box).
DEFAULT_SIZE = (300, 150)
MAX_SIDE = 100_000  # a canvas side beyond this is absurd, whatever the pixel limit says

_XINCLUDE = "{http://www.w3.org/2001/XInclude}"
_FORBIDDEN_TAGS = {
    "script": "a <script>",
    "foreignObject": "a <foreignObject>",
    "iframe": "an <iframe>",
}
# Inline rasters only: a data: SVG would be a second document with references of its own.
_SAFE_DATA = re.compile(r"^data:image/(png|jpeg|gif|webp);", re.IGNORECASE)
_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
# A CSS escape: up to six hex digits and one optional white space, or any other character.
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\r\n\f]?|(.))", re.DOTALL)
_ROOT_TAG = re.compile(rb"<svg\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(rb"([A-Za-z_][\w:.-]*)\s*=\s*(\"[^\"]*\"|'[^']*')")


class SvgCopy:
    """An SVG published as it is: every rendition is the source's own bytes."""

    def __init__(self, data: bytes, name: str):
        self.data = data
        self.name = name
        width, height = _rounded(declared_size(data)) or DEFAULT_SIZE
        self.info = SourceInfo(width=width, height=height, format="svg", bytes=len(data))

    def render(self, recipe: Recipe) -> Rendition:
        return self.render_all([recipe])[0]

    def transparent(self) -> bool:
        return False  # published as written: nothing is flattened

    def render_all(self, recipes: list[Recipe]) -> list[Rendition]:
        copy = Rendition(
            data=self.data,
            format="svg",
            width=self.info.width,
            height=self.info.height,
            quality="lossless",
            encoder_quality=None,
        )
        return [copy for _ in recipes]


def prescan(data: bytes, name: str, limits: Limits) -> None:
    """Refuse an SVG that librsvg should not see: raises ImageError (code `unsafe-svg`, or
    `too-many-pixels` for an absurd canvas). Reads the XML with no DTD, so nothing expands."""
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        _unsafe(
            name,
            "it has a DOCTYPE or ENTITY declaration (entities can read local files "
            "or expand without end)",
        )
    for match in re.finditer(rb"<\?([^\s?>]*)", data):
        if match.group(1).lower() != b"xml":
            _unsafe(
                name,
                f"it has a <?{match.group(1).decode('latin-1')}?> processing "
                "instruction (a stylesheet can load other files)",
            )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise fail(
            "decode-failed",
            name,
            f"the SVG is not well-formed XML ({error})",
            "a valid SVG file",
            "re-export it from the editor",
        ) from None
    if _local(root.tag) != "svg":
        _unsafe(name, f"its root element is <{_local(root.tag)}>, not <svg>")
    inline: list[str] = []  # the data: references, measured once all is known to be safe
    for element in root.iter():
        inline.extend(_check_element(element, name))
    size = declared_size_of(root.attrib)
    if size is None:
        raise fail(
            "svg-without-size",
            name,
            "the SVG declares no size (no width and height, and no viewBox)",
            "an SVG with a viewBox or width and height",
            "add a viewBox to it",
        )
    width, height = size
    if max(width, height) > MAX_SIDE or not all(math.isfinite(v) and v > 0 for v in size):
        raise fail(
            "too-many-pixels",
            name,
            f"its canvas of {width:.10g}x{height:.10g} is absurd",
            f"sides of at most {MAX_SIDE} pixels",
            "fix its width, height or viewBox",
        )
    check_pixels(math.ceil(width), math.ceil(height), 1, name, limits)
    canvas = math.ceil(width) * math.ceil(height)
    embedded = sum(
        _inline_pixels(uri, f"{name}: embedded image {i}", limits)
        for i, uri in enumerate(inline, 1)
    )
    if canvas + embedded > limits.max_pixels:
        raise fail(
            "too-many-pixels",
            name,
            f"its canvas and {len(inline)} embedded images add up to "
            f"{megapixels(canvas + embedded)}, over the {megapixels(limits.max_pixels)} "
            "limit",
            f"at most {megapixels(limits.max_pixels)} in all",
            "embed smaller images, or raise the max_pixels limit",
        )


def _inline_pixels(uri: str, name: str, limits: Limits) -> int:
    """The pixels librsvg will decode for one data: raster, from its header alone (an
    ImageError, named after the SVG and the image's place in it, for one it cannot use)."""
    meta, _, payload = uri.partition(",")
    try:
        if meta.lower().endswith(";base64"):
            data = base64.b64decode(re.sub(r"\s+", "", payload))
        else:
            data = urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        data = b""  # refused below as empty, like any unreadable image
    info = read_header(identify(data, name, limits), data, name, limits)
    return info.width * info.height * info.frames


def _check_element(element: ET.Element, name: str) -> list[str]:
    """Refuses what reaches outside the file; returns the inline (data:) references."""
    tag = element.tag if isinstance(element.tag, str) else ""
    local = _local(tag)
    if tag.startswith(_XINCLUDE):
        _unsafe(name, f"it has an xi:{local} element (it includes other files)")
    if local in _FORBIDDEN_TAGS:
        _unsafe(name, f"it has {_FORBIDDEN_TAGS[local]} element")
    inline = []
    for attribute, value in element.attrib.items():
        key = _local(attribute)
        if attribute == "{http://www.w3.org/XML/1998/namespace}base":
            _unsafe(name, "it has an xml:base attribute (it moves every reference)")
        if key in ("href", "src") and local != "a":
            if not _internal(value):
                _unsafe(name, f'<{local} {key}="{_short(value)}"> refers outside the file')
            if _SAFE_DATA.match(value.strip()):
                inline.append(value.strip())
        inline.extend(_check_css(value, name, f"the {key} attribute of <{local}>"))
    if local == "style":
        inline.extend(_check_css("".join(element.itertext()), name, "a <style> element"))
    return inline


def _check_css(text: str, name: str, where: str) -> list[str]:
    """As _check_element, for CSS: read as librsvg's CSS parser reads it, escapes decoded
    (`@\\69mport` is `@import`, `u\\72l(` is `url(`)."""
    text = _CSS_ESCAPE.sub(_unescaped, text)
    if "@import" in text.lower():
        _unsafe(name, f"{where} has a CSS @import (it loads other files)")
    inline = []
    for match in _URL.finditer(text):
        reference = match.group(2).strip()
        if not _internal(reference):
            _unsafe(name, f"{where} has url({_short(match.group(2))}), outside the file")
        if _SAFE_DATA.match(reference):
            inline.append(reference)
    return inline


def _unescaped(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return match.group(2)
    code = int(match.group(1), 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _internal(reference: str) -> bool:
    """A reference librsvg resolves without leaving the document."""
    reference = reference.strip()
    return reference.startswith("#") or bool(_SAFE_DATA.match(reference))


def _unsafe(name: str, reason: str) -> None:
    raise fail(
        "unsafe-svg",
        name,
        f"not rasterised: {reason}",
        "a self-contained SVG (no DOCTYPE, scripts or references to other files)",
        "remove that from the file, or publish it as it is (drop rasterize_svg)",
    )


def declared_size(data: bytes) -> tuple[float, float] | None:
    """The size the root <svg> start tag declares, read with a regular expression: used for a
    copied SVG, which may be hostile, so no XML parser ever runs on it."""
    match = _ROOT_TAG.search(data[:65536])
    if match is None:
        return None
    attributes = {
        key.decode("latin-1"): value[1:-1].decode("utf-8", "replace")
        for key, value in _ATTRIBUTE.findall(match.group(1))
    }
    return declared_size_of(attributes)


def declared_size_of(attributes: dict[str, str]) -> tuple[float, float] | None:
    """Width and height in CSS pixels: from width/height when both are absolute lengths, else
    from the viewBox (scaled to the one absolute side, as librsvg does)."""
    width, height = _length(attributes.get("width")), _length(attributes.get("height"))
    if width and height:
        return width, height
    box = _view_box(attributes.get("viewBox"))
    if box is None:
        return None
    if width:
        return width, width * box[1] / box[0]
    if height:
        return height * box[0] / box[1], height
    return box


def _length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if match is None or match.group(2).lower() not in _UNITS:
        return None  # missing, a percentage or garbage: the viewBox decides
    length = float(match.group(1)) * _UNITS[match.group(2).lower()]
    return length if length > 0 else None


def _view_box(value: str | None) -> tuple[float, float] | None:
    try:
        numbers = [float(n) for n in re.split(r"[\s,]+", (value or "").strip())]
    except ValueError:
        return None
    if len(numbers) != 4 or not (numbers[2] > 0 and numbers[3] > 0):
        return None
    return numbers[2], numbers[3]


def _rounded(size: tuple[float, float] | None) -> tuple[int, int] | None:
    if size is None or not all(math.isfinite(v) for v in size):
        return None
    return max(1, round(size[0])), max(1, round(size[1]))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
