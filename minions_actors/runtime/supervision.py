"""Supervision policy: restart strategies, restart types, intensity and backoff.

This module holds the *decisions* a supervisor makes (in the manner of Erlang/OTP's
``supervisor``): which children to restart after a failure, whether the restart intensity
has been exceeded, and how long to wait before restarting. Carrying the decisions out is
the job of :mod:`minions_actors.runtime.cell`.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, overload

RestartType = Literal["permanent", "transient", "temporary"]
"""When a child is restarted: always, only after a crash, or never."""

RESTART_TYPES: tuple[str, ...] = ("permanent", "transient", "temporary")

_T = TypeVar("_T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, capped, applied before each restart.

    The n-th restart inside the current intensity window waits
    ``min(maximum, initial * multiplier ** (n - 1))``, then that delay is spread by
    ``± jitter`` (a fraction) so that siblings do not restart in lock step.
    """

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError(
                f"Backoff delays must be >= 0 seconds, got initial={self.initial!r}, "
                f"maximum={self.maximum!r}"
            )
        if self.multiplier < 1:
            raise ValueError(f"Backoff multiplier must be >= 1, got {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff jitter is a fraction in [0, 1], got {self.jitter!r}")

    def _base(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based) in the window."""
        base = self._base(attempt)
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, min(base, self.maximum))

    def bounds(self, attempt: int) -> tuple[float, float]:
        """The shortest and longest :meth:`delay` of restart number ``attempt``."""
        base = self._base(attempt)
        low, high = base * (1 - self.jitter), base * (1 + self.jitter)
        return max(0.0, min(low, self.maximum)), max(0.0, min(high, self.maximum))


@dataclass(frozen=True)
class Strategy:
    """Base of the restart strategies: intensity limit plus optional backoff.

    More than ``max_restarts`` restarts within ``within`` seconds make the supervisor give
    up: it stops its children and fails itself, escalating to its own supervisor.
    """

    max_restarts: int = 3
    within: float = 5.0
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ValueError(
                f"max_restarts must be an int >= 0, got {self.max_restarts!r}"
            )
        if not self.within > 0:
            raise ValueError(f"within must be > 0 seconds, got {self.within!r}")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise TypeError(
                f"backoff must be a minions_actors.Backoff or None, got {self.backoff!r}"
            )

    def affected(self, children: list[_T], failed: _T) -> list[_T]:
        """The children (in start order) that restart when ``failed`` fails."""
        raise NotImplementedError


@dataclass(frozen=True)
class OneForOne(Strategy):
    """Restart only the child that failed."""

    def affected(self, children: list[_T], failed: _T) -> list[_T]:
        return [failed]


@dataclass(frozen=True)
class OneForAll(Strategy):
    """Restart every child when one fails (stop in reverse start order, start in order)."""

    def affected(self, children: list[_T], failed: _T) -> list[_T]:
        return list(children) if failed in children else [failed]


@dataclass(frozen=True)
class RestForOne(Strategy):
    """Restart the failed child and every child started after it."""

    def affected(self, children: list[_T], failed: _T) -> list[_T]:
        if failed not in children:
            return [failed]
        return list(children[children.index(failed) :])


def lists_siblings(strategy: Strategy) -> bool:
    """Does the strategy's clause look at the other children? One-for-one's does not, so
    its supervisor need not list its children (thousands, under Gru) for each restart."""
    return type(strategy).affected is not OneForOne.affected


def should_restart(restart: RestartType, crashed: bool) -> bool:
    """OTP's rule: permanent always, transient only after a crash, temporary never."""
    if restart == "permanent":
        return True
    if restart == "transient":
        return crashed
    return False


def check_restart_type(restart: object) -> RestartType:
    """Validate a ``restart=`` argument, with an error that lists the accepted values."""
    if restart not in RESTART_TYPES:
        raise ValueError(
            f"restart must be one of {', '.join(map(repr, RESTART_TYPES))}; got {restart!r}"
        )
    return restart  # type: ignore[return-value]


def _never(child: object) -> bool:
    return False


@dataclass(frozen=True)
class ChildExit(Generic[_T]):
    """What a supervisor knows when a child's incarnation ended."""

    child: _T
    restart: RestartType
    exc: BaseException | None  # None: a normal exit
    children: Sequence[_T]  # the supervisor's children, in start order
    leaving: Callable[[_T], bool] = _never  # already stopping for good: never restarted


@dataclass(frozen=True)
class StopChild:
    """Do not restart: the child's restart type says so; stop it for good."""

    reason: str  # "crashed" or "exited"


@dataclass(frozen=True)
class RestartChildren(Generic[_T]):
    """Restart ``affected`` (start order: stop in reverse, start in order) after the
    backoff of restart number ``attempt`` of the window."""

    affected: list[_T]
    attempt: int
    cause: str


