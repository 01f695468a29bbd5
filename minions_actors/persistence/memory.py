"""A state store in memory, with the same protocol as the SQLite one (for tests)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from minions_actors.persistence.quarantine import (
    QuarantinedSnapshot,
)
from minions_actors.persistence.records import (
    StoredMinion,
    StoredSchedule,
    StoreStats,
    WorkflowRecord,
    _check_text,
    _prunable,
    _size,
    _status_set,
    _utc,
    _wf_accept,
    _wf_clone,
    _wf_matches,
    _wf_sorted,
)
from minions_actors.persistence.sqlite_common import Entry
from minions_actors.persistence.write_queue import _call_inline
from minions_actors.records import WorkflowRequest


# ---------------------------------------------------------------------------- memory store
class InMemoryStateStore:
    """A dict behind the :class:`StateStore` protocol, for tests: no threads, no files.

    Every save is "durable" at once. ``close`` only marks it closed and keeps the data, so
    one instance can back several systems one after the other (a simulated restart).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inbox: list[WorkflowRequest] = []  # signals and cancel requests
        self._inbox_seq = 0
        self._data: dict[str, Entry] = {}
        self._rows = 0
        self._wf: dict[str, WorkflowRecord] = {}
        self._wf_rows = 0
        self._quarantined: list[QuarantinedSnapshot] = []
        self._sched: dict[tuple[str, str], StoredSchedule] = {}
        self._sched_rows = 0
        self.closed = False

    def load(self, path: str) -> str | None:
        """Newest snapshot of ``path`` or None."""
        entry = self._data.get(path)
        return None if entry is None else entry[1]

    def load_many(self, paths: Iterable[str]) -> dict[str, str]:
        """Snapshots of the given paths that exist."""
        data = self._data
        found = ((p, data.get(p)) for p in paths)
        return {p: e[1] for p, e in found if e is not None}

    def load_all(self) -> dict[str, str]:
        """Every snapshot as ``{path: state_json}``."""
        with self._lock:
            items = list(self._data.items())
        return {p: e[1] for p, e in items}

    def save(self, path: str, minion_class: str, state_json: str) -> None:
        """Store the snapshot (replaces the previous one)."""
        _check_text(path, state_json)
        with self._lock:
            self._data[path] = (minion_class, state_json, time.time())
            self._rows += 1

    def delete(self, path: str) -> None:
        """Forget ``path``'s snapshot."""
        with self._lock:
            if self._data.pop(path, None) is not None:
                self._rows += 1

    def flush(self, timeout: float | None = None) -> bool:
        """Always True: there is nothing to wait for."""
        return True

    def quarantine(self, path: str, error: str) -> bool:
        """Move ``path``'s snapshot to the quarantine list; True if there was one."""
        with self._lock:
            entry = self._data.pop(path, None)
            if entry is None:
                return False
            self._rows += 1
            self._quarantined.append(
                QuarantinedSnapshot(path, entry[0], entry[1], error, _utc(time.time()))
            )
        return True

    def quarantined(self) -> list[QuarantinedSnapshot]:
        """Every quarantined snapshot, oldest first."""
        with self._lock:
            return list(self._quarantined)

    def close(self, timeout: float | None = None) -> None:
        """Mark closed; the data stays readable and writable."""
        self.closed = True

    def stored(self) -> list[StoredMinion]:
        """Metadata of every snapshot, sorted by path."""
        with self._lock:
            items = sorted(self._data.items())
        return [
            StoredMinion(path=p, minion_class=e[0], size_bytes=_size(e[1]), updated_at=_utc(e[2]))
            for p, e in items
        ]

    def stats(self) -> StoreStats:
        """Counters in the same shape as the SQLite store's (each save is one batch)."""
        return StoreStats(
            rows_written=self._rows,
            batches=self._rows + self._wf_rows,
            workflow_rows_written=self._wf_rows,
        )

    # ------------------------------------------------------------------ workflows
    def save_workflow(
        self, record: WorkflowRecord, on_durable: Callable[[], None] | None = None
    ) -> None:
        """Store a copy of ``record``, then call ``on_durable`` on this thread."""
        rec = _wf_accept(record)
        with self._lock:
            self._wf[rec.workflow_id] = rec
            self._wf_rows += 1
        _call_inline(on_durable)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """A copy of the record, or None."""
        rec = self._wf.get(workflow_id)
        return None if rec is None else _wf_clone(rec)

    def workflows(
        self, minion_path: str | None = None, status: str | Iterable[str] | None = None
    ) -> list[WorkflowRecord]:
        """Copies of the records matching both filters, ordered by ``created_at``."""
        statuses = _status_set(status)
        with self._lock:
            found = [
                _wf_clone(r) for r in self._wf.values() if _wf_matches(r, minion_path, statuses)
            ]
        return _wf_sorted(found)

    def delete_workflow(self, workflow_id: str) -> bool:
        """Forget a record; True if it existed."""
        with self._lock:
            existed = self._wf.pop(workflow_id, None) is not None
            self._wf_rows += existed
        return existed

    def prune_workflows(
        self, finished_before: float, statuses: Iterable[str] = ("completed",)
    ) -> int:
        """Delete records with one of ``statuses`` finished before that time; the count."""
        wanted = _status_set(statuses) or frozenset()
        with self._lock:
            gone = [w for w, r in self._wf.items() if _prunable(r, finished_before, wanted)]
            for wid in gone:
                del self._wf[wid]
            self._wf_rows += len(gone)
        return len(gone)

    # ------------------------------------------------------------------ schedules
    def save_schedule(self, path: str, key: str, minion_class: str | None,
                      spec_json: str | None, next_due: float = 0.0) -> None:
        """Store (``spec_json`` None: delete) the row of schedule ``key`` of ``path``."""
        with self._lock:
            if spec_json is None:
                self._sched.pop((path, key), None)
            else:
                _check_text(path, spec_json)
                self._sched[(path, key)] = StoredSchedule(
                    path, key, minion_class or "", spec_json, float(next_due), time.time())
            self._sched_rows += 1

    def schedules(self, path: str | None = None) -> list[StoredSchedule]:
        """The stored schedules (of ``path``, or all), by path and key."""
        with self._lock:
            items = sorted(self._sched.items())
        return [s for (p, _k), s in items if path is None or p == path]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every change is durable at once: nothing to group."""
        yield

    def schedule_rows_written(self) -> int:
        """Schedule rows written so far (each arm, fire or cancel writes one)."""
        return self._sched_rows

    # ------------------------------------------------------------------ workflow inbox
    def post_workflow_request(self, workflow_id: str, kind: str, name: str,
                              payload_json: str, sent_by: str) -> int:
        """Append a request to the inbox; its ``seq``."""
        with self._lock:
            self._inbox_seq += 1
            self._inbox.append(WorkflowRequest(self._inbox_seq, workflow_id, kind, name,
                                               payload_json, sent_by, time.time()))
            return self._inbox_seq

    def workflow_requests(self, workflow_id: str | None = None,
                          after: int = 0) -> list[WorkflowRequest]:
        """The requests with ``seq > after`` (of one workflow, or all), oldest first."""
        with self._lock:
            return [r for r in self._inbox if r.seq > after
                    and (workflow_id is None or r.workflow_id == workflow_id)]

    def delete_workflow_requests(self, seqs: Iterable[int]) -> int:
        """Remove applied or stale requests; how many there were."""
        gone = set(seqs)
        with self._lock:
            kept = [r for r in self._inbox if r.seq not in gone]
            removed = len(self._inbox) - len(kept)
            self._inbox = kept
        return removed

    def __repr__(self) -> str:
        return f"InMemoryStateStore({len(self._data)} snapshots, {len(self._wf)} workflows)"


