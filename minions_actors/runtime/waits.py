"""Who waits for whom: the wait-for graph that turns an ask cycle between minions (A asks B
asks A, or longer) into an :class:`~minions_actors.AskDeadlock` instead of a hang.

A minion runs one message at a time, so a handler blocked in ``future.get()`` on a reply
that another minion's turn must produce is one edge, waiter -> future: the future names
the cell it waits on for as long as that cell's turn owes the reply (see
``MinionFuture._awaited``). An edge exists while its waiter is blocked in ``get()``, and
for a blocking ``ask()`` from before its message is sent (so the minion that receives it
and asks back always finds the edge: the one that closes the cycle is the one refused);
a future answered meanwhile, or handed to another thread to answer, is no longer an edge.
Inserting an edge follows the chain from the cell waited on; when it comes back to the
waiter, the wait would close a cycle and is refused. One lock makes check-and-insert
atomic (free-threaded Python included), so of two minions that start waiting on each
other at the same instant exactly one is refused, and the graph never holds a cycle.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from minions_actors.errors import AskDeadlock

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell


class Awaiting(Protocol):
    """A future that can say which cell's turn still owes its reply."""

    def _awaited(self) -> Cell | None: ...


_LOCK = threading.Lock()
_WAITING: dict[Any, Awaiting] = {}  # a cell blocked in get() -> the future it waits on


def wait_on(waiter: Cell, future: Awaiting) -> None:
    """Record that ``waiter`` blocks on ``future``; raise AskDeadlock, recording nothing,
    when the cell it waits on waits (through others perhaps) for ``waiter``."""
    target = future._awaited()
    with _LOCK:
        if target is None or target not in _WAITING:  # the usual case: a minion not waiting
            _WAITING[waiter] = future
            return
        chain = _cycle(waiter, target)
        if chain is None:
            _WAITING[waiter] = future
            return
    raise AskDeadlock(_cycle_text(chain))


def done(waiter: Cell) -> None:
    """``waiter`` stopped waiting (a reply, an error or a timeout). No lock: one dict
    operation is atomic, and an edge that goes mid-walk only makes ``wait_on`` see the
    graph as it was when its walk began (edges are inserted under the lock alone)."""
    _WAITING.pop(waiter, None)  # (absent after a get nested in a get hook)


def _cycle(waiter: Cell, target: Cell) -> list[Cell] | None:
    """The cycle ``waiter -> target -> ... -> waiter`` if the chain of waits from
    ``target`` reaches ``waiter``, else None."""
    chain = [waiter, target]
    cell: Cell | None = target
    for _ in range(len(_WAITING) + 1):  # the graph holds no cycle; bounded all the same
        if cell is waiter:
            return chain
        future = _WAITING.get(cell)
        cell = None if future is None else future._awaited()
        if cell is None:
            return None
        chain.append(cell)
    return None


def _cycle_text(chain: list[Cell]) -> str:
    cycle = " -> ".join(repr(cell.path or "gru") for cell in chain)
    return (
        f"{chain[0].describe()} would wait for a reply that can only come after its own "
        f"handler returns: ask cycle {cycle} (each waits in get() for the next); the ask "
        f"closing the cycle is refused. Break the cycle: reply with tell() instead of "
        f"waiting, or do not wait on a minion that may be waiting for you"
    )
