"""The queue between the threads that save and the store's writer thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from minions_actors.errors import StateStoreError
from minions_actors.persistence.sqlite_common import Entry, WfEntry


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
