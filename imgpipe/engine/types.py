"""Plain data the engine takes and returns (no pyvips here, so planners can import it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Problem

MAX_PIXELS = 100_000_000  # width x height x frames
MAX_BYTES = 50 * 1024 * 1024
MAX_FRAMES = 1000  # frames of an animation: each one is decoded and encoded


@dataclass(frozen=True)
class Limits:
    max_pixels: int = MAX_PIXELS
    max_bytes: int = MAX_BYTES
    max_frames: int = MAX_FRAMES


@dataclass(frozen=True)
class Placeholder:
    """What a page shows while the image loads: a dominant colour and a tiny blurred preview."""

    color: str  # "#rrggbb"
    lqip: str  # a data: URI of a few hundred bytes


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source after its header is read (size after EXIF autorotate)."""

    width: int
    height: int
    format: str  # loader family: jpeg, png, webp, gif, tiff, heif, svg
    bytes: int
    frames: int = 1
    has_alpha: bool = False
    loop: int = 0  # plays of an animation; 0 = forever (libvips' convention)
    placeholder: Placeholder | None = None  # set once the pixels were decoded


@dataclass(frozen=True)
class Rendition:
    """One encoded result and what was decided on the way."""

    data: bytes
    format: str  # a key of formats.OUTPUTS (svg for a copied SVG)
    width: int
    height: int
    quality: str | int  # the preset or fixed quality actually used
    encoder_quality: int | None  # the number handed to the encoder, if any
    warnings: tuple[Problem, ...] = ()
    score: float | None = None  # perceptual score (engine/metric.py), where one was measured

    @property
    def bytes(self) -> int:
        return len(self.data)
