"""Test hooks: documented, read-only looks at what tests of the runtime wait for.

A test that waits until a minion is between two incarnations, counts its restarts, or
checks what the state store's writer holds at a given moment uses these functions instead
of private attributes, so that refactoring the runtime renames nothing a test relies on.
They read the state at one moment and change nothing; they are meant for tests, not for
application logic (use hooks, metrics and ``system.workflow()`` there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minions_actors.persistence.sqlite import SQLiteStateStore
    from minions_actors.runtime.ref import MinionRef

__all__ = [
    "WriterQueue",
    "between_incarnations",
    "halted",
    "restarts",
    "store_pragma",
    "writer_queue",
]


def restarts(ref: MinionRef[Any]) -> int:
    """How many times the minion behind ``ref`` was restarted by its supervisor."""
    return ref._cell.restarts


def between_incarnations(ref: MinionRef[Any]) -> bool:
    """True while the minion has no live instance: it crashed and waits for its restart
    (backoff included), or it has not started or has stopped."""
    return ref._cell.instance is None


def halted(ref: MinionRef[Any]) -> bool:
    """True once a shutdown halted the minion: it refuses messages from outside the runtime
    and drops its backlog."""
    return ref._cell.closing


@dataclass(frozen=True)
class WriterQueue:
    """What a :class:`~minions_actors.SQLiteStateStore` holds that is not committed yet."""

    pending_workflows: frozenset[str]  # ids saved or deleted, waiting for the next batch
    in_flight_workflows: frozenset[str]  # ids in the batch being committed
    in_flight: int  # rows (snapshots and workflow records) in the batch being committed
    live_workflows: frozenset[str]  # unfinished workflows the store keeps in memory


def writer_queue(store: SQLiteStateStore) -> WriterQueue:
    """The store's uncommitted changes and in-memory workflows, read under its queue lock."""
    q = store._q
    with q.cond:
        return WriterQueue(
            pending_workflows=frozenset(q.wf_pending),
            in_flight_workflows=frozenset(q.wf_inflight),
            in_flight=store._writer.in_flight,
            live_workflows=frozenset(store._wf_live),
        )


def store_pragma(store: SQLiteStateStore, name: str) -> Any:
    """The value of ``PRAGMA name`` on the store's own connection (e.g. ``synchronous``,
    which is per connection, so another connection to the file would not show it)."""
    if not name.isidentifier():
        raise ValueError(f"not a pragma name: {name!r}")
    with store._conn_lock:
        return store._db.execute(f"PRAGMA {name}").fetchone()[0]
