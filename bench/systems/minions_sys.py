"""minions_actors: the system under test.

Every repetition starts a fresh ``ActorSystem`` (no metrics server, no signal handlers, no
file or stderr logs; runtime records go to one loguru sink on ``/dev/null`` so formatting
costs are paid as in production) and shuts it down again.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

from bench.common import WAIT, Skip, percentile
from bench.systems.base import Metrics, System
from bench.systems.threaded import GET, CounterLogic, PingLogic, ThreadedSystem
from minions_actors import ActorSystem, Minion, OneForOne


class MinionCounter(CounterLogic, Minion):
    """:class:`CounterLogic` as a minion."""


class MinionPing(PingLogic, Minion):
    """:class:`PingLogic` as a minion."""


class Crashy(Minion):
    """Raises on ``"boom"`` (stamping the time first); answers ``"ping"`` with the time."""

    def __init__(self, stamps: list[float]) -> None:
        super().__init__()
        self.stamps = stamps

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            self.stamps.append(perf_counter())
            raise RuntimeError("boom (benchmark crash)")
        return perf_counter()


class PersistentCounter(Minion):
    """A counter whose state is snapshotted after every message."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if message == GET:
            return self.count
        self.count += 1
        return None

    def snapshot(self) -> Any:
        return {"count": self.count}

    def restore(self, state: Any) -> None:
        self.count = state["count"]


def _bench_store() -> Any:
    """``bench/bench_store.py`` (the snapshot writer benchmark), or Skip when absent."""
    if importlib.util.find_spec("bench.bench_store") is None:
        raise Skip("bench/bench_store.py does not exist yet")
    from bench import bench_store

    return bench_store


def writer_rows(n: int) -> list[tuple[str, str, str, int, float]]:
    """The rows bench_store writes (its own generator when it has one)."""
    store = _bench_store()
    make = getattr(store, "_rows", None)
    if make is not None:
        return make(n)  # type: ignore[no-any-return]
    import json

    now = time.time()
    rows = []
    for i in range(n):
        text = json.dumps({"count": i, "name": f"m{i}"})
        rows.append((f"user/m{i}", "Counter", text, len(text), now))
    return rows


def options(null: Any, execution: str = "pooled", state_store: Any = None) -> dict[str, Any]:
    """The ``ActorSystem.start`` (and ``start_async``) options every benchmark uses: no
    metrics server, no signal handlers, records to ``null``, restarts never exhausted."""
    return {
        "state_store": state_store, "metrics_port": None, "file_logs": False,
        "stderr_logs": False, "handle_signals": False,
        "strategy": OneForOne(max_restarts=10**9, within=1),
        "log_sinks": [(null, {"level": "INFO"})], "execution": execution,
    }


