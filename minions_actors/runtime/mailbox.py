"""Mailboxes: the queue a minion reads from, kept across restarts.

The default mailbox is a bare :class:`queue.SimpleQueue` (a C-level lock-free hand-off, several
times faster than pykka's ``queue.Queue``). A bounded mailbox adds a semaphore of free slots
that senders acquire; runtime control messages (wake-ups) bypass the bound so supervision
never blocks on a full mailbox.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Literal, Protocol

Overflow = Literal["block", "raise"]


class Mailbox(Protocol):
    """What the message loop and refs need from a mailbox."""

    def put(self, item: Any, /) -> None: ...

    def get(self) -> Any: ...

    def get_nowait(self) -> Any: ...

    def qsize(self) -> int: ...

    def empty(self) -> bool: ...


class RuntimeMessage:
    """Base of every message the runtime itself puts in a mailbox (wake-ups, stop and exit
    requests, workflow steps): the one way to say that a message never waits for room in a
    bounded mailbox, so that supervision and stops never block on a full one. The mailbox
    reads the class attribute ``bypass_bound`` that this base sets."""

    __slots__ = ()
    bypass_bound = True


class WakeUp(RuntimeMessage):
    """Sentinel put in a mailbox to wake its minion for a runtime (system) message."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<wake-up>"


WAKE = WakeUp()
HALT_MARK = WakeUp()  # queued at a shutdown's start: what is before it is the backlog to drop


class BoundedMailbox:
    """A mailbox holding at most ``size`` user messages.

    ``put`` waits up to ``put_timeout`` seconds for a free slot (overflow ``"block"``) or
    fails at once (overflow ``"raise"``); either way a mailbox that stays full raises
    :class:`queue.Full`, which refs turn into :class:`~minions_actors.MailboxFull`.
    """

    __slots__ = ("_put_timeout", "_q", "_slots", "overflow", "size")

    def __init__(self, size: int, overflow: Overflow = "block", put_timeout: float = 1.0) -> None:
        self.size = size
        self.overflow = overflow
        self._put_timeout = put_timeout
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(size)

    def put(self, item: Any, /) -> None:
        if getattr(item, "bypass_bound", False):
            self._q.put(item)  # runtime messages never wait for room
            return
        if self.overflow == "raise":
            ok = self._slots.acquire(blocking=False)
        else:
            ok = self._slots.acquire(timeout=self._put_timeout)
        if not ok:
            raise queue.Full
        self._q.put(item)

    def _release(self, item: Any) -> Any:
        if not getattr(item, "bypass_bound", False):
            self._slots.release()
        return item

    def get(self) -> Any:
        return self._release(self._q.get())

    def get_nowait(self) -> Any:
        return self._release(self._q.get_nowait())

    def qsize(self) -> int:
        return self._q.qsize()

    def empty(self) -> bool:
        return self._q.empty()


def make_mailbox(
    size: int | None, overflow: Overflow = "block", put_timeout: float = 1.0
) -> Mailbox:
    """Build the mailbox for ``mailbox_size`` (None: unbounded), validating the options."""
    if overflow not in ("block", "raise"):
        raise ValueError(f"mailbox_overflow must be 'block' or 'raise', got {overflow!r}")
    if size is None:
        return queue.SimpleQueue()
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"mailbox_size must be None (unbounded) or an int >= 1, got {size!r}")
    if put_timeout < 0:
        raise ValueError(f"mailbox_put_timeout must be >= 0 seconds, got {put_timeout!r}")
    return BoundedMailbox(size, overflow, put_timeout)
