"""A cell's dead letters: messages that reached a stopped minion, and the backlog a stop
or a shutdown drops. Asks among them are answered (with :class:`MinionStopped`), the
runtime's own messages (every ``RuntimeMessage``, a pipeline's turns too) released; user
messages are counted and reported through the hooks. These are methods of
:class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import MinionStopped
from minions_actors.runtime import messages as m
from minions_actors.runtime.batching import take_carried
from minions_actors.runtime.context import NOT_DEAD_LETTERS, NOTHING_HELD
from minions_actors.runtime.mailbox import HALT_MARK

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

_DEAD_LETTER_LOCK = threading.Lock()  # dead letters are counted from any thread, rarely


def dead_letter(cell: Cell, message: Any) -> None:
    """Account for a message that reached a stopped minion (never raises)."""
    if isinstance(message, NOT_DEAD_LETTERS):
        cell._release(message)
    else:
        cell.count_dead_letter(message)


def release(cell: Cell, message: Any) -> None:
    """Answer an ask that will never be handled; runtime messages need nothing (a stop
    waiter watches the stopped event; a RunStep's workflow resumes at the next start)."""
    if isinstance(message, m.Ask):
        message.future.set_exception(exc_info=(MinionStopped, cell.stopped_error(), None))


def count_dead_letter(cell: Cell, message: Any, count: int = 1) -> None:
    """Count dead letters (from any thread) and report them: one message through the
    ``dead_letter`` hook (``first`` exactly once per minion), several at once through
    ``messages_dropped``."""
    with _DEAD_LETTER_LOCK:
        first = cell.dead_letters == 0
        cell.dead_letters += count
    if count == 1:
        cell.hooks.dead_letter(cell, message, first)
    else:
        cell.hooks.messages_dropped(cell, count)


def refuse(cell: Cell, message: Any, exc: BaseException) -> None:
    """A told message refused before any handler saw it (:class:`MessageRefused`, the
    sender's error): a dead letter, reported with why through ``message_refused``."""
    with _DEAD_LETTER_LOCK:
        cell.dead_letters += 1
    cell.hooks.message_refused(cell, message, exc)


def drain_dead_letters(cell: Cell) -> None:
    """From a sender's thread: what raced into the mailbox of a minion that just stopped
    is a dead letter like any later tell, one each."""
    cell._drain(cell.dead_letter)


def settle(cell: Cell, messages: list[Any]) -> None:
    """Messages taken from the mailbox that will never be handled: asks are answered
    (:class:`MinionStopped`), the rest counted as dead letters in bulk."""
    dropped: list[Any] = []
    _sort_out(cell, messages, dropped.append)
    if dropped:
        cell.count_dead_letter(dropped[-1], len(dropped))


def _sort_out(cell: Cell, messages: list[Any], dead: Callable[[Any], Any]) -> None:
    for item in messages:
        if isinstance(item, NOT_DEAD_LETTERS):
            cell._release(item)
        else:
            dead(item)


def drop_backlog(cell: Cell, held: Any) -> None:
    """At the stop: ``held`` (taken out, not handled), the messages carried past a crash
    (:mod:`.batching`) and everything still queued are dead letters, counted in bulk (one
    hook call, however long the backlog); asks among them are answered."""
    carried = take_carried(cell)
    if not carried and held is NOTHING_HELD and not cell._halt_dropped[0] \
            and cell.inbox.empty():  # (most stops: nothing left behind)
        return
    dropped: list[Any] = []
    _sort_out(cell, carried, dropped.append)
    cell._drain(dropped.append, held)
    count, last = cell._halt_dropped  # what a shutdown's halt dropped: one report for all
    if dropped:
        count, last = count + len(dropped), dropped[-1]
    if count:
        cell.count_dead_letter(last, count)


def drop_to_mark(cell: Cell) -> None:
    """Handle a Halt: drop (in bulk) or release everything queued before HALT_MARK.
    A stop request in the backlog still stops the minion, after the drop."""
    item, cell._held = cell._held, NOTHING_HELD
    dropped, last = 0, None  # a count, not a list: the backlog may be long
    get = cell.inbox.get_nowait
    while not cell._mark_passed:
        if item is HALT_MARK:
            cell._mark_passed = True
        elif item.__class__ is m.StopRequest and cell.instance is not None:
            cell._stop_requests += (item,)
            cell._terminate_requested = True  # the stop runs once the drop is done
        elif isinstance(item, NOT_DEAD_LETTERS):
            cell._release(item)
        elif item is not NOTHING_HELD:
            dropped, last = dropped + 1, item
        if not cell._mark_passed:
            try:
                item = get()
            except queue.Empty:  # the mark went by in a handler already: nothing left
                break
    if dropped:
        cell._halt_dropped = (dropped, last)
    if cell._stop_requests and not cell.terminated:
        cell._terminate(cell._stop_deadline(), "stopped")


def drain(cell: Cell, dead: Callable[[Any], Any], item: Any = NOTHING_HELD) -> None:
    """Empty the mailbox (after ``item``): answer or release what needs it, pass user
    messages to ``dead``."""
    get, empty = cell.inbox.get_nowait, cell.inbox.empty
    while True:
        if item is not NOTHING_HELD:
            if isinstance(item, NOT_DEAD_LETTERS):
                cell._release(item)
            else:
                dead(item)
        if empty():  # (most stops find it empty: no queue.Empty raised then)
            return
        try:
            item = get()
        except queue.Empty:
            return


def stopped_error(cell: Cell) -> MinionStopped:
    """The error for a request to a stopped minion: pykka's text ("<ref> not found"),
    which code written for pykka may match; why and what to do is a note (3.11+)."""
    err = MinionStopped(f"{cell.ref} not found")
    add_note = getattr(err, "add_note", None)
    if add_note is not None:
        add_note(f"{cell.describe()} is stopped ({cell.stop_reason or 'stopping'}); "
                 f"spawn it again or look up its replacement with system.get(path)")
    return err