@dataclass(frozen=True)
class GiveUp:
    """The restart intensity is exceeded: stop every child and fail upward."""


History = Sequence[float]
"""When the restarts inside the current window happened (monotonic seconds, oldest first)."""


class RestartTimes(Sequence[float]):
    """A :data:`History` that :func:`decide` returns: an immutable sequence whose
    :meth:`cut` and :meth:`plus` share one list with the history they come from when that is
    the newest, the usual case (a supervisor's history grows a restart at a time), so a long
    window (a lenient strategy, a busy minion: thousands of restarts) is not copied per
    restart, as a tuple was."""

    __slots__ = ("_end", "_start", "_times")

    def __init__(self, times: list[float], start: int, end: int) -> None:
        self._times, self._start, self._end = times, start, end

    def __len__(self) -> int:
        return self._end - self._start

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[float, ...]: ...
    def __getitem__(self, index: int | slice) -> float | tuple[float, ...]:
        if isinstance(index, slice):
            return tuple(self._times[self._start:self._end])[index]
        n = self._end - self._start
        if not -n <= index < n:
            raise IndexError("RestartTimes index out of range")
        return self._times[self._start + index % n]  # (one time, not a copy of them all)

    def __iter__(self) -> Iterator[float]:
        return iter(self._times[self._start:self._end])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RestartTimes({tuple(self)!r})"

    def cut(self, oldest: float) -> RestartTimes:
        """The times from ``oldest`` on (found by bisection: the list is sorted)."""
        return RestartTimes(self._times, bisect_left(self._times, oldest, self._start,
                                                     self._end), self._end)

    def plus(self, now: float) -> RestartTimes:
        """These times and ``now`` (not earlier than the last): appended in place when no
        other history shares the list past this one's end, else copied once."""
        times, start, end = self._times, self._start, self._end
        if end != len(times) or (start > 64 and start > end - start):  # (shared, or mostly cut)
            times, start, end = times[start:end], 0, end - start
        times.append(now)
        return RestartTimes(times, start, end + 1)


def _restart_times(history: History) -> RestartTimes:
    return history if isinstance(history, RestartTimes) else RestartTimes(
        list(history), 0, len(history))


def decide(
    exit: ChildExit[_T], strategy: Strategy, history: History, now: float
) -> tuple[StopChild | RestartChildren[_T] | GiveUp, History]:
    """The supervisor's decision after a child's exit, and the new restart history.

    Pure (no threads, no clock, no randomness) as OTP's ``supervisor:restart/2``: the restart
    type decides whether to restart at all, the sliding window whether the supervisor gives
    up, and the strategy's clause (:meth:`Strategy.affected`) which children restart.
    """
    crashed = exit.exc is not None
    if not should_restart(exit.restart, crashed):
        return StopChild("crashed" if crashed else "exited"), history
    # a busy minion under a lenient strategy may have thousands of restarts in the window:
    # the cut bisects, the append shares the list (see RestartTimes)
    times = _restart_times(history).cut(now - strategy.within).plus(now)
    if len(times) > strategy.max_restarts:
        return GiveUp(), times
    leaving = exit.leaving
    affected = [c for c in strategy.affected(list(exit.children), exit.child)
                if c is exit.child or not leaving(c)]
    cause = f"{type(exit.exc).__name__}: {exit.exc}" if crashed else "normal exit"
    return RestartChildren(affected, len(times), cause), times


def backoff_delay(strategy: Strategy, attempt: int) -> float:
    """Seconds to wait before restart number ``attempt`` of the window (0 without backoff)."""
    return 0.0 if strategy.backoff is None else strategy.backoff.delay(attempt)


def time_to_give_up(strategy: Strategy, limit: int = 10_000) -> tuple[float, float]:
    """How long a supervisor with ``strategy`` keeps restarting a child that fails as soon as
    it starts (a dependency is down): the shortest and longest time from the first failure to
    giving up, over the backoff's jitter; ``math.inf`` if it never gives up.

    The child's own start-up time only adds to both; docs/deployment.md uses this for the
    arithmetic of riding out an outage together with systemd or supervisord.
    """
    return _give_up_at(strategy, 0, limit), _give_up_at(strategy, 1, limit)


def _give_up_at(strategy: Strategy, end: int, limit: int) -> float:
    exit: ChildExit[str] = ChildExit("child", "permanent", RuntimeError("down"), ["child"])
    history: History = ()
    now = 0.0
    for _ in range(limit):
        decision, history = decide(exit, strategy, history, now)
        if isinstance(decision, GiveUp):
            return now
        if isinstance(decision, RestartChildren) and strategy.backoff is not None:
            now += strategy.backoff.bounds(decision.attempt)[end]
    return math.inf
