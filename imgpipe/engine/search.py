"""Finding the lowest encoder quality whose result meets a perceptual score. Pure: the caller
supplies `evaluate(quality) -> score`, so this is tested without encoders.

The score rises with the encoder quality, almost linearly near any one target, so the search is
a secant method seeded with a good guess and a typical slope: the first trial usually lands
within a point or two, the second within the tolerance. It keeps a bracket (the best quality
below the target and the best above) so a noisy, non-monotone stretch cannot make it wander,
and it stops at the deadline with the best answer so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

# A score within this of the target counts as meeting it. The metric's own error on an unseen
# photo is about 1.5 points (0.15 butteraugli units): chasing a closer landing costs encodes
# (at full size: the search's whole cost) and buys nothing anybody can see. Measured on 20
# held-out photos (bench_quality.py quality, medium, 480 and 1200 px): a band of 0.5 halved
# the landings' own scatter but left butteraugli's spread per format as it was (standard
# deviation 0.104 -> 0.107, the metric's error dominates) for 35% more encodes.
TOLERANCE = 1.0
MAX_TRIALS = 6


@dataclass(frozen=True)
class Found:
    """The decision: `quality` and its `score` (None when nothing was tried in time)."""

    quality: int | None
    score: float | None
    trials: dict[int, float] = field(default_factory=dict)  # every quality tried -> score
    timed_out: bool = False
    reachable: bool = True  # False: even the highest quality allowed scores below the target


def find_quality(
    evaluate: Callable[[int], float],
    target: float,
    low: int,
    high: int,
    guess: int,
    slope: float,
    deadline: float = math.inf,
    tolerance: float = TOLERANCE,
    max_trials: int = MAX_TRIALS,
) -> Found:
    """The lowest quality in [low, high] that scores at least `target - tolerance`.

    `slope` is the expected score gained per quality step near the target (> 0).
    """
    trials: dict[int, float] = {}
    quality = min(max(guess, low), high)
    timed_out = False
    while len(trials) < max_trials:
        if time.monotonic() > deadline:
            timed_out = True
            break
        trials[quality] = evaluate(quality)
        following = _next(trials, target, low, high, slope, tolerance)
        if following is None:
            break
        quality = following
    return _decide(trials, target, high, tolerance, timed_out)


def _next(
    trials: dict[int, float], target: float, low: int, high: int, slope: float, tolerance: float
) -> int | None:
    """The next quality to try, or None when the answer is known."""
    meets = [q for q, s in trials.items() if s >= target - tolerance]
    misses = [q for q, s in trials.items() if s < target - tolerance]
    above = min(meets) if meets else None  # lowest quality known to be good enough
    below = max((q for q in misses if above is None or q < above), default=None)
    if above is not None and trials[above] <= target + tolerance:
        return None  # on target: lower would miss it, or not save enough to matter
    if above is not None and below is not None:
        if above - below <= 1:
            return None
        # Interpolate inside the bracket, kept strictly inside so it always shrinks.
        sa, sb = trials[above], trials[below]
        step = (target - sb) / (sa - sb) if sa > sb else 0.5
        candidate = below + round(step * (above - below))
        return min(max(candidate, below + 1), above - 1)
    known = above if above is not None else below
    assert known is not None
    if above is not None and known == low:
        return None  # good enough at the lowest quality allowed
    if above is None and known == high:
        return None  # not good enough even at the highest
    # One side only: step by the typical slope (at least one quality, at most a fifth of the
    # range, so a wild score cannot throw the search to the far end).
    delta = (target - trials[known]) / slope
    limit = max(1, (high - low) // 5)
    delta = max(-limit, min(limit, delta))
    step = round(delta) or (1 if delta > 0 else -1)
    candidate = min(max(known + step, low), high)
    return None if candidate in trials else candidate


def _decide(
    trials: dict[int, float], target: float, high: int, tolerance: float, timed_out: bool
) -> Found:
    if not trials:
        return Found(None, None, {}, timed_out=timed_out)
    meets = [q for q, s in trials.items() if s >= target - tolerance]
    if meets:
        best = min(meets)
        return Found(best, trials[best], dict(trials), timed_out=timed_out)
    # Nothing good enough: the best tried. Unreachable only if the top was tried.
    best = max(trials, key=lambda q: (trials[q], -q))
    return Found(
        best, trials[best], dict(trials), timed_out=timed_out, reachable=high not in trials
    )


def find_checked(
    evaluate: Callable[[int], float],
    check: Callable[[int], float],
    target: float,
    low: int,
    high: int,
    guess: int,
    slope: float,
    deadline: float = math.inf,
    checks: int = 3,
) -> Found:
    """find_quality, its answer then checked by a slower, truer judge: `check(quality)` is how
    many points `evaluate` overrates that quality by. The search carries on with the scores as
    far as the checks know them (a checked quality's own correction, the latest check's for
    the others) until an answer's check agrees, at most `checks` times; only a checked answer
    is kept: the lowest meeting the target as its check says, else the best."""
    checked: dict[int, float] = {}
    latest = 0.0

    def judged(quality: int) -> float:
        return round(evaluate(quality) - checked.get(quality, latest), 2)

    start = guess
    while True:
        found = find_quality(judged, target, low, high, start, slope, deadline)
        quality = found.quality
        if quality is None or quality in checked or len(checked) == checks:
            break
        if found.timed_out or time.monotonic() > deadline:
            break
        checked[quality] = latest = check(quality)
        if abs(judged(quality) - target) <= TOLERANCE:
            break
        start = quality
    if not checked:
        return found
    corrected = {q: round(evaluate(q) - shift, 2) for q, shift in checked.items()}
    meets = [q for q, score in corrected.items() if score >= target - TOLERANCE]
    best = min(meets) if meets else max(corrected, key=lambda q: corrected[q])
    return replace(found, quality=best, score=corrected[best])
