"""Test hooks: documented looks at what tests of the runtime wait for, and the locks
they hold to create the worst moment.

A test that waits until a minion is between two incarnations, counts its restarts, finds
its thread, or checks what the state store's writer holds at a given moment uses these
functions instead of private attributes, so that refactoring the runtime renames nothing a
test relies on. They change nothing; two of them hold a lock for a ``with`` block
(:func:`runtime_lock`, :func:`writer_blocked`). They are meant for tests, not for
application logic (use hooks, metrics and ``system.workflow()`` there).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from minions_actors.runtime import snapshots

if TYPE_CHECKING:
    from minions_actors.persistence.sqlite import SQLiteStateStore
    from minions_actors.runtime.ref import MinionRef
    from minions_actors.system import ActorSystem

__all__ = [
    "WriterQueue",
    "between_incarnations",
    "halted",
    "restarts",
    "runtime_lock",
    "snapshot_encoder_in_use",
    "snapshot_encoders",
    "store_pragma",
    "thread_of",
    "writer_blocked",
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


def thread_of(ref: MinionRef[Any]) -> threading.Thread | None:
    """The thread of the minion's own (``dedicated_thread=True``, or a placed minion), or
    None when its turns run on the worker pool's threads."""
    return ref._cell.thread


def runtime_lock(system: ActorSystem,
                 which: Literal["shutdown", "registry"]) -> threading.RLock:
    """One of the system's own (re-entrant) locks, to hold in a test at the worst moment
    for something else, e.g. a signal: ``"shutdown"`` guards the start of the shutdown,
    ``"registry"`` the registry of live minions (every spawn and stop takes it)."""
    if which == "shutdown":
        return system._shutdown.lock
    if which == "registry":
        return system._registry.lock
    raise ValueError(f"which must be 'shutdown' or 'registry', got {which!r}")


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


@contextmanager
def writer_blocked(store: SQLiteStateStore) -> Iterator[None]:
    """Hold the store's commits for the block: the batch its writer takes next stays in
    flight (read with :func:`writer_queue`) until the block ends."""
    with store._writer.gate:
        yield


def snapshot_encoders() -> tuple[Callable[[Any], str] | None, Callable[[Any], str]]:
    """The two encoders of stored state (snapshots, workflow contexts), built now: the one
    on CPython's C accelerator (None where it is missing) and the public-API fallback.
    Both give the same text and raise for the same values."""
    return snapshots._c_encoder(), snapshots._stdlib_encoder()


def snapshot_encoder_in_use() -> Literal["c", "stdlib"]:
    """Which of the two encoders this process chose when the runtime was imported."""
    stdlib = isinstance(getattr(snapshots._encode, "__self__", None), json.JSONEncoder)
    return "stdlib" if stdlib else "c"


def store_pragma(store: SQLiteStateStore, name: str) -> Any:
    """The value of ``PRAGMA name`` on the store's own connection (e.g. ``synchronous``,
    which is per connection, so another connection to the file would not show it)."""
    if not name.isidentifier():
        raise ValueError(f"not a pragma name: {name!r}")
    with store._conn_lock:
        return store._db.execute(f"PRAGMA {name}").fetchone()[0]
