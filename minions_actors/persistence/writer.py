"""The state store's writer thread: takes coalesced snapshots and commits them in batches.

Caller threads only put entries into :class:`WriteQueue` (a dict under a lock). One
:class:`SnapshotWriter` thread swaps the dict out every ``batch_interval`` seconds (or at once
when someone flushes) and writes it in one transaction (group commit). A failed batch is put
back under the newer entries, so a retry never writes an older snapshot over a newer one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

from loguru import logger

from minions_actors.errors import (
    StateStoreCorrupt,
    StateStoreError,
    StateStoreFull,
    StateStoreLocked,
    StateStoreReadOnly,
)
from minions_actors.persistence.records import WORKFLOW_COLUMNS, workflow_row

if TYPE_CHECKING:
    from loguru import Logger
    from sqlite_utils import Database

    from minions_actors.persistence import WorkflowRecord

__all__ = [
    "SNAPSHOT_COLUMNS",
    "SNAPSHOT_TABLE",
    "WORKFLOW_COLUMNS",
    "WORKFLOW_TABLE",
    "Entry",
    "SnapshotWriter",
    "WfEntry",
    "WriteQueue",
    "classify_sqlite_error",
]

class _StoreLog:
    """The logger store records go through: the running system's (set at start) or loguru's.

    One system runs per process, so one module-level setting is enough; the system points
    it at its own logger (an injected one included) before opening the store.
    """

    current: Logger = logger.bind(minions=True, component="state_store")


store_log = _StoreLog()


def use_store_logger(log: Logger | None) -> None:
    """Send store records through ``log`` (None: back to loguru's global logger)."""
    store_log.current = (log if log is not None else logger).bind(
        minions=True, component="state_store"
    )

#: Table holding one row per persistent minion: its newest snapshot.
SNAPSHOT_TABLE = "minion_snapshots"
#: Column order used by the writer's list-mode ``insert_all``.
SNAPSHOT_COLUMNS = ["path", "minion_class", "state_json", "size_bytes", "updated_at"]

#: A pending change: ``(minion_class, state_json, updated_at)``; ``None`` means "delete".
Entry = tuple[str, str, float]

#: Table holding one row per durable workflow (schema version 2).
WORKFLOW_TABLE = "workflows"
#: A pending workflow change: a private copy of the record; ``None`` means "delete".
WfEntry: TypeAlias = "WorkflowRecord | None"
_WF_UPSERT = (
    f"INSERT OR REPLACE INTO {WORKFLOW_TABLE} ({', '.join(WORKFLOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(WORKFLOW_COLUMNS))})"
)
_WF_DELETE = f"DELETE FROM {WORKFLOW_TABLE} WHERE workflow_id = ?"

#: How long the idle writer sleeps before checking whether the main thread has ended.
_IDLE_POLL = 0.25
#: Rows per INSERT statement (5 columns x 1000 stays far below SQLite's variable limit).
_ROWS_PER_STATEMENT = 1000
#: Repeat the "still failing" log line at most this often during a long outage.
_RELOG_EVERY = 10.0
#: Rejected sync batches remembered for their waiters (each waiter checks right after the
#: wake-up that settles it, so a handful would do).
_REJECTED_KEPT = 256
#: How many lost paths (or workflow ids) the close-time error line names.
_LOST_SHOWN = 20
#: SQLite's own upper bound for ``PRAGMA max_page_count`` (means "no cap").
NO_PAGE_CAP = 4294967294


@contextlib.contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error, roll back and re-raise the original
    error (a failed ROLLBACK must not hide the failure worth reporting)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


#: Margin under ``RLIMIT_FSIZE`` within which an I/O error is taken for "file size limit
#: reached": SQLite writes one page (at most 64 KiB) plus a 24-byte WAL frame header at a time.
_FSIZE_MARGIN = 2 * 65536


def _fsize_limit_hit(db_path: str) -> int | None:
    """The soft ``RLIMIT_FSIZE`` when the store's files have reached it, else None.

    Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, which SQLite reports
    as a generic ``SQLITE_IOERR_WRITE``; the file sizes tell the two apart.
    """
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):  # pragma: no cover - not on Linux/macOS
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    for name in (db_path, db_path + "-wal", db_path + "-journal"):
        try:
            if os.path.getsize(name) + _FSIZE_MARGIN >= soft:
                return int(soft)
        except OSError:
            continue
    return None


