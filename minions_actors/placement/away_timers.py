"""Timers of a placed minion: its code runs elsewhere, its timers live at home.

Where the code runs, ``self.timers`` and ``self.set_receive_timeout`` are
:class:`AwayTimers` and :class:`AwayIdle`: they check their arguments as at home and record
each call; the far side sends the calls home with the reply of the request that made them
(``AwayCell.timer_calls``), and the stand-in carries them out on the home cell
(:func:`apply`) before it goes on. So the home cell's timer entries put the messages in the
home mailbox, and each reaches the placed ``on_receive`` as a tell. What only home knows
(``is_active``, ``keys``) is not available there.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import PlacementError
from minions_actors.runtime.receive_timeout import KEY, set_receive_timeout
from minions_actors.runtime.timers import TIMERS, Fixed, check_seconds, scheduler

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

#: one recorded call: (method name, arguments, keyword arguments)
Call = tuple[str, tuple[Any, ...], dict[str, Any]]


class AwayTimers:
    """``self.timers`` where a placed minion's code runs (see the module docstring)."""

    def __init__(self, path: str, calls: list[Call]) -> None:
        self._path = path
        self._calls = calls

    def start_single(self, key: Hashable, message: Any, delay: float) -> None:
        check_seconds(f"timers.start_single({key!r}): delay", delay, zero=True)
        hash(key)
        self._calls.append(("start_single", (key, message, delay), {}))

    def start_periodic(self, key: Hashable, message: Any, interval: float, *,
                       fixed: Fixed = "rate", initial_delay: float | None = None) -> None:
        what = f"timers.start_periodic({key!r})"
        check_seconds(f"{what}: interval", interval, zero=False)
        if initial_delay is not None:
            check_seconds(f"{what}: initial_delay", initial_delay, zero=True)
        if fixed not in ("rate", "delay"):
            raise ValueError(f"{what}: fixed must be 'rate' or 'delay', got {fixed!r}")
        hash(key)
        self._calls.append(("start_periodic", (key, message, interval),
                            {"fixed": fixed, "initial_delay": initial_delay}))

    def cancel(self, key: Hashable) -> bool:
        """Cancel timer ``key`` at home; True (whether it was active is known at home)."""
        self._calls.append(("cancel", (key,), {}))
        return True

    def cancel_all(self) -> None:
        self._calls.append(("cancel_all", (), {}))

    def is_active(self, key: Hashable) -> bool:
        raise self._home_only("is_active")

    def keys(self) -> list[Hashable]:
        raise self._home_only("keys")

    def _home_only(self, name: str) -> PlacementError:
        return PlacementError(
            f"minion {self._path!r} runs placed outside its home process, where its timers "
            f"live: timers.{name}() is not available there (start and cancel are; keep "
            f"the state you need in the minion)")


class AwayIdle:
    """The receive timeout where a placed minion's code runs (checked at home first)."""

    def __init__(self, calls: list[Call]) -> None:
        self._calls = calls
        self.seconds: float | None = None  # as last set from here

    def set(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._calls.append(("set_receive_timeout", (seconds,), {}))


def away_parts(path: str, calls: list[Call]) -> dict[str, Any]:
    """What a placed instance's cell holds instead of the home cell's timer parts."""
    return {TIMERS: AwayTimers(path, calls), KEY: AwayIdle(calls)}


def apply(cell: Cell, calls: list[Call]) -> None:
    """Carry out at home the timer calls a placed minion's code made."""
    for name, args, kwargs in calls:
        if name == "set_receive_timeout":
            set_receive_timeout(cell, *args)
        else:
            getattr(scheduler(cell), name)(*args, **kwargs)
