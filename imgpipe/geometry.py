"""Output size and crop/pad placement from a recipe and a source size (DESIGN §2). Pure.

All arithmetic is exact (Fractions), then rounded once with Python's `round` (half to even),
so `1600x1200 -> 1110` gives 832, not 833 through a float that landed on 832.50000001.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from .options import Recipe


@dataclass(frozen=True)
class Geometry:
    """Resize the (trimmed, autorotated) source to `scaled`, then cut or pad to `width x height`.

    For crop, (left, top) is where the output window sits inside the scaled image; for pad, it
    is where the scaled image sits on the output canvas. With gravity `auto` the engine decides
    the crop position (libvips attention) and (left, top) is the centre fallback.

    With `aspect=`, `cut` (left, top, width, height in source pixels) is cut out of the source
    first and everything else applies to the cut; `cut_auto` leaves its position to libvips
    attention (the given one is the centre fallback).
    """

    source_width: int
    source_height: int
    scaled_width: int
    scaled_height: int
    width: int
    height: int
    left: int = 0
    top: int = 0
    cut: tuple[int, int, int, int] | None = None
    cut_auto: bool = False

    @property
    def cut_size(self) -> tuple[int, int]:
        """The size of what gets resized: the aspect cut, or the whole source."""
        return (self.cut[2], self.cut[3]) if self.cut else (self.source_width, self.source_height)

    @property
    def resizes(self) -> bool:
        return (self.scaled_width, self.scaled_height) != self.cut_size

    @property
    def changes_pixels(self) -> bool:
        """True when the output is not the source pixel-for-pixel (resized, cropped or padded)."""
        return (
            self.resizes
            or self.cut_size != (self.source_width, self.source_height)
            or (self.width, self.height) != (self.scaled_width, self.scaled_height)
        )


def _scaled(w: int, h: int, scale: Fraction) -> tuple[int, int]:
    return max(1, round(w * scale)), max(1, round(h * scale))


def compute(recipe: Recipe, width: int, height: int) -> Geometry:
    """The geometry of `recipe` applied to a `width x height` source."""
    if width < 1 or height < 1:
        raise ValueError(f"source size must be positive, got {width}x{height}")
    if recipe.aspect:
        box = recipe.box()  # with the side the aspect implies
        cut, moved = _aspect_cut(recipe, width, height)
        inner = _sized(moved, box, cut[2], cut[3])
        return replace(
            inner,
            source_width=width,
            source_height=height,
            cut=cut,
            cut_auto=recipe.aspect_gravity == "auto",
        )
    return _sized(recipe, recipe.box(), width, height)


def _sized(
    recipe: Recipe, box: tuple[Fraction | None, Fraction | None], width: int, height: int
) -> Geometry:
    if recipe.full:
        return Geometry(width, height, width, height, width, height)
    box_w, box_h = box
    ratios = [
        r
        for r in (box_w / width if box_w else None, box_h / height if box_h else None)
        if r is not None
    ]

    if recipe.mode == "crop":
        sw, sh = _scaled(width, height, max(ratios))
        bw, bh = round(box_w), round(box_h)
        left, top = _crop_origin(recipe, sw, sh, bw, bh)
        return Geometry(width, height, sw, sh, bw, bh, left, top)

    scale = min(ratios)
    if recipe.mode == "scale-down":
        scale = min(scale, Fraction(1))
    sw, sh = _scaled(width, height, scale)
    if recipe.mode == "pad":
        # A scaled side may round one pixel past the box; the canvas never shrinks below it.
        bw, bh = max(round(box_w), sw), max(round(box_h), sh)
        return Geometry(width, height, sw, sh, bw, bh, (bw - sw) // 2, (bh - sh) // 2)
    return Geometry(width, height, sw, sh, sw, sh)


def _aspect_cut(
    recipe: Recipe, width: int, height: int
) -> tuple[tuple[int, int, int, int], Recipe]:
    """The largest W:H window of the source, placed like a crop (focal point, else the crop's
    gravity, else centre as attention's fallback); and the recipe with its focal point moved
    into the window's coordinates, so a crop after the cut keeps the same spot."""
    ratio = Fraction(*recipe.aspect)
    if Fraction(width, height) > ratio:  # too wide: cut the sides
        cw, ch = max(1, min(width, round(height * ratio))), height
    else:
        cw, ch = width, max(1, min(height, round(width / ratio)))
    left, top = _crop_origin(recipe, width, height, cw, ch, recipe.aspect_gravity)
    if recipe.focal is None:
        return (left, top, cw, ch), recipe
    fx, fy = recipe.focal
    moved = (
        _clamp_fraction((fx * width - left) / cw),
        _clamp_fraction((fy * height - top) / ch),
    )
    return (left, top, cw, ch), replace(recipe, focal=moved)


def _clamp_fraction(value: Fraction) -> Fraction:
    return max(Fraction(0), min(value, Fraction(1)))


def _crop_origin(
    recipe: Recipe, sw: int, sh: int, bw: int, bh: int, gravity: str | None = None
) -> tuple[int, int]:
    centre = ((sw - bw) // 2, (sh - bh) // 2)
    gravity = gravity or recipe.gravity
    if gravity == "focal":
        fx, fy = recipe.focal
        return (
            _clamp(round(fx * sw - Fraction(bw, 2)), 0, sw - bw),
            _clamp(round(fy * sh - Fraction(bh, 2)), 0, sh - bh),
        )
    if gravity == "left":
        return 0, centre[1]
    if gravity == "right":
        return sw - bw, centre[1]
    if gravity == "top":
        return centre[0], 0
    if gravity == "bottom":
        return centre[0], sh - bh
    return centre


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))