def classify_sqlite_error(
    exc: BaseException, db_path: str, *, opening: bool = False
) -> StateStoreError:
    """Turn a sqlite3 exception into the matching :class:`StateStoreError` with a helpful text
    (``opening``: the error happened while opening the file, so the text says so)."""
    if isinstance(exc, StateStoreError):
        return exc
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    low = text.lower()
    kind: type[StateStoreError] = StateStoreError
    what = f"{type(exc).__name__}: {text}"
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in low:
        kind = StateStoreLocked
        what = (
            f"the database is locked by another process or connection ({text}); only one "
            "process may write a store file: stop the other writer"
        )
    elif name.startswith("SQLITE_FULL") or "is full" in low:
        kind = StateStoreFull
        what = f"the disk or the store's size cap is full ({text}): free disk space or " \
            "raise max_size_bytes"
    elif (name.startswith("SQLITE_IOERR") or "disk i/o error" in low) and (
        (limit := _fsize_limit_hit(db_path)) is not None
    ):
        kind = StateStoreFull
        what = (
            f"the process's file size limit (RLIMIT_FSIZE, `ulimit -f`) of {limit} bytes is "
            f"reached ({text}): raise it (systemd: LimitFSIZE=) or keep the store smaller"
        )
    elif name.startswith("SQLITE_READONLY") or "readonly" in low:
        kind = StateStoreReadOnly
        what = (
            f"the file cannot be written ({text}): make the file and its directory writable "
            "by this user, or choose another state_store path"
        )
    elif (
        name.startswith("SQLITE_NOTADB")
        or name.startswith("SQLITE_CORRUPT")
        or "not a database" in low
        or "malformed" in low
    ):
        kind = StateStoreCorrupt
        what = (
            f"it is not a SQLite database or is damaged ({text}): move the file away (a fresh "
            "store is created on the next start) or restore it from a backup"
        )
    return kind(f"{'cannot open ' if opening else ''}state store {db_path!r}: {what}.")


class WriteQueue:
    """Changes accepted from caller threads and not yet committed, plus flush bookkeeping.

    ``accepted`` counts every save/delete; ``durable`` is the highest count known to be
    settled: committed or, in sync mode, rejected (``rejected`` holds the count ranges of
    the batches whose commit failed, with the error). ``flush`` waits for
    ``durable >= accepted`` as it was when flush began.
    Workflow records travel in the same batches: ``wf_pending`` (coalesced by id, newest
    wins) and ``wf_callbacks`` (every ``on_durable`` of the pending saves, none dropped by
    coalescing). ``wf_inflight`` is the workflow part of the batch being committed, kept
    readable until the commit is done.
    """

    def __init__(self) -> None:
        # Reentrant, so a signal handler that flushes or closes while the main thread is
        # inside save() cannot deadlock.
        self.lock = threading.RLock()
        # Two conditions on the one lock: the writer waits on ``cond`` (for work), flush and
        # sync-mode callers on ``durable_cond`` (for commits). A save wakes only the writer,
        # never the hundreds of threads that may be waiting for their own commit.
        self.cond = threading.Condition(self.lock)
        self.durable_cond = threading.Condition(self.lock)
        self.pending: dict[str, Entry | None] = {}
        self.wf_pending: dict[str, WfEntry] = {}
        self.wf_inflight: dict[str, WfEntry] = {}
        self.wf_callbacks: list[Callable[[], None]] = []
        self.accepted = 0
        self.durable = 0
        self.rejected: list[tuple[int, int, StateStoreError]] = []  # (after, up to, error)
        self.first_dirty: float | None = None  # monotonic time the oldest pending change came
        self.urgent = False  # a flush (or sync save) wants the batch now
        self.stopping = False  # close(): write what is pending, then exit
        self.abandon = False  # close() timed out: exit without writing
        self.closed = False  # no new saves accepted


