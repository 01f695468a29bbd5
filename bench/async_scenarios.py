"""The async minion scenarios (issue 19), their systems and targets.

Keys start with ``async-`` (``--only async``). Ours is ``minions-async`` (async minions on
the caller's loop); ``minions`` rows are pooled sync minions doing the same work in the same
run, so the targets against them need no other scenario.
"""

from __future__ import annotations

from bench.common import Sizes
from bench.scenarios import P50, P99, Metric, Scenario, Target, scaled

OURS = "minions-async"
SYNC = "minions"
QUEUE = "asyncio-queue"
TOTAL = Metric("total", "total", "s", False)
SPAWN = Metric("spawn", "spawn", "s", False)


def build_async(sizes: Sizes) -> list[Scenario]:
    """The async scenario list for one mode."""
    n, sleep = sizes.async_minions, sizes.async_sleep
    return [
        Scenario("async-sleep", f"{n:,} async minions, one awaited {sleep * 1000:.0f} ms "
                 "sleep each", (OURS, "asyncio-gather", QUEUE),
                 (TOTAL, SPAWN, Metric("after", "after the spawns", "s", False)),
                 lambda s, z, _t: s.sleep_each(z.async_minions, z.async_sleep), us=OURS,
                 note="total: from the first spawn until every sleep ended; after the spawns: "
                      "from the first message (gather: the tasks exist)"),
        Scenario("async-pingpong", "ping-pong between two async minions on one loop",
                 (OURS, "minions-async-loop", SYNC, QUEUE, "xoscar", "ray-async"),
                 (Metric("rate", "round trips", "rt/s", True),),
                 lambda s, z, _t: s.pingpong(scaled(s, z.pingpong, z)), us=OURS,
                 note="minions and the queue baseline by tells; xoscar and Ray by awaited calls"),
        Scenario("async-fanout", f"fan-out: ask each of {n:,} async minions once",
                 (OURS, "minions-async-loop", SYNC, QUEUE, "xoscar"),
                 (Metric("rate", "answered asks", "msg/s", True), SPAWN),
                 lambda s, z, _t: s.fanout(z.async_minions), us=OURS,
                 reps=min(sizes.reps, 3),
                 note="spawn: until all run on_start; rate: all asks sent, then all awaited"),
        Scenario("async-ask", "awaitable ask round trip from an asyncio caller (one CPU)",
                 (OURS, SYNC, QUEUE, "xoscar", "ray-async"), (P50, P99),
                 lambda s, z, _t: s.ask(scaled(s, z.ask, z)), one_cpu=True, us=OURS,
                 note="the minions row is a blocking sync ask from a thread"),
        Scenario("async-memory", f"memory per idle async minion ({sizes.memory:,}, RSS delta)",
                 (OURS, QUEUE), (Metric("kib", "RSS per actor", "KiB", False),),
                 lambda s, z, _t: s.memory(z.memory), us=OURS),
    ]


def async_targets(sizes: Sizes) -> list[Target]:
    """Issue 19's goals."""
    n = sizes.async_minions
    return [
        Target(f"{n:,} async sleeps within 2x of asyncio.gather", "async-sleep", "total", 0.5,
               "asyncio-gather"),
        Target("async ping-pong >= 2x pooled sync minions", "async-pingpong", "rate", 2.0,
               SYNC),
        Target("async ping-pong >= 1x task+Queue baseline", "async-pingpong", "rate", 1.0,
               QUEUE),
        Target(f"async fan-out {n:,} >= pooled sync minions", "async-fanout", "rate", 1.0,
               SYNC),
        Target(f"async fan-out {n:,} >= 1x task+Queue baseline", "async-fanout", "rate", 1.0,
               QUEUE),
        Target("ask_async p50 <= sync ask's", "async-ask", "p50", 1.0, SYNC),
        Target("ask_async p50 >= 2x xoscar call", "async-ask", "p50", 2.0, "xoscar"),
        Target("ask_async p50 >= 10x Ray async actor call", "async-ask", "p50", 10.0,
               "ray-async"),
        Target("memory per async minion <= task+Queue's", "async-memory", "kib", 1.0, QUEUE),
    ]
