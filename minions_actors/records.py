"""The records every layer reads: stored minions, store statistics, workflow statuses, the
durable workflow record and :class:`WorkflowInfo`, the read-only view users get.

Plain data at the bottom of the package (next to :mod:`minions_actors.errors`), so that the
runtime, the stores, the workflows and the hooks all name the same types without importing a
layer above them. Re-exported where users know them (``minions_actors``,
``minions_actors.persistence``, ``minions_actors.workflows``).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple


# ---------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class StoredMinion:
    """One stored snapshot as listed by :meth:`StateStore.stored` (no state, just metadata)."""

    path: str
    minion_class: str
    size_bytes: int
    updated_at: datetime  # timezone-aware, UTC


@dataclass(frozen=True)
class StoredSchedule:
    """One durable schedule of a persistent minion as a store keeps it (``self.schedules``):
    its definition as JSON text and when it is next due (unix time, seconds)."""

    path: str
    key: str
    minion_class: str
    spec_json: str
    next_due: float
    updated_at: float


@dataclass(frozen=True)
class StoreStats:
    """Cumulative counters of a store, read by the Prometheus collector at scrape time."""

    rows_written: int = 0  # snapshot rows written or deleted
    batches: int = 0  # committed write transactions
    batch_seconds_sum: float = 0.0  # time spent committing them
    write_errors: int = 0  # failed write attempts (each is retried)
    pending: int = 0  # snapshots accepted but not yet committed (queue depth)
    last_error: str | None = None  # message of the current failure streak, None when healthy
    lost: int = 0  # snapshots and workflow records dropped because close() timed out
    workflow_rows_written: int = 0  # workflow rows written or deleted (prune included)


#: Every status a workflow record can have; all but "running" are final.
WORKFLOW_STATUSES = ("running", "completed", "aborted", "failed", "cancelled")
#: The final statuses: a record with one of them is finished (``finished_at`` is set).
FINISHED_STATUSES = frozenset({"completed", "aborted", "failed", "cancelled"})


@dataclass
class WorkflowRecord:
    """One durable workflow: which minion runs it, where it is, and its JSON context.

    ``next_step`` is the index of the step to run next (``step_name`` its name, None once
    completed); ``context_json`` is JSON text. Times are ``time.time()`` seconds. Stores
    copy the record at save time, so the caller may keep mutating its object.
    """

    workflow_id: str
    minion_path: str
    minion_class: str
    workflow_name: str
    status: str  # running | completed | aborted | failed | cancelled
    next_step: int
    step_name: str | None
    context_json: str
    attempts: int = 0
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    # a Sleep or WaitSignal step in progress: when it ends (time.time(); None: no timeout)
    # and the signal awaited (None: a sleep); both None when no wait has begun
    wake_at: float | None = None
    waiting_for: str | None = None
    signal_seq: int = 0  # the newest signal consumed (older inbox rows are stale)
    cancelled_by: str | None = None

    @property
    def finished(self) -> bool:
        """True for completed, aborted and failed records."""
        return self.status in FINISHED_STATUSES


#: The workflow table's columns, in table order: the fields of :class:`WorkflowRecord` (one
#: definition; the row tuple, the SELECT and the copy below all follow it).
WORKFLOW_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(WorkflowRecord))

#: A record's row tuple, in column order (C speed: the writer builds one per saved record).
workflow_row: Callable[[WorkflowRecord], tuple[Any, ...]] = operator.attrgetter(*WORKFLOW_COLUMNS)


@dataclass(frozen=True)
class WorkflowInfo:
    """A read-only view of one workflow: where it is, its context, how it ended."""

    workflow_id: str
    name: str
    minion: str
    minion_class: str
    status: str
    step: str | None
    step_index: int
    context: dict[str, Any]
    attempts: int
    error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    #: when the sleep or signal wait in progress ends (None: none, or a wait without timeout)
    wake_at: float | None = None
    #: the signal the workflow waits for (None: not waiting for one)
    waiting_for: str | None = None
    #: who cancelled it (a ``cancelled`` workflow; ``finished_at`` says when)
    cancelled_by: str | None = None

    @property
    def sleeping(self) -> bool:
        """True while a ``Sleep`` step waits for its time."""
        return self.status == "running" and self.wake_at is not None and \
            self.waiting_for is None

    @classmethod
    def of(cls, rec: WorkflowRecord) -> WorkflowInfo:
        return cls(
            workflow_id=rec.workflow_id, name=rec.workflow_name, minion=rec.minion_path,
            minion_class=rec.minion_class, status=rec.status, step=rec.step_name,
            step_index=rec.next_step, context=json.loads(rec.context_json),
            attempts=rec.attempts, error=rec.error, created_at=rec.created_at,
            updated_at=rec.updated_at, finished_at=rec.finished_at, wake_at=rec.wake_at,
            waiting_for=rec.waiting_for, cancelled_by=rec.cancelled_by,
        )


#: What a workflow's inbox row asks: deliver a signal, or cancel the workflow.
REQUEST_KINDS = ("signal", "cancel")


class WorkflowRequest(NamedTuple):
    """One row of the workflow inbox: a signal or a cancel request, in ``seq`` order."""

    seq: int
    workflow_id: str
    kind: str  # signal | cancel
    name: str  # the signal's name ("" for a cancel)
    payload_json: str
    sent_by: str
    sent_at: float


#: The inbox table's columns, in table order.
REQUEST_COLUMNS: tuple[str, ...] = WorkflowRequest._fields
