"""Adapters for the benchmarked systems, by key."""

from __future__ import annotations

from bench.systems.base import System

SYSTEM_KEYS = ("minions", "minions-dedicated", "pykka", "thespian-simple", "thespian-mp", "ray",
               "sqlite-utils", "dbos", "heapq-timer")


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
    if key == "heapq-timer":
        from bench.timers import FloorSystem

        return FloorSystem()
    raise ValueError(f"unknown system {key!r}; known: {', '.join(SYSTEM_KEYS)}")
