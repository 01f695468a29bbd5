"""Mailboxes: the queue a minion reads from, kept across restarts.

The default mailbox is a bare :class:`queue.SimpleQueue` (a C-level lock-free hand-off, several
times faster than pykka's ``queue.Queue``). A bounded mailbox adds a semaphore of free slots
that senders acquire; runtime control messages (wake-ups) bypass the bound so supervision
never blocks on a full mailbox.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from minions_actors.runtime.blocking import _local, blocking

Overflow = Literal["block", "raise"]


class Mailbox(Protocol):
    """What the message loop and refs need from a mailbox."""

    def put(self, item: Any, /) -> None: ...

    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...

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
    _put_timeout: float | None

    def __init__(self, size: int, overflow: Overflow = "block", put_timeout: float = 1.0) -> None:
        self.size = size
        self.overflow = overflow
        self._put_timeout = None if math.isinf(put_timeout) else put_timeout  # None: no bound
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(size)

    def put(self, item: Any, /) -> None:
        if getattr(item, "bypass_bound", False):
            self._q.put(item)  # runtime messages never wait for room
            return
        if self.overflow == "raise":
            ok = self._slots.acquire(blocking=False)
        else:
            ok = self._slots.acquire(blocking=False)
            if not ok:  # a pooled sender waits for room: let another worker serve the receiver
                with blocking():
                    ok = self._slots.acquire(timeout=self._put_timeout)
        if not ok:
            raise queue.Full
        self._q.put(item)

    def offer(self, item: Any, /) -> bool:
        """Put without waiting: False when the mailbox is full (an async sender awaits)."""
        if not getattr(item, "bypass_bound", False) and not self._slots.acquire(blocking=False):
            return False
        self._q.put(item)
        return True

    @property
    def put_timeout(self) -> float | None:
        """How long a sender may wait for room (None: for ever; overflow "raise": none)."""
        return 0.0 if self.overflow == "raise" else self._put_timeout

    def _release(self, item: Any) -> Any:
        if not getattr(item, "bypass_bound", False):
            self._slots.release()
        return item

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self._release(self._q.get(block, timeout))

    def get_nowait(self) -> Any:
        return self._release(self._q.get_nowait())

    def qsize(self) -> int:
        return self._q.qsize()

    def empty(self) -> bool:
        return self._q.empty()


def claim(sched: Any) -> bool:
    """After putting a message: take a pooled minion's ``sched`` lock (True: the caller
    queues it on the pool) unless it is queued or running already. A lock's non-blocking
    acquire is an atomic test-and-set, but its argument parsing costs ~0.1 us, and in a
    flood the minion is nearly always running: ``locked()`` first. Skipping on a held lock
    is safe: the worker releases it after the turn, then looks at the mailbox again, where
    this message already is. (Inlined in the refs' tell and ask.)"""
    return not sched.locked() and bool(sched.acquire(False))


def crossed(box: Any) -> None:
    """After putting a message in a pooled minion's mailbox whose ``sched`` lock was held:
    when a pool worker lingers on that mailbox (``lingerer``, see ``WorkerPool.linger``) and
    this message was sent from a turn on another worker, tell the lingerer to stop lingering
    after it. Otherwise two minions that message each other, each once left lingered on
    (after an ask from outside), would each catch the other's messages on its own worker, a
    thread hand-off per message, instead of running in turn on one worker (runnext)."""
    lingerer = box.lingerer  # (read once: the lingerer clears it when it stops)
    if lingerer is not None:
        sender = _local.slot
        if sender is not None and sender is not lingerer and sender.cell is not None:
            lingerer.crossed = True


class ScheduledMailbox:
    """A pooled minion's mailbox: putting a message also queues the minion on the worker
    pool, unless it is queued or running already (``cell.sched`` is held meanwhile; see
    :func:`claim`)."""

    __slots__ = ("_cell", "_enqueue", "_offer", "_put", "_sched", "empty", "get", "get_nowait",
                 "inner", "lingerer", "overflow", "put_timeout", "qsize", "size")

    def __init__(self, inner: Mailbox, cell: Any, enqueue: Callable[[Any], None]) -> None:
        self.inner = inner
        self._put = inner.put
        self._cell = cell
        self._sched = cell.sched
        self._enqueue = enqueue
        self.get = inner.get
        self.get_nowait = inner.get_nowait
        self.qsize = inner.qsize
        self.empty = inner.empty
        self.size = getattr(inner, "size", None)
        self.overflow = getattr(inner, "overflow", None)
        self.put_timeout = getattr(inner, "put_timeout", None)
        self._offer: Any = getattr(inner, "offer", None)  # (only bounded ones are wrapped)
        self.lingerer: Any = None  # the pool worker lingering on this mailbox (see crossed)

    def put(self, item: Any, /) -> None:
        self._put(item)
        if claim(self._sched):
            self._enqueue(self._cell)
        elif self.lingerer is not None:
            crossed(self)

    def offer(self, item: Any, /) -> bool:
        """Put without waiting (see :meth:`BoundedMailbox.offer`)."""
        if not self._offer(item):
            return False
        if claim(self._sched):
            self._enqueue(self._cell)
        return True


class PooledMailbox(queue.SimpleQueue):  # type: ignore[type-arg]
    """A pooled minion's unbounded mailbox: a C queue whose ``put`` also schedules the
    minion (the common case of :class:`ScheduledMailbox`, without a wrapper per call)."""

    __slots__ = ("_cell", "lingerer")

    def __init__(self, cell: Any) -> None:
        super().__init__()
        self._cell = cell
        self.lingerer: Any = None  # the pool worker lingering on this mailbox (see crossed)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        _simple_put(self, item)
        cell = self._cell
        if claim(cell.sched):
            cell.dispatcher.schedule_put(cell)
        elif self.lingerer is not None:
            crossed(self)


_simple_put = queue.SimpleQueue.put


def make_mailbox(
    size: int | None, overflow: Overflow = "block", put_timeout: float = 1.0,
    pooled_cell: Any = None,
) -> Mailbox:
    """Build the mailbox for ``mailbox_size`` (None: unbounded); the options were checked
    at spawn() (``runtime.spawning.SPAWN_RULES``)."""
    if size is None:
        return queue.SimpleQueue() if pooled_cell is None else PooledMailbox(pooled_cell)
    bounded = BoundedMailbox(size, overflow, put_timeout)
    if pooled_cell is None:
        return bounded
    return ScheduledMailbox(bounded, pooled_cell, pooled_cell.dispatcher.schedule_put)
