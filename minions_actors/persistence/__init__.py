"""State stores: where persistent minions' snapshots live between messages and processes.

:class:`SQLiteStateStore` (the default, file ``minions.db``) keeps one row per minion path with
its newest JSON snapshot. Saving only puts the snapshot in a dict under a lock; one writer
thread commits the dict in batches (WAL, group commit), so a minion that changes state on
every message costs one dict assignment per message, and 1,000 saves of one path within a
batch window are written once. :class:`InMemoryStateStore` has the same protocol for tests.
Snapshots are JSON text only: nothing read from the database is ever unpickled or evaluated.

Both stores also keep durable workflow records (:class:`WorkflowRecord`, the optional
:class:`WorkflowStore` part of the protocol): ``save_workflow`` goes through the same writer
and batches as snapshots and calls ``on_durable`` once the record is committed.
"""

from __future__ import annotations

import os
from typing import Any

from minions_actors.persistence.memory import InMemoryStateStore
from minions_actors.persistence.protocol import (
    ScheduleStore,
    StateStore,
    WorkflowStore,
    supports_workflows,
)
from minions_actors.persistence.quarantine import QuarantinedSnapshot
from minions_actors.persistence.records import (
    FINISHED_STATUSES,
    WORKFLOW_STATUSES,
    StoredMinion,
    StoredSchedule,
    StoreStats,
    WorkflowRecord,
)
from minions_actors.persistence.schema import MIGRATIONS, Migration, schema_version
from minions_actors.persistence.sqlite import Durability, SQLiteStateStore
from minions_actors.persistence.writer import SNAPSHOT_TABLE, WORKFLOW_TABLE

__all__ = [
    "FINISHED_STATUSES",
    "MIGRATIONS",
    "SNAPSHOT_TABLE",
    "WORKFLOW_STATUSES",
    "WORKFLOW_TABLE",
    "Durability",
    "InMemoryStateStore",
    "Migration",
    "QuarantinedSnapshot",
    "SQLiteStateStore",
    "ScheduleStore",
    "StateStore",
    "StoreStats",
    "StoredMinion",
    "StoredSchedule",
    "WorkflowRecord",
    "WorkflowStore",
    "open_state_store",
    "schema_version",
    "supports_workflows",
]



# ---------------------------------------------------------------------------- factory
def open_state_store(spec: object) -> StateStore | None:
    """Turn ``ActorSystem.start(state_store=...)`` into a store.

    A path (str or os.PathLike) opens a :class:`SQLiteStateStore`; a store instance is
    returned as is; None means a stateless run.
    """
    if spec is None:
        return None
    if isinstance(spec, (str, os.PathLike)):
        path: Any = os.fspath(spec)
        if not isinstance(path, str) or not path:
            raise TypeError(f"state_store path must be a non-empty str path, got {spec!r}")
        return SQLiteStateStore(path)
    if isinstance(spec, StateStore):
        return spec
    raise TypeError(
        "state_store must be a file path (str or os.PathLike) for a SQLite store, an object "
        "implementing the StateStore protocol (load, save, delete, flush, close, stored, "
        f"stats), or None for no persistence; got {type(spec).__name__}: {spec!r}"
    )
