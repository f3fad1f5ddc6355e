"""Checking a search's answer with butteraugli itself, on a window of the rendition.

The search scores encodings with metric.py, a fast fitted predictor of butteraugli's 3-norm.
Its error on photos it was not fitted to (about 0.1 butteraugli units, mostly a bias of the
photo and format that holds across qualities) is as large as the spread the presets must
keep. So once a search has found its answer, butteraugli.py (the real distance, ~10x slower)
measures the predictor's error on that encoding, and the search moves its target by it.

Butteraugli costs ~0.4 s of CPU per megapixel, so it sees windows of WINDOW pixels: the one
where the metric's own error map (metric.Reference.error_map) is worst, as butteraugli's
p-norm is, and the centred one (where photographers put what matters), the error being the
mean of the two; one window when it covers the image (up to ~480 px wide). Measured at
1200 px (medium, 3 formats; `python bench/bench_butteraugli.py --window`), the residual sd of
the whole image's error once corrected, with the slope fitted on the 19 calibration photos:

    window         calibration   held-out (12 photos)   bench (8 photos)
    worst only     0.061         0.086                  0.053
    centred only   0.062         0.060                  0.072
    both, mean     0.057         0.058                  0.055

Either window alone misjudges some photos (the worst one put a grey sky in view where
butteraugli's errors were in the middle: that photo's WebP landed at 1.40 instead of 1.2);
the two together held on all three sets, for twice the check's cost above ~480 px. Regressed,
the error counts for `k = f + (1 - f) x WINDOW_WEIGHT` of the correction, f being the share of
the image one window covers, and the tables' average correction (encode.TARGET_SHIFT/SLOPE)
for the rest.
"""

from __future__ import annotations

import math

import numpy as np
import pyvips

from . import butteraugli, metric

WINDOW = 480 * 320
WINDOW_WEIGHT = 0.5  # the regression of the whole image's error on the window's (calibration)
Box = tuple[int, int, int, int]  # left, top, width, height


class Check:
    """The checks of one search's answers: up to 3 encodings of `final`, searched for with
    `scorer`. Each is judged in the windows described above; a window's reference side
    (butteraugli's is ~1/3 of a check) is kept for the next check while it is one of that
    check's windows (the centred one always is), ~10 MB each."""

    def __init__(self, scorer: metric.Reference, final: pyvips.Image) -> None:
        self.scorer, self.final = scorer, final
        self._sides: dict[Box, tuple[butteraugli.Reference, metric.Reference]] = {}

    def correction(self, encoded: pyvips.Image, fmt: str, average: float) -> float:
        """Score points to add to the search's target, `encoded` being `final` encoded in
        `fmt` and `average` the tables' correction already in the target; 0 for images the
        check cannot judge (transparent, too small)."""
        final = self.final
        if final.hasalpha() or final.bands != 3:
            return 0.0
        side = min(1.0, math.sqrt(WINDOW / (final.width * final.height)))
        width, height = round(final.width * side), round(final.height * side)
        if not metric.scorable(width, height):
            return 0.0
        left, top = _worst(self.scorer.error_map(encoded), width, height)
        boxes = {
            (min(left, final.width - width), min(top, final.height - height), width, height),
            ((final.width - width) // 2, (final.height - height) // 2, width, height),
        }
        self._sides = {box: self._sides[box] for box in boxes if box in self._sides}
        error = sum(self._error(box, encoded, fmt) for box in boxes) / len(boxes)
        covered = width * height / (final.width * final.height)
        k = covered + (1 - covered) * WINDOW_WEIGHT
        return round(k * (10 * error - average), 2)

    def _error(self, box: Box, encoded: pyvips.Image, fmt: str) -> float:
        """How much more butteraugli sees in the window than the metric predicts."""
        if box not in self._sides:
            reference = self.final.crop(*box)
            self._sides[box] = butteraugli.Reference(reference), metric.Reference(reference)
        truth, proxy = self._sides[box]
        distorted = encoded.crop(*box)
        return truth.distance(distorted) - proxy.distance(distorted, fmt)


def _worst(errors: np.ndarray, width: int, height: int) -> tuple[int, int]:
    """The top left corner of the `width` x `height` window (full-size pixels) holding the
    most of `errors` (a map at 1:SCALE) by its 4-norm: where butteraugli's p-norm looks."""
    scale = 1 << min(metric.SCALES)
    w, h = max(1, width // scale), max(1, height // scale)
    sums = np.pad((errors.astype(np.float64) ** 4).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    boxes = sums[h:, w:] - sums[:-h, w:] - sums[h:, :-w] + sums[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(boxes)), boxes.shape)
    return int(x) * scale, int(y) * scale
