"""Checking a search's answer with butteraugli itself, on a window of the rendition.

The search scores encodings with metric.py, a fast fitted predictor of butteraugli's 3-norm.
Its error on photos it was not fitted to (about 0.1 butteraugli units, mostly a bias of the
photo and format that holds across qualities) is as large as the spread the presets must
keep. So once a search has found its answer, butteraugli.py (the real distance, ~10x slower)
measures the predictor's error on that encoding, and the search moves its target by it.

Butteraugli costs ~0.4 s of CPU per megapixel, so it sees a window of at most WINDOW pixels:
the one where the metric's own error map (metric.Reference.error_map) is worst, as
butteraugli's p-norm is. On the calibration photos' 1200 px renditions (bench/bench_quality.py;
medium; 19 photos x 3 formats) the error in that window correlates 0.77 (AVIF), 0.81 (WebP)
and 0.71 (JPEG) with the whole image's, against 0.72, 0.70 and 0.64 for a centred window;
regressed, it counts for `k = f + (1 - f) x WINDOW_WEIGHT` of the correction, f being the
share of the image the window covers (all of it up to ~480 px wide), and the tables' average
correction (encode.TARGET_SHIFT/SLOPE) for the rest.
"""

from __future__ import annotations

import math

import numpy as np
import pyvips

from . import butteraugli, metric

WINDOW = 480 * 320
WINDOW_WEIGHT = 0.5  # the regression of the whole image's error on the window's (calibration)


class Check:
    """The checks of one search's answers: up to 3 encodings of `final`, searched for with
    `scorer`. A check on the same window as the one before (always, for a rendition no
    bigger than WINDOW) reuses its reference side (butteraugli's is ~1/3 of a check); only
    the latest is kept (~10 MB)."""

    def __init__(self, scorer: metric.Reference, final: pyvips.Image) -> None:
        self.scorer, self.final = scorer, final
        self._window: tuple[tuple[int, ...], butteraugli.Reference, metric.Reference] | None = None

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
        box = min(left, final.width - width), min(top, final.height - height), width, height
        if self._window is None or self._window[0] != box:
            reference = final.crop(*box)
            self._window = box, butteraugli.Reference(reference), metric.Reference(reference)
        _, truth, proxy = self._window
        distorted = encoded.crop(*box)
        error = truth.distance(distorted) - proxy.distance(distorted, fmt)
        covered = width * height / (final.width * final.height)
        k = covered + (1 - covered) * WINDOW_WEIGHT
        return round(k * (10 * error - average), 2)


def _worst(errors: np.ndarray, width: int, height: int) -> tuple[int, int]:
    """The top left corner of the `width` x `height` window (full-size pixels) holding the
    most of `errors` (a map at 1:SCALE) by its 4-norm: where butteraugli's p-norm looks."""
    scale = 1 << min(metric.SCALES)
    w, h = max(1, width // scale), max(1, height // scale)
    sums = np.pad((errors.astype(np.float64) ** 4).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    boxes = sums[h:, w:] - sums[:-h, w:] - sums[h:, :-w] + sums[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(boxes)), boxes.shape)
    return int(x) * scale, int(y) * scale
