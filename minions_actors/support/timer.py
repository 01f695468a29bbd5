"""A single named thread that runs delayed callbacks (workflow retry backoff, pruning).

Started on first use and joined on shutdown; callbacks must be quick (they usually just put a
message in a mailbox). Callbacks still pending at shutdown are dropped: everything they would
have done is recorded durably and resumes at the next start.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Timer:
    """Run ``fn`` after ``delay`` seconds on the ``minions-timer`` thread."""

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._on_error = on_error

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="minions-timer",
                                                daemon=False)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(exc)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self, timeout: float | None = None) -> None:
        """Drop pending callbacks and join the thread (idempotent)."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
