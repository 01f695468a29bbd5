"""The scenarios, their metrics, the systems each compares, and the targets.

A scenario's ``run`` does one repetition for one system and returns its metrics; the runner
(``bench/run.py``) alternates systems within each repetition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import blocked, pipeline_workflows, startup, timers
from bench.common import Sizes
from bench.systems.base import Metrics, System

ACTOR_SYSTEMS = ("minions", "minions-dedicated", "floor", "pykka", "thespian-simple",
                 "thespian-mp", "ray")
THREAD_PER_ACTOR = ("minions-dedicated", "pykka")
US = "minions"
PER_ACTOR = 20
"""Messages per actor in the scaling scenarios above a hundred actors (issue 12's measure)."""


@dataclass(frozen=True)
class Metric:
    """One number a scenario reports."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass(frozen=True)
class Scenario:
    """One benchmark: which systems run it and how one repetition runs."""

    key: str
    title: str
    systems: tuple[str, ...]
    metrics: tuple[Metric, ...]
    run: Callable[[System, Sizes, Path], Metrics]
    note: str = ""
    reps: int | None = None
    """Repetitions when not the mode's (the slowest scenarios run fewer)."""
    one_cpu: bool = False
    """Run each repetition with the process pinned to one CPU (threads and processes the
    systems start during it inherit it): see the ask scenarios."""
    us: str = "minions"
    """The system the others are compared with (the async scenarios: async minions)."""


@dataclass(frozen=True)
class Target:
    """A goal for minions_actors: a ratio to a peer (``peer`` set) or an absolute bound."""

    label: str
    scenario: str
    metric: str
    threshold: float
    peer: str | None = None
    """With a peer: minions' advantage (ours/peer, or peer/ours when lower is better) must be
    >= threshold. Without: the value must beat ``threshold`` in the metric's direction."""
    peer_scenario: str | None = None
    """The peer's figure comes from this scenario (default: the same one)."""


RATE = Metric("rate", "throughput", "msg/s", True)
P50 = Metric("p50", "p50", "us", False)
P99 = Metric("p99", "p99", "us", False)
WORST = Metric("worst", "worst ask", "us", False)
THREADS = Metric("threads", "peak threads", "", False)
BLOCKED = (("sleep", 8), ("sleep", 40), ("socket", 8), ("socket", 40), ("lock", 8),
           ("lock", 40), ("spin", 8))
"""The blocked-pool scenarios: how handlers block, how many (bench/blocked.py)."""


def scaled(system: System, n: int, sizes: Sizes) -> int:
    """Message count for ``system``: process-based peers get ``sizes.slow_scale`` of it."""
    return max(100, int(n * sizes.slow_scale)) if system.slow else n


def upto(actors: int, sizes: Sizes) -> tuple[str, ...]:
    """The actor systems that run a scenario with ``actors`` actors in this mode."""
    if actors <= sizes.thread_cap:
        return ACTOR_SYSTEMS
    return tuple(s for s in ACTOR_SYSTEMS if s not in THREAD_PER_ACTOR)


def build(sizes: Sizes) -> list[Scenario]:
    """The scenario list for one mode."""
    out = [
        Scenario("tell_1to1", "tell 1->1", ACTOR_SYSTEMS, (RATE,),
                 lambda s, z, _t: s.tell(scaled(s, z.tell, z))),
        Scenario("tell_4to1", "tell 4->1 (4 sender threads)", ACTOR_SYSTEMS, (RATE,),
                 lambda s, z, _t: s.tell_multi(scaled(s, z.tell, z), 4)),
        # On this VM a round trip is 13-17 us or 73-90 us for every system, depending on
        # whether the kernel wakes the actor's thread on the other, idle vCPU (a halt exit
        # each way); which one a run gets changes with the load, so the ratio of two
        # systems measured one after the other flipped between runs. On one CPU every
        # system pays the same hand-off; the free-placement row shows the other case.
        Scenario("ask", "ask round trip (one CPU)", ACTOR_SYSTEMS, (P50, P99),
                 lambda s, z, _t: s.ask(scaled(s, z.ask, z)), one_cpu=True,
                 note="process pinned to one CPU during the repetition"),
        Scenario("ask_free", "ask round trip (threads placed by the kernel)", ACTOR_SYSTEMS,
                 (P50, P99), lambda s, z, _t: s.ask(scaled(s, z.ask, z)),
                 note="bimodal here (13-17 us or 73-90 us) depending on vCPU placement"),
        Scenario("pingpong", "ping-pong between two actors", ACTOR_SYSTEMS,
                 (Metric("rate", "round trips", "rt/s", True),),
                 lambda s, z, _t: s.pingpong(scaled(s, z.pingpong, z))),
    ]
    for n in sizes.spawn:
        out.append(Scenario(
            f"spawn_stop_{n}", f"spawn and stop {n:,}", upto(n, sizes),
            (Metric("spawn", "spawn (all started)", "s", False),
             Metric("stop", "stop all", "s", False)),
            lambda s, z, _t, n=n: s.spawn_stop(n),  # type: ignore[misc]
        ))
    out += [
        Scenario("memory", f"memory per idle actor ({sizes.memory:,} actors, RSS delta)",
                 ACTOR_SYSTEMS, (Metric("kib", "RSS per actor", "KiB", False),),
                 lambda s, z, _t: s.memory(z.memory)),
        Scenario("restart", "restart latency, crash -> serving again", ACTOR_SYSTEMS,
                 (P50, P99), lambda s, z, _t: s.restart(z.restart),
                 note="pykka, Thespian and Ray have no in-process supervisor restart"),
        Scenario("persistent_tell", "persistent minion tell (SQLite, until flushed)",
                 ("minions", "pykka"), (RATE,),
                 lambda s, z, t: s.persistent_tell(z.persistent, t),
                 note="pykka row: its plain non-persistent tell"),
        Scenario("snapshot_writer", "snapshot writer (bench/bench_store.py)",
                 ("minions", "sqlite-utils"), (Metric("rate", "rows", "rows/s", True),),
                 lambda s, z, t: s.writer(z.writer_rows, t)),
        Scenario("workflow", "checkpointed workflow steps",
                 ("minions", "dbos"), (Metric("rate", "steps", "steps/s", True),),
                 lambda s, z, t: s.workflow(z.workflows, z.workflow_steps, t),
                 note=f"{sizes.workflows} concurrent workflows x {sizes.workflow_steps} steps"),
        Scenario("workflow_sync", "checkpointed workflow steps, sync durability",
                 ("minions",), (Metric("rate", "steps", "steps/s", True),),
                 lambda s, z, t: s.workflow(z.workflows, z.workflow_steps, t, durability="sync"),
                 note="every checkpoint committed with synchronous=FULL before the next step"),
        Scenario("pipeline_workflows",
                 f"pipeline-fed workflows, {sizes.pipeline_events:,} events at saturation",
                 ("minions",), (P50, P99, Metric("rate", "events", "events/s", True),
                                Metric("peak", "peak in flight", "", False)),
                 lambda _s, z, t: pipeline_workflows.run(z.pipeline_events, None, t),
                 note="a pipeline, batches of 100; one two-step workflow per event; latency "
                      "from produce() to the workflow's last step"),
        Scenario("pipeline_workflows_paced",
                 f"pipeline-fed workflows, {pipeline_workflows.PACED_RATE} events/s",
                 ("minions",), (P50, P99),
                 lambda _s, z, t: pipeline_workflows.run(
                     int(pipeline_workflows.PACED_RATE * z.pipeline_paced),
                     pipeline_workflows.PACED_RATE, t),
                 note="latency from the moment each event was due"),
        Scenario("startup", "start-up: import, ActorSystem.start() with a store, shutdown",
                 ("minions",), (Metric("over", "over `python -c pass`", "us", False),
                                Metric("rss_mib", "peak RSS", "MiB", False)),
                 lambda _s, z, _t: startup.measure(z.startup_runs), reps=1,
                 note=f"medians of {sizes.startup_runs} fresh interpreters; fails if numpy "
                      "or pandas was imported"),
    ]
    for actors in sizes.scaling_actors:
        # Beyond a hundred actors, the measure: PER_ACTOR messages each (10,000
        # actors, 200,000 messages), the same count for every system in the run. One each
        # made every message a turn of its own and the run mostly spawn-bound latency.
        msgs = sizes.scaling_msgs if actors <= 100 else actors * PER_ACTOR
        out.append(Scenario(
            f"scaling_{actors}", f"tell round-robin over {actors:,} active actors",
            upto(actors, sizes), (RATE,),
            lambda s, z, _t, a=actors, m=msgs: s.scaling(a, scaled(s, m, z)),  # type: ignore[misc]
            note=f"{msgs:,} messages per repetition",
            reps=min(sizes.reps, 3) if actors >= 10_000 else None,
        ))
    out += [Scenario(
        f"blocked_{kind}_{n}" if n else "blocked_none",
        f"asks to other minions, {n} pooled handlers blocked in {kind}" if n
        else "asks to other minions, no handler blocked", ("minions",),
        (WORST, Metric("rate", "asks", "asks/s", True), THREADS),
        lambda s, z, _t, k=kind, n=n: blocked.run(s, z, k, n),  # type: ignore[misc]
        note=f"{blocked.OTHERS} other minions asked round-robin for {sizes.blocked_seconds} s "
             "from the moment the blockers get their message",
    ) for kind, n in (("sleep", 0), *BLOCKED)]
    out += [
        Scenario("timer_armed", f"{sizes.timers:,} armed timers: arm, cancel, memory",
                 ("minions", "heapq-timer"),
                 (Metric("arm", "arm one", "us", False),
                  Metric("cancel", "cancel one", "us", False),
                  Metric("cycle", "arm + cancel", "us", False),
                  Metric("bytes", "memory per armed timer", "B", False)),
                 lambda s, z, _t: timers.armed(s, z),
                 note="armed in a minion's handler; the floor: bare heapq + Condition"),
        Scenario("timer_fires", f"{sizes.timer_rate:,} timer fires per second: lateness",
                 ("minions", "heapq-timer"),
                 (Metric("p50", "p50 lateness", "us", False),
                  Metric("p99", "p99 lateness", "us", False),
                  Metric("rate", "fires", "fires/s", True)),
                 lambda s, z, _t: timers.fires(s, z),
                 note=f"{timers.FIRE_MINIONS} minions, a fixed-rate timer each, for "
                      f"{sizes.timer_seconds} s; the floor's: its callback on its thread"),
    ]
    out.append(Scenario(
        "million", f"{sizes.million:,} minions: spawn, one message each, stop all",
        ("minions", "floor"),
        (Metric("total", "total", "s", False), Metric("spawn", "spawn", "s", False),
         Metric("stop", "stop all", "s", False),
         Metric("peak_mib", "peak RSS", "MiB", False)),
        lambda s, z, _t: s.million(z.million), reps=1,
        note="a fresh process each; pooled minions only (a thread each would not fit)",
    ))
    return out


def targets(sizes: Sizes) -> list[Target]:
    """The goals in the issue, for this mode's sizes."""
    spawn = max(sizes.spawn)
    many = max(sizes.scaling_actors)
    million_s = 10.0 * sizes.million / 1_000_000  # issue 22: a million in 10 s
    floor = "floor"  # issue 22: the bare pooled scheduler (bench/systems/floor.py)
    return [
        Target(f"{many:,} active minions >= 2x Thespian", f"scaling_{many}", "rate", 2.0,
               "thespian-simple"),
        Target(f"fan-out over {many:,} active >= 0.8x the floor", f"scaling_{many}", "rate",
               0.8, floor),
        Target(f"spawn {spawn:,} <= Thespian's", f"spawn_stop_{spawn}", "spawn", 1.0,
               "thespian-simple"),
        Target(f"spawn {spawn:,} <= 5x the floor", f"spawn_stop_{spawn}", "spawn", 0.2, floor),
        Target(f"stop {spawn:,} <= 5x the floor", f"spawn_stop_{spawn}", "stop", 0.2, floor),
        Target("memory per idle minion <= 1.2 KiB", "memory", "kib", 1.2),
        Target("ping-pong >= Thespian's", "pingpong", "rate", 1.0, "thespian-simple"),
        Target("ping-pong >= 0.8x the floor", "pingpong", "rate", 0.8, floor),
        Target("tell 1->1 >= 8x raw pykka", "tell_1to1", "rate", 8.0, "pykka"),
        Target("tell 4->1 >= 2x raw pykka", "tell_4to1", "rate", 2.0, "pykka"),
        Target("persistent tell >= 1x raw pykka tell", "persistent_tell", "rate", 1.0, "pykka"),
        Target("ask p50 <= 0.8x pykka's (one CPU)", "ask", "p50", 1.25, "pykka"),
        Target("ask p50 < 20 us (threads placed by the kernel)", "ask_free", "p50", 20.0),
        Target(f"spawn {spawn:,} <= pykka's", f"spawn_stop_{spawn}", "spawn", 1.0, "pykka"),
        Target("restart p50 < 100 us", "restart", "p50", 100.0),
        Target(f"{sizes.million:,} minions: spawn, tell, stop all < {million_s:g} s",
               "million", "total", million_s),
        Target("snapshot writer >= 200k rows/s", "snapshot_writer", "rate", 200_000.0),
        Target("pipeline-fed workflows: p50 < 50 ms at saturation", "pipeline_workflows",
               "p50", 50_000.0),
        Target(f"pipeline-fed workflows at {pipeline_workflows.PACED_RATE}/s: p50 <= 1 ms",
               "pipeline_workflows_paced", "p50", 1000.0),
        Target("checkpointed workflow steps >= 30k/s", "workflow", "rate", 30_000.0),
        Target("start-up with a store <= 100 ms over the interpreter's", "startup",
               "over", 100_000.0),
        Target("tell >= 10x Ray actor calls", "tell_1to1", "rate", 10.0, "ray"),
        *blocked_targets(),
        Target("arm + cancel a timer within 3x the bare heapq timer", "timer_armed", "cycle",
               1 / 3, "heapq-timer"),
        Target("10,000 timer fires/s: p99 lateness < 5 ms", "timer_fires", "p99", 5000.0),
    ]


def blocked_targets() -> list[Target]:
    """The pool under blocking handlers: the others' worst ask stays under 100 ms (250 ms
    beside spinning handlers) and their ask rate above half of the unblocked one."""
    out = []
    for kind, n in BLOCKED:
        key = f"blocked_{kind}_{n}"
        bound = 250_000.0 if kind == "spin" else 100_000.0
        out.append(Target(f"{n} blocked in {kind}: worst ask < {bound / 1000:.0f} ms", key,
                          "worst", bound))
        if kind != "spin":
            out.append(Target(f"{n} blocked in {kind}: ask rate >= half of unblocked", key,
                              "rate", 0.5, US, peer_scenario="blocked_none"))
    return out
