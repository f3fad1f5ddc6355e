"""The quality search on its own (pure: a score function stands in for encoder and metric)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from imgpipe.engine import search
from imgpipe.engine.search import TOLERANCE, find_quality


def linear(start: float, slope: float, calls: list[int] | None = None):
    def score(quality: int) -> float:
        if calls is not None:
            calls.append(quality)
        return start + slope * quality

    return score


@pytest.mark.parametrize("guess", [20, 50, 70, 95])
def test_lands_within_the_tolerance_of_the_target_in_few_trials(guess):
    calls: list[int] = []
    # score = 60 + 0.4 q: the target 88 is at q = 70; the slope given is off by almost 2x.
    found = find_quality(linear(60, 0.4, calls), 88, 10, 95, guess, slope=0.25)
    assert 88 - TOLERANCE <= found.score <= 88 + TOLERANCE
    assert len(calls) <= 4 and len(set(calls)) == len(calls)  # nothing encoded twice
    assert found.reachable and not found.timed_out


def test_a_good_guess_costs_one_trial():
    calls: list[int] = []
    found = find_quality(linear(60, 0.4, calls), 88, 10, 95, 70, slope=0.4)
    assert calls == [70] and found.quality == 70


def test_unreachable_target_gives_the_best_at_the_ceiling():
    found = find_quality(linear(0, 0.5, None), 88, 10, 60, 40, slope=0.5)
    assert (found.quality, found.reachable) == (60, False)


def test_good_enough_at_the_floor_stops_there():
    found = find_quality(linear(95, 0.01, None), 88, 10, 60, 30, slope=0.3)
    assert found.quality == 10 and found.score >= 88


def test_a_noisy_score_cannot_make_it_loop():
    bumps = {q: 60 + 0.4 * q + (3 if q % 2 else -3) for q in range(101)}
    found = find_quality(bumps.__getitem__, 88, 10, 95, 50, slope=0.4)
    assert len(found.trials) <= 6 and found.score >= 88 - TOLERANCE


def test_a_passed_deadline_tries_nothing():
    found = find_quality(linear(60, 0.4), 88, 10, 95, 50, slope=0.4, deadline=time.monotonic() - 1)
    assert (found.quality, found.score, found.timed_out) == (None, None, True)


def test_the_deadline_stops_the_search_with_the_best_so_far(monkeypatch):
    # An injected clock that moves only when an encode runs: with the real one, a busy
    # machine could pass a 10 ms deadline before the first encode (then nothing is tried).
    clock = [100.0]
    monkeypatch.setattr(search, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    def slow(quality: int) -> float:
        clock[0] += 1.0  # each encode takes a second
        return 60 + 0.4 * quality

    found = find_quality(slow, 88, 10, 95, 30, slope=0.4, deadline=100.5)
    assert found.timed_out and found.trials == {30: 72.0} and found.quality == 30
