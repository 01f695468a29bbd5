"""Ray actors, local: ``ray.init(num_cpus=2, include_dashboard=False)``.

Ray is optional: without it every scenario skips with a note. The runtime is started on
first use and shut down by :meth:`RaySystem.close` (the suite calls it at the end, also on
errors). Actors are created per repetition and killed after it. Each Ray actor is a worker
process, so spawn/memory scenarios are not run and scaling stops at ten actors.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import threading
from functools import cache
from time import perf_counter
from typing import Any

from bench.common import WAIT, Skip, fan_in, percentile
from bench.systems.base import Metrics, System


@cache
def _classes() -> tuple[Any, Any]:
    """The Ray actor classes (defined lazily: ``ray`` is an optional import)."""
    import ray

    @ray.remote(num_cpus=0)
    class RayCounter:
        def __init__(self) -> None:
            self.count = 0

        def add(self, _i: int) -> None:
            self.count += 1

        def get(self) -> int:
            return self.count

    @ray.remote(num_cpus=0)
    class RayPing:
        def ping(self) -> str:
            return "pong"

        def run(self, peer: Any, n: int) -> int:
            for _ in range(n):
                ray.get(peer.ping.remote())
            return n

    return RayCounter, RayPing


class RaySystem(System):
    """Ray local actors (one worker process per actor)."""

    key = "ray"
    label = "ray"
    slow = True
    max_actors = 10

    def __init__(self) -> None:
        self._started = False

    def check(self) -> None:
        if importlib.util.find_spec("ray") is None:
            raise Skip("ray is not installed (pip install ray); Ray peers skipped")

    def _ray(self) -> Any:
        self.check()
        return self._start()

    def _start(self) -> Any:
        """Start the local Ray runtime once (shared with the ray-async adapter)."""
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before the import
        import ray

        if not self._started:
            if not ray.is_initialized():  # the ray-async adapter shares this runtime
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
            self._started = True
        return ray

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _kill(self, actors: list[Any]) -> None:
        ray = self._ray()
        for actor in actors:
            ray.kill(actor)

    def tell(self, n: int) -> Metrics:
        ray = self._ray()
        counter_cls, _ = _classes()
        actor = counter_cls.remote()
        try:
            ray.get(actor.get.remote(), timeout=WAIT)
            add = actor.add.remote
            t0 = perf_counter()
            for i in range(n):
                add(i)
            got = ray.get(actor.get.remote(), timeout=WAIT)
            elapsed = perf_counter() - t0
            assert got == n, (got, n)
        finally:
            self._kill([actor])
        return {"rate": n / elapsed}

    def tell_multi(self, n: int, senders: int) -> Metrics:
        ray = self._ray()
        counter_cls, _ = _classes()
        actor = counter_cls.remote()
        per = n // senders
        try:
            ray.get(actor.get.remote(), timeout=WAIT)
            gate = threading.Barrier(senders + 1)

            def send() -> None:
                add = actor.add.remote
                gate.wait()
                for i in range(per):
                    add(i)

            t0 = fan_in(senders, send, gate)
            got = ray.get(actor.get.remote(), timeout=WAIT)
            elapsed = perf_counter() - t0
            assert got == per * senders, (got, per * senders)
        finally:
            self._kill([actor])
        return {"rate": per * senders / elapsed}

    def ask(self, n: int) -> Metrics:
        ray = self._ray()
        counter_cls, _ = _classes()
        actor = counter_cls.remote()
        samples = []
        try:
            for _ in range(min(50, n)):
                ray.get(actor.get.remote(), timeout=WAIT)
            for _ in range(n):
                t0 = perf_counter()
                ray.get(actor.get.remote(), timeout=WAIT)
                samples.append(perf_counter() - t0)
        finally:
            self._kill([actor])
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
            self._kill([a, b])
        return {"rate": n / elapsed}

    def spawn_stop(self, n: int) -> Metrics:
        raise Skip(f"ray runs one worker process per actor; {n:,} would not fit")

    def memory(self, n: int) -> Metrics:
        raise Skip("ray runs one worker process per actor (tens of MB each)")

    def restart(self, n: int) -> Metrics:
        raise Skip("ray restarts actor processes (max_restarts), not comparable; minions only")

    def scaling(self, actors: int, n: int) -> Metrics:
        if actors > self.max_actors:
            raise Skip(f"ray: {actors:,} actors would be {actors:,} worker processes")
        ray = self._ray()
        counter_cls, _ = _classes()
        pool = [counter_cls.remote() for _ in range(actors)]
        try:
            ray.get([a.get.remote() for a in pool], timeout=WAIT)
            adds = [a.add.remote for a in pool]
            t0 = perf_counter()
            for add, i in zip(itertools.cycle(adds), range(n)):
                add(i)
            total = sum(ray.get([a.get.remote() for a in pool], timeout=WAIT))
            elapsed = perf_counter() - t0
            assert total == n, (total, n)
        finally:
            self._kill(pool)
        return {"rate": (n + actors) / elapsed}
