"""The supervisor's pure decision (runtime.supervision.decide), without threads or clocks:
one case per restart type, per strategy and for the sliding intensity window."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from minions_actors import Backoff, OneForAll, OneForOne, RestForOne
from minions_actors.runtime.supervision import (
    ChildExit,
    GiveUp,
    RestartChildren,
    StopChild,
    backoff_delay,
    decide,
)

KIDS = ["a", "b", "c", "d"]
BOOM = RuntimeError("boom")


def crash(child: str, restart: str = "permanent", leaving: tuple[str, ...] = ()) -> ChildExit[str]:
    return ChildExit(child, restart, BOOM, KIDS, leaving.__contains__)  # type: ignore[arg-type]


@pytest.mark.parametrize(("restart", "exc", "expected"), [
    ("permanent", BOOM, RestartChildren),
    ("permanent", None, RestartChildren),
    ("transient", BOOM, RestartChildren),
    ("transient", None, StopChild),
    ("temporary", BOOM, StopChild),
    ("temporary", None, StopChild),
])
def test_restart_type_decides_whether_to_restart(restart: str, exc: BaseException | None,
                                                 expected: type) -> None:
    decision, history = decide(ChildExit("b", restart, exc, KIDS),  # type: ignore[arg-type]
                               OneForOne(), (), now=10.0)
    assert isinstance(decision, expected)
    # only restarts count against the intensity
    assert history == ((10.0,) if expected is RestartChildren else ())
    if isinstance(decision, StopChild):
        assert decision.reason == ("crashed" if exc else "exited")


@pytest.mark.parametrize(("strategy", "affected"), [
    (OneForOne(), ["b"]),
    (OneForAll(), ["a", "b", "c", "d"]),
    (RestForOne(), ["b", "c", "d"]),
])
def test_one_clause_per_strategy(strategy: OneForOne, affected: list[str]) -> None:
    decision, _ = decide(crash("b"), strategy, (), now=0.0)
    assert decision == RestartChildren(affected, 1, "RuntimeError: boom")


def test_children_already_leaving_are_not_restarted_but_the_failed_one_is() -> None:
    decision, _ = decide(crash("b", leaving=("b", "c")), OneForAll(), (), now=0.0)
    assert isinstance(decision, RestartChildren)
    assert decision.affected == ["a", "b", "d"]


def test_intensity_gives_up_after_max_restarts_within_the_window() -> None:
    strategy = OneForOne(max_restarts=2, within=5.0)
    d1, h = decide(crash("a"), strategy, (), now=0.0)
    d2, h = decide(crash("a"), strategy, h, now=1.0)
    d3, h = decide(crash("a"), strategy, h, now=2.0)
    assert [type(d) for d in (d1, d2, d3)] == [RestartChildren, RestartChildren, GiveUp]
    assert isinstance(d2, RestartChildren) and d2.attempt == 2


def test_the_window_slides_old_restarts_out() -> None:
    strategy = OneForOne(max_restarts=1, within=5.0)
    _, h = decide(crash("a"), strategy, (), now=0.0)
    decision, h = decide(crash("a"), strategy, h, now=5.5)  # the first is out of the window
    assert isinstance(decision, RestartChildren) and decision.attempt == 1
    assert h == (5.5,)


def test_zero_max_restarts_gives_up_at_the_first_crash() -> None:
    decision, _ = decide(crash("a"), OneForOne(max_restarts=0), (), now=0.0)
    assert isinstance(decision, GiveUp)


def test_backoff_delay_follows_the_attempt_number() -> None:
    assert backoff_delay(OneForOne(), 3) == 0.0
    strategy = OneForOne(backoff=Backoff(initial=0.1, multiplier=2.0, maximum=1.0, jitter=0.0))
    assert [backoff_delay(strategy, n) for n in (1, 2, 3, 5)] == pytest.approx([0.1, 0.2, 0.4, 1.0])


def test_a_history_decided_on_again_gives_the_same_answer() -> None:
    """decide() is pure: a history it returned and then decided on once more (a decision
    tried and not taken) still holds only its own restarts."""
    strategy = OneForOne(max_restarts=2, within=10.0)
    _, first = decide(crash("b"), strategy, (), now=1.0)
    _, second = decide(crash("b"), strategy, first, now=2.0)
    again, other = decide(crash("b"), strategy, first, now=3.0)
    assert first == (1.0,) and second == (1.0, 2.0) and other == (1.0, 3.0)
    assert isinstance(again, RestartChildren) and again.attempt == 2
    assert isinstance(decide(crash("b"), strategy, second, now=4.0)[0], GiveUp)
    assert decide(crash("b"), strategy, other, now=11.5)[1] == (3.0, 11.5)


def test_a_long_window_slides_restart_by_restart() -> None:
    """A lenient strategy keeps thousands of restarts in its window; each decision counts
    those within it, however many fell out."""
    strategy = OneForOne(max_restarts=10**6, within=1000.0)
    history: Sequence[float] = ()
    for now in range(5000):
        decision, history = decide(crash("b"), strategy, history, now=float(now))
    assert isinstance(decision, RestartChildren) and decision.attempt == 1001
    assert list(history) == [float(t) for t in range(3999, 5000)]