class SnapshotWriter(threading.Thread):
    """The one thread that writes snapshots; non-daemon and joined by ``close()``.

    It owns the sqlite connection while it runs (``conn_lock`` guards the rare use from
    other threads). Failures are retried with capped exponential backoff; nothing accepted
    is dropped unless ``close`` gives up waiting.
    """

    def __init__(
        self,
        *,
        db: Database,
        db_path: str,
        queue: WriteQueue,
        conn_lock: threading.Lock,
        batch_interval: float,
        retry_initial: float,
        retry_max: float,
        on_error: Callable[[StateStoreError], None] | None,
        reject_failed: bool = False,
    ) -> None:
        super().__init__(name="minions-store-writer", daemon=False)
        self._db = db
        self._db_path = db_path
        self._q = queue
        self._conn_lock = conn_lock
        self._interval = batch_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._on_error = on_error
        # sync mode: a failed commit is rejected (its savers get the error), never retried
        self._reject_failed = reject_failed
        self._table = db.table(SNAPSHOT_TABLE)
        # statistics (written only by this thread; read racily, which is fine for counters)
        self.rows_written = 0
        self.workflow_rows_written = 0  # also bumped by prune (under conn_lock)
        self.callbacks_called = 0
        self.batches = 0
        self.batch_seconds_sum = 0.0
        self.write_errors = 0
        self.last_error: str | None = None
        self.lost = 0
        self.in_flight = 0  # size of the batch being written (still "pending" for stats)
        # size cap (bytes -> PRAGMA max_page_count), applied before the next batch
        self.max_pages: int | None = None
        self._applied_max_pages: int | None = None

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        """Wait for a batch, write it, repeat; exit after close() drained the queue."""
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()
        q = self._q
        main = threading.main_thread()
        failing_since: float | None = None
        last_log = 0.0
        delay = self._retry_initial
        while True:
            with q.cond:
                while True:
                    if q.abandon:
                        self._drop_pending()
                        return
                    now = time.monotonic()
                    dirty = bool(q.pending or q.wf_pending)
                    if dirty and (
                        q.urgent
                        or q.stopping
                        or q.wf_callbacks  # someone waits for on_durable: no batch window
                        or q.first_dirty is None
                        or now >= q.first_dirty + self._interval
                    ):
                        break
                    if not dirty and q.durable < q.accepted:
                        # changes taken back by sync savers that gave up: nothing is left
                        # to commit, so everything accepted is settled (flush must not wait)
                        q.durable = q.accepted
                        q.durable_cond.notify_all()
                    if not dirty and q.stopping:
                        return
                    if not main.is_alive() and not self._others_keep_process_alive(main):
                        # The program ended without close(): write what is left, then stop so
                        # that this non-daemon thread never keeps the interpreter alive.
                        q.stopping = True
                        q.closed = True
                        continue
                    wait = _IDLE_POLL  # also bounds how late we notice the main thread ended
                    if dirty and q.first_dirty is not None:
                        wait = min(wait, max(0.0, q.first_dirty + self._interval - now))
                    q.cond.wait(wait)
                batch = q.pending
                q.pending = {}
                wf_batch = q.wf_pending
                q.wf_pending = {}
                q.wf_inflight = wf_batch
                callbacks = q.wf_callbacks
                q.wf_callbacks = []
                target = q.accepted
                settled = q.durable
                self.in_flight = len(batch) + len(wf_batch)
                q.first_dirty = None
                q.urgent = False
            try:
                self._write(batch, wf_batch)
            except BaseException as exc:  # every failure is retried and reported
                err = classify_sqlite_error(exc, self._db_path)
                self.write_errors += 1
                self.last_error = str(err)
                now = time.monotonic()
                if self._reject_failed:
                    failing_since = failing_since or now
                    self._reject(batch, wf_batch, settled, target, err)
                    continue
                if failing_since is None or now - last_log >= _RELOG_EVERY:
                    store_log.current.error(
                        "state store write failed ({} snapshots and {} workflow records kept, "
                        "retrying in {:.2f}s): {}",
                        len(batch),
                        len(wf_batch),
                        delay,
                        err,
                    )
                    last_log = now
                if failing_since is None:
                    failing_since = now
                self._report(err)
                with q.cond:
                    merged = batch
                    merged.update(q.pending)  # newer changes win over the failed batch
                    q.pending = merged
                    wf_merged = wf_batch
                    wf_merged.update(q.wf_pending)
                    q.wf_pending = wf_merged
                    q.wf_inflight = {}
                    callbacks.extend(q.wf_callbacks)  # called after the commit that succeeds
                    q.wf_callbacks = callbacks
                    self.in_flight = 0
                    if q.first_dirty is None:
                        q.first_dirty = now
                    deadline = now + delay
                    while not q.abandon:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        q.cond.wait(left)
                delay = min(delay * 2, self._retry_max)
                continue
            if failing_since is not None:
                store_log.current.info(
                    "state store writes recovered after {:.1f}s ({} failed attempts so far)",
                    time.monotonic() - failing_since,
                    self.write_errors,
                )
                failing_since = None
                self.last_error = None
            delay = self._retry_initial
            with q.cond:
                self.in_flight = 0
                q.wf_inflight = {}
                if target > q.durable:
                    q.durable = target
                q.durable_cond.notify_all()
            if callbacks:
                self._call_back(callbacks)

    def _reject(
        self,
        batch: dict[str, Entry | None],
        wf_batch: dict[str, WfEntry],
        settled: int,
        target: int,
        err: StateStoreError,
    ) -> None:
        """Sync mode: a batch whose commit failed is dropped, not retried; every saver
        waiting for it gets the error (and takes its change back from the in-memory view)."""
        store_log.current.error(
            "state store commit failed; {} snapshots and {} workflow records are rejected "
            "(sync mode: their callers get the error, nothing is retried): {}",
            len(batch),
            len(wf_batch),
            err,
        )
        self._report(err)
        q = self._q
        with q.cond:
            self.in_flight = 0
            q.wf_inflight = {}
            q.rejected.append((settled, target, err))
            del q.rejected[:-_REJECTED_KEPT]
            if target > q.durable:
                q.durable = target
            q.durable_cond.notify_all()

    def _call_back(self, callbacks: list[Callable[[], None]]) -> None:
        """Call the ``on_durable`` callbacks of a committed batch; a bug in one is logged."""
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a callback bug must not stop writes or other callbacks
                store_log.current.exception("state store on_durable callback {!r} raised", callback)
        self.callbacks_called += len(callbacks)

    def _others_keep_process_alive(self, main: threading.Thread) -> bool:
        """True while a non-daemon thread (e.g. a minion) other than writers still runs."""
        return any(
            t.is_alive() and not t.daemon and t is not main and not isinstance(t, SnapshotWriter)
            for t in threading.enumerate()
        )

    def _drop_pending(self) -> None:
        """close() gave up: count and log what could not be written (lock held by caller)."""
        q = self._q
        if q.pending:
            self.lost += len(q.pending)
            sample = ", ".join(sorted(q.pending)[:_LOST_SHOWN])
            store_log.current.error(
                "state store {!r} closed with {} snapshots not written (e.g. {}): {}",
                self._db_path,
                len(q.pending),
                sample,
                self.last_error,
            )
            q.pending = {}
        if q.wf_pending or q.wf_callbacks:
            self.lost += len(q.wf_pending)
            sample = ", ".join(sorted(q.wf_pending)[:_LOST_SHOWN])
            store_log.current.error(
                "state store {!r} closed with {} workflow records not written (e.g. {}); "
                "their {} on_durable callbacks are not called: {}",
                self._db_path,
                len(q.wf_pending),
                sample,
                len(q.wf_callbacks),
                self.last_error,
            )
            q.wf_pending = {}
            q.wf_callbacks = []
        q.cond.notify_all()
        q.durable_cond.notify_all()

    def _report(self, err: StateStoreError) -> None:
        """Call the user's on_error callback, which must never kill the writer."""
        if self._on_error is None:
            return
        try:
            self._on_error(err)
        except Exception:  # a callback bug must not stop writes
            store_log.current.exception("state store on_error callback raised")

    # ------------------------------------------------------------------ one batch
    def _write(self, batch: dict[str, Entry | None], wf_batch: dict[str, WfEntry]) -> None:
        """Commit one batch (snapshots and workflow records) in a single transaction."""
        rows: list[Any] = [SNAPSHOT_COLUMNS]
        deletes: list[tuple[str]] = []
        for path, entry in batch.items():
            if entry is None:
                deletes.append((path,))
            else:
                cls, text, ts = entry
                size = len(text) if text.isascii() else len(text.encode("utf-8"))
                rows.append((path, cls, text, size, ts))
        wf_rows: list[tuple[Any, ...]] = []
        wf_deletes: list[tuple[str]] = []
        for wid, rec in wf_batch.items():
            if rec is None:
                wf_deletes.append((wid,))
            else:
                wf_rows.append(workflow_row(rec))
        db = self._db
        started = time.perf_counter()
        with self._conn_lock:
            if self.max_pages != self._applied_max_pages:
                cap = NO_PAGE_CAP if self.max_pages is None else self.max_pages
                db.execute(f"PRAGMA max_page_count = {int(cap)}")
                self._applied_max_pages = self.max_pages
            conn: sqlite3.Connection = db.conn
            with immediate_transaction(conn):
                if len(rows) > 1:
                    self._table.insert_all(rows, replace=True, batch_size=_ROWS_PER_STATEMENT)
                if deletes:
                    conn.executemany(f"DELETE FROM {SNAPSHOT_TABLE} WHERE path = ?", deletes)
                if wf_rows:
                    conn.executemany(_WF_UPSERT, wf_rows)
                if wf_deletes:
                    conn.executemany(_WF_DELETE, wf_deletes)
            self.workflow_rows_written += len(wf_rows) + len(wf_deletes)
        self.batch_seconds_sum += time.perf_counter() - started
        self.batches += 1
        self.rows_written += len(rows) - 1 + len(deletes)


def _call_inline(on_durable: Callable[[], None] | None) -> None:
    """Sync and in-memory stores call ``on_durable`` on the saving thread; bugs are logged."""
    if on_durable is None:
        return
    try:
        on_durable()
    except Exception:
        store_log.current.exception("state store on_durable callback {!r} raised", on_durable)
