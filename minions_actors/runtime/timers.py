"""Minions' timers: a message to self after a delay, or periodically, under a key (Akka's
``TimerScheduler``). A minion reaches them as ``self.timers``.

The timers of a cell live in its :class:`TimerScheduler`, an extension part attached on
first use (no cost to minions without timers). Each started timer is one
:class:`TimerEntry` on the system's timer thread (``support.timer``); when due, the thread
puts the entry itself in the minion's mailbox. It is a runtime message, so it bypasses a
bounded mailbox and is never a dead letter, and it carries its key and incarnation: an entry
that was cancelled, replaced (its key started again) or belongs to an ended incarnation is
dropped when the minion reaches it; otherwise the user's message goes to ``on_receive`` as a
tell (for an async minion, as its other tells: a coroutine on the loop). Cancelling marks the
entry dead (O(1)); the timer thread skips it (see :class:`~minions_actors.support.timer.Timer`).
A restart or a stop cancels the ended incarnation's timers (the part's ``ended``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from minions_actors.runtime.extensions import Handler, OnUse, part_of, register
from minions_actors.runtime.mailbox import RuntimeMessage
from minions_actors.support.timer import Cancellable

if TYPE_CHECKING:
    from collections.abc import Callable

    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion
    from minions_actors.support.timer import Timer

TIMERS = "timers"  # the part's key in ``cell.parts``
_INF = math.inf
_NUMBERS = (float, int)  # (not bool: a subclass, checked for its class exactly)
_now = time.monotonic
Fixed = Literal["rate", "delay"]


def check_seconds(what: str, value: object, *, zero: bool) -> float:
    """``value`` as seconds, or a clear error: a number, finite, >= 0 (> 0 unless ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r} "
                        f"({type(value).__name__})")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}; "
                         f"to stop a timer, cancel it")
    if seconds < 0 or (seconds == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{what} must be {bound} seconds, got {value!r}")
    return seconds


class TimerEntry(Cancellable, RuntimeMessage):
    """One started timer: on the timer thread's heap, then (when due) in the mailbox."""

    __slots__ = ("due", "fixed", "incarnation", "interval", "key", "message", "owner",
                 "pending", "sent_due")

    def __init__(self, owner: TimerScheduler, incarnation: int, key: Hashable, message: Any,
                 due: float, interval: float | None, fixed: Fixed) -> None:
        self.dead = self.armed = self.pending = False  # (pending: in the mailbox)
        self.owner = owner  # (its cell and the timer thread: owner._cell, owner._timer)
        self.incarnation = incarnation
        self.key = key
        self.message = message
        self.due = due
        self.interval = interval  # None: a single timer
        self.fixed = fixed
        # sent_due: when the message put in the mailbox was due (set then; its lateness)

    def __call__(self) -> None:
        """Due, on the timer thread: into the mailbox (a fixed rate one: re-armed)."""
        cell = self.owner._cell
        if cell.terminated or cell.incarnation != self.incarnation:
            return  # (its incarnation's end cancels it; this is the belt)
        if self.interval is not None and self.fixed == "rate":
            now = time.monotonic()
            due, self.due = self.due, self.due + self.interval
            if self.due <= now:  # fell behind (a pause): skip the ticks missed
                self.due = now + self.interval - (now - self.due) % self.interval
            self.owner._timer.arm(self.due, self)
            if self.pending:  # the previous tick was not handled yet: no pile-up
                return
            self.sent_due = due
        else:
            self.sent_due = self.due
        self.pending = True
        cell.inbox.put(self)

    def __repr__(self) -> str:
        kind = "single" if self.interval is None else f"every {self.interval}s ({self.fixed})"
        return f"<timer {self.key!r} {kind}: {self.message!r}>"


class TimerScheduler:
    """A minion's timers (``self.timers``), Akka's ``TimerScheduler``. Call its methods
    from the minion's own handlers and hooks. Starting a key that is active replaces its
    timer (a message of the old one still in the mailbox is not delivered)."""

    __slots__ = ("_cell", "_ended", "_entries", "_timer")
    after = None  # (an extension part's: nothing runs after each message)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self._timer: Timer = cell.system.timer
        self._entries: dict[Hashable, TimerEntry] = {}
        self._ended = -1  # the incarnation whose end cancelled the timers

    def incarnation(self, inst: Minion) -> bool:
        return False

    def start_single(self, key: Hashable, message: Any, delay: float) -> None:
        """Send ``message`` to this minion once, ``delay`` seconds from now."""
        if not (delay.__class__ in _NUMBERS and 0 <= delay < _INF):  # (the usual case, short)
            delay = check_seconds(f"timers.start_single({key!r}): delay", delay, zero=True)
        self._start(key, message, delay, None, "rate")

    def start_periodic(self, key: Hashable, message: Any, interval: float, *,
                       fixed: Fixed = "rate", initial_delay: float | None = None) -> None:
        """Send ``message`` to this minion every ``interval`` seconds, the first time after
        ``initial_delay`` (default: ``interval``).

        ``fixed="rate"`` (Akka's ``startTimerAtFixedRate``): messages are due at
        ``start + k * interval`` whatever the handler takes, so the rate holds while the
        handler is faster than ``interval``; a tick due while the previous message is still
        in the mailbox is skipped (never a pile-up), and ticks missed in a pause are not made
        up. ``fixed="delay"`` (``startTimerWithFixedDelay``): the next message is due
        ``interval`` seconds after the previous one was handled (an async minion's: after
        its handler started), so a slow handler lowers the rate."""
        what = f"timers.start_periodic({key!r})"
        seconds = check_seconds(f"{what}: interval", interval, zero=False)
        first = seconds if initial_delay is None else check_seconds(
            f"{what}: initial_delay", initial_delay, zero=True)
        if fixed not in ("rate", "delay"):
            raise ValueError(f"{what}: fixed must be 'rate' or 'delay', got {fixed!r}")
        self._start(key, message, first, seconds, fixed)

    def _start(self, key: Hashable, message: Any, delay: float, interval: float | None,
               fixed: Fixed) -> None:
        cell = self._cell
        if self._ended == cell.incarnation:
            return  # started in on_stop: the incarnation's timers were cancelled already
        entries = self._entries
        old = entries.get(key)  # (an unhashable key fails here, before anything changed)
        entry = TimerEntry(self, cell.incarnation, key, message, _now() + delay, interval,
                           fixed)
        entries[key] = entry
        if old is None:
            self._timer.arm(entry.due, entry, 1)
        else:
            self._timer.cancel((old,), 0)
            self._timer.arm(entry.due, entry)

    def cancel(self, key: Hashable) -> bool:
        """Cancel the timer ``key`` (its message already in the mailbox is not delivered);
        False when no such timer is active."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._timer.cancel_one(entry)
        return True

    def cancel_all(self) -> None:
        """Cancel every timer of this minion."""
        entries = list(self._entries.values())
        self._entries.clear()
        if entries:
            self._timer.cancel(entries, len(entries))

    def is_active(self, key: Hashable) -> bool:
        """True while timer ``key`` runs: a single one until its message was handled."""
        return key in self._entries

    def keys(self) -> list[Hashable]:
        """The keys of the active timers, in the order they were first started."""
        return list(self._entries)

    def ended(self) -> None:
        """The incarnation ended (a restart, a stop): its timers are cancelled."""
        self._ended = self._cell.incarnation
        self.cancel_all()

    def deliver(self, cell: Cell, inst: Minion, entry: TimerEntry) -> bool:
        """The entry reached the minion: hand its message to ``on_receive`` unless it was
        cancelled meanwhile; False when the incarnation ended."""
        if entry.dead or entry.incarnation != cell.incarnation:
            return True
        entry.pending = False
        self._timer.stats.observe(_now() - entry.sent_due)  # (>= 0: popped once due)
        if entry.interval is None:  # done: the handler may start the key again
            del self._entries[entry.key]
            entry.dead = True
            self._timer.deactivated()
        ok = tell(cell, inst, entry.message)
        if ok and entry.fixed == "delay" and entry.interval is not None and not entry.dead:
            entry.due = time.monotonic() + entry.interval
            self._timer.arm(entry.due, entry)
        return ok


def tell(cell: Cell, inst: Minion, message: Any) -> bool:
    """Hand ``message`` to the minion as a tell: an async minion's cell starts its handler
    as a coroutine (as its other tells), any other runs it here."""
    cls = cell.__class__
    start = _STARTS.get(cls, _UNSEEN)
    if start is _UNSEEN:  # (once per cell class: a failed getattr costs a raised error)
        start = _STARTS[cls] = getattr(cls, "_start", None)
    if start is not None:  # an AsyncCell's (on its pool turn: no handler in flight)
        start(cell, inst, message)
        return cell.instance is not None
    return cell._handle_told(inst, inst.on_receive, message)


#: by cell class: the method that starts a tell's handler as a coroutine (AsyncCell), or None
_STARTS: dict[type, Callable[[Cell, Minion, Any], None] | None] = {}
_UNSEEN: Any = object()


def scheduler(cell: Cell) -> TimerScheduler:
    """The cell's timers, attached on first use."""
    part: TimerScheduler = part_of(cell, EXTENSION)
    return part


def _deliver(cell: Cell, inst: Minion, entry: TimerEntry) -> bool:
    return entry.owner.deliver(cell, inst, entry)


class TimersExtension(OnUse):
    """Attached on first use (``self.timers``), never by class."""

    key = TIMERS
    told: Mapping[type, Handler] = {TimerEntry: _deliver}

    def attach(self, cell: Cell) -> TimerScheduler:
        return TimerScheduler(cell)


EXTENSION = TimersExtension()
register(EXTENSION)
