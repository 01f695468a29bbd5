"""The idle timeout of a minion (Akka's ``setReceiveTimeout``): a :class:`ReceiveTimeout`
message after ``seconds`` with no message handled, again after each such idle period,
until set to None. Set with ``Minion.set_receive_timeout``.

Its part (attached on first use, under :data:`KEY`) stamps the time after each handled
message (the extension's ``after``); one entry on the timer thread checks, when due, how
long the minion has been idle and either re-arms itself for the rest or puts itself in
the mailbox. A message handled after that is seen when the entry is reached: the timeout is
then not delivered (as Akka, a message cancels a timeout not yet handled).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minions_actors.runtime.extensions import Handler, OnUse, register
from minions_actors.runtime.mailbox import RuntimeMessage
from minions_actors.runtime.timers import check_seconds, tell
from minions_actors.support.timer import Cancellable

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

KEY = "receive_timeout"


class ReceiveTimeout:
    """Delivered to ``on_receive`` when the minion had no message for the duration set
    with :meth:`~minions_actors.Minion.set_receive_timeout`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ReceiveTimeout()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReceiveTimeout)

    def __hash__(self) -> int:
        return hash(ReceiveTimeout)


RECEIVE_TIMEOUT = ReceiveTimeout()


class Reread(RuntimeMessage):
    """Sent to a cell when the part is attached: a runtime message makes its loop return
    and read ``cell.after`` again (a dedicated thread's loop reads it once, then runs until
    a runtime message comes). Nothing handles it: ``handle_system`` passes over it."""

    __slots__ = ()


REREAD = Reread()


class IdleCheck(Cancellable, RuntimeMessage):
    """The one timer entry of a receive timeout."""

    __slots__ = ("incarnation", "part", "sent_at")

    def __init__(self, part: IdleTimeout) -> None:
        Cancellable.__init__(self)
        self.part = part
        self.incarnation = part.cell.incarnation
        self.sent_at = 0.0

    def __call__(self) -> None:
        """Due, on the timer thread: idle long enough? Into the mailbox; else re-arm."""
        part, cell = self.part, self.part.cell
        if cell.terminated or cell.incarnation != self.incarnation:
            return
        now = time.monotonic()
        seconds = part.seconds
        if seconds is None:
            return
        due = part.last + seconds
        if due > now:
            part.arm(due)
            return
        self.sent_at = now
        cell.inbox.put(self)


class IdleTimeout:
    """The receive timeout's part of a cell (see the module docstring)."""

    __slots__ = ("cell", "entry", "last", "seconds")

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.seconds: float | None = None
        self.entry: IdleCheck | None = None
        self.last = time.monotonic()

    @property
    def after(self) -> Any:
        return self._stamp

    def _stamp(self, inst: Minion) -> None:
        self.last = time.monotonic()

    def incarnation(self, inst: Minion) -> bool:
        return False

    def set(self, seconds: float | None) -> None:
        self.cancel()
        self.seconds = seconds
        if seconds is not None:
            self.last = time.monotonic()
            self.entry = IdleCheck(self)
            self.cell.system.timer.arm(self.last + seconds, self.entry, 1)

    def arm(self, when: float) -> None:
        if self.entry is not None:
            self.cell.system.timer.arm(when, self.entry)

    def cancel(self) -> None:
        entry, self.entry = self.entry, None
        if entry is not None:
            self.cell.system.timer.cancel([entry], 1)

    def ended(self) -> None:
        """A restart or a stop ends the receive timeout (a new incarnation sets its own)."""
        self.seconds = None
        self.cancel()

    def deliver(self, cell: Cell, inst: Minion, entry: IdleCheck) -> bool:
        if entry.dead or entry is not self.entry or entry.incarnation != cell.incarnation \
                or self.seconds is None:
            return True
        if self.last > entry.sent_at:  # a message came first: wait a whole period again
            self.arm(self.last + self.seconds)
            return True
        self.cell.system.timer.stats.observe(
            max(0.0, time.monotonic() - (self.last + self.seconds)))
        ok = tell(cell, inst, RECEIVE_TIMEOUT)
        if ok and entry is self.entry and self.seconds is not None:
            self.last = max(self.last, time.monotonic())
            self.arm(self.last + self.seconds)
        return ok


def set_receive_timeout(cell: Cell, seconds: float | None) -> None:
    """Set (or with None, end) the cell's receive timeout."""
    value = None if seconds is None else check_seconds(
        "set_receive_timeout: seconds", seconds, zero=False)
    part: IdleTimeout | None = cell.parts.get(KEY)
    if part is None:
        if value is None:
            return
        part = cell._attach(EXTENSION)  # type: ignore[assignment]
        assert part is not None
        cell.send_system(REREAD)  # its ``after`` stamps each message from the next one on
    part.set(value)


def receive_timeout(cell: Cell) -> float | None:
    part: IdleTimeout | None = cell.parts.get(KEY)
    return None if part is None else part.seconds


def _deliver(cell: Cell, inst: Minion, entry: IdleCheck) -> bool:
    return entry.part.deliver(cell, inst, entry)


class ReceiveTimeoutExtension(OnUse):
    """Attached on first use (``set_receive_timeout``), never by class."""

    key = KEY
    told: Mapping[type, Handler] = {IdleCheck: _deliver}

    def attach(self, cell: Cell) -> IdleTimeout:
        return IdleTimeout(cell)


EXTENSION = ReceiveTimeoutExtension()
register(EXTENSION)
