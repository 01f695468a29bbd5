"""The SQLite store's core: its options, the write queue and writer thread, and how a change
is accepted, waited for (sync mode, ``flush``) and closed. :class:`SQLiteStateStore` adds the
snapshot and quarantine methods, :class:`~minions_actors.persistence.sqlite_workflows.WorkflowTable`
the workflow ones."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from minions_actors.errors import StateStoreClosed, StateStoreError, StateStoreWriteFailed
from minions_actors.persistence.records import StoreStats
from minions_actors.persistence.sqlite_common import classify_sqlite_error, connect
from minions_actors.persistence.sqlite_open import open_store_file
from minions_actors.persistence.store_file import OPEN_CHECKS, OpenCheck
from minions_actors.persistence.write_queue import WriteQueue
from minions_actors.persistence.writer import SnapshotWriter

Durability = Literal["batched", "sync"]


def _check_options(durability: object, open_check: object, batch_interval: object) -> None:
    if durability not in ("batched", "sync"):
        raise ValueError(f"durability must be 'batched' or 'sync', got {durability!r}")
    if open_check not in OPEN_CHECKS:
        raise ValueError(f"open_check must be 'quick' or 'none', got {open_check!r}")
    if not (isinstance(batch_interval, (int, float)) and batch_interval >= 0):
        raise ValueError(f"batch_interval must be seconds >= 0, got {batch_interval!r}")


class StoreCore:
    """The state a SQLite store keeps and the machinery every change goes through."""

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
        _check_options(durability, open_check, batch_interval)
        self.path = os.path.abspath(os.fspath(path))
        self.durability: Durability = durability
        self._sync = durability == "sync"
        self.batch_interval = float(batch_interval) if durability == "batched" else 0.0
        self._sync_timeout = sync_timeout
        self._close_lock = threading.Lock()
        self._closed = False
        self._conn_lock = threading.Lock()
        self._q = WriteQueue()
        self._read_lock = threading.Lock()  # guards the read connection, opened on first use
        self._rconn: sqlite3.Connection | None = None
        self._open_timeout = open_timeout
        opened = open_store_file(self.path, sync=self._sync, open_check=open_check,
                                 open_timeout=open_timeout, busy_timeout=busy_timeout)
        self._owner = opened.owner
        self._db, self._cache, self.schema_found = opened.db, opened.cache, opened.schema_found
        # Unfinished workflow records (status "running"), kept current under the queue lock;
        # finished ones are read from the file on demand (there can be millions).
        self._wf_live = opened.wf_live
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._writer = SnapshotWriter(
            db=self._db, db_path=self.path, queue=self._q, conn_lock=self._conn_lock,
            batch_interval=self.batch_interval, retry_initial=retry_initial,
            retry_max=retry_max, on_error=on_error, reject_failed=self._sync,
        )
        self.max_size_bytes = max_size_bytes
        self._writer.start()

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
        self, what: str, queue: Literal["pending", "wf_pending", "sched_pending"], key: Any,
        change: object, view: dict[Any, Any], seen: object,
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

    def stats(self) -> StoreStats:
        """Counters for metrics; cheap and lock-free."""
        w = self._writer
        return StoreStats(
            rows_written=w.rows_written,
            batches=w.batches,
            batch_seconds_sum=w.batch_seconds_sum,
            write_errors=w.write_errors,
            pending=(len(self._q.pending) + len(self._q.wf_pending) + len(self._q.sched_pending)
                     + w.in_flight),
            last_error=w.last_error,
            lost=w.lost,
            workflow_rows_written=w.workflow_rows_written,
        )

    def _read(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        """Run a query on the read connection (WAL: never blocked by the writer)."""
        with self._read_lock:
            if self._closed or self._q.closed:
                raise StateStoreClosed(
                    f"state store {self.path!r} is closed; cannot read workflows"
                )
            try:
                if self._rconn is None:
                    rconn = connect(self.path, self._open_timeout)
                    rconn.execute("PRAGMA query_only = ON")
                    self._rconn = rconn
                return self._rconn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc

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

