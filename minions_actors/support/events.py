"""A light ``threading.Event``: a flag that builds its condition only when someone waits.

A :class:`threading.Event` costs a condition, a lock and a deque (about 1 KiB); a minion
carries one that is almost never waited on ("stopped"), and a million idle minions should
not pay for a million conditions.
"""

from __future__ import annotations

import threading

_CREATE = threading.Lock()  # orders a waiter's condition creation against set()


class LazyEvent:
    """``is_set``, ``set`` and ``wait`` as :class:`threading.Event` (no ``clear``: the
    runtime's events are set once)."""

    __slots__ = ("_cond", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._cond: threading.Condition | None = None

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        with _CREATE:
            self._flag = True
            cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        with _CREATE:
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(threading.Lock())
        with cond:
            return cond.wait_for(self.is_set, timeout)
