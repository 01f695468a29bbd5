"""Records of the state stores: stored minions, store statistics, durable workflow
records and their statuses."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any


# ---------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class StoredMinion:
    """One stored snapshot as listed by :meth:`StateStore.stored` (no state, just metadata)."""

    path: str
    minion_class: str
    size_bytes: int
    updated_at: datetime  # timezone-aware, UTC


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
WORKFLOW_STATUSES = ("running", "completed", "aborted", "failed")
#: The final statuses: a record with one of them is finished (``finished_at`` is set).
FINISHED_STATUSES = frozenset({"completed", "aborted", "failed"})


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
    status: str  # running | completed | aborted | failed
    next_step: int
    step_name: str | None
    context_json: str
    attempts: int = 0
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True for completed, aborted and failed records."""
        return self.status in FINISHED_STATUSES


#: The workflow table's columns, in table order: the fields of :class:`WorkflowRecord` (one
#: definition; the row tuple, the SELECT and the copy below all follow it).
WORKFLOW_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(WorkflowRecord))

#: A record's row tuple, in column order (C speed: the writer builds one per saved record).
workflow_row: Callable[[WorkflowRecord], tuple[Any, ...]] = operator.attrgetter(*WORKFLOW_COLUMNS)


def _wf_clone(r: WorkflowRecord) -> WorkflowRecord:
    """A field-for-field copy (several times faster than ``dataclasses.replace``)."""
    return WorkflowRecord(*workflow_row(r))


def _wf_accept(r: WorkflowRecord) -> WorkflowRecord:
    """Check a record given to ``save_workflow`` and return the private copy to store.

    Fills what the caller left at its default: ``created_at``/``updated_at`` of 0.0 become
    now, and a finished record without ``finished_at`` gets its ``updated_at``.
    """
    if not isinstance(r, WorkflowRecord):
        raise TypeError(f"save_workflow takes a WorkflowRecord, got {type(r).__name__}")
    if not isinstance(r.workflow_id, str) or not r.workflow_id:
        raise ValueError(f"workflow_id must be a non-empty str, got {r.workflow_id!r}")
    if r.status not in WORKFLOW_STATUSES:
        raise ValueError(
            f"workflow {r.workflow_id!r}: status must be one of {', '.join(WORKFLOW_STATUSES)}; "
            f"got {r.status!r}"
        )
    if not isinstance(r.context_json, str):
        raise TypeError(
            f"context_json of workflow {r.workflow_id!r} must be JSON text (str), "
            f"got {type(r.context_json).__name__}"
        )
    c = _wf_clone(r)
    if not c.created_at or not c.updated_at:
        now = time.time()
        c.created_at = c.created_at or now
        c.updated_at = c.updated_at or now
    if c.finished_at is None and c.status in FINISHED_STATUSES:
        c.finished_at = c.updated_at
    return c


def _status_set(status: str | Iterable[str] | None) -> frozenset[str] | None:
    """Normalise a ``status`` filter; unknown names are a ValueError (likely a typo)."""
    if status is None:
        return None
    wanted = frozenset((status,) if isinstance(status, str) else status)
    unknown = wanted.difference(WORKFLOW_STATUSES)
    if unknown:
        raise ValueError(
            f"unknown workflow status {', '.join(sorted(unknown))}; "
            f"known: {', '.join(WORKFLOW_STATUSES)}"
        )
    return wanted


def _wf_matches(
    r: WorkflowRecord, minion_path: str | None, statuses: frozenset[str] | None
) -> bool:
    return (minion_path is None or r.minion_path == minion_path) and (
        statuses is None or r.status in statuses
    )


def _prunable(r: WorkflowRecord, before: float, statuses: frozenset[str]) -> bool:
    return r.status in statuses and r.finished_at is not None and r.finished_at < before


def _wf_sorted(records: Iterable[WorkflowRecord]) -> list[WorkflowRecord]:
    return sorted(records, key=lambda r: (r.created_at, r.workflow_id))


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _check_text(path: str, state_json: str) -> None:
    if not isinstance(state_json, str):
        raise TypeError(
            f"state_json for {path!r} must be JSON text (str), got {type(state_json).__name__}"
        )
