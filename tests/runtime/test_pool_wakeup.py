"""Queued minions are served while a worker that counted as active waits in the runtime.

A parked worker woken for a queued minion declines it when another worker counts as active
(under the GIL one serves the queue); if that worker then waited in the runtime (an ask)
with enough workers left that none is added, nobody was told to take the queue, and it
waited for a parked worker's keep-alive (2 s). The pipeline-fed workflows at 500 events/s
stalled ~1.7 s at a time so (the pipeline's turns wait for the subscriber while the store's
writer queues its steps). Now a worker that starts such a wait hands the queue on, and one
that declines a queue arms the monitor.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, MinionRef

from ..conftest import QUIET, wait_until


class Pong(Minion):
    def on_receive(self, message: Any) -> Any:
        return "pong"


class Gate(Minion):
    """Signals its turn, then runs Python (its worker counts as active, and the monitor has
    no reason to retake it) until ``other`` is queued and the worker woken for it has parked
    again, then asks ``other`` (a wait in the runtime)."""

    def __init__(self, started: threading.Event, pool: Any, other: MinionRef[Pong]) -> None:
        super().__init__()
        self.started, self.pool, self.other = started, pool, other

    def on_receive(self, message: Any) -> Any:
        pool = self.pool
        self.started.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
                pool.queued() == 1 and len(pool._idle) == len(pool._slots) - 1):
            pass  # (the woken worker may take it instead: then nothing is left to prove)
        return self.other.ask("ping", timeout=1.5)


class Slow(Minion):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_receive(self, message: Any) -> Any:
        assert self.release.wait(30)
        return "done"


class Asker(Minion):
    def on_receive(self, target: MinionRef[Slow]) -> Any:
        return target.ask("x", timeout=30)


def grow_the_pool(system: ActorSystem, extra: int) -> None:
    """Leave the pool with ``extra`` workers beyond its size, all parked (compensation for
    handlers waiting in asks adds them; they stay for ``KEEPALIVE`` once idle)."""
    pool = system.worker_pool
    release = threading.Event()
    replies = [system.spawn(Asker).ask(system.spawn(Slow, release), block=False)
               for _ in range(extra)]
    wait_until(lambda: len(pool._slots) >= pool.size + extra, timeout=10,
               what="compensating workers")
    release.set()
    assert [r.get(timeout=10) for r in replies] == ["done"] * extra
    wait_until(lambda: len(pool._idle) == len(pool._slots), timeout=10,
               what="every worker parked")


def test_a_minion_queued_behind_a_turn_that_then_asks_is_served_at_once() -> None:
    """The plain case (the put arms the monitor, which wakes a worker): a guard, it passed
    before the fix too; the race itself is caught by the scenario below."""
    system = ActorSystem.start(**QUIET, pool_size=2)
    try:
        pool = system.worker_pool
        pong = system.spawn(Pong)
        assert pong.ask("warm", timeout=10) == "pong"
        grow_the_pool(system, 2)  # (no worker is added when the gate's turn then waits)
        started = threading.Event()
        gate = system.spawn(Gate, started, pool, pong)
        reply = gate.ask("go", block=False)
        assert started.wait(10)
        pong.tell("queued while the gate's turn is active")
        assert reply.get(timeout=10) == "pong"  # old code: AskTimeout after 1.5 s
    finally:
        system.shutdown(timeout=10)


class StallWatch(threading.Thread):
    """Samples the pool every 2 ms and keeps the longest time the run queue held minions
    while no worker served it: the queue's count of turns taken did not move and every
    worker was parked or waiting in the runtime (the lost wake-up's signature). A slow
    host or interpreter stalls the workers' turns too, but leaves them in their turns, so
    it is not counted: free-threaded 3.13 on an oversubscribed host yields its CPU in each
    contended critical section (``sched_yield``) and ends workflows seconds apart."""

    def __init__(self, pool: Any) -> None:
        super().__init__(name="stall-watch", daemon=True)
        self.pool, self.longest, self.stop = pool, 0.0, threading.Event()

    def unserved(self) -> int | None:
        """The turns taken so far, when the queue waits with no worker able to take it."""
        pool = self.pool
        slots = list(pool._slots)
        if not pool.queued() or any(s.cell is not None and not s.blocked for s in slots):
            return None
        return sum(s.taken for s in slots)

    def run(self) -> None:
        since, mark = 0.0, None
        while not self.stop.wait(0.002):
            taken, now = self.unserved(), time.perf_counter()
            if taken is None or taken != mark:
                since, mark = now, taken
            elif taken is not None:
                self.longest = max(self.longest, now - since)


@pytest.mark.timeout(180)  # (3.13t on an oversubscribed host: see StallWatch)
def test_paced_pipeline_fed_workflows_never_stall() -> None:
    """The scenario that found it (bench/pipeline_workflows.py, 500 events/s for 3 s): the
    pipeline's turns wait for the subscriber while its workflows' steps are queued by the
    store's writer. Before the fix every run stalled for ~1.7 s (a parked worker's
    keep-alive) once or twice, with the queue unserved all along."""
    import tempfile
    from pathlib import Path

    from bench import pipeline_workflows as pw

    done = pw._Done(1500)
    events, intake = pw._classes(1500, 500.0, done, False)
    with tempfile.TemporaryDirectory() as tmp:
        system = ActorSystem.start(**{**QUIET, "state_store": Path(tmp) / "pw.db"})
        watch = StallWatch(system.worker_pool)
        watch.start()
        try:
            system.spawn(intake, name="intake")
            system.spawn(events, name="events")
            assert done.all_done.wait(120)
        finally:
            watch.stop.set()
            watch.join(10)
            system.shutdown(timeout=10)
    # the monitor serves a queue left so within a few WAKE_DELAYs; the bug left it ~1.7 s
    assert watch.longest < 0.5, f"the run queue waited {watch.longest:.2f} s unserved"