class MinionsSystem(ThreadedSystem):
    """minions_actors ``ActorSystem`` with Gru supervising every benchmark minion (pooled:
    the default execution mode)."""

    key = "minions"
    label = "minions_actors"
    counter_cls = MinionCounter
    ping_cls = MinionPing
    execution = "pooled"

    def __init__(self) -> None:
        self._system: ActorSystem | None = None
        self._null = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the adapter

    def close(self) -> None:
        self._null.close()

    def start_system(self, state_store: Any = None) -> ActorSystem:
        """``ActorSystem.start`` as the benchmarks use it (restart intensity never trips)."""
        return ActorSystem.start(**options(self._null, self.execution, state_store))

    @contextmanager
    def running(self, state_store: Any = None) -> Iterator[None]:
        system = self.start_system(state_store)
        self._system = system
        try:
            yield
        finally:
            self._system = None
            system.shutdown(timeout=WAIT)

    def spawn(self, cls: Any, *args: Any) -> Any:
        assert self._system is not None
        return self._system.spawn(cls, *args)

    def stop_all(self, refs: list[Any]) -> None:
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            if not ref.actor_stopped.wait(WAIT):
                raise TimeoutError(f"{ref!r} did not stop")

    def restart(self, n: int) -> Metrics:
        stamps: list[float] = []
        samples = []
        with self.running():
            ref = self.spawn(Crashy, stamps)
            ref.ask("ping", timeout=WAIT)
            for _ in range(n):
                ref.tell("boom")
                served = ref.ask("ping", timeout=WAIT)
                samples.append(served - stamps[-1])
        return {"p50": percentile(samples, 50) * 1e6, "p99": percentile(samples, 99) * 1e6}

    def persistent_tell(self, n: int, tmp: Path) -> Metrics:
        from minions_actors.persistence import SQLiteStateStore

        store = SQLiteStateStore(tmp / "persistent-tell.db")
        with self.running(state_store=store):
            assert self._system is not None
            system = self._system
            ref = self.spawn(PersistentCounter)
            ref.ask(GET, timeout=WAIT)
            tell = ref.tell
            t0 = perf_counter()
            for i in range(n):
                tell(i)
            got = ref.ask(GET, timeout=WAIT)
            assert system.flush(timeout=WAIT)
            elapsed = perf_counter() - t0
            assert got == n, (got, n)
        return {"rate": n / elapsed}

    def writer(self, rows: int, tmp: Path) -> Metrics:
        store = _bench_store()
        rate, _save_us = store.writer(tmp / "writer.db", writer_rows(rows))
        return {"rate": float(rate)}

    def workflow(self, workflows: int, steps: int, tmp: Path,
                 durability: str = "batched") -> Metrics:
        import minions_actors

        if not (hasattr(minions_actors, "Workflow") and hasattr(minions_actors, "StartWorkflow")):
            raise Skip("minions_actors has no workflows yet (no Workflow/StartWorkflow)")
        from minions_actors import StartWorkflow, Workflow
        from minions_actors.persistence import SQLiteStateStore

        names = [f"s{i}" for i in range(steps)]

        def step(self: Any, ctx: dict[str, Any]) -> None:
            ctx["n"] = ctx.get("n", 0) + 1

        attrs: dict[str, Any] = {name: step for name in names}
        attrs["flow"] = Workflow(*names)
        cls = type("BenchWorkflowMinion", (Minion,), attrs)
        store = SQLiteStateStore(tmp / f"workflow-{time.monotonic_ns()}.db",
                                 durability=durability)  # type: ignore[arg-type]
        with self.running(state_store=store):
            assert self._system is not None
            system = self._system
            ref = self.spawn(cls)
            _run_workflows(system, ref, StartWorkflow, ["warm-up"], steps)  # as DBOS's
            ids = [f"wf-{i}" for i in range(workflows)]
            t0 = perf_counter()
            _run_workflows(system, ref, StartWorkflow, ids, steps)
            elapsed = perf_counter() - t0
        return {"rate": workflows * steps / elapsed}

    def million(self, n: int) -> Metrics:
        from bench.millionchild import measure

        return measure(n)


class MinionsDedicated(MinionsSystem):
    """The same, every minion on a thread of its own (``execution="dedicated"``)."""

    key = "minions-dedicated"
    label = "minions_actors, dedicated threads"
    execution = "dedicated"

    def million(self, n: int) -> Metrics:
        raise Skip("a million threads do not fit in one process (pooled minions only)")


class SqliteUtilsBaseline(System):
    """sqlite-utils ``insert_all`` in one WAL transaction: the snapshot writer's reference."""

    key = "sqlite-utils"
    label = "sqlite-utils insert_all"

    def check(self) -> None:
        _bench_store()

    def writer(self, rows: int, tmp: Path) -> Metrics:
        store = _bench_store()
        return {"rate": float(store.baseline(tmp / "baseline.db", writer_rows(rows)))}


def _run_workflows(system: Any, ref: Any, start: Any, ids: list[str], steps: int) -> None:
    """Start the workflows ``ids`` together and wait until all have completed. Each start is
    asked (answered once durable, like ``DBOS.start_workflow``'s return) but the asks are
    all sent before any answer is awaited: the workflows run concurrently from the start."""
    futures = [ref.ask(start("flow", wid, {"n": 0}), block=False) for wid in ids]
    for future in futures:
        future.get(timeout=WAIT)
    for wid in ids:
        info = system.wait_workflow(wid, timeout=WAIT)
        if info.status != "completed" or info.context["n"] != steps:
            raise RuntimeError(f"workflow {wid} ended {info.status}: {info.error}")
