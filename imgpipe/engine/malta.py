"""Butteraugli's Malta line filters (libjxl's MaltaUnit and MaltaUnitLF, see butteraugli.py):
per pixel, the sum over 16 short lines through it of (the line's sum of the difference)
squared; 9 taps for the highest band, 5 taps up to 4 px out for the lower ones.

Summing 9 (or 5) shifted copies per line repeats work: lines share taps. Here each line is
3 terms, a term being a partial sum ("part") at an offset; a part is a sum of shifted copies
of the padded difference "p" or of earlier parts. The horizontal line of 9 is a run of 3
("h3") at -3, 0 and +3; the 3 diagonal lines of 7 share their middle 3 ("d3"); the 5-tap
lines come in 4 triples sharing 3 taps ("t1".."t4"). That halves the additions; working on
strips of rows keeps the parts in the CPU's cache (3x at 1200 px). tests/test_malta.py
checks the lines against libjxl's taps.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
PAD = 4  # zeros around the difference: the lines reach 4 px out

Term = tuple[str, int, int]  # (part, dy, dx): part[y + dy, x + dx]
Plan = tuple[dict[str, tuple[Term, ...]], tuple[tuple[tuple[Term, Term, Term], int], ...]]

# Parts (name -> terms, in order), then lines (3 terms, and how often libjxl counts the line).
NINE: Plan = (
    {
        "h3": (("p", 0, -1), ("p", 0, 0), ("p", 0, 1)),
        "v3": (("p", -1, 0), ("p", 0, 0), ("p", 1, 0)),
        "d2": (("p", 0, 0), ("p", 1, 1)),
        "d3": (("d2", -1, -1), ("p", 1, 1)),
        "a2": (("p", 0, 0), ("p", 1, -1)),
        "a3": (("a2", -1, 1), ("p", 1, -1)),
    },
    (
        ((("h3", 0, -3), ("h3", 0, 0), ("h3", 0, 3)), 1),
        ((("v3", -3, 0), ("v3", 0, 0), ("v3", 3, 0)), 1),
        ((("d2", -3, -3), ("d3", 0, 0), ("d2", 2, 2)), 1),
        ((("a2", -3, 3), ("a3", 0, 0), ("a2", 2, -2)), 1),
        ((("d2", -3, -2), ("d3", 0, 0), ("d2", 2, 1)), 1),
        ((("a2", -3, 2), ("a3", 0, 0), ("a2", 2, -1)), 1),
        ((("d2", -2, -3), ("d3", 0, 0), ("d2", 1, 2)), 1),
        ((("a2", -2, 3), ("a3", 0, 0), ("a2", 1, -2)), 1),
        # libjxl lists these four twice (its 16 lines are 12 distinct ones).
        ((("v3", -3, 1), ("v3", 0, 0), ("v3", 3, -1)), 2),
        ((("v3", -3, -1), ("v3", 0, 0), ("v3", 3, 1)), 2),
        ((("h3", -1, -3), ("h3", 0, 0), ("h3", 1, 3)), 2),
        ((("h3", 1, -3), ("h3", 0, 0), ("h3", -1, 3)), 2),
    ),
)
FIVE: Plan = (
    {
        "h2": (("p", 0, 0), ("p", 0, 2)),
        "v2": (("p", 0, 0), ("p", 2, 0)),
        "d2": (("p", 0, 0), ("p", 1, 1)),
        "a2": (("p", 0, 0), ("p", 1, -1)),
        "t1": (("p", -2, -1), ("p", 0, 0), ("p", 2, 1)),
        "t2": (("p", -2, 1), ("p", 0, 0), ("p", 2, -1)),
        "t3": (("p", -1, -2), ("p", 0, 0), ("p", 1, 2)),
        "t4": (("p", 1, -2), ("p", 0, 0), ("p", -1, 2)),
    },
    (
        ((("h2", 0, -4), ("p", 0, 0), ("h2", 0, 2)), 1),
        ((("v2", -4, 0), ("p", 0, 0), ("v2", 2, 0)), 1),
        ((("d2", -3, -3), ("p", 0, 0), ("d2", 2, 2)), 1),
        ((("a2", -3, 3), ("p", 0, 0), ("a2", 2, -2)), 1),
        ((("t2", 0, 0), ("p", -4, 1), ("p", 4, -1)), 1),
        ((("t1", 0, 0), ("p", -4, -1), ("p", 4, 1)), 1),
        ((("t3", 0, 0), ("p", -1, -4), ("p", 1, 4)), 1),
        ((("t4", 0, 0), ("p", 1, -4), ("p", -1, 4)), 1),
        ((("t1", 0, 0), ("p", -3, -2), ("p", 3, 2)), 1),
        ((("t2", 0, 0), ("p", -3, 2), ("p", 3, -2)), 1),
        ((("t3", 0, 0), ("p", -2, -3), ("p", 2, 3)), 1),
        ((("t4", 0, 0), ("p", -2, 3), ("p", 2, -3)), 1),
        ((("t4", 0, 0), ("p", 2, -4), ("p", -2, 4)), 1),
        ((("t3", 0, 0), ("p", -2, -4), ("p", 2, 4)), 1),
        ((("t1", 0, 0), ("p", -4, -2), ("p", 4, 2)), 1),
        ((("t2", 0, 0), ("p", -4, 2), ("p", 4, -2)), 1),
    ),
)
STRIP = 48  # output rows at a time: ~12 arrays of 48 rows stay in a 1 MB L2 cache at 480 px


def lines(padded: np.ndarray, plan: Plan) -> np.ndarray:
    """Sum over the plan's lines of (the line's sum of `padded`) squared, for the pixels
    inside its PAD-pixel zero border."""
    h, w = padded.shape[0] - 2 * PAD, padded.shape[1] - 2 * PAD
    out = np.empty((h, w), F32)
    for top in range(0, h, STRIP):
        bottom = min(h, top + STRIP)
        _strip(padded[top : bottom + 2 * PAD], plan, out[top:bottom])
    return out


def _strip(padded: np.ndarray, plan: Plan, out: np.ndarray) -> None:
    parts, line_terms = plan
    # name -> (array, the padded row and column of its [0, 0]); a part covers only where all
    # its terms fall inside their sources.
    arrays = {"p": (padded, 0, 0)}

    def view(term: Term, top: int, left: int, h: int, w: int) -> np.ndarray:
        source, dy, dx = term
        a, y, x = arrays[source]
        view = a[top + dy - y : top + dy - y + h, left + dx - x : left + dx - x + w]
        assert view.shape == (h, w), term  # a plan reading outside a part
        return view

    for name, terms in parts.items():
        top = max(arrays[s][1] - dy for s, dy, _ in terms)
        bottom = min(arrays[s][1] + arrays[s][0].shape[0] - dy for s, dy, _ in terms)
        left = max(arrays[s][2] - dx for s, _, dx in terms)
        right = min(arrays[s][2] + arrays[s][0].shape[1] - dx for s, _, dx in terms)
        shifted = [view(t, top, left, bottom - top, right - left) for t in terms]
        part = np.add(shifted[0], shifted[1])
        for more in shifted[2:]:
            part += more
        arrays[name] = (part, top, left)
    h, w = out.shape
    twice = np.zeros((h, w), F32)
    line = np.empty((h, w), F32)
    out.fill(0)
    for (a, b, c), count in line_terms:
        np.add(view(a, PAD, PAD, h, w), view(b, PAD, PAD, h, w), out=line)
        line += view(c, PAD, PAD, h, w)
        line *= line
        target = out if count == 1 else twice
        target += line
    twice *= F32(2)
    out += twice


def bounds(ref: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """[low, high] x the reference's value, as an interval (the ends swap where it is < 0)."""
    a, b = F32(low) * ref, F32(high) * ref
    return np.minimum(a, b), np.maximum(a, b)


