"""The state store's writer thread: takes coalesced snapshots and commits them in batches.

Caller threads only put entries into :class:`WriteQueue` (a dict under a lock). One
:class:`SnapshotWriter` thread swaps the dict out every ``batch_interval`` seconds (or at once
when someone flushes) and writes it in one transaction (group commit). A failed batch is put
back under the newer entries, so a retry never writes an older snapshot over a newer one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from minions_actors.errors import StateStoreError
from minions_actors.persistence.batch_sql import WorkflowWrites, batch_rows, write_many
from minions_actors.persistence.sqlite_common import (
    SNAPSHOT_COLUMNS,
    SNAPSHOT_TABLE,
    WORKFLOW_TABLE,
    Entry,
    SchedEntry,
    WfEntry,
    classify_sqlite_error,
    store_log,
    use_store_logger,
)
from minions_actors.persistence.write_queue import WriteQueue
from minions_actors.records import WORKFLOW_COLUMNS

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
    "use_store_logger",
]

#: How long the idle writer sleeps before checking whether the main thread has ended.
_IDLE_POLL = 0.25
#: Repeat the "still failing" log line at most this often during a long outage.
_RELOG_EVERY = 10.0
#: Rejected sync batches remembered for their waiters (each waiter checks right after the
#: wake-up that settles it, so a handful would do).
_REJECTED_KEPT = 256
#: SQLite's own upper bound for ``PRAGMA max_page_count`` (means "no cap").
NO_PAGE_CAP = 4294967294


@dataclass
class _Batch:
    """What the writer took out of the queue for one transaction."""

    snapshots: dict[str, Entry | None]
    workflows: dict[str, WfEntry]
    callbacks: list[Callable[[], None]]  # the ``on_durable`` of its workflow saves
    target: int  # ``accepted`` when taken: this commit settles every change up to it
    settled: int  # ``durable`` when taken
    schedules: dict[tuple[str, str], SchedEntry]  # durable schedule rows


@dataclass
class _FailureStreak:
    """The writer's current run of failed commits (``since`` None: none)."""

    delay: float  # the next backoff
    since: float | None = None
    last_log: float = 0.0


