"""Which viewport widths to measure, and the `sizes` value that the measurements call for.

Pure: the browser is behind a `measure(width)` callable. Layouts are piecewise linear in the
viewport width (percentages, `vw`, `calc()`, fixed maxima, grids with a fixed gap), with
breakpoints where a media query switches. So the sweep measures a coarse grid, checks each
interval at its midpoint, and bisects only the intervals where the values are off the straight
line through its ends, down to 1 px: the breakpoints come out exact in about 16 measurements
each, instead of one measurement per pixel (2,241 for 320-2560).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LOW, HIGH = 320, 2560  # the sweep's viewport widths (CSS px): a small phone to a large desktop
COARSE = 320  # grid step; each interval is also checked at its midpoint
# Chromium lays out in 1/64 px and snaps some widths to whole pixels: closer than this counts
# as on the line.
STRAIGHT = 1.0
MAX_SAMPLES = 160  # per page: a layout that is curved everywhere must not sweep for ever


@dataclass(frozen=True)
class Segment:
    """`width = slope * viewport + offset`, measured from viewport `first` to `last`."""

    first: int
    last: int
    slope: float
    offset: float

    def at(self, viewport: float) -> float:
        return self.slope * viewport + self.offset


def sweep(
    measure: Callable[[int], Sequence[float]],
    low: int = LOW,
    high: int = HIGH,
    max_samples: int = MAX_SAMPLES,
) -> dict[int, Sequence[float]]:
    """Viewport width -> the values `measure` returned there, sampled densely only around the
    places where some value leaves its straight line (a breakpoint)."""
    samples: dict[int, Sequence[float]] = {}

    def at(width: int) -> Sequence[float]:
        if width not in samples:
            samples[width] = measure(width)
        return samples[width]

    grid = [*range(low, high, COARSE), high]
    intervals = list(zip(grid, grid[1:], strict=False))
    for a, b in intervals:
        at(a), at(b)
    while intervals and len(samples) < max_samples:
        a, b = intervals.pop()
        if b - a <= 1:
            continue
        m = (a + b) // 2
        if not _straight(a, at(a), m, at(m), b, at(b)):
            intervals += [(a, m), (m, b)]
    return dict(sorted(samples.items()))


def _straight(
    a: int, va: Sequence[float], m: int, vm: Sequence[float], b: int, vb: Sequence[float]
) -> bool:
    t = (m - a) / (b - a)
    return all(abs(x + (z - x) * t - y) <= STRAIGHT for x, y, z in zip(va, vm, vb, strict=True))


def segments(points: Sequence[tuple[int, float]]) -> list[Segment]:
    """The straight pieces through (viewport, width) points sorted by viewport: each piece
    grows while every point on it stays within STRAIGHT of the line through its ends."""
    pieces: list[Segment] = []
    i = 0
    while i < len(points):
        j = i + 1
        while j < len(points) and _fits(points[i : j + 1]):
            j += 1
        (v0, w0), (v1, w1) = points[i], points[j - 1]
        slope = (w1 - w0) / (v1 - v0) if v1 != v0 else 0.0
        pieces.append(Segment(v0, v1, slope, w0 - slope * v0))
        i = j
    return pieces


def _fits(points: Sequence[tuple[int, float]]) -> bool:
    (v0, w0), (v1, w1) = points[0], points[-1]
    slope = (w1 - w0) / (v1 - v0)
    return all(abs(w0 + slope * (v - v0) - w) <= STRAIGHT for v, w in points)


def length(slope: float, offset: float) -> str:
    """A CSS length for `slope * 100vw + offset`: `320px`, `50vw` or `calc(33.33vw - 21px)`."""
    vw = round(slope * 100, 2)
    px = round(offset)
    if vw == 0:
        return f"{max(px, 1)}px"
    vw_text = f"{vw:g}vw"
    if px == 0:
        return vw_text
    return f"calc({vw_text} {'-' if px < 0 else '+'} {abs(px)}px)"


def suggest(points: Sequence[tuple[int, float]]) -> str:
    """A `sizes` value matching rendered widths measured at (viewport, width) points: one
    `(min-width: Npx)` condition per breakpoint, widest first, as the browser reads them."""
    entries: list[tuple[int, str]] = []
    pieces = segments(points)
    for before, piece in zip([None, *pieces], pieces, strict=False):
        text = length(piece.slope, piece.offset)
        if entries and entries[-1][1] == text:
            continue  # the same length on both sides of another image's breakpoint
        entries.append((_start(before, piece), text))
    if not entries:
        return "100vw"
    parts = [f"(min-width: {start}px) {text}" for start, text in reversed(entries[1:])]
    return ", ".join([*parts, entries[0][1]])


def _start(before: Segment | None, piece: Segment) -> int:
    """Where `piece` takes over: where the two lines cross when the width bends there (the
    samples may be sparse on one side; the bend's own sample fits both pieces), else right
    after the last sample of the piece before (a jump, found by bisection to 1 px)."""
    if before is None:
        return piece.first
    if piece.slope != before.slope:
        cross = (before.offset - piece.offset) / (piece.slope - before.slope)
        if before.last - 1 <= cross <= piece.first:
            return max(math.ceil(cross - 1e-6), before.first + 1)
    return min(before.last + 1, piece.first)