def beyond(dist: np.ndarray, interval: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """How far `dist` falls outside the interval, signed (0 inside)."""
    inside = np.maximum(dist, interval[0])
    np.minimum(inside, interval[1], out=inside)
    return np.subtract(dist, inside, out=inside)


def diffmap(ref: np.ndarray, dist: np.ndarray, weight: float, norm: float, lf: bool) -> np.ndarray:
    """libjxl's MaltaDiffMap (MaltaDiffMapLF if `lf`): the lines over the difference plus how
    far `dist` falls outside 0.55 to 1.05 x `ref` (lost or exaggerated contrast), each
    weighted, over their mean magnitude. Numerator and denominator are twice libjxl's (exact
    in floating point)."""
    mulli = 0.611612573796 if lf else 0.39905817637
    taps = 2 * 3.75 + 1
    norm_gt = F32(2 * mulli * np.sqrt(0.5 * weight) / taps * norm)
    norm_lt = F32(2 * mulli * np.sqrt(0.33 * weight) / taps * norm)
    padded = np.zeros((ref.shape[0] + 2 * PAD, ref.shape[1] + 2 * PAD), F32)
    d = np.subtract(ref, dist, out=padded[PAD:-PAD, PAD:-PAD])
    d *= norm_gt
    outside = beyond(dist, bounds(ref, 0.55, 1.05))
    outside *= norm_lt
    d -= outside
    denom = np.abs(dist)
    denom += np.abs(ref)
    denom += F32(2 * norm)
    d /= denom
    return lines(padded, FIVE if lf else NINE)
