"""Minions' timers beside the floor: a bare ``heapq`` + ``threading.Condition`` timer thread.

``timer_armed``: arm ``Sizes.timers`` single timers (an hour away) from inside a minion's
handler, then cancel them all: the cost of arming and of cancelling one, and the memory each
armed one holds (tracemalloc, in a second pass: tracing slows the timed one). The floor arms
the same count of callbacks on its own thread with a lazy-cancel handle (a list whose
callback is set to None), the least a timer thread can do in Python.

``timer_fires``: ``FIRE_MINIONS`` minions with a fixed-rate periodic timer each, phases
spread over the interval, ``Sizes.timer_rate`` fires per second together, for
``Sizes.timer_seconds``: how late each message reaches its handler after it was due
(p50, p99). The floor's row is its callback's lateness on the timer thread (no mailbox).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.common import WAIT, Latch, Sizes, percentile
from bench.systems.base import Metrics, System
from minions_actors import Minion

FIRE_MINIONS = 100
HOUR = 3600.0


class FloorTimer:
    """The floor: one thread, a heap of ``[when, seq, fn]`` lists, a condition."""

    def __init__(self) -> None:
        self.heap: list[list[Any]] = []
        self.cond = threading.Condition(threading.Lock())
        self.seq = itertools.count()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="bench-floor-timer")
        self.thread.start()

    def call_later(self, delay: float, fn: Callable[[], None]) -> list[Any]:
        entry = [time.monotonic() + delay, next(self.seq), fn]
        with self.cond:
            heapq.heappush(self.heap, entry)
            if self.heap[0] is entry:
                self.cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[2] = None

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.closed:
                    if self.heap:
                        left = self.heap[0][0] - time.monotonic()
                        if left <= 0:
                            break
                        self.cond.wait(left)
                    else:
                        self.cond.wait()
                if self.closed:
                    return
                fn = heapq.heappop(self.heap)[2]
            if fn is not None:
                fn()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(WAIT)


class FloorSystem(System):
    """The reference row of the timer scenarios (see the module docstring)."""

    key = "heapq-timer"
    label = "bare heapq + Condition timer"


class Arming(Minion):
    """Arms and cancels timers in its handler and says how long each took (on a thread of
    its own: a pooled handler that loops for a second is a spinner to the pool, which then
    shortens the switch interval for everyone; that cost is not the timers')."""

    dedicated_thread = True

    def on_receive(self, message: Any) -> Any:
        kind, keys = message
        timers = self.timers
        start_single, cancel = timers.start_single, timers.cancel
        t0 = time.perf_counter()
        if kind == "arm":
            for key in keys:
                start_single(key, "tick", HOUR)
        else:
            for key in keys:
                cancel(key)
        return time.perf_counter() - t0


def _retained(arm: Callable[[], Any], n: int) -> float:
    """Bytes per timer that ``arm`` leaves allocated (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = arm()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / n


def armed(system: System, sizes: Sizes) -> Metrics:
    n = sizes.timers
    keys = list(range(n))
    if isinstance(system, FloorSystem):
        return _armed_floor(keys)
    with system.running():  # type: ignore[attr-defined]
        ref = system.spawn(Arming)  # type: ignore[attr-defined]
        arm = ref.ask(("arm", keys), timeout=WAIT)
        cancel = ref.ask(("cancel", keys), timeout=WAIT)
        per = _retained(lambda: ref.ask(("arm", keys), timeout=WAIT), n)
        ref.ask(("cancel", keys), timeout=WAIT)
    return _per_timer(arm, cancel, per, n)


def _armed_floor(keys: list[int]) -> Metrics:
    floor = FloorTimer()
    try:
        fn = _noop
        call_later, cancel = floor.call_later, floor.cancel
        t0 = time.perf_counter()
        handles = {key: call_later(HOUR, fn) for key in keys}
        arm = time.perf_counter() - t0
        t0 = time.perf_counter()
        for key in keys:
            cancel(handles.pop(key))
        cancelled = time.perf_counter() - t0
        per = _retained(lambda: {key: call_later(HOUR, fn) for key in keys}, len(keys))
    finally:
        floor.close()
    return _per_timer(arm, cancelled, per, len(keys))


def _per_timer(arm: float, cancel: float, per: float, n: int) -> Metrics:
    return {"arm": arm / n * 1e6, "cancel": cancel / n * 1e6,
            "cycle": (arm + cancel) / n * 1e6, "bytes": per}


def _noop() -> None:
    pass


class Ticking(Minion):
    """A fixed-rate timer; records how late each tick reached the handler."""

    def __init__(self, interval: float, phase: float, ticks: int, late: list[float],
                 done: Latch) -> None:
        super().__init__()
        self.interval, self.ticks, self.late, self.done = interval, ticks, late, done
        self.first = time.monotonic() + phase
        self.n = 0
        self.timers.start_periodic("tick", "tick", interval, initial_delay=phase)

    def on_receive(self, message: Any) -> None:
        due = self.first + self.n * self.interval
        self.late.append(time.monotonic() - due)
        self.n += 1
        if self.n == self.ticks:
            self.timers.cancel("tick")
            self.done.count_down()


def fires(system: System, sizes: Sizes) -> Metrics:
    interval = FIRE_MINIONS / sizes.timer_rate
    ticks = max(1, round(sizes.timer_seconds / interval))
    late: list[float] = []
    done = Latch(FIRE_MINIONS)
    if isinstance(system, FloorSystem):
        t0 = time.perf_counter()
        _fires_floor(interval, ticks, late, done)
        elapsed = time.perf_counter() - t0
    else:
        with system.running():  # type: ignore[attr-defined]
            t0 = time.perf_counter()  # (the system's start not counted)
            for i in range(FIRE_MINIONS):
                system.spawn(Ticking, interval, interval * (1 + i / FIRE_MINIONS),  # type: ignore[attr-defined]
                             ticks, late, done)
            done.wait(WAIT + sizes.timer_seconds)
            elapsed = time.perf_counter() - t0
    elapsed -= interval  # (the first ticks are due one interval after the start)
    return {"p50": percentile(late, 50) * 1e6, "p99": percentile(late, 99) * 1e6,
            "rate": len(late) / elapsed}


def _fires_floor(interval: float, ticks: int, late: list[float], done: Latch) -> None:
    floor = FloorTimer()
    try:
        for i in range(FIRE_MINIONS):
            _FloorTicker(floor, interval, interval * (1 + i / FIRE_MINIONS), ticks, late,
                         done)
        done.wait(WAIT)
    finally:
        floor.close()


class _FloorTicker:
    """The floor's periodic callback: re-arms itself at a fixed rate on the timer thread."""

    def __init__(self, floor: FloorTimer, interval: float, phase: float, ticks: int,
                 late: list[float], done: Latch) -> None:
        self.floor, self.interval, self.ticks, self.late, self.done = (
            floor, interval, ticks, late, done)
        self.due = time.monotonic() + phase
        self.n = 0
        floor.call_later(phase, self)

    def __call__(self) -> None:
        now = time.monotonic()
        self.late.append(now - self.due)
        self.n += 1
        if self.n == self.ticks:
            self.done.count_down()
            return
        self.due += self.interval
        self.floor.call_later(self.due - now, self)
