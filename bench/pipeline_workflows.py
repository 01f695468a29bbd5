"""Pipeline-fed workflows: a pipeline produces events, its subscriber starts one durable
two-step workflow per event (the ``minions`` quickstart's job, examples/from_minions.py).

* saturation: ``n`` events as fast as the pipeline may produce them (batches of ``BATCH``);
  throughput (events/s, first produce to last workflow ended) and end-to-end latency (an
  event's produce to its workflow's last step);
* paced: ``rate`` events per second, latency from the moment each event was due.

Run alone: ``python -m bench.pipeline_workflows [events] [rate]`` (PYTHONPATH picks the tree).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from time import perf_counter
from typing import Any

from minions_actors import ActorSystem, Batch, Minion, Pipeline, Workflow

BATCH = int(os.environ.get("PW_BATCH", "100"))
PACED_RATE = 500
WAIT = 300.0


class _Done:
    """Latencies of ended workflows; ``all_done`` is set at the expected count."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        self.last = 0.0
        self.started = self.peak = 0

    def start(self) -> None:
        with self.lock:
            self.started += 1
            self.peak = max(self.peak, self.started - len(self.latencies))

    def add(self, due: float) -> None:
        now = perf_counter()
        with self.lock:
            self.latencies.append(now - due)
            self.last = now
            if len(self.latencies) >= self.expected:
                self.all_done.set()


def _classes(n: int, rate: float | None, done: _Done, is_async: bool) -> tuple[type, type]:
    class Events(Pipeline):
        subscribers = ["intake"]
        poll_interval = 0.0005

        def open(self, position: Any) -> None:
            self.seq = position or 0
            self.t0 = perf_counter()

        def produce(self) -> Batch | None:
            if self.seq >= n:
                return None
            if rate is None:
                count, now = min(BATCH, n - self.seq), perf_counter()
                events = [(self.seq + i, now) for i in range(count)]
            else:  # the events due by now, each stamped with the moment it was due; a
                # source blocks briefly for the next one (as a socket read would)
                wait = self.t0 + self.seq / rate - perf_counter()
                if wait > 0:
                    time.sleep(min(wait, 0.005))
                due = min(n, int((perf_counter() - self.t0) * rate) + 1)
                events = [(i, self.t0 + i / rate) for i in range(self.seq, due)]
                if not events:
                    return None
            self.seq += len(events)
            return Batch(events, self.seq)

    class Intake(Minion):
        flow = Workflow("record", "report")
        if "PW_LIMIT" in os.environ:
            max_workflows_in_flight = int(os.environ["PW_LIMIT"])

        def on_receive(self, event: Any) -> None:
            seq, due = event
            done.start()
            self.start_workflow("flow", f"e{seq}", {"seq": seq, "due": due})

        def record(self, ctx: dict[str, Any]) -> None:
            ctx["seen"] = True

        def report(self, ctx: dict[str, Any]) -> None:
            done.add(ctx["due"])

    class AsyncIntake(Intake):  # the quickstart's subscriber: an async minion
        async def on_receive(self, event: Any) -> None:  # type: ignore[override]
            seq, due = event
            done.start()
            self.start_workflow("flow", f"e{seq}", {"seq": seq, "due": due})

    return Events, AsyncIntake if is_async else Intake


def run(n: int, rate: float | None, tmp: Path, is_async: bool = False) -> dict[str, float]:
    """One run: ``p50``/``p99`` end-to-end in microseconds and ``rate`` in events/s."""
    done = _Done(n)
    events, intake = _classes(n, rate, done, is_async)
    system = ActorSystem.start(state_store=tmp / f"pw-{time.monotonic_ns()}.db",
                               metrics_port=None, file_logs=False, stderr_logs=False,
                               handle_signals=False)
    try:
        system.spawn(intake, name="intake")
        t0, cpu0 = perf_counter(), time.process_time()
        system.spawn(events, name="events")
        if not done.all_done.wait(WAIT):
            raise TimeoutError(f"{len(done.latencies)} of {n} workflows ended in {WAIT}s")
        elapsed, cpu = done.last - t0, time.process_time() - cpu0
    finally:
        system.shutdown()
    lat = sorted(done.latencies)
    return {"p50": lat[len(lat) // 2] * 1e6, "p99": lat[int(len(lat) * 0.99)] * 1e6,
            "rate": n / elapsed, "cpu_us": cpu / n * 1e6,
            "peak": float(done.peak)}


if __name__ == "__main__":
    events_n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    paced = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    aio = "async" in sys.argv[3:]
    with tempfile.TemporaryDirectory() as d:
        got = run(events_n, paced, Path(d), aio)
    print(f"events={events_n} rate={paced or 'saturated'} async={aio}: "
          f"p50 {got['p50'] / 1000:.2f} ms, "
          f"p99 {got['p99'] / 1000:.2f} ms, {got['rate']:,.0f} events/s, "
          f"{got['cpu_us']:.0f} us CPU per event, peak {got['peak']:.0f} in flight")
