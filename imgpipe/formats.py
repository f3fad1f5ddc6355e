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


def by_name(name: str) -> Format:
    return FORMATS[name]
