"""Ray rows of ``python -m bench.placement``: a Ray-placed minion vs raw Ray actor calls, on
one local Ray (``ray.init(num_cpus=2, include_dashboard=False)``), side by side.

The raw calls carry the same message as the minion's tells and asks (a method call with
one argument): the anchor is a raw Ray actor call doing the same job."""

from __future__ import annotations

import os
from time import perf_counter
from typing import Any

from bench.common import percentile
from minions_actors import ActorSystem, Minion, Ray


class Count(Minion):
    """The Ray-placed minion: counts tells, answers asks."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.count
        self.count += 1
        return None


class RawCount:
    """The raw Ray actor: the same work as a method."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, _message: Any) -> None:
        self.count += 1

    def get(self, _message: Any) -> int:
        return self.count


def _raw_rates(ray: Any, n_tells: int, n_asks: int) -> tuple[float, float]:
    """Raw Ray from one caller: tell rate (fire n calls, wait for all) and ask p50 (us)."""
    actor = ray.remote(num_cpus=0)(RawCount).remote()
    ray.get(actor.get.remote("get"))
    t0 = perf_counter()
    refs = [actor.add.remote(i) for i in range(n_tells)]
    ray.get(refs)
    rate = n_tells / (perf_counter() - t0)
    times = []
    for _ in range(n_asks):
        t1 = perf_counter()
        ray.get(actor.get.remote("get"))  # carries the same message as the ask
        times.append(perf_counter() - t1)
    ray.kill(actor)
    return rate, percentile(times, 50) * 1e6


def _placed_rates(system: ActorSystem, n_tells: int, n_asks: int, rep: int) -> tuple[float, float]:
    ref = system.spawn(Count, name=f"count-{rep}", placement=Ray(num_cpus=0))
    ref.ask("get", timeout=60)
    t0 = perf_counter()
    for i in range(n_tells):
        ref.tell(i)
    assert ref.ask("get", timeout=120) == n_tells  # every tell handled, then the reply
    rate = n_tells / (perf_counter() - t0)
    times = []
    for _ in range(n_asks):
        t1 = perf_counter()
        ref.ask("get", timeout=60)
        times.append(perf_counter() - t1)
    ref.stop()
    return rate, percentile(times, 50) * 1e6


def ray_rows(quick: bool) -> list[tuple[str, float, str]]:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    n_tells, n_asks = (2_000, 200) if quick else (20_000, 1_000)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    system = ActorSystem.start(state_store=None, metrics_port=None, handle_signals=False,
                               file_logs=False, stderr_logs=False)
    try:
        raw, placed = [], []
        for rep in range(3):  # alternate; keep the best of each (a shared machine)
            raw.append(_raw_rates(ray, n_tells, n_asks))
            placed.append(_placed_rates(system, n_tells, n_asks, rep))
    finally:
        system.shutdown(timeout=20)
        ray.shutdown()
    raw_rate, raw_ask = max(r[0] for r in raw), min(r[1] for r in raw)
    our_rate, our_ask = max(p[0] for p in placed), min(p[1] for p in placed)
    tell_ratio, ask_ratio = our_rate / raw_rate, our_ask / raw_ask
    return [
        ("raw Ray actor calls, one caller (msg/s)", raw_rate, ""),
        ("tells to a Ray-placed minion (msg/s)", our_rate, ""),
        ("placed / raw tell rate (>= 10)", tell_ratio, "met" if tell_ratio >= 10 else "MISSED"),
        ("raw Ray actor call round trip p50 (us)", raw_ask, ""),
        ("ask to a Ray-placed minion p50 (us)", our_ask, ""),
        ("placed / raw round trip (<= 1.2)", ask_ratio, "met" if ask_ratio <= 1.2 else "MISSED"),
    ]
