"""The state store protocols: what the runtime needs from a store (:class:`StateStore`)
and the optional durable-workflow part (:class:`WorkflowStore`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from minions_actors.persistence.records import (
    StoredMinion,
    StoredSchedule,
    StoreStats,
    WorkflowRecord,
)


@runtime_checkable
class StateStore(Protocol):
    """What the runtime needs from a store; implement it to bring your own (e.g. Postgres).

    ``save`` is called on the minion's own thread after every message that changed state,
    so it must be cheap; durability is promised only after ``flush`` returns True.
    """

    def load(self, path: str) -> str | None:
        """Newest snapshot JSON text for a minion path (including unflushed saves), or None."""
        ...

    def save(self, path: str, minion_class: str, state_json: str) -> None:
        """Accept a new snapshot for ``path``; replaces any earlier one."""
        ...

    def delete(self, path: str) -> None:
        """Forget the snapshot of ``path`` (no error if there is none)."""
        ...

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted save is durable; False if ``timeout`` passed first."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Flush, release threads and files; idempotent."""
        ...

    def stored(self) -> list[StoredMinion]:
        """Metadata of every stored snapshot, sorted by path."""
        ...

    def stats(self) -> StoreStats:
        """Cumulative counters for metrics."""
        ...


@runtime_checkable
class WorkflowStore(Protocol):
    """The optional workflow part of a store (both built-in stores implement it).

    ``save_workflow`` is called on the minion's thread at every checkpoint, so it must be
    cheap; ``on_durable`` must be called exactly once, after the record (or a newer save of
    the same id) is durable, unless the store is closed while its writes keep failing.
    Reads see every accepted save, also ones not yet written.
    """

    def save_workflow(
        self, record: WorkflowRecord, on_durable: Callable[[], None] | None = None
    ) -> None:
        """Accept a copy of ``record`` (replaces the one with the same id)."""
        ...

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The newest record with this id (a copy), or None."""
        ...

    def workflows(
        self, minion_path: str | None = None, status: str | Iterable[str] | None = None
    ) -> list[WorkflowRecord]:
        """Records matching both filters (None: any), ordered by ``created_at``."""
        ...

    def delete_workflow(self, workflow_id: str) -> bool:
        """Forget a record; True if it existed."""
        ...

    def prune_workflows(
        self, finished_before: float, statuses: Iterable[str] = ("completed",)
    ) -> int:
        """Delete records with one of ``statuses`` finished before that time; the count."""
        ...


@runtime_checkable
class ScheduleStore(Protocol):
    """The optional part of a store that keeps persistent minions' durable schedules
    (``self.schedules``; both built-in stores implement it). Reads see every accepted save."""

    def save_schedule(self, path: str, key: str, minion_class: str | None,
                      spec_json: str | None, next_due: float = 0.0) -> None:
        """Accept the row of schedule ``key`` of minion ``path`` (``spec_json`` None:
        delete it); it replaces the row with the same path and key."""
        ...

    def schedules(self, path: str | None = None) -> list[StoredSchedule]:
        """The stored schedules of ``path`` (None: all), by path and key."""
        ...

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """A context inside which the changes accepted are made durable together (one
        transaction), or a no-op for a store whose every change is durable at once."""
        ...


def supports_workflows(store: object) -> bool:
    """True when ``store`` implements the :class:`WorkflowStore` methods."""
    return isinstance(store, WorkflowStore)


