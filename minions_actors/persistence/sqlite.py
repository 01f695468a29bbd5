"""The default state store: one SQLite file, one writer thread, batched transactions."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sqlite_utils import Database

from minions_actors.errors import (
    StateStoreClosed,
    StateStoreError,
    StateStoreReadOnly,
    StateStoreWriteFailed,
)
from minions_actors.persistence.quarantine import (
    QUARANTINE_TABLE,
    SELECT_QUARANTINED,
    QuarantinedSnapshot,
    insert_quarantined,
    select_quarantined,
)
from minions_actors.persistence.records import (
    StoredMinion,
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
from minions_actors.persistence.schema import _migrate
from minions_actors.persistence.store_file import OPEN_CHECKS, OpenCheck, OwnerLock, check_pages
from minions_actors.persistence.writer import (
    SNAPSHOT_TABLE,
    WORKFLOW_COLUMNS,
    WORKFLOW_TABLE,
    Entry,
    SnapshotWriter,
    WriteQueue,
    _call_inline,
    classify_sqlite_error,
    immediate_transaction,
    store_log,
)

Durability = Literal["batched", "sync"]



_WF_SELECT = f"SELECT {', '.join(WORKFLOW_COLUMNS)} FROM {WORKFLOW_TABLE}"


def _wf_row(row: tuple[Any, ...]) -> WorkflowRecord:
    return WorkflowRecord(*row)


# ---------------------------------------------------------------------------- SQLite store
class SQLiteStateStore:
    """The default store: a SQLite file (WAL) written by one batching writer thread.

    ``durability="batched"`` (default): ``save`` returns at once; changes are committed at
    most ``batch_interval`` seconds (plus one commit) later, which is the window that
    ``kill -9`` can lose; ``flush()`` closes it. ``durability="sync"``: ``save`` returns only
    after the commit (``synchronous=FULL``), zero loss at a far lower rate.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "minions.db",
        *,
        durability: Durability = "batched",
        batch_interval: float = 0.05,
        on_error: Callable[[StateStoreError], None] | None = None,
        max_size_bytes: int | None = None,
        sync_timeout: float = 10.0,
        open_timeout: float = 5.0,
        busy_timeout: float = 0.2,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        open_check: OpenCheck = "quick",
    ) -> None:
        if durability not in ("batched", "sync"):
            raise ValueError(f"durability must be 'batched' or 'sync', got {durability!r}")
        if open_check not in OPEN_CHECKS:
            raise ValueError(f"open_check must be 'quick' or 'none', got {open_check!r}")
        self._open_check: OpenCheck = open_check
        if not (isinstance(batch_interval, (int, float)) and batch_interval >= 0):
            raise ValueError(f"batch_interval must be seconds >= 0, got {batch_interval!r}")
        self.path = os.path.abspath(os.fspath(path))
        self.durability: Durability = durability
        self._sync = durability == "sync"
        self.batch_interval = float(batch_interval) if durability == "batched" else 0.0
        self._sync_timeout = sync_timeout
        self._close_lock = threading.Lock()
        self._closed = False
        self._conn_lock = threading.Lock()
        self._q = WriteQueue()
        # Unfinished workflow records (status "running"), kept current under the queue lock;
        # finished ones are read from the file on demand (there can be millions).
        self._wf_live: dict[str, WorkflowRecord] = {}
        self._read_lock = threading.Lock()  # guards the read connection, opened on first use
        self._rconn: sqlite3.Connection | None = None
        self._open_timeout = open_timeout
        self._owner: OwnerLock | None = None
        self._db, self._cache, self.schema_found = self._open(open_timeout, busy_timeout)
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._writer = SnapshotWriter(
            db=self._db,
            db_path=self.path,
            queue=self._q,
            conn_lock=self._conn_lock,
            batch_interval=self.batch_interval,
            retry_initial=retry_initial,
            retry_max=retry_max,
            on_error=on_error,
            reject_failed=durability == "sync",
        )
        self.max_size_bytes = max_size_bytes
        self._writer.start()

    # ------------------------------------------------------------------ opening
    def _open(
        self, open_timeout: float, busy_timeout: float
    ) -> tuple[Database, dict[str, Entry], int]:
        """Create/open the file (0600), take ownership, set WAL, check the pages, migrate,
        and read every row into the cache."""
        path = self.path
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise StateStoreError(
                f"cannot open state store {path!r}: directory {directory!r} does not exist; "
                "create it or choose another state_store path."
            )
        if os.path.isdir(path):
            raise StateStoreError(f"state store {path!r} is a directory; give a file path.")
        if not os.path.exists(path):
            try:
                # Created here with 0600 (SQLite gives -wal/-shm the same mode as the file).
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                os.close(fd)
            except FileExistsError:
                pass
            except PermissionError as exc:
                raise StateStoreReadOnly(
                    f"cannot create state store {path!r}: directory {directory!r} is not "
                    f"writable ({exc.strerror}); make it writable or choose another path."
                ) from exc
        else:
            mode = os.stat(path).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                store_log.current.warning(
                    "state store {!r} is accessible by other users (mode {:o}); consider chmod 600",
                    path,
                    stat.S_IMODE(mode),
                )
        self._owner = OwnerLock(path, open_timeout)
        try:
            conn = sqlite3.connect(
                f"{Path(path).as_uri()}?mode=rw",
                uri=True,
                timeout=open_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            self._owner.release()
            raise classify_sqlite_error(exc, path, opening=True) from exc
        db = Database(conn)
        try:
            journal = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            if journal.lower() != "wal":
                raise StateStoreError(
                    f"state store {path!r} cannot use WAL journaling (got {journal!r}); "
                    "put it on a local file system."
                )
            sync = "FULL" if self.durability == "sync" else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            check_pages(conn, path, self._open_check)
            found = _migrate(db, path)
            cache: dict[str, Entry] = {
                row[0]: (row[1], row[2], row[3])
                for row in conn.execute(
                    f"SELECT path, minion_class, state_json, updated_at FROM {SNAPSHOT_TABLE}"
                )
            }
            self._wf_live = {
                row[0]: _wf_row(row)
                for row in conn.execute(f"{_WF_SELECT} WHERE status = 'running'")
            }
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        except BaseException as exc:
            conn.close()
            self._owner.release()
            if isinstance(exc, sqlite3.Error):
                raise classify_sqlite_error(exc, path, opening=True) from exc
            raise
        return db, cache, found

    # ------------------------------------------------------------------ protocol
    def load(self, path: str) -> str | None:
        """Newest snapshot of ``path`` (O(1): all rows were read once at open)."""
        entry = self._cache.get(path)
        return None if entry is None else entry[1]

    def load_many(self, paths: Iterable[str]) -> dict[str, str]:
        """Snapshots of the given paths that exist, as ``{path: state_json}``."""
        cache = self._cache
        found = ((p, cache.get(p)) for p in paths)
        return {p: e[1] for p, e in found if e is not None}

    def load_all(self) -> dict[str, str]:
        """Every stored snapshot as ``{path: state_json}``."""
        with self._q.cond:
            items = list(self._cache.items())
        return {p: e[1] for p, e in items}

    def save(self, path: str, minion_class: str, state_json: str) -> None:
        """Queue a snapshot; in sync mode also wait until it is committed."""
        _check_text(path, state_json)
        entry = (minion_class, state_json, time.time())
        q = self._q
        with q.lock:  # the condition's own lock: a C-level enter on the message path
            self._check_open(path, "save")
            if self._sync:
                self._sync_change(f"snapshot of {path!r}", "pending", path, entry,
                                  self._cache, entry)
                return
            q.pending[path] = entry
            self._cache[path] = entry
            self._accepted()

    def delete(self, path: str) -> None:
        """Queue the removal of ``path``'s snapshot (sync mode: wait for the commit)."""
        q = self._q
        with q.cond:
            self._check_open(path, "delete")
            if self._sync:
                self._sync_change(f"deletion of {path!r}", "pending", path, None,
                                  self._cache, None)
                return
            q.pending[path] = None
            self._cache.pop(path, None)
            self._accepted()

    def _check_open(self, subject: str, action: str) -> None:
        """Refuse a change once the store is closed (the caller holds the queue's lock)."""
        if self._q.closed:
            raise StateStoreClosed(
                f"state store {self.path!r} is closed; cannot {action} {subject!r}"
            )

    def _accepted(self) -> None:
        """Batched mode, lock held: count one accepted change; wake the writer for the first
        change of a batch."""
        q = self._q
        q.accepted += 1
        if q.first_dirty is None:
            q.first_dirty = time.monotonic()
            q.cond.notify_all()

    def _sync_change(
        self, what: str, queue: Literal["pending", "wf_pending"], key: str, change: object,
        view: dict[str, Any], seen: object,
    ) -> None:
        """Sync mode, lock held: queue ``change`` under ``key`` in the write queue's
        ``queue`` (looked up each time: the writer swaps it out), make the in-memory ``view``
        show ``seen`` (None: absent), and wait for the commit. If it fails, or the writer
        has not even taken it within ``sync_timeout``, take the change back (``view`` as it
        was, unless a newer change replaced ours) and raise :class:`StateStoreWriteFailed`."""
        q = self._q
        before = view.get(key)
        getattr(q, queue)[key] = change
        if seen is None:
            view.pop(key, None)
        else:
            view[key] = seen
        q.accepted += 1

        def withdraw() -> bool:
            waiting = getattr(q, queue)
            if key in waiting and waiting[key] is change:
                del waiting[key]  # not taken by the writer: it must never be written
                return True
            return False

        try:
            self._wait_committed(q.accepted, what, withdraw)
        except StateStoreWriteFailed:
            if view.get(key) is seen:
                if before is None:
                    view.pop(key, None)
                else:
                    view[key] = before
            raise

    def _wait_committed(
        self, target: int, what: str, withdraw: Callable[[], bool] | None = None
    ) -> None:
        """Sync mode, lock held: wake the writer and wait for change number ``target`` to be
        committed; :class:`StateStoreWriteFailed` when its commit failed. After
        ``sync_timeout``, a change that ``withdraw`` can still take out of the queue fails;
        one the writer is already committing is waited for, so its outcome is known."""
        q = self._q
        if threading.current_thread() is self._writer:
            raise RuntimeError(
                f"{what}: a sync-mode write from the store's writer thread (a callback) "
                "would wait for itself; write from another thread."
            )
        q.urgent = True
        q.cond.notify_all()
        if not self._wait_durable(target, self._sync_timeout) and (
            withdraw is None or withdraw() or not self._wait_durable(target, None)
        ):
            why = self._writer.last_error or "the writer is busy with a slow commit"
            if not self._writer.is_alive():
                why = "the writer stopped"
            raise StateStoreWriteFailed(
                f"{what} was not committed to {self.path!r} within sync_timeout "
                f"({self._sync_timeout}s; {why}): it is not acknowledged."
            )
        for after, upto, err in q.rejected:
            if after < target <= upto:
                raise StateStoreWriteFailed(
                    f"{what} was not committed to {self.path!r} and is not acknowledged: {err}"
                ) from err

    def _wait_durable(self, target: int, timeout: float | None) -> bool:
        """Lock held: wait until ``durable >= target``; False on timeout or dead writer."""
        q = self._q
        deadline = None if timeout is None else time.monotonic() + timeout
        while q.durable < target:
            if not self._writer.is_alive():
                return False
            wait = 0.5
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            q.durable_cond.wait(wait)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every save accepted so far is committed; False on timeout.

        Committed means it survives ``kill -9`` of this process; surviving a power cut
        needs ``durability="sync"`` (batched mode runs with ``synchronous=NORMAL``).
        """
        if threading.current_thread() is self._writer:
            raise RuntimeError(
                "SQLiteStateStore.flush() cannot be called from the writer thread "
                "(e.g. from an on_durable callback): it would wait for itself."
            )
        q = self._q
        with q.cond:
            target = q.accepted
            if q.durable >= target:
                return True
            q.urgent = True
            q.cond.notify_all()
            return self._wait_durable(target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop and join the writer thread, close the file; idempotent.

        If writes keep failing for longer than ``timeout`` seconds, the unwritten
        snapshots are dropped with an error log (counted in ``stats().lost``).
        """
        if threading.current_thread() is self._writer:
            raise RuntimeError(
                "SQLiteStateStore.close() cannot be called from the writer thread "
                "(e.g. from on_error); call it from another thread."
            )
        with self._close_lock:
            if self._closed:
                return
            q = self._q
            with q.cond:
                q.closed = True
                q.stopping = True
                q.urgent = True
                q.cond.notify_all()
            self._writer.join(timeout)
            if self._writer.is_alive():
                with q.cond:
                    q.abandon = True
                    q.cond.notify_all()
                self._writer.join()
            with self._conn_lock:
                self._db.close()
            with self._read_lock:
                if self._rconn is not None:
                    self._rconn.close()
                    self._rconn = None
            if self._owner is not None:
                self._owner.release()  # after the last connection: the next owner may start
            self._closed = True

    def stored(self) -> list[StoredMinion]:
        """Metadata of every snapshot (including ones not yet committed), sorted by path."""
        with self._q.cond:
            items = sorted(self._cache.items())
        return [
            StoredMinion(path=p, minion_class=e[0], size_bytes=_size(e[1]), updated_at=_utc(e[2]))
            for p, e in items
        ]

    def stats(self) -> StoreStats:
        """Counters for metrics; cheap and lock-free."""
        w = self._writer
        return StoreStats(
            rows_written=w.rows_written,
            batches=w.batches,
            batch_seconds_sum=w.batch_seconds_sum,
            write_errors=w.write_errors,
            pending=len(self._q.pending) + len(self._q.wf_pending) + w.in_flight,
            last_error=w.last_error,
            lost=w.lost,
            workflow_rows_written=w.workflow_rows_written,
        )

    # ------------------------------------------------------------------ workflows
    def save_workflow(
        self, record: WorkflowRecord, on_durable: Callable[[], None] | None = None
    ) -> None:
        """Queue a copy of ``record``; call ``on_durable`` once it is committed.

        Batched mode: returns at once. ``on_durable`` is called on the writer thread right
        after the commit that made this record (or a newer save of the same id) durable; a
        batch holding a callback is committed as soon as the writer is free, without waiting
        for ``batch_interval``. Callbacks must be quick and must not call ``flush``/``close``.
        Sync mode: returns after the commit, having called ``on_durable`` on this thread;
        raises :class:`~minions_actors.errors.StateStoreWriteFailed` when the commit fails or
        does not start within ``sync_timeout`` (the record is taken back, ``on_durable`` is not
        called). Exceptions from ``on_durable`` are logged.
        """
        rec = _wf_accept(record)
        wid = rec.workflow_id
        q = self._q
        with q.cond:
            self._check_open(wid, "save workflow")
            live = rec if rec.status == "running" else None
            if self._sync:
                self._sync_change(f"workflow {wid!r}", "wf_pending", wid, rec,
                                  self._wf_live, live)
            else:
                q.wf_pending[wid] = rec
                if live is not None:
                    self._wf_live[wid] = rec
                else:
                    self._wf_live.pop(wid, None)
                q.accepted += 1
                # Wake the writer for the first change of a batch, and for its first callback
                # (a batch with a callback is committed without waiting for batch_interval).
                wake = q.first_dirty is None
                if on_durable is not None:
                    wake = wake or not q.wf_callbacks
                    q.wf_callbacks.append(on_durable)
                if q.first_dirty is None:
                    q.first_dirty = time.monotonic()
                if wake:
                    q.cond.notify_all()
                return
        _call_inline(on_durable)

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
        rows = self._read(f"{_WF_SELECT} WHERE workflow_id = ?", (workflow_id,))
        return _wf_row(rows[0]) if rows else None

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
        sql = _WF_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        found = {row[0]: _wf_row(row) for row in self._read(sql, params)}
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
        q = self._q
        target = 0
        with self._conn_lock:  # the writer is between commits while we hold this
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
                if from_queue:
                    q.accepted += 1
                    target = q.accepted
                    if q.first_dirty is None:
                        q.first_dirty = time.monotonic()
                    q.cond.notify_all()
            conn: sqlite3.Connection = self._db.conn
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
        if target and self.durability == "sync":
            with q.cond:
                self._wait_committed(target, "pruning of workflows")
        return from_file + from_queue

    def _read(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        """Run a query on the read connection (WAL: never blocked by the writer)."""
        with self._read_lock:
            if self._closed or self._q.closed:
                raise StateStoreClosed(
                    f"state store {self.path!r} is closed; cannot read workflows"
                )
            try:
                if self._rconn is None:
                    rconn = sqlite3.connect(
                        f"{Path(self.path).as_uri()}?mode=rw",
                        uri=True,
                        timeout=self._open_timeout,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                    rconn.execute("PRAGMA query_only = ON")
                    self._rconn = rconn
                return self._rconn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc

    # ------------------------------------------------------------------ quarantine
    def quarantine(self, path: str, error: str) -> bool:
        """Move the snapshot of ``path`` to the quarantine table with ``error``; True if
        there was one. The copy is committed at once (on this thread); the removal from
        ``minion_snapshots`` goes through the writer like any delete."""
        with self._q.cond:
            entry = self._cache.get(path)
        if entry is None:
            return False
        minion_class, state_json, _ts = entry
        with self._conn_lock:
            if self._q.closed:
                raise StateStoreClosed(
                    f"state store {self.path!r} is closed; cannot quarantine {path!r}"
                )
            conn: sqlite3.Connection = self._db.conn
            try:
                with immediate_transaction(conn):
                    insert_quarantined(conn, path, minion_class, state_json, error)
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc
        self.delete(path)
        return True

    def quarantined(self) -> list[QuarantinedSnapshot]:
        """Every quarantined snapshot, oldest first."""
        exists = self._read(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (QUARANTINE_TABLE,),
        )
        return select_quarantined(self._read(SELECT_QUARANTINED, ()) if exists else [])  # type: ignore[arg-type]

    # ------------------------------------------------------------------ extras
    @property
    def max_size_bytes(self) -> int | None:
        """Size cap of the database file; writing past it fails like a full disk (retried)."""
        pages = self._writer.max_pages
        return None if pages is None else pages * self._page_size

    @max_size_bytes.setter
    def max_size_bytes(self, value: int | None) -> None:
        if value is not None and value <= 0:
            raise ValueError(f"max_size_bytes must be positive or None, got {value!r}")
        self._writer.max_pages = None if value is None else max(1, value // self._page_size)
        with self._q.cond:
            self._q.cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` finished."""
        return self._closed

    def __enter__(self) -> SQLiteStateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SQLiteStateStore({self.path!r}, durability={self.durability!r}, "
            f"batch_interval={self.batch_interval})"
        )


