"""The end of a cell: finalisation (release what waits on it, leave its parent, count the
backlog as dead letters, tell its watchers) and the death watch that tells them. These are
methods of :class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from minions_actors.errors import MailboxFull
from minions_actors.runtime import messages as m
from minions_actors.runtime.context import NOTHING_HELD
from minions_actors.support.events import LazyEvent

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

# copied on write under watch_lock: most minions never watch nor are watched
NO_CELLS: frozenset[Any] = frozenset()
_STOPPED_LOCK = threading.Lock()  # orders building a stopped event against setting it
STOPPED = LazyEvent()
STOPPED.set()


def finalize(cell: Cell) -> None:
    cell._finalized = True
    cell.terminated = True
    cell.instance = None
    cell._instance_changed()
    while cell._sys:  # runtime messages we will never handle: release their waiters
        pending = cell._sys.pop(0)
        if isinstance(pending, m.StopInstance):
            pending.done.set()
        elif isinstance(pending, m.Restart) and pending.started is not None:
            pending.started.set()
    parent = cell.parent
    if parent is not None:
        with parent.children_lock:
            if parent.children.get(cell.name) is cell:
                del parent.children[cell.name]
    held, cell._held = cell._held, NOTHING_HELD
    cell._drop_backlog(held)
    with cell.watch_lock:
        cell._watch_closed = True
        watchers, cell.watchers = cell.watchers, NO_CELLS
        watching, cell.watching = cell.watching, NO_CELLS
    for target in watching:
        with target.watch_lock:
            target.watchers = target.watchers - {cell}
    if watchers:
        from minions_actors.runtime.minion import Terminated

        note = Terminated(cell.ref, cell.path, cell.stop_reason or "stopped")
        for watcher in watchers:
            try:
                watcher.ref.tell(note)
            except MailboxFull as exc:  # the watcher is not keeping up: say so, go on
                cell.hooks.lifecycle_error(watcher, exc, "death-watch")
    if cell.parent is not None:
        cell.hooks.minion_stopped(cell, cell.stop_reason or "stopped")
        cell.system.unregister_cell(cell)
    cell._set_stopped()


def stopped_event(cell: Cell) -> LazyEvent:
    """Set once the cell is finalised; built when first asked for: ``cell._stopped`` is
    False, True once finalised, or the event (most minions are never waited on, and an
    event per minion was one more object for the cyclic GC to walk)."""
    event = cell._stopped
    if event.__class__ is LazyEvent:
        return event  # type: ignore[return-value]
    if event is True:  # finalised: one event, set, serves every such minion
        return STOPPED
    with _STOPPED_LOCK:
        event = cell._stopped
        if event.__class__ is not LazyEvent:
            stopped, event = event, LazyEvent()
            if stopped:
                event.set()
            cell._stopped = event
    return event  # type: ignore[return-value]


def set_stopped(cell: Cell) -> None:
    """The cell is finalised: set its stopped event, if anyone asked for it yet."""
    with _STOPPED_LOCK:
        event = cell._stopped
        if event.__class__ is not LazyEvent:
            cell._stopped = True
            return
    event.set()  # type: ignore[union-attr]


def watch(cell: Cell, target: Cell) -> None:
    """Deliver ``Terminated`` to this cell when ``target`` stops for good."""
    with target.watch_lock:
        alive = not target._watch_closed
        if alive:
            target.watchers = target.watchers | {cell}
    if alive:
        with cell.watch_lock:
            cell.watching = cell.watching | {target}
    else:
        from minions_actors.runtime.minion import Terminated

        cell.ref.tell(Terminated(target.ref, target.path, target.stop_reason or "stopped"))


def unwatch(cell: Cell, target: Cell) -> None:
    with target.watch_lock:
        target.watchers = target.watchers - {cell}
    with cell.watch_lock:
        cell.watching = cell.watching - {target}
