"""Small tools shared by the benchmark adapters: skips, latches, percentiles, RSS, sizes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

WAIT = 120.0
"""Upper bound (seconds) on any single wait in a benchmark; a hang fails the run."""


class Skip(Exception):
    """Raised by an adapter that cannot run a scenario; the message is printed as a note."""


class Latch:
    """A countdown latch: ``wait()`` returns once ``count_down()`` was called ``n`` times."""

    __slots__ = ("_done", "_left", "_lock")

    def __init__(self, n: int) -> None:
        self._left = n
        self._lock = threading.Lock()
        self._done = threading.Event()
        if n <= 0:
            self._done.set()

    def count_down(self) -> None:
        """Count one arrival."""
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._done.set()

    def wait(self, timeout: float = WAIT) -> None:
        """Block until the count reached zero; raise TimeoutError after ``timeout`` s."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"latch still waiting for {self._left} arrivals after {timeout}s")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by the nearest-rank method."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does in one repetition (per mode)."""

    reps: int
    tell: int
    ask: int
    pingpong: int
    spawn: tuple[int, ...]
    restart: int
    persistent: int
    writer_rows: int
    memory: int
    scaling_actors: tuple[int, ...]
    scaling_msgs: int
    workflows: int
    workflow_steps: int
    """Steps per workflow: enough that the timed window (all workflows running at once)
    is tens of milliseconds, long against a thread wake-up."""
    slow_scale: float = 0.05
    """Message counts for process-based peers (Ray, Thespian multiproc) are multiplied by
    this: they are 10-100x slower and would otherwise dominate the run time."""
    peers: tuple[str, ...] = field(default=())
    """Systems left out in this mode (with a note)."""
    million: int = 1_000_000
    """Minions in the spawn / one message each / stop all scenario (a child process)."""
    blocked_seconds: float = 1.0
    """How long the blocked-pool scenarios ask the other minions (see bench/blocked.py)."""
    async_minions: int = 10_000
    """Async minions in the sleep and fan-out scenarios (issue 19's measure)."""
    async_sleep: float = 0.01
    """The one awaited sleep of each async minion in the sleep scenario (seconds)."""
    timers: int = 100_000
    """Timers armed (then cancelled) in the timer_armed scenario (bench/timers.py)."""
    timer_rate: int = 10_000
    """Timer fires per second, all minions together, in the timer_fires scenario."""
    timer_seconds: float = 3.0
    """How long the timer_fires scenario runs."""
    pipeline_events: int = 20_000
    """Events a pipeline feeds to a minion that starts one workflow each (saturated run)."""
    pipeline_paced: float = 2.0
    """Seconds of the paced pipeline-fed workflows run (at ``PACED_RATE`` events/s)."""
    startup_runs: int = 5
    """Fresh interpreters the start-up scenario times (0: skipped, as in ``--smoke``)."""
    thread_cap: int = 10**9
    """Thread-per-actor systems (pykka, dedicated minions) skip larger actor counts in this
    mode: starting 10,000 threads takes them seconds per repetition."""


SMOKE = Sizes(
    reps=1, tell=2_000, ask=200, pingpong=500, spawn=(100,), restart=30, persistent=2_000,
    writer_rows=5_000, memory=1_000, scaling_actors=(1, 10, 100), scaling_msgs=2_000,
    workflows=5, workflow_steps=5, slow_scale=0.1,
    peers=("ray", "ray-async", "xoscar", "thespian-mp", "dbos"), million=2_000,
    blocked_seconds=0.2, async_minions=300, timers=2_000, timer_seconds=0.3,
    pipeline_events=200, pipeline_paced=0.1, startup_runs=0,
)
QUICK = Sizes(
    reps=3, tell=20_000, ask=1_000, pingpong=5_000, spawn=(1_000, 10_000), restart=200,
    persistent=30_000, writer_rows=50_000, memory=1_000,
    scaling_actors=(1, 10, 100, 1_000, 10_000), scaling_msgs=20_000, workflows=20,
    workflow_steps=50, slow_scale=0.05, million=100_000, thread_cap=1_000, timer_seconds=2.0,
    startup_runs=3,
)
FULL = Sizes(
    reps=5, tell=200_000, ask=5_000, pingpong=30_000, spawn=(1_000, 10_000), restart=1_000,
    persistent=200_000, writer_rows=200_000, memory=10_000,
    scaling_actors=(1, 10, 100, 1_000, 10_000), scaling_msgs=100_000, workflows=50,
    workflow_steps=50, slow_scale=0.03, blocked_seconds=2.0,
)
MODES = {"smoke": SMOKE, "quick": QUICK, "full": FULL}


def fan_in(senders: int, send: Callable[[], None], gate: threading.Barrier) -> float:
    """Run ``send`` on ``senders`` named threads that all wait on ``gate`` (a barrier for
    ``senders + 1`` parties), release them together and join them.

    Returns the ``perf_counter()`` time of the release, so the caller times from there.
    """
    threads = [threading.Thread(target=send, name=f"bench-sender-{i}")
               for i in range(senders)]
    for thread in threads:
        thread.start()
    gate.wait()
    t0 = perf_counter()
    for thread in threads:
        thread.join()
    return t0
