"""`MinionRef`: the handle users hold to talk to a minion; valid across its restarts."""

from __future__ import annotations

import functools
import math
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

import pykka
from pykka import Future, ThreadingFuture
from pykka._threading import ThreadingFutureResult

from minions_actors.errors import AskDeadlock, AskTimeout, MailboxFull
from minions_actors.runtime import messages as m
from minions_actors.runtime import waits
from minions_actors.runtime.blocking import blocking
from minions_actors.runtime.context import current
from minions_actors.runtime.mailbox import PooledMailbox
from minions_actors.runtime.proxy import CurrentInstance, MinionProxy

if TYPE_CHECKING:
    from pykka._future import GetHookFunc
    from pykka._types import OptExcInfo

    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

M = TypeVar("M", bound="Minion")
T = TypeVar("T")


_SETTLE_LOCK = threading.Lock()  # setting a result is check-then-set; held for a moment


class _Described(Protocol):
    def describe(self) -> str: ...


def check_timeout(timeout: Any) -> float | None:
    """Validate a ``timeout=`` argument: None or ``inf`` wait forever (returned as None),
    a number >= 0 is seconds; negative, NaN or a non-number is a clear error."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be None or a number of seconds, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(
            f"timeout must be None or a number >= 0 seconds (inf waits forever), got {timeout!r}"
        )
    return None if math.isinf(timeout) else float(timeout)


class MinionFuture(ThreadingFuture[T]):
    """A pykka future whose timeout names the minion that did not answer.

    A lighter waiting mechanism than pykka's (a Condition and its Python-level waiter
    list per future): a C lock, taken at creation, is released once by whoever sets the
    result; ``get()`` acquires it with the timeout and releases it again for the next
    caller. Setting twice, or a result and a get hook, raises ``queue.Full`` as in pykka.
    """

    __slots__ = ("_done", "_minion", "_result")

    def __init__(self, minion: str | _Described = "a minion") -> None:
        Future.__init__(self)  # the get-hook state (not ThreadingFuture's Condition)
        self._result: ThreadingFutureResult | None = None
        self._done = threading.Lock()
        self._done.acquire()
        self._minion = minion  # a name, or a cell described only if a timeout needs it

    def get(self, *, timeout: float | None = None) -> Any:
        timeout = check_timeout(timeout)
        result = self._result
        if result is None:
            waiter = current.cell
            if waiter is not None:  # a minion's handler waits: refuse a wait in a cycle
                if waiter is self._minion:  # its own unanswered ask, on its own thread
                    raise AskDeadlock(_self_wait_text(waiter))
                waits.wait_on(waiter, self)
            try:
                with blocking():  # a pool worker waiting here is replaced meanwhile
                    if self._get_hook is not None or not self._wait(timeout):
                        return self._hooked(timeout)
            except pykka.Timeout:
                raise AskTimeout(self._timeout_text(timeout)) from None
            finally:
                if waiter is not None:
                    waits.done(waiter)
            result = self._result
            assert result is not None
        if result.exc_info is not None:
            exc_type, exc_value, exc_traceback = result.exc_info
            assert exc_type is not None
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return result.value

    def _awaited(self) -> Cell | None:
        """The cell whose turn still owes this reply (the wait-for graph's edge), or None:
        answered, handed to another thread to answer, or not a reply from a minion."""
        minion = self._minion
        if self._result is not None or self._get_hook is not None or isinstance(minion, str):
            return None
        return minion  # type: ignore[return-value]  # a cell (the only _Described)

    def _hand_off(self) -> None:
        """The reply now comes from another thread (a durable workflow start is answered
        by the store's writer), not from the minion's turn: a wait on it is no edge."""
        self._minion = self._name()

    def _wait(self, timeout: float | None) -> bool:
        """Wait for a result (False: none in time, or a get hook was set meanwhile)."""
        done = self._done
        if not done.acquire(True, -1 if timeout is None else timeout):
            return False
        done.release()  # every later get() passes at once
        return self._result is not None

    def _hooked(self, timeout: float | None) -> Any:
        """pykka's get-hook path (map/filter/join/stop futures), or a timeout."""
        if self._get_hook is None:
            raise pykka.Timeout(f"{timeout} seconds")
        return Future.get(self, timeout=timeout)

    def set(self, value: Any | None = None) -> None:
        self._settle(ThreadingFutureResult(value=value))

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        assert exc_info is None or len(exc_info) == 3
        self._settle(ThreadingFutureResult(exc_info=exc_info or sys.exc_info()))

    def _settle(self, result: ThreadingFutureResult) -> None:
        with _SETTLE_LOCK:
            if self._result is not None or self._get_hook is not None:
                raise queue.Full
            self._result = result
        self._done.release()

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        with _SETTLE_LOCK:
            if self._result is not None or self._get_hook is not None:
                raise queue.Full
            Future.set_get_hook(self, func)
        self._done.release()  # a get() already waiting calls the hook

    def _timeout_text(self, timeout: float | None) -> str:
        return (
            f"{self._name()} did not answer within {timeout}s (it may be busy, "
            f"restarting with backoff, or its handler may block); raise the timeout "
            f"or check the minion"
        )

    def _name(self) -> str:
        minion = self._minion
        return minion if isinstance(minion, str) else minion.describe()


class _StopFuture(MinionFuture[bool]):
    """``ref.stop(block=False)``: True once the minion has stopped."""

    __slots__ = ()

    def _timeout_text(self, timeout: float | None) -> str:
        return (
            f"{self._name()} did not stop within {timeout}s: it stops after the messages "
            f"queued before the stop, and its current handler may block; wait again with "
            f"a longer timeout"
        )


class MinionRef(pykka.ActorRef[M]):
    """A reference to a minion: ``tell``, ``ask``, ``proxy``, ``stop``.

    The ref points at the minion's cell, not at one instance, so it stays valid while the
    minion is restarted by its supervisor; messages sent during a restart wait in the
    mailbox. Once the minion is stopped for good, ``tell`` counts a dead letter and
    ``ask`` raises :class:`~minions_actors.MinionStopped`. It is a
    :class:`pykka.ActorRef`, so code typed against pykka accepts it.
    """

    __slots__ = ("_cell", "_put", "_sched", "_target", "path")

    # pykka's __init__ needs a built actor; a minion's ref exists before its first instance
    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self._put = cell.inbox.put
        # a pooled minion's unbounded mailbox: put with the C queue's own method and queue
        # the minion here (PooledMailbox.put does the same, one Python call slower)
        self._sched: Any = None  # the pooled minion's sched lock (see mailbox.claim)
        if isinstance(cell.inbox, PooledMailbox):
            self._put = queue.SimpleQueue.put.__get__(cell.inbox)
            self._sched = cell.sched
        self._target: CurrentInstance | None = None
        self.actor_class = cell.cls  # type: ignore[assignment]
        self.actor_urn = cell.urn
        self.actor_inbox = cell.inbox  # type: ignore[assignment]
        self.actor_stopped = cell.stopped_event  # type: ignore[assignment]  # Event-like
        self.path = cell.path

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
        return hash(self.actor_urn)

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
            self._put(message)
        except queue.Full:
            raise MailboxFull(self._full_text()) from None
        sched = self._sched  # mailbox.claim() inlined: this is the hottest path
        if sched is not None and not sched.locked() and sched.acquire(False):
            cell.dispatcher.schedule_put(cell)  # type: ignore[attr-defined]  # the pool's
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
                self._put(m.Ask(message, future))
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
            return future.get(timeout=timeout)
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
        future: _StopFuture = _StopFuture(cell)
        if cell.terminated:
            future.set(False)
        else:
            cell.inbox.put(m.StopRequest())  # in order, after the messages already queued
            cell.send_system(m.StopPending())  # and at once if it is not running now
            future.set_get_hook(functools.partial(_wait_stopped, cell))
        if not block:
            return future
        if cell.on_own_thread():
            return True  # a minion cannot wait for its own stop: it happens after this message
        return future.get(timeout=timeout)  # type: ignore[no-any-return]

    def _full_text(self) -> str:
        box = self._cell.inbox
        size = getattr(box, "size", "?")
        return (
            f"the mailbox of {self._cell.describe()} is full ({size} messages, overflow "
            f"{getattr(box, 'overflow', '?')!r}); the minion is not keeping up: slow the "
            f"sender, raise mailbox_size, or use ask() for back-pressure"
        )


def _self_wait_text(cell: Cell) -> str:
    return (
        f"{cell.describe()} waited for a reply from itself on its own thread: the reply "
        f"could only come after this handler returns (a deadlock); use tell() or a proxy "
        f"call without get() to queue work for later, or call the method on self directly"
    )


def _wait_stopped(cell: Cell, timeout: float | None) -> bool:
    if not cell.stopped_event.wait(timeout):
        raise pykka.Timeout(f"{timeout} seconds")
    return True
