"""The alt text of an image where the page gives none: from its manifest entry, else from its
file name in words, never from a name a camera gave it."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

# The names cameras and phones give (IMG_1234, DSC01234, PXL_20240101_123456789.MP,
# P1000123, GOPR0042, DJI_0001, 20240101_123456): they say nothing about the picture.
CAMERA_NAME = re.compile(
    r"(?:img(?:_e)?|mvimg|dsc[fn]?|_dsc|pxl|p|cimg|pict?|imag|gopr|gx|dji|sam|wp|vid)?"
    r"[_-]?\d[\d_-]*(?:[._~-](?:mp|portrait|night|edited|wa\d+|\d+))*(?:\s*\(\d+\))?",
    re.IGNORECASE,
)


def camera_name(relpath: str) -> bool:
    """Whether the file's name is one a camera gave it (CAMERA_NAME), not a person."""
    return CAMERA_NAME.fullmatch(posixpath.splitext(posixpath.basename(relpath))[0]) is not None


def alt_text(source: Mapping[str, Any], relpath: str) -> str:
    """The alt text of a source where the page gives none (snippets, the template API without
    `alt=`): the one place it comes from. The manifest entry's `alt` when it has one (per-image
    data; `""` marks an image as decorative), else the file name in words (`lake-at-dawn.jpg`:
    "Lake at dawn"): a name says something about most images, and an empty alt would hide an
    image that means something from screen readers, which is worse than a plain description.
    A camera's name (`IMG_1234.jpg`) says nothing: "" then (and the build warns, alt-missing)."""
    alt = source.get("alt")
    if isinstance(alt, str):
        return alt
    if camera_name(relpath):
        return ""
    stem = posixpath.splitext(posixpath.basename(relpath))[0]
    words = " ".join(re.split(r"[\s_.-]+", stem)).strip()
    return words[:1].upper() + words[1:]
