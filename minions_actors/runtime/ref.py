"""`MinionRef`: the handle users hold to talk to a minion; valid across its restarts."""

from __future__ import annotations

import asyncio
import functools
import queue
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

import pykka

from minions_actors.errors import AskDeadlock, MailboxFull
from minions_actors.runtime import messages as m
from minions_actors.runtime import waits
from minions_actors.runtime.context import current, current_handler_cell
from minions_actors.runtime.futures import (
    MinionFuture,
    _self_wait_text,
    _StopFuture,
    check_timeout,
)
from minions_actors.runtime.mailbox import PooledMailbox, crossed
from minions_actors.runtime.proxy import CurrentInstance, MinionProxy

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

__all__ = ["MinionFuture", "MinionRef", "check_timeout"]

M = TypeVar("M", bound="Minion")
T = TypeVar("T")


class MinionRef(pykka.ActorRef[M]):
    """A reference to a minion: ``tell``, ``ask``, ``proxy``, ``stop``.

    The ref points at the minion's cell, not at one instance, so it stays valid while the
    minion is restarted by its supervisor; messages sent during a restart wait in the
    mailbox. Once the minion is stopped for good, ``tell`` counts a dead letter and
    ``ask`` raises :class:`~minions_actors.MinionStopped`. It is a
    :class:`pykka.ActorRef`, so code typed against pykka accepts it.
    """

    __slots__ = ("_box", "_cell", "_put", "_sched", "_target", "path")

    # pykka's __init__ needs a built actor; a minion's ref exists before its first instance
    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        # put(box, item): the class's function, not a bound method (one object less per
        # minion); a pooled minion's unbounded mailbox: the C queue's own put, and the ref
        # queues the minion itself (PooledMailbox.put does the same, one Python call slower)
        self._box: Any = cell.inbox
        self._put: Any = type(cell.inbox).put
        self._sched: Any = None  # the pooled minion's sched lock (see mailbox.claim)
        if isinstance(cell.inbox, PooledMailbox):
            self._put = queue.SimpleQueue.put
            self._sched = cell.sched
        self._target: CurrentInstance | None = None
        self.path = cell.path

    # pykka's attributes, read from the cell (stored, they were four per ref)
    @property
    def actor_class(self) -> type[M]:  # type: ignore[override]
        return self._cell.cls  # type: ignore[return-value]

    @property
    def actor_urn(self) -> str:  # type: ignore[override]
        return self._cell.urn

    @property
    def actor_inbox(self) -> Any:  # type: ignore[override]
        return self._cell.inbox

    @property
    def actor_stopped(self) -> Any:  # type: ignore[override]  # Event-like
        return self._cell.stopped_event

    # -- identity ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The minion's name among its siblings (last part of its path)."""
        return self._cell.name

    def is_alive(self) -> bool:
        """True until the minion is stopped for good (also while it restarts)."""
        return not self._cell.terminated

    def __str__(self) -> str:
        return f"{self.actor_class.__name__} {self.path or 'gru'!r} ({self.actor_urn})"

    def __repr__(self) -> str:
        return f"<ActorRef for {self}, {'alive' if self.is_alive() else 'stopped'}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MinionRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self._cell._id)

    @property
    def _actor_weakref(self) -> Callable[[], CurrentInstance]:  # type: ignore[override]
        """What pykka's ActorProxy introspects: a stand-in for the current instance, so a
        proxy follows restarts (one per ref, so proxies of one minion compare equal)."""
        target = self._target
        if target is None:
            target = self._target = CurrentInstance(self._cell)
        return lambda: target

    # -- messaging -----------------------------------------------------------------
    def tell(self, message: Any) -> None:
        """Send without waiting. Never raises for a stopped minion (that is a dead letter);
        raises :class:`~minions_actors.MailboxFull` when a bounded mailbox stays full."""
        cell = self._cell
        if (cell.terminated or cell.closing) and not cell.accepting:
            cell.dead_letter(message)
            return
        try:
            self._put(self._box, message)
        except queue.Full:
            raise MailboxFull(self._full_text()) from None
        sched = self._sched  # mailbox.claim() inlined: this is the hottest path
        if sched is not None:
            if not sched.locked():
                if sched.acquire(False):
                    cell.dispatcher.schedule_put(cell)  # type: ignore[attr-defined]  # pool's
            elif self._box.lingerer is not None:
                crossed(self._box)
        if cell.terminated:
            cell.drain_dead_letters()

    @overload  # type: ignore[override]  # pykka's overloads put the default last
    def ask(
        self, message: Any, *, block: Literal[True] = ..., timeout: float | None = ...
    ) -> Any: ...

    @overload
    def ask(
        self, message: Any, *, block: Literal[False], timeout: float | None = ...
    ) -> pykka.Future[Any]: ...

    @overload
    def ask(self, message: Any, *, block: bool = ..., timeout: float | None = ...) -> Any: ...

    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        """Send and wait for the reply (or return a future with ``block=False``).

        The handler's return value is the reply; if the handler raises, the exception is
        raised here and the minion crashes (its supervisor decides what follows). A reply
        that does not come within ``timeout`` raises :class:`~minions_actors.AskTimeout`.
        """
        timeout = check_timeout(timeout)
        cell = self._cell
        future: MinionFuture[Any] = MinionFuture(cell)
        if not cell.accepting:  # no handler will run again: answer now, do not hang
            cell.dead_letter(m.Ask(message, future))
        else:
            waiter = current.cell if block else None
            if waiter is not None:  # (get() refuses the same)
                if waiter is cell:  # the reply would wait for this handler
                    raise AskDeadlock(_self_wait_text(cell))
                # the edge before the message is sent: the minion that receives it and asks
                # back always finds it, so the one that closes the cycle is the one refused
                waits.wait_on(waiter, future)
            try:
                self._put(self._box, m.Ask(message, future))
            except BaseException as exc:
                if waiter is not None:  # never sent: no wait
                    waits.done(waiter)
                if isinstance(exc, queue.Full):
                    raise MailboxFull(self._full_text()) from None
                raise
            sched = self._sched
            if sched is not None and not sched.locked() and sched.acquire(False):
                cell.dispatcher.schedule_put(cell)  # type: ignore[attr-defined]
            if cell.terminated:
                cell.drain_dead_letters()
        if block:
            return future._get(timeout)  # (checked above)
        return future

    def proxy(self) -> MinionProxy[M]:
        """A pykka proxy: ``ref.proxy().method(args).get()`` calls a method on the minion.

        Usable at once after ``spawn()`` and across restarts (see
        :class:`~minions_actors.MinionProxy`); raises
        :class:`~minions_actors.MinionStopped` when the minion is stopped for good."""
        return MinionProxy(actor_ref=self)

    @overload
    def stop(self, *, block: Literal[True] = ..., timeout: float | None = ...) -> bool: ...

    @overload
    def stop(self, *, block: Literal[False], timeout: float | None = ...) -> pykka.Future[bool]:
        ...

    @overload
    def stop(
        self, *, block: bool = ..., timeout: float | None = ...
    ) -> bool | pykka.Future[bool]: ...

    def stop(
        self, *, block: bool = True, timeout: float | None = None
    ) -> bool | pykka.Future[bool]:
        """Remove the minion for good (no restart) after the messages already queued.

        As in pykka: True when this call stopped it (or it was being stopped), False when
        it was already stopped; with ``block=False``, a future of that; a stop not done
        within ``timeout`` raises :class:`~minions_actors.AskTimeout` (a ``pykka.Timeout``).
        Children stop first, then its ``on_stop`` runs. Inside the minion itself it returns
        True at once: the stop happens after the current message.
        """
        timeout = check_timeout(timeout)
        cell = self._cell
        future: _StopFuture
        if cell.terminated:
            future = _StopFuture(cell)
            future.set(False)
        else:
            if cell.dispatcher.name == "pooled":
                # the flag first, then the request: the put schedules the minion, whose
                # turn stops it at once if it has no live incarnation (see run_turn)
                cell._stop_requested = True
                cell.inbox.put(m.StopRequest())
            else:
                cell.inbox.put(m.StopRequest())  # in order, after the messages queued
                cell.send_system(m.StopPending())  # and at once if it is not running now
            future = _StopFuture.hooked(cell, functools.partial(_wait_stopped, cell))
        if not block:
            return future
        if cell.on_own_thread():
            return True  # a minion cannot wait for its own stop: it happens after this message
        return future.get(timeout=timeout)  # type: ignore[no-any-return]

    # -- asyncio -------------------------------------------------------------------
    async def ask_async(self, message: Any, *, timeout: float | None = None) -> Any:
        """``ask`` for asyncio code: await the reply without blocking the running loop
        (in an async minion, only that minion waits). A full bounded mailbox is awaited,
        never blocked on; errors are ``ask``'s (:class:`~minions_actors.AskTimeout` after
        ``timeout`` seconds, the handler's exception, ``MailboxFull``)."""
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        cell = self._cell
        future: MinionFuture[Any] = MinionFuture(cell)
        waiter = current_handler_cell.get()
        if waiter is cell:  # the reply would wait for this handler
            raise AskDeadlock(_self_wait_text(cell))
        if not cell.accepting:  # no handler will run again: answered now
            cell.dead_letter(m.Ask(message, future))
        else:
            if waiter is not None:  # the edge before the message is sent (as ask() does)
                waits.wait_on(waiter, future)
            try:
                if self._sched is not None:  # a pooled unbounded mailbox: never waits
                    self._send_unbounded(m.Ask(message, future), True)
                else:
                    await self._send_async(m.Ask(message, future))
            except BaseException:
                if waiter is not None:
                    waits.done(waiter)
                raise
        if future._result is not None:  # answered already (an idle async minion here)
            if waiter is not None:
                waits.done(waiter)
            return future.get(timeout=0)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if waiter is None:  # (result_async's own work is for a handler's edge)
            return await future._result_async(left)
        return await future.result_async(left)

    async def tell_async(self, message: Any) -> None:
        """``tell`` for asyncio code: a full bounded mailbox is awaited (up to the
        minion's ``mailbox_put_timeout``, then :class:`~minions_actors.MailboxFull`),
        never blocked on."""
        cell = self._cell
        if (cell.terminated or cell.closing) and not cell.accepting:
            cell.dead_letter(message)
            return
        await self._send_async(message)

    async def stop_async(self, *, timeout: float | None = None) -> bool:
        """``stop`` for asyncio code: True when this call stopped the minion (see
        :meth:`stop`); inside the minion itself it returns True at once."""
        future = cast("MinionFuture[bool]", self.stop(block=False, timeout=timeout))
        if self._cell.on_own_thread():
            return True
        return bool(await future.result_async(timeout))

    async def _send_async(self, item: Any) -> None:
        """Put ``item``, awaiting room in a full bounded mailbox (polling with a growing
        pause: a bounded mailbox signals room to threads, not to loops)."""
        cell = self._cell
        box: Any = cell.inbox
        offer = getattr(box, "offer", None)
        if offer is None:  # unbounded: a put never waits
            self._send_unbounded(item)
            return
        limit = box.put_timeout
        deadline = None if limit is None else time.monotonic() + limit
        pause = 0.0005
        while not offer(item):
            if deadline is not None and time.monotonic() >= deadline:
                raise MailboxFull(self._full_text())
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)
        if cell.terminated:
            cell.drain_dead_letters()

    def _send_unbounded(self, item: Any, ask: bool = False) -> None:
        """Put ``item`` in an unbounded mailbox (it never waits) and queue the minion (an
        ``ask`` to an async minion: its turn may run at once, see ``schedule_ask``)."""
        cell = self._cell
        self._put(self._box, item)
        sched = self._sched
        if sched is not None:
            if not sched.locked():
                if sched.acquire(False):
                    dispatcher: Any = cell.dispatcher
                    if ask and dispatcher.name == "loop":
                        dispatcher.schedule_ask(cell)
                    else:
                        dispatcher.schedule_put(cell)
            elif self._box.lingerer is not None:
                crossed(self._box)
        if cell.terminated:
            cell.drain_dead_letters()

    def _full_text(self) -> str:
        box = self._cell.inbox
        size = getattr(box, "size", "?")
        return (
            f"the mailbox of {self._cell.describe()} is full ({size} messages, overflow "
            f"{getattr(box, 'overflow', '?')!r}); the minion is not keeping up: slow the "
            f"sender, raise mailbox_size, or use ask() for back-pressure"
        )


def _wait_stopped(cell: Cell, timeout: float | None) -> bool:
    if not cell.stopped_event.wait(timeout):
        raise pykka.Timeout(f"{timeout} seconds")
    return True
