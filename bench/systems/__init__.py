"""Adapters for the benchmarked systems, by key."""

from __future__ import annotations

from bench.systems.base import System

ASYNC_KEYS = ("minions-async", "minions-async-loop", "asyncio-gather", "asyncio-queue", "xoscar",
              "ray-async")
"""The async scenarios' systems (issue 19)."""
SYSTEM_KEYS = ("minions", "minions-dedicated", "floor", "pykka", "thespian-simple",
               "thespian-mp", "ray", "sqlite-utils", "dbos", "heapq-timer", *ASYNC_KEYS)


def _async_systems() -> dict[str, type[System]]:
    """The async scenarios' systems (issue 19); each module imports its peer lazily."""
    from bench.systems.asyncio_sys import GatherBaseline, QueueBaseline
    from bench.systems.minions_async import MinionsAsync, MinionsAsyncLoop
    from bench.systems.ray_async import RayAsyncSystem
    from bench.systems.xoscar_sys import XoscarSystem

    return {cls.key: cls for cls in (MinionsAsync, MinionsAsyncLoop, GatherBaseline,
                                     QueueBaseline, XoscarSystem, RayAsyncSystem)}


def make_system(key: str) -> System:
    """Build the adapter for ``key`` (imports its package lazily)."""
    if key == "minions":
        from bench.systems.minions_sys import MinionsSystem

        return MinionsSystem()
    if key == "minions-dedicated":
        from bench.systems.minions_sys import MinionsDedicated

        return MinionsDedicated()
    if key == "sqlite-utils":
        from bench.systems.minions_sys import SqliteUtilsBaseline

        return SqliteUtilsBaseline()
    if key == "floor":
        from bench.systems.floor import FloorSystem as BareFloor

        return BareFloor()
    if key == "pykka":
        from bench.systems.pykka_raw import PykkaSystem

        return PykkaSystem()
    if key == "thespian-simple":
        from bench.systems.thespian_sys import ThespianSystem

        return ThespianSystem("simpleSystemBase")
    if key == "thespian-mp":
        from bench.systems.thespian_sys import ThespianSystem

        return ThespianSystem("multiprocQueueBase")
    if key == "ray":
        from bench.systems.ray_sys import RaySystem

        return RaySystem()
    if key == "dbos":
        from bench.systems.dbos_sys import DbosSystem

        return DbosSystem()
    if key in ASYNC_KEYS:
        return _async_systems()[key]()
    if key == "heapq-timer":
        from bench.timers import FloorSystem

        return FloorSystem()
    raise ValueError(f"unknown system {key!r}; known: {', '.join(SYSTEM_KEYS)}")
