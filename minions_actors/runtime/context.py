"""What the parts of a cell share: the thread's current cell and two message sets.

The cell is split by concern (:mod:`.cell` its state and sending, :mod:`.loop` the loop,
:mod:`.special` the messages that are not plain tells, :mod:`.incarnation` the instances'
lives, :mod:`.deadletters`, :mod:`.finalize`); this module is what all of them import.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from minions_actors.runtime import messages as m
from minions_actors.runtime.mailbox import RuntimeMessage

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

# A cell holds no message taken out of its mailbox (``Cell._held``); not None: None is a message.
NOTHING_HELD: Any = object()


class _Current(threading.local):
    """Per thread: ``cell``, the cell whose thread this is (None elsewhere; a class
    default: a miss on a bare thread-local raises an AttributeError inside)."""

    cell: Cell | None = None


current = _Current()
#: in an async minion's coroutines (which run on a loop thread, not the cell's): the cell
#: whose handler, hook or task this is; set in each task's context by the runtime
current_task_cell: ContextVar[Cell | None] = ContextVar("minions_cell", default=None)
#: in the coroutine of an async minion's handler that runs one message at a time (not in a
#: task it created): its cell, whose waits are edges of the wait-for graph (runtime.waits)
current_handler_cell: ContextVar[Cell | None] = ContextVar("minions_handler", default=None)
# Messages that are answered or released rather than counted when a minion stops: asks,
# and every message the runtime sends itself (wake-ups, stops, workflow steps, a pipeline's
# turns), which no operator sent and none should read about as a dead letter.
NOT_DEAD_LETTERS = (m.Ask, RuntimeMessage)


def current_cell() -> Cell | None:
    """The cell whose thread this is, or whose coroutine runs, or None outside minions
    (a thread-local, then a context variable: no lock, safe in a signal handler)."""
    return current.cell or current_task_cell.get()
