"""A single named thread that runs delayed callbacks (restart backoff, workflow retries,
pruning, minions' timers).

Started on first use and joined on shutdown; callbacks must be quick (they usually just put a
message in a mailbox). Callbacks still pending at shutdown are dropped: everything they would
have done is recorded durably and resumes at the next start.

A callback may be a :class:`Cancellable`: cancelling it only marks it (``dead``) and counts
it, so that cancelling costs O(1) and the heap holds one small tuple per entry; the dead
entries are skipped when due, and the heap is rebuilt without them once they are more than
half of it (asyncio's lazy deletion). :class:`TimerStats` holds what the metrics read.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence

#: the histogram buckets of how late timers fire (seconds)
LATENESS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: dead entries below this many never trigger a rebuild of the heap
_COMPACT_MIN = 256


class Cancellable:
    """A callback the heap may hold after it was cancelled (see the module docstring)."""

    __slots__ = ("armed", "dead")

    def __init__(self) -> None:
        self.dead = False  # cancelled: skipped when due
        self.armed = False  # in the heap (changed under the timer's lock)

    def __call__(self) -> None:  # (subclasses run their work; a dead one is skipped)
        raise NotImplementedError


class TimerStats:
    """Minions' timers: how many are active, and a histogram of how late they fire."""

    __slots__ = ("active", "counts", "schedules", "total", "total_seconds")

    def __init__(self) -> None:
        self.active = 0  # (changed under the timer's lock)
        self.schedules = 0  # durable schedules armed (changed under the timer's lock)
        self.counts = [0] * (len(LATENESS_BUCKETS) + 1)  # the last one: beyond every bucket
        self.total = 0
        self.total_seconds = 0.0

    def observe(self, lateness: float) -> None:
        """Count one fire ``lateness`` seconds after it was due (a lost count under a race
        between two minions' threads only blurs a histogram)."""
        self.counts[bisect.bisect_left(LATENESS_BUCKETS, lateness)] += 1
        self.total += 1
        self.total_seconds += lateness


class Timer:
    """Run ``fn`` after ``delay`` seconds on the ``minions-timer`` thread."""

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._lock = threading.Lock()  # (taken directly where it is hot: no Python frame)
        self._cond = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dead = 0  # cancelled entries still in the heap
        self._on_error = on_error
        self.stats = TimerStats()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.call_at(time.monotonic() + max(0.0, delay), fn)

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at monotonic time ``when`` (nothing once the timer is closed)."""
        with self._cond:
            if self._closed:
                return
            heap = self._heap
            heapq.heappush(heap, (when, next(self._seq), fn))
            if self._thread is None:
                self._start()
            elif heap[0][2] is fn:  # only an earlier head changes how long the thread waits
                self._cond.notify()

    def arm(self, when: float, entry: Cancellable, activate: int = 0) -> None:
        """Run ``entry`` at monotonic time ``when`` unless it is cancelled first."""
        with self._lock:
            if self._closed or entry.dead:
                return
            heap = self._heap
            heapq.heappush(heap, (when, next(self._seq), entry))  # type: ignore[misc]
            entry.armed = True
            self.stats.active += activate
            if self._thread is None:
                self._start()
            elif heap[0][2] is entry:
                self._cond.notify()

    def cancel(self, entries: Sequence[Cancellable], deactivate: int) -> None:
        """Mark ``entries`` dead (they stay in the heap until due or a rebuild) and count
        ``deactivate`` timers as ended."""
        with self._lock:
            for entry in entries:
                entry.dead = True
                if entry.armed:
                    self._dead += 1
            if self._closed:  # (close() dropped them all and zeroed the count)
                return
            self.stats.active -= deactivate
            if self._dead > _COMPACT_MIN and self._dead * 2 > len(self._heap):
                self._compact()

    def cancel_one(self, entry: Cancellable) -> None:
        """:meth:`cancel` of one active timer (the common case, without a list)."""
        with self._lock:
            entry.dead = True
            if self._closed:
                return
            self.stats.active -= 1
            if entry.armed:
                self._dead = dead = self._dead + 1
                if dead > _COMPACT_MIN and dead * 2 > len(self._heap):
                    self._compact()

    def deactivated(self, count: int = 1) -> None:
        """``count`` timers ended without a dead entry in the heap (a single one fired)."""
        with self._lock:
            if not self._closed:
                self.stats.active -= count

    def count_schedules(self, delta: int) -> None:
        """``delta`` durable schedules were armed (or disarmed: negative)."""
        with self._lock:
            if not self._closed:
                self.stats.schedules += delta

    def _compact(self) -> None:
        self._heap = [e for e in self._heap
                      if not (isinstance(e[2], Cancellable) and e[2].dead)]
        heapq.heapify(self._heap)
        self._dead = 0

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="minions-timer", daemon=False)
        self._thread.start()

    def _due(self) -> list[Callable[[], None]] | None:
        """Wait for the entries due now and take them out (None: closed)."""
        with self._cond:
            heap = self._heap
            while not self._closed:
                if heap:
                    left = heap[0][0] - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                else:
                    self._cond.wait()
                heap = self._heap  # (a rebuild replaces the list)
            if self._closed:
                return None
            now = time.monotonic()
            due = []
            while heap and heap[0][0] <= now:
                fn = heapq.heappop(heap)[2]
                if isinstance(fn, Cancellable):
                    fn.armed = False
                    if fn.dead:
                        self._dead -= 1
                        continue
                due.append(fn)
            return due

    def _run(self) -> None:
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()
        while True:
            due = self._due()
            if due is None:
                return
            for fn in due:
                try:
                    fn()
                except Exception as exc:
                    if self._on_error is not None:
                        self._on_error(exc)

    def pending(self) -> int:
        """Entries waiting, cancelled ones not counted."""
        with self._cond:
            return len(self._heap) - self._dead

    def close(self, timeout: float | None = None) -> None:
        """Drop pending callbacks and join the thread (idempotent)."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._dead = 0
            self.stats.active = self.stats.schedules = 0
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
