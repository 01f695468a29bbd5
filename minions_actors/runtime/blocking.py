"""``with blocking():`` around the runtime's own waits (``ask``, a future's ``get``, stopping
children, a full bounded mailbox), so that a pool worker that waits is compensated.

Its own module so that the mailbox and the dispatcher can both use it without importing
each other.
"""

from __future__ import annotations

import threading
from typing import Any


class _Local(threading.local):
    """Per thread: ``slot``, the worker slot of a pool thread (None elsewhere). A class
    default, not ``getattr(..., None)``: a miss on a bare thread-local raises and clears
    an AttributeError inside, ~0.5 us on every tell that schedules and every ask."""

    slot: Any = None


_local = _Local()


class _Blocking:
    """``with blocking():`` around a wait inside the runtime. On a pool worker, the pool
    keeps ``size`` workers able to run while this one waits (starting one if none is idle),
    so the minion being waited for runs even if every worker waits. Elsewhere: nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        slot: Any = _local.slot
        if slot is not None:
            slot.pool.compensate(slot, +1)

    def __exit__(self, *exc: object) -> None:
        slot: Any = _local.slot
        if slot is not None:
            slot.pool.compensate(slot, -1)


_BLOCKING = _Blocking()


def blocking() -> _Blocking:
    """See :class:`_Blocking` (one shared, stateless context manager)."""
    return _BLOCKING
