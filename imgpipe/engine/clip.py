"""Quality presets for animations: every animated format (WebP, GIF, WebM, MP4) meets its
preset's perceptual target like a still, searched on a short clip.

A trial encodes the first frames of the animation as an animation (later frames inherit
earlier ones' losses: a WebP's or a video's prediction, a GIF's frame-difference tolerance)
and scores its first, middle and last frames against theirs with the metric (metric.py). The
clip holds at most CLIP_FRAMES frames and CLIP_PIXELS pixels: the search's encodes cost as much
as the final one for short, small animations, and no more than a couple of megapixels each
for long or large ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pyvips

from . import metric
from .search import Found, find_quality

CLIP_FRAMES = 8
CLIP_PIXELS = 2_000_000


def clip_length(width: int, height: int, count: int) -> int:
    """How many of the first frames of a `count`-frame animation the trials encode."""
    return max(1, min(count, CLIP_FRAMES, CLIP_PIXELS // max(1, width * height)))


def picks(length: int) -> list[int]:
    """The frames of a `length`-frame clip that are scored: first, middle and last."""
    return sorted({0, length // 2, length - 1})


def scorable(width: int, height: int, length: int) -> bool:
    return metric.scorable(width * len(picks(length)), height)


def search(
    frames: Sequence[pyvips.Image],
    encode: Callable[[int], bytes],
    decode: Callable[[bytes, list[int]], list[pyvips.Image]],
    fmt: str,
    target: float,
    scale: tuple[int, int, float],
    guess: int,
    deadline: float = math.inf,
) -> Found:
    """The lowest setting in `scale` (low, high, score gained per step) whose `encode` of the
    clip `frames` scores at least the target on the sampled frames; `decode(data, picks)`
    gives those frames of an encoding back. The caller checks `scorable` first."""
    chosen = picks(len(frames))
    reference = metric.Reference(_side_by_side([frames[i] for i in chosen]))

    def evaluate(setting: int) -> float:
        decoded = decode(encode(setting), chosen)
        if reference.alpha is False:  # a GIF decodes with alpha even when it has none in use
            decoded = [
                image.extract_band(0, n=3) if image.bands > 3 else image for image in decoded
            ]
        return reference.score(_side_by_side(decoded), fmt)

    low, high, slope = scale
    return find_quality(evaluate, target, low, high, guess, slope, deadline)


def _side_by_side(images: list[pyvips.Image]) -> pyvips.Image:
    return pyvips.Image.arrayjoin(images, across=len(images))
