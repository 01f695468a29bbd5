"""The SQLite store's durable workflow records: saved through the same writer and batches
as snapshots, the unfinished ones answered from memory, the finished ones read from the file."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from minions_actors.errors import StateStoreClosed
from minions_actors.persistence.records import (
    WorkflowRecord,
    _prunable,
    _status_set,
    _wf_accept,
    _wf_clone,
    _wf_matches,
    _wf_sorted,
)
from minions_actors.persistence.sqlite_common import (
    WF_SELECT,
    WORKFLOW_TABLE,
    WfEntry,
    classify_sqlite_error,
    immediate_transaction,
    wf_record,
)
from minions_actors.persistence.sqlite_core import StoreCore
from minions_actors.persistence.write_queue import _call_inline


class WorkflowTable(StoreCore):
    """The :class:`~minions_actors.persistence.WorkflowStore` part of the SQLite store."""

    def save_workflow(
        self, record: WorkflowRecord, on_durable: Callable[[], None] | None = None
    ) -> None:
        """Queue a copy of ``record``; call ``on_durable`` once it is committed.

        Batched mode: returns at once. ``on_durable`` is called on the thread that committed
        (the writer's, or a saver's: :meth:`save_workflow_here`) right after the commit that
        made this record (or a newer save of the same id) durable; a batch holding a
        callback is committed as soon as the writer is free, without waiting for
        ``batch_interval``. Callbacks must be quick and must not call ``flush``/``close``.
        Sync mode: returns after the commit, having called ``on_durable`` on this thread;
        raises :class:`~minions_actors.errors.StateStoreWriteFailed` when the commit fails or
        does not start within ``sync_timeout`` (the record is taken back, ``on_durable`` is not
        called). Exceptions from ``on_durable`` are logged.
        """
        rec = _wf_accept(record)
        q = self._q
        with q.lock:  # (cond's own lock: its with-statement adds two Python calls per save)
            self._check_open(rec.workflow_id, "save workflow")
            if not self._sync:
                self._queue_workflow(rec, on_durable, wake=True)
                return
            self._sync_change(f"workflow {rec.workflow_id!r}", "wf_pending", rec.workflow_id,
                              rec, self._wf_live, rec if rec.status == "running" else None)
        _call_inline(on_durable)

    def save_workflow_here(self, record: WorkflowRecord, on_durable: Callable[[], None]) -> None:
        """:meth:`save_workflow` for a saver that waits for nothing else (a minion whose
        mailbox is empty): when no commit is under way and no other save waits for one,
        the record and whatever else is pending are committed on this thread at once and
        ``on_durable`` is called here after the commit, with no hand-off to the writer
        thread and back. Otherwise (sync mode, a commit under way or awaited, a failing
        store, closing) it is :meth:`save_workflow`; a commit that fails here leaves the
        batch to the writer, which retries it."""
        if self._sync or not self._conn_lock.acquire(blocking=False):
            self.save_workflow(record, on_durable)
            return
        writer, q = self._writer, self._q
        try:
            rec = _wf_accept(record)
            with q.lock:
                self._check_open(rec.workflow_id, "save workflow")
                # others waiting for a commit: the writer (woken for them) takes this one
                # along, and the saver goes on meanwhile (commits overlap the next steps)
                here = writer.last_error is None and not q.stopping and not q.wf_callbacks
                self._queue_workflow(rec, on_durable, wake=not here)
            batch = writer.take() if here else None
            failed = batch is None or writer.commit(batch) is not None
        finally:
            self._conn_lock.release()
        if failed:
            with q.cond:
                q.cond.notify_all()  # the writer retries (and logs) it
        else:
            writer.call_back(batch.callbacks)  # type: ignore[union-attr]  # (not failed)

    def _queue_workflow(self, rec: WorkflowRecord, on_durable: Callable[[], None] | None,
                        wake: bool) -> None:
        """Batched mode, queue lock held: queue ``rec`` and its ``on_durable``; with
        ``wake``, wake the writer for the first change of a batch and for its first callback
        (a batch with a callback is committed without waiting for batch_interval)."""
        q, wid = self._q, rec.workflow_id
        q.wf_pending[wid] = rec
        if rec.status == "running":
            self._wf_live[wid] = rec
        else:
            self._wf_live.pop(wid, None)
        q.accepted += 1
        wake = wake and (q.first_dirty is None or (on_durable is not None and not q.wf_callbacks))
        if on_durable is not None:
            q.wf_callbacks.append(on_durable)
        if q.first_dirty is None:
            q.first_dirty = time.monotonic()
        if wake:
            q.cond.notify_all()

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The newest record (a copy), including unwritten saves; None if there is none.

        Unfinished records are answered from memory; finished ones are read from the file
        (one primary-key lookup on a separate read connection).
        """
        q = self._q
        with q.cond:
            for unwritten in (q.wf_pending, q.wf_inflight):
                if workflow_id in unwritten:
                    rec = unwritten[workflow_id]
                    return None if rec is None else _wf_clone(rec)
            live = self._wf_live.get(workflow_id)
            if live is not None:
                return _wf_clone(live)
        rows = self._read(f"{WF_SELECT} WHERE workflow_id = ?", (workflow_id,))
        return wf_record(rows[0]) if rows else None

    def workflows(
        self, minion_path: str | None = None, status: str | Iterable[str] | None = None
    ) -> list[WorkflowRecord]:
        """Records matching both filters (None: any), ordered by ``created_at``.

        Reads the file (indexed by ``(minion_path, status)`` and ``(status, finished_at)``)
        and overlays the saves and deletes not written yet.
        """
        statuses = _status_set(status)
        q = self._q
        with q.cond:
            overlay = dict(q.wf_inflight)
            overlay.update(q.wf_pending)
        where: list[str] = []
        params: list[Any] = []
        if minion_path is not None:
            where.append("minion_path = ?")
            params.append(minion_path)
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(sorted(statuses))
        sql = WF_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        found = {row[0]: wf_record(row) for row in self._read(sql, params)}
        for wid, rec in overlay.items():
            if rec is None or not _wf_matches(rec, minion_path, statuses):
                found.pop(wid, None)
            else:
                found[wid] = _wf_clone(rec)
        return _wf_sorted(found.values())

    def delete_workflow(self, workflow_id: str) -> bool:
        """Queue the removal of a record (sync mode: wait for the commit); True if it existed."""
        existed = self.get_workflow(workflow_id) is not None
        q = self._q
        with q.cond:
            self._check_open(workflow_id, "delete workflow")
            if self._sync:
                self._sync_change(f"deletion of workflow {workflow_id!r}", "wf_pending",
                                  workflow_id, None, self._wf_live, None)
            else:
                q.wf_pending[workflow_id] = None
                self._wf_live.pop(workflow_id, None)
                self._accepted()
        return existed

    def prune_workflows(
        self, finished_before: float, statuses: Iterable[str] = ("completed",)
    ) -> int:
        """Delete records with one of ``statuses`` whose ``finished_at < finished_before``.

        The rows in the file are deleted at once in one transaction (on the calling thread,
        briefly sharing the writer's connection); matching records not written yet are
        deleted through the writer (durable after ``flush``; sync mode waits). Returns the
        number of records removed.
        """
        wanted = _status_set(statuses) or frozenset()
        if threading.current_thread() is self._writer:
            raise RuntimeError("prune_workflows() cannot run on the store's writer thread")
        before = float(finished_before)
        if not wanted:
            return 0
        with self._conn_lock:  # the writer is between commits while we hold this
            overlay, from_queue, target = self._prune_queued(before, wanted)
            from_file = self._prune_file(before, wanted, overlay)
        if target and self.durability == "sync":
            with self._q.cond:
                self._wait_committed(target, "pruning of workflows")
        return from_file + from_queue

    def _prune_queued(
        self, before: float, wanted: frozenset[str]
    ) -> tuple[dict[str, WfEntry], int, int]:
        """Queue the deletion of the matching records not written yet; return every unwritten
        record (the file's copies of those must stay), how many were queued for deletion,
        and the change count to wait for (0: none)."""
        q = self._q
        with q.cond:
            if q.closed:
                raise StateStoreClosed(
                    f"state store {self.path!r} is closed; cannot prune workflows"
                )
            overlay = dict(q.wf_inflight)
            overlay.update(q.wf_pending)
            from_queue = 0
            for wid, rec in overlay.items():
                if rec is not None and _prunable(rec, before, wanted):
                    q.wf_pending[wid] = None
                    from_queue += 1
            if not from_queue:
                return overlay, 0, 0
            q.accepted += 1
            if q.first_dirty is None:
                q.first_dirty = time.monotonic()
            q.cond.notify_all()
            return overlay, from_queue, q.accepted

    def _prune_file(self, before: float, wanted: frozenset[str],
                    overlay: dict[str, WfEntry]) -> int:
        """Delete the matching rows of the file, except those with an unwritten change
        (``overlay``); the caller holds the connection lock."""
        conn: sqlite3.Connection = self._db
        try:
            with immediate_transaction(conn):
                cur = conn.execute(
                    f"DELETE FROM {WORKFLOW_TABLE} WHERE status IN "
                    f"({', '.join('?' * len(wanted))}) AND finished_at < ? AND "
                    "workflow_id NOT IN (SELECT value FROM json_each(?))",
                    [*sorted(wanted), before, json.dumps(list(overlay))],
                )
                from_file = max(0, cur.rowcount)
        except sqlite3.Error as exc:
            raise classify_sqlite_error(exc, self.path) from exc
        self._writer.workflow_rows_written += from_file
        return from_file
