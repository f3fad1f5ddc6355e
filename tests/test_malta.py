"""engine/malta.py's shared partial sums against libjxl's Malta lines, tap by tap."""

from __future__ import annotations

import numpy as np
import pytest

from imgpipe.engine import malta

# libjxl 0.7 (lib/jxl/butteraugli/butteraugli.cc, MaltaUnit and MaltaUnitLF): each line's taps
# as (dy, dx), the centre included. MaltaUnit lists the last four lines twice.
NINE_ONCE = [
    [(0, d) for d in range(-4, 5)],
    [(d, 0) for d in range(-4, 5)],
    [(-3, -3), (-2, -2), (-1, -1), (0, 0), (1, 1), (2, 2), (3, 3)],
    [(-3, 3), (-2, 2), (-1, 1), (0, 0), (1, -1), (2, -2), (3, -3)],
    [(-3, -2), (-2, -1), (-1, -1), (0, 0), (1, 1), (2, 1), (3, 2)],
    [(-3, 2), (-2, 1), (-1, 1), (0, 0), (1, -1), (2, -1), (3, -2)],
    [(-2, -3), (-1, -2), (-1, -1), (0, 0), (1, 1), (1, 2), (2, 3)],
    [(-2, 3), (-1, 2), (-1, 1), (0, 0), (1, -1), (1, -2), (2, -3)],
]
NINE_TWICE = [
    [(-4, 1), (-3, 1), (-2, 1), (-1, 0), (0, 0), (1, 0), (2, -1), (3, -1), (4, -1)],
    [(-4, -1), (-3, -1), (-2, -1), (-1, 0), (0, 0), (1, 0), (2, 1), (3, 1), (4, 1)],
    [(-1, -4), (-1, -3), (-1, -2), (0, -1), (0, 0), (0, 1), (1, 2), (1, 3), (1, 4)],
    [(1, -4), (1, -3), (1, -2), (0, -1), (0, 0), (0, 1), (-1, 2), (-1, 3), (-1, 4)],
]
FIVE = [
    [(0, -4), (0, -2), (0, 0), (0, 2), (0, 4)],
    [(-4, 0), (-2, 0), (0, 0), (2, 0), (4, 0)],
    [(-3, -3), (-2, -2), (0, 0), (2, 2), (3, 3)],
    [(-3, 3), (-2, 2), (0, 0), (2, -2), (3, -3)],
    [(-4, 1), (-2, 1), (0, 0), (2, -1), (4, -1)],
    [(-4, -1), (-2, -1), (0, 0), (2, 1), (4, 1)],
    [(-1, -4), (-1, -2), (0, 0), (1, 2), (1, 4)],
    [(1, -4), (1, -2), (0, 0), (-1, 2), (-1, 4)],
    [(-3, -2), (-2, -1), (0, 0), (2, 1), (3, 2)],
    [(-3, 2), (-2, 1), (0, 0), (2, -1), (3, -2)],
    [(-2, -3), (-1, -2), (0, 0), (1, 2), (2, 3)],
    [(-2, 3), (-1, 2), (0, 0), (1, -2), (2, -3)],
    [(2, -4), (1, -2), (0, 0), (-1, 2), (-2, 4)],
    [(-2, -4), (-1, -2), (0, 0), (1, 2), (2, 4)],
    [(-4, -2), (-2, -1), (0, 0), (2, 1), (4, 2)],
    [(-4, 2), (-2, 1), (0, 0), (2, -1), (4, -2)],
]


def tap_by_tap(d: np.ndarray, lines: list[list[tuple[int, int]]]) -> np.ndarray:
    """libjxl's way: per line, the sum of the shifted copies, squared; summed over lines."""
    h, w = d.shape
    p = np.pad(d.astype(np.float64), malta.PAD)
    out = np.zeros((h, w))
    for line in lines:
        s = sum(p[4 + dy : 4 + dy + h, 4 + dx : 4 + dx + w] for dy, dx in line)
        out += s * s
    return out


@pytest.mark.parametrize(
    ("plan", "lines"), [(malta.NINE, NINE_ONCE + NINE_TWICE * 2), (malta.FIVE, FIVE)]
)
@pytest.mark.parametrize("shape", [(9, 9), (malta.STRIP * 2 + 7, 61)])  # several strips
def test_lines_sum_libjxls_taps(plan: malta.Plan, lines: list, shape: tuple[int, int]) -> None:
    d = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ours = malta.lines(np.pad(d, malta.PAD), plan)
    assert ours.shape == shape
    np.testing.assert_allclose(ours, tap_by_tap(d, lines), rtol=1e-5, atol=1e-5)
