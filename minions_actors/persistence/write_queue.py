"""The queue between the threads that save and the store's writer thread, and how an
``on_durable`` callback runs when no writer thread is involved."""

from __future__ import annotations

import threading
from collections.abc import Callable

from minions_actors.errors import StateStoreError
from minions_actors.persistence.sqlite_common import Entry, SchedEntry, WfEntry, store_log

#: How many lost paths (or workflow ids) the close-time error line names.
_LOST_SHOWN = 20


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
        # durable schedules by (path, key), in the same batches (one transaction)
        self.sched_pending: dict[tuple[str, str], SchedEntry] = {}
        self.accepted = 0
        self.durable = 0
        self.rejected: list[tuple[int, int, StateStoreError]] = []  # (after, up to, error)
        self.first_dirty: float | None = None  # monotonic time the oldest pending change came
        self.urgent = False  # a flush (or sync save) wants the batch now
        self.stopping = False  # close(): write what is pending, then exit
        self.abandon = False  # close() timed out: exit without writing
        self.closed = False  # no new saves accepted

    def drop_pending(self, db_path: str, why: str | None) -> int:
        """Close gave up waiting: drop every unwritten change, log what was lost and why,
        wake every waiter; returns how many records were lost (lock held by the caller)."""
        lost = 0
        if self.pending:
            lost += len(self.pending)
            sample = ", ".join(sorted(self.pending)[:_LOST_SHOWN])
            store_log.current.error(
                "state store {!r} closed with {} snapshots not written (e.g. {}): {}",
                db_path,
                len(self.pending),
                sample,
                why,
            )
            self.pending = {}
        if self.wf_pending or self.wf_callbacks:
            lost += len(self.wf_pending)
            sample = ", ".join(sorted(self.wf_pending)[:_LOST_SHOWN])
            store_log.current.error(
                "state store {!r} closed with {} workflow records not written (e.g. {}); "
                "their {} on_durable callbacks are not called: {}",
                db_path,
                len(self.wf_pending),
                sample,
                len(self.wf_callbacks),
                why,
            )
            self.wf_pending = {}
            self.wf_callbacks = []
        if self.sched_pending:
            lost += len(self.sched_pending)
            store_log.current.error("state store {!r} closed with {} schedule rows not written: {}",
                                    db_path, len(self.sched_pending), why)
            self.sched_pending = {}
        self.cond.notify_all()
        self.durable_cond.notify_all()
        return lost


def _call_inline(on_durable: Callable[[], None] | None) -> None:
    """Sync and in-memory stores call ``on_durable`` on the saving thread; bugs are logged."""
    if on_durable is None:
        return
    try:
        on_durable()
    except Exception:
        store_log.current.exception("state store on_durable callback {!r} raised", on_durable)
