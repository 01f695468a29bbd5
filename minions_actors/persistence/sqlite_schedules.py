"""The SQLite store's durable schedules (a persistent minion's ``self.schedules``): one row per
schedule, saved through the same writer and batches as snapshots, so a schedule change queued
with a snapshot under :meth:`ScheduleTable.batch` is committed in the snapshot's transaction.
Every row is read once at open and then answered from memory (a minion has a handful)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from minions_actors.persistence.records import StoredSchedule, _check_text
from minions_actors.persistence.sqlite_common import SELECT_SCHEDULES, SchedEntry
from minions_actors.persistence.sqlite_workflows import WorkflowTable


def stored_schedule(path: str, key: str, entry: tuple[str, str, float, float]
                    ) -> StoredSchedule:
    return StoredSchedule(path, key, entry[0], entry[1], entry[2], entry[3])


class ScheduleTable(WorkflowTable):
    """The schedule part of the SQLite store (``ScheduleStore``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # by path, then key: a minion's incarnation reads its own in O(its schedules)
        self._sched: dict[str, dict[str, tuple[str, str, float, float]]] = {}
        for r in self._read(SELECT_SCHEDULES, ()):
            self._sched.setdefault(str(r[0]), {})[str(r[1])] = (
                str(r[2]), str(r[3]), float(r[4]), float(r[5]))

    def save_schedule(self, path: str, key: str, minion_class: str | None,
                      spec_json: str | None, next_due: float = 0.0) -> None:
        """Queue the row of schedule ``key`` of ``path`` (``spec_json`` None: delete it);
        sync mode: wait for its commit. One row write when committed."""
        entry: SchedEntry = None
        if spec_json is not None:
            _check_text(path, spec_json)
            entry = (minion_class or "", spec_json, float(next_due), time.time())
        q = self._q
        with q.lock:
            self._check_open(f"{path} {key}", "save schedule")
            if self._sync:  # (shown once committed: the caller waits until then)
                self._sync_change(f"schedule {key!r} of {path!r}", "sched_pending",
                                  (path, key), entry, {}, entry)
            else:
                q.sched_pending[(path, key)] = entry
                self._accepted()
            rows = self._sched.setdefault(path, {})
            if entry is None:
                rows.pop(key, None)
                if not rows:
                    del self._sched[path]
            else:
                rows[key] = entry

    def schedules(self, path: str | None = None) -> list[StoredSchedule]:
        """The stored schedules (of ``path``, or all), pending ones included, by path and
        key."""
        with self._q.lock:
            if path is not None:
                items = [(path, sorted(self._sched.get(path, {}).items()))]
            else:
                items = [(p, sorted(rows.items())) for p, rows in sorted(self._sched.items())]
        return [stored_schedule(p, k, e) for p, rows in items for k, e in rows]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Changes queued inside (snapshots, schedules, workflows) are committed in one
        transaction (batched mode): the writer cannot take a batch in between. Keep it
        short: every other saver waits meanwhile."""
        with self._q.lock:
            yield

    def schedule_rows_written(self) -> int:
        """Schedule rows committed so far (each arm, fire or cancel writes one)."""
        return int(self._writer.schedule_rows_written)
