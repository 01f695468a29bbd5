"""`MinionRef`: the handle users hold to talk to a minion; valid across its restarts."""

from __future__ import annotations

import math
import queue
import threading
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

import pykka
from pykka import ThreadingFuture

from . import _messages as m
from .errors import AskTimeout, MailboxFull

if TYPE_CHECKING:
    from ._cell import Cell
    from .minion import Minion

M = TypeVar("M", bound="Minion")
T = TypeVar("T")


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
    """A pykka future whose timeout names the minion that did not answer."""

    __slots__ = ("_minion",)

    def __init__(self, minion: str = "a minion") -> None:
        super().__init__()
        self._minion = minion

    def get(self, *, timeout: float | None = None) -> Any:
        timeout = check_timeout(timeout)
        try:
            return super().get(timeout=timeout)
        except pykka.Timeout:
            raise AskTimeout(
                f"{self._minion} did not answer within {timeout}s (it may be busy, "
                f"restarting with backoff, or its handler may block); raise the timeout "
                f"or check the minion"
            ) from None


class MinionRef(Generic[M]):
    """A reference to a minion: ``tell``, ``ask``, ``proxy``, ``stop``.

    The ref points at the minion's cell, not at one instance, so it stays valid while the
    minion is restarted by its supervisor; messages sent during a restart wait in the
    mailbox. Once the minion is stopped for good, ``tell`` counts a dead letter and
    ``ask`` raises :class:`~minions_actors.MinionStopped`.
    """

    __slots__ = ("_cell", "_put", "actor_class", "actor_urn", "path")

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self._put = cell.inbox.put
        self.actor_class = cell.cls
        self.actor_urn = cell.urn
        self.path = cell.path

    # -- identity ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The minion's name among its siblings (last part of its path)."""
        return self._cell.name

    def is_alive(self) -> bool:
        """True until the minion is stopped for good (also while it restarts)."""
        return not self._cell.terminated

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else "stopped"
        return f"<MinionRef {self.path or 'gru'} ({self.actor_class.__name__}, {state})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MinionRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return hash(self.actor_urn)

    @property
    def _actor_weakref(self) -> Any:
        """Used by pykka's ActorProxy to introspect the minion's attributes."""
        cell = self._cell
        return lambda: cell.instance or cell.last_instance

    # -- messaging -----------------------------------------------------------------
    def tell(self, message: Any) -> None:
        """Send without waiting. Never raises for a stopped minion (that is a dead letter);
        raises :class:`~minions_actors.MailboxFull` when a bounded mailbox stays full."""
        cell = self._cell
        if cell.terminated:
            cell.dead_letter(message)
            return
        try:
            self._put(message)
        except queue.Full:
            raise MailboxFull(self._full_text()) from None
        if cell.terminated:
            cell.drain_dead_letters()

    @overload
    def ask(self, message: Any, *, block: Literal[True] = ..., timeout: float | None = ...) -> Any:
        ...

    @overload
    def ask(
        self, message: Any, *, block: Literal[False], timeout: float | None = ...
    ) -> pykka.Future[Any]: ...

    def ask(self, message: Any, *, block: bool = True, timeout: float | None = None) -> Any:
        """Send and wait for the reply (or return a future with ``block=False``).

        The handler's return value is the reply; if the handler raises, the exception is
        raised here and the minion crashes (its supervisor decides what follows). A reply
        that does not come within ``timeout`` raises :class:`~minions_actors.AskTimeout`.
        """
        timeout = check_timeout(timeout)
        cell = self._cell
        future: MinionFuture[Any] = MinionFuture(cell.describe())
        if not cell.accepting:  # no handler will run again: answer now, do not hang
            cell.dead_letter(m.Ask(message, future))
        else:
            try:
                self._put(m.Ask(message, future))
            except queue.Full:
                raise MailboxFull(self._full_text()) from None
            if cell.terminated:
                cell.drain_dead_letters()
        if block:
            return future.get(timeout=timeout)
        return future

    def proxy(self) -> pykka.ActorProxy[M]:
        """A pykka proxy: ``ref.proxy().method(args).get()`` calls a method on the minion."""
        return pykka.ActorProxy(actor_ref=cast("pykka.ActorRef[M]", self))

    def stop(self, *, block: bool = True, timeout: float | None = None) -> bool:
        """Remove the minion for good (no restart) after the messages already queued.

        Returns True when it stopped (or was already stopped); with ``block=False``
        returns at once. Children stop first, then its ``on_stop`` runs.
        """
        timeout = check_timeout(timeout)
        cell = self._cell
        if not cell.terminated:
            cell.inbox.put(m.StopRequest())  # in order, after the messages already queued
            cell.send_system(m.StopPending())  # and at once if it is not running now
        if not block or threading.current_thread() is cell.thread:
            return True  # a minion cannot wait for its own stop: it happens after this message
        return cell.stopped_event.wait(timeout)

    def _full_text(self) -> str:
        box = self._cell.inbox
        size = getattr(box, "size", "?")
        return (
            f"the mailbox of {self._cell.describe()} is full ({size} messages, overflow "
            f"{getattr(box, 'overflow', '?')!r}); the minion is not keeping up: slow the "
            f"sender, raise mailbox_size, or use ask() for back-pressure"
        )

    @property
    def actor_inbox(self) -> Any:
        return self._cell.inbox

    @property
    def actor_stopped(self) -> Any:
        return self._cell.stopped_event
