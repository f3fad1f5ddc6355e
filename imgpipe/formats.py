"""The output formats imgpipe knows, as one table: names, aliases, MIME types, capabilities."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    mime: str
    alpha: bool  # can carry transparency
    animated: bool  # can carry several frames
    video: bool = False


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jpeg", "jpg", "image/jpeg", alpha=False, animated=False),
        Format("png", "png", "image/png", alpha=True, animated=False),
        Format("webp", "webp", "image/webp", alpha=True, animated=True),
        Format("avif", "avif", "image/avif", alpha=True, animated=False),
        Format("gif", "gif", "image/gif", alpha=True, animated=True),
        Format("webm", "webm", "video/webm", alpha=False, animated=True, video=True),
        Format("h264", "mp4", "video/mp4", alpha=False, animated=True, video=True),
    )
}

# Outputs that no option asks for: an SVG source is published as it is (see engine/svg.py).
# Kept out of FORMATS so that `format=svg` never enters the option language.
COPIES: dict[str, Format] = {
    "svg": Format("svg", "svg", "image/svg+xml", alpha=True, animated=False),
}

# Every format an output file can have: names, extensions and MIME types by record format.
OUTPUTS: dict[str, Format] = {**FORMATS, **COPIES}

# File-name extensions of the sources the engine reads (engine/sniff.py: JPEG, PNG, WebP, GIF,
# TIFF, HEIF/AVIF). The engine trusts content, not names; these are for choosing files by name.
SOURCE_EXTENSIONS = tuple("jpg jpeg jpe png webp gif tif tiff avif heic heif".split())

# Names people type that are close enough to work (accepted with a warning).
FORMAT_ALIASES: dict[str, str] = {
    "jpg": "jpeg",
    "jpe": "jpeg",
    "mp4": "h264",
    "h.264": "h264",
    "avc": "h264",
    "vp9": "webm",
}

# format=auto chooses among these.
AUTO = "auto"

# Order of <source> elements in <picture>: the browser takes the first it supports.
MODERN_ORDER = ("avif", "webp")

# Order of <source> elements in <video>: WebM (VP9) is smaller; MP4 (H.264) plays everywhere.
VIDEO_ORDER = ("webm", "h264")


def by_name(name: str) -> Format:
    return OUTPUTS[name]


# File name extensions that name an output format (`.jpeg` too, which no output is named with).
EXTENSIONS: dict[str, str] = {
    **{f.extension: f.name for f in FORMATS.values()},
    "jpeg": "jpeg",
}


def by_extension(filename: str) -> str | None:
    """The format a file name asks for (`out.WebP` -> webp); None for any other name."""
    dot = filename.rfind(".")
    slash = max(filename.rfind("/"), filename.rfind("\\"))
    if dot <= slash + 1:
        return None
    return EXTENSIONS.get(filename[dot + 1 :].lower())
