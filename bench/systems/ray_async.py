"""Ray async actors (``async def`` methods), local, awaited from an asyncio caller.

Ray is started as in ``ray_sys.py`` (``ray.init(num_cpus=2, include_dashboard=False)``, one
runtime for both Ray adapters; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before the
first ``import ray``). It is started in :meth:`RayAsyncSystem.check`, before any repetition,
so the pinned ask repetitions do not pin Ray's own processes. Each actor is a worker
process: ping-pong and ask only.
"""

from __future__ import annotations

from functools import cache
from time import perf_counter
from typing import Any

from bench.common import WAIT, Skip, percentile
from bench.systems.asyncloops import run
from bench.systems.base import Metrics
from bench.systems.ray_sys import RaySystem


@cache
def _classes() -> tuple[Any, Any]:
    """The Ray async actor classes (defined lazily: ``ray`` is an optional import)."""
    import ray

    @ray.remote(num_cpus=0)
    class RayAsyncCounter:
        def __init__(self) -> None:
            self.count = 0

        async def get(self) -> int:
            return self.count

    @ray.remote(num_cpus=0)
    class RayAsyncPing:
        async def ping(self) -> str:
            return "pong"

        async def run(self, peer: Any, n: int) -> int:
            for _ in range(n):
                await peer.ping.remote()
            return n

    return RayAsyncCounter, RayAsyncPing


class RayAsyncSystem(RaySystem):
    """Ray async actors (one worker process per actor, an event loop in each)."""

    key = "ray-async"
    label = "ray async actors"

    def check(self) -> None:
        super().check()
        self._start()

    def ask(self, n: int) -> Metrics:
        ray = self._ray()
        counter_cls, _ = _classes()
        actor = counter_cls.remote()
        try:
            return run(self._ask(actor, n))
        finally:
            ray.kill(actor)

    async def _ask(self, actor: Any, n: int) -> Metrics:
        for _ in range(min(50, n)):
            await actor.get.remote()
        samples = []
        for _ in range(n):
            t0 = perf_counter()
            await actor.get.remote()
            samples.append(perf_counter() - t0)
        return {"p50": percentile(samples, 50) * 1e6, "p99": percentile(samples, 99) * 1e6}

    def pingpong(self, n: int) -> Metrics:
        ray = self._ray()
        _, ping_cls = _classes()
        a, b = ping_cls.remote(), ping_cls.remote()
        try:
            ray.get(a.run.remote(b, 10), timeout=WAIT)
            t0 = perf_counter()
            ray.get(a.run.remote(b, n), timeout=WAIT)
            elapsed = perf_counter() - t0
        finally:
            ray.kill(a)
            ray.kill(b)
        return {"rate": n / elapsed}

    def sleep_each(self, n: int, seconds: float) -> Metrics:
        raise Skip(f"ray runs one worker process per actor; {n:,} would not fit")

    def fanout(self, n: int) -> Metrics:
        raise Skip(f"ray runs one worker process per actor; {n:,} would not fit")
