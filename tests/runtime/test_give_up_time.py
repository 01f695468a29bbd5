"""The arithmetic of restart intensity with backoff: Backoff.bounds and time_to_give_up, the
numbers docs/deployment.md builds the outage ride-out on."""

from __future__ import annotations

import math

import pytest

from minions_actors import Backoff, Gru, OneForOne
from minions_actors.supervision import time_to_give_up


def test_bounds_hold_every_delay_and_respect_the_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=10.0)
    for attempt in range(1, 12):
        low, high = backoff.bounds(attempt)
        assert 0 <= low <= high <= 10.0
        assert all(low <= backoff.delay(attempt) <= high for _ in range(200))
    assert backoff.bounds(1) == pytest.approx((0.08, 0.12))
    assert backoff.bounds(9) == (8.0, 10.0)  # capped: the jitter only shortens


def test_without_backoff_a_supervisor_gives_up_at_once() -> None:
    assert time_to_give_up(OneForOne(max_restarts=3, within=5.0)) == (0.0, 0.0)


def test_gru_default_gives_up_18_to_25_s_after_the_first_failure() -> None:
    shortest, longest = time_to_give_up(Gru.strategy)
    # 0.1 + 0.2 + ... + 6.4 = 12.7 s (+-20 %), then one capped 10 s (8 to 10 s)
    assert shortest == pytest.approx(12.7 * 0.8 + 8.0)
    assert longest == pytest.approx(12.7 * 1.2 + 10.0)


def test_a_window_shorter_than_the_backoff_never_gives_up() -> None:
    never = OneForOne(max_restarts=10, within=60, backoff=Backoff(initial=0.5, maximum=30))
    assert time_to_give_up(never) == (math.inf, math.inf)