class SnapshotWriter(threading.Thread):
    """The thread that writes snapshots; non-daemon and joined by ``close()``.

    Whoever commits holds ``conn_lock`` from taking a batch to settling it: this thread, a
    saver committing its own workflow checkpoint (``commit_here``), a prune. Failures are
    retried by this thread with capped exponential backoff; nothing accepted is dropped
    unless ``close`` gives up waiting.
    """

    def __init__(
        self,
        *,
        db: sqlite3.Connection,
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
        # statistics (written under the connection lock; read racily, fine for counters)
        self.rows_written = 0
        self.workflow_rows_written = 0  # also bumped by prune (under conn_lock)
        self.schedule_rows_written = 0
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
        # held by a commit between taking its batch and writing it (a test holds it to keep
        # a batch in flight: minions_actors.testing.writer_blocked)
        self.gate = threading.Lock()
        self._wf_writes = WorkflowWrites()  # (used under the connection lock)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        """Wait for a batch, write it, repeat; exit after close() drained the queue."""
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()
        streak = _FailureStreak(delay=self._retry_initial)
        while self._await_due():
            with self._conn_lock:  # taken before the batch: batches commit in take order
                batch = self.take()
                if batch is None:  # a saver committed it meanwhile (``commit_here``)
                    continue
                err = self.commit(batch)
            if err is None:
                self._recovered(streak)
                self.call_back(batch.callbacks)
            else:
                self._failed(batch, err, streak)

    def _await_due(self) -> bool:
        """Wait until a batch is due (True) or it is time to exit (False)."""
        q = self._q
        main = threading.main_thread()
        with q.cond:
            while True:
                if q.abandon:
                    self._drop_pending()
                    return False
                now = time.monotonic()
                dirty = bool(q.pending or q.wf_pending or q.sched_pending)
                if dirty and (
                    q.urgent
                    or q.stopping
                    or q.wf_callbacks  # someone waits for on_durable: no batch window
                    or q.first_dirty is None
                    or now >= q.first_dirty + self._interval
                ):
                    return True
                # a batch a saver took and commits on its thread (``commit_here``) is
                # neither pending nor settled yet: wait for it, do not declare it durable
                busy = bool(q.wf_inflight)
                if not dirty and not busy and q.durable < q.accepted:
                    # changes taken back by sync savers that gave up: nothing is left
                    # to commit, so everything accepted is settled (flush must not wait)
                    q.durable = q.accepted
                    q.durable_cond.notify_all()
                if not dirty and not busy and q.stopping:
                    return False
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

    def take(self) -> _Batch | None:
        """The pending changes as one batch (None: nothing pending); the caller holds the
        connection lock until :meth:`commit` returns, so no newer batch commits first."""
        with self._q.cond:
            q = self._q
            if q.abandon or not (q.pending or q.wf_pending or q.sched_pending):
                return None
            return self._take_batch()

    def _take_batch(self) -> _Batch:
        """Swap the pending changes out of the queue (lock held)."""
        q = self._q
        batch = _Batch(q.pending, q.wf_pending, q.wf_callbacks, q.accepted, q.durable,
                       q.sched_pending)
        q.pending = {}
        q.sched_pending = {}
        q.wf_pending = {}
        q.wf_inflight = batch.workflows
        q.wf_callbacks = []
        self.in_flight = len(batch.snapshots) + len(batch.workflows)
        q.first_dirty = None
        q.urgent = False
        return batch

    def commit(self, batch: _Batch) -> StateStoreError | None:
        """Write ``batch`` in one transaction and settle it (connection lock held, on the
        writer thread or a saver's): committed, or put back under the newer changes (sync
        mode: rejected) before any newer batch can be taken. Returns the error, if any."""
        try:
            with self.gate:
                self._write(batch.snapshots, batch.workflows, batch.schedules)
        except BaseException as exc:  # every failure is retried (or rejected) and reported
            self.write_errors += 1
            err = classify_sqlite_error(exc, self._db_path)
            self.last_error = str(err)
            with self._q.cond:
                if self._reject_failed:
                    self._reject(batch, err)
                else:
                    self._put_back(batch)
            return err
        self.last_error = None  # (before the waiters wake: a flush that returns sees it)
        q = self._q
        with q.cond:
            self.in_flight = 0
            q.wf_inflight = {}
            if batch.target > q.durable:
                q.durable = batch.target
            q.durable_cond.notify_all()
            if q.stopping:
                q.cond.notify_all()  # a closing writer waits for a saver's commit to end
        return None

    def _failed(self, batch: _Batch, err: StateStoreError, streak: _FailureStreak) -> None:
        """A commit failed (the batch is rejected or back in the queue already): log it
        (once per streak, then every few seconds), report it, wait out the backoff."""
        now = time.monotonic()
        if self._reject_failed:
            streak.since = streak.since or now
            store_log.current.error(
                "state store commit failed; {} snapshots and {} workflow records are rejected "
                "(sync mode: their callers get the error, nothing is retried): {}",
                len(batch.snapshots),
                len(batch.workflows),
                err,
            )
            self._report(err)
            return
        if streak.since is None or now - streak.last_log >= _RELOG_EVERY:
            store_log.current.error(
                "state store write failed ({} snapshots and {} workflow records kept, "
                "retrying in {:.2f}s): {}",
                len(batch.snapshots),
                len(batch.workflows),
                streak.delay,
                err,
            )
            streak.last_log = now
        if streak.since is None:
            streak.since = now
        self._report(err)
        q = self._q
        with q.cond:
            deadline = now + streak.delay
            while not q.abandon:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                q.cond.wait(left)
        streak.delay = min(streak.delay * 2, self._retry_max)

    def _put_back(self, batch: _Batch) -> None:
        """Return a failed batch to the queue, newer changes winning (queue lock held)."""
        q = self._q
        merged = batch.snapshots
        merged.update(q.pending)  # newer changes win over the failed batch
        q.pending = merged
        wf_merged = batch.workflows
        wf_merged.update(q.wf_pending)
        q.wf_pending = wf_merged
        batch.schedules.update(q.sched_pending)
        q.sched_pending = batch.schedules
        q.wf_inflight = {}
        batch.callbacks.extend(q.wf_callbacks)  # called after the commit that succeeds
        q.wf_callbacks = batch.callbacks
        batch.callbacks = []  # (the failed attempt calls none)
        self.in_flight = 0
        if q.first_dirty is None:
            q.first_dirty = time.monotonic()

    def _recovered(self, streak: _FailureStreak) -> None:
        """A commit succeeded: end a failure streak (logged)."""
        if streak.since is not None:
            store_log.current.info(
                "state store writes recovered after {:.1f}s ({} failed attempts so far)",
                time.monotonic() - streak.since,
                self.write_errors,
            )
            streak.since = None
        streak.delay = self._retry_initial

    def _reject(self, batch: _Batch, err: StateStoreError) -> None:
        """Sync mode, queue lock held: a batch whose commit failed is dropped, not retried;
        every saver waiting for it gets the error (and takes its change back)."""
        q = self._q
        self.in_flight = 0
        q.wf_inflight = {}
        q.rejected.append((batch.settled, batch.target, err))
        del q.rejected[:-_REJECTED_KEPT]
        if batch.target > q.durable:
            q.durable = batch.target
        q.durable_cond.notify_all()

    def call_back(self, callbacks: list[Callable[[], None]]) -> None:
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
        self.lost += self._q.drop_pending(self._db_path, self.last_error)

    def _report(self, err: StateStoreError) -> None:
        """Call the user's on_error callback, which must never kill the writer."""
        if self._on_error is None:
            return
        try:
            self._on_error(err)
        except Exception:  # a callback bug must not stop writes
            store_log.current.exception("state store on_error callback raised")

    # ------------------------------------------------------------------ one batch
    def _write(self, batch: dict[str, Entry | None], wf_batch: dict[str, WfEntry],
               schedules: dict[tuple[str, str], SchedEntry]) -> None:
        """Commit one batch (snapshots, workflow records, schedules) in one transaction."""
        rows, deletes = batch_rows(batch)
        whole, steps, wf_deletes = self._wf_writes.split(wf_batch)
        conn = self._db
        started = time.perf_counter()
        if self.max_pages != self._applied_max_pages:  # (the connection lock is held)
            cap = NO_PAGE_CAP if self.max_pages is None else self.max_pages
            conn.execute(f"PRAGMA max_page_count = {int(cap)}")
            self._applied_max_pages = self.max_pages
        if len(wf_batch) == 1 and not (rows or deletes or wf_deletes or schedules):
            self._wf_writes.write(conn, whole, steps)  # one statement, its own transaction
            # (the connection is in autocommit mode): one trip out of the interpreter, not three
        else:
            write_many(conn, rows, deletes, (whole, steps), wf_deletes, schedules)
        self._wf_writes.committed(whole, wf_deletes)
        self.workflow_rows_written += len(wf_batch)
        self.batch_seconds_sum += time.perf_counter() - started
        self.batches += 1
        self.rows_written += len(rows) + len(deletes)
        self.schedule_rows_written += len(schedules)
