"""Async minions spawned on their event loop are built there (runtime.async_start): in
spawn order, ``on_start`` before the first message, a failure in ``__init__`` handled by
supervision as before, a big spawn never holding the loop for all of it, and a start that
may block (a sync ``on_start``) still on the pool. Both ways of starting: the spawns run on
the minions' loop (the caller's, or the runtime's own thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, MinionStopped
from minions_actors.runtime import async_start

from .conftest import Events, Runner, on_minions_loop

pytestmark = pytest.mark.timeout(120)


async def on_loop(system: ActorSystem, fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` on the minions' loop thread (the test's own loop, or the runtime's)."""
    async def call() -> Any:
        return fn()

    return await on_minions_loop(system, call())


class Child(Minion):
    """Logs its ``__init__`` (with the thread), its async ``on_start`` and its messages."""

    def __init__(self, log: list[Any], i: int) -> None:
        super().__init__()
        self.log, self.i = log, i
        log.append(("init", i, threading.get_ident()))

    async def on_start(self) -> None:
        await asyncio.sleep(0)
        self.log.append(("on_start", self.i))

    async def on_receive(self, message: Any) -> Any:
        self.log.append((message, self.i))
        return threading.get_ident()


class Parent(Minion):
    """Spawns ``n`` children in a handler (so on the minions' loop), tells each one at
    once, then asks each one."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    async def on_receive(self, n: int) -> Any:
        refs = [self.spawn(Child, self.log, i, name=f"child-{i}") for i in range(n)]
        for ref in refs:
            ref.tell("first")
        answers = await asyncio.gather(*(r.ask_async("second", timeout=30) for r in refs))
        return threading.get_ident(), answers


def test_spawned_on_the_loop_they_are_built_there_in_order_and_started_before_a_message(
        run: Runner) -> None:
    log: list[Any] = []
    n = 300  # more than one batch

    async def body(system: ActorSystem) -> Any:
        return await system.spawn(Parent, log, name="parent").ask_async(n, timeout=60)

    loop_thread, answers = run(body)
    inits = [e for e in log if e[0] == "init"]
    assert [e[1] for e in inits] == list(range(n))  # in spawn order
    assert {e[2] for e in inits} == {loop_thread} == set(answers)  # built on the loop
    for i in range(n):
        mine = [e[0] for e in log if e[1] == i]
        assert mine == ["init", "on_start", "first", "second"], (i, mine)


class InitFailsOnce(Minion):
    """Its first ``__init__`` raises; it answers how many were run."""

    def __init__(self, inits: list[int]) -> None:
        super().__init__()
        self.inits = inits
        inits.append(threading.get_ident())
        if len(inits) == 1:
            raise RuntimeError("no configuration yet")

    async def on_receive(self, message: Any) -> Any:
        return len(self.inits)


@pytest.mark.parametrize("restart", ["permanent", "temporary"])
def test_a_failing_init_on_the_loop_is_a_crash_in_phase_init(run: Runner,
                                                             restart: str) -> None:
    events, inits = Events(), []

    async def body(system: ActorSystem) -> Any:
        ref = await on_loop(system, lambda: system.spawn(
            InitFailsOnce, inits, name="fragile", restart=restart))
        try:
            return await ref.ask_async("how many?", timeout=10)
        except MinionStopped as exc:
            return exc

    got = run(body, hooks=[events])
    crashed = events.of("crashed")
    assert [c[1:3] for c in crashed] == [("fragile", "init")]
    assert "no configuration yet" in crashed[0][3]
    if restart == "permanent":  # the restart answers the ask told before the crash
        assert got == 2
    else:  # no restart: the asker hears that it stopped
        assert isinstance(got, MinionStopped), got
        assert len(inits) == 1


class Light(Minion):
    """Counts its builds; answers what it is told."""

    def __init__(self, built: list[int]) -> None:
        super().__init__()
        built.append(1)

    async def on_receive(self, message: Any) -> Any:
        return message


def test_a_thousand_spawned_on_the_loop_never_hold_it_for_all_their_starts(
        run: Runner) -> None:
    n = 1000

    async def body(system: ActorSystem) -> Any:
        built: list[int] = []
        gaps: list[float] = []

        async def ticker(stop: asyncio.Event) -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                await asyncio.sleep(0)
                gaps.append(time.perf_counter() - t0)

        async def spawn_all() -> tuple[int, float]:
            stop = asyncio.Event()
            tick = asyncio.create_task(ticker(stop))
            await asyncio.sleep(0)
            refs = [system.spawn(Light, built) for _ in range(n)]
            loop = asyncio.get_running_loop()
            seen = loop.create_future()
            loop.call_soon(lambda: seen.set_result(len(built)))  # after the first batch
            first = await seen
            answers = await asyncio.gather(*(r.ask_async(i, timeout=60)
                                             for i, r in enumerate(refs)))
            assert answers == list(range(n))
            stop.set()
            await tick
            return first, max(gaps)

        return await on_minions_loop(system, spawn_all())

    first, lag = run(body)
    assert 0 < first < n, first  # other callbacks ran between the batches
    assert first <= async_start.BATCH
    # (a batch is a few ms; the margin is for a loaded machine)
    assert lag < 1.0, f"the loop was held {lag:.3f}s at once while the minions started"


class SyncStart(Minion):
    """A sync ``on_start`` (it may block): its start stays on the pool."""

    def on_start(self) -> None:
        self.where = threading.current_thread().name

    async def on_receive(self, message: Any) -> Any:
        return self.where


def test_a_sync_on_start_still_runs_on_a_pool_worker(run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        ref = await on_loop(system, lambda: system.spawn(SyncStart))
        return await ref.ask_async("where?", timeout=10)

    assert run(body).startswith("minions-worker-")


def test_a_shutdown_right_after_spawning_on_the_loop_leaves_nothing(run: Runner) -> None:
    built: list[int] = []

    async def body(system: ActorSystem) -> Any:
        await on_loop(system, lambda: [system.spawn(Light, built) for _ in range(600)])

    run(body)  # (the fixture checks: no thread, loop or task left)
    assert len(built) <= 600


class Greeter(Minion):
    """An attribute set in ``__init__``: a proxy must wait for the instance to find it."""

    def __init__(self) -> None:
        super().__init__()
        self.greeting = "hello"

    async def on_receive(self, message: Any) -> Any:
        return message


def test_a_proxy_made_on_the_loop_right_after_the_spawn_finds_init_attributes(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        async def spawn_and_read() -> Any:
            ref = system.spawn(Greeter)
            # (the instance is not built yet: the proxy's lookup needs it now, on this loop)
            return await ref.proxy().greeting

        return await on_minions_loop(system, spawn_and_read())

    assert run(body) == "hello"


class Asker(Minion):
    """Its ``__init__`` asks a proxy for an attribute of a minion spawned just after it
    (queued behind it to start on the loop), its ``on_start`` awaits the answer."""

    def __init__(self, greeters: list[Any]) -> None:
        super().__init__()
        self.pending = greeters[0].proxy().greeting  # (needs the greeter's instance now)

    async def on_start(self) -> None:
        self.greeting = await self.pending

    async def on_receive(self, message: Any) -> Any:
        return self.greeting


def test_an_init_that_needs_a_minion_queued_behind_it_gets_it(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        def spawn_both() -> Any:
            greeters: list[Any] = []
            asker = system.spawn(Asker, greeters)
            greeters.append(system.spawn(Greeter))  # (before the asker's __init__ runs)
            return asker

        asker = await on_loop(system, spawn_both)
        return await asker.ask_async("greeting?", timeout=10)

    assert run(body) == "hello"


class StartFailsAtOnce(Minion):
    """Its first async ``on_start`` raises before any ``await`` (on 3.12+ it runs eagerly,
    inside the start on the loop)."""

    def __init__(self, starts: list[int]) -> None:
        super().__init__()
        self.starts = starts

    async def on_start(self) -> None:
        self.starts.append(threading.get_ident())
        if len(self.starts) == 1:
            raise RuntimeError("refused at once")

    async def on_receive(self, message: Any) -> Any:
        return len(self.starts)


def test_an_async_on_start_failing_before_its_first_await_is_a_crash_in_on_start(
        run: Runner) -> None:
    events, starts = Events(), []

    async def body(system: ActorSystem) -> Any:
        ref = await on_loop(system, lambda: system.spawn(StartFailsAtOnce, starts,
                                                         name="eager"))
        return await ref.ask_async("how many starts?", timeout=10)

    assert run(body, hooks=[events]) == 2
    assert [c[1:3] for c in events.of("crashed")] == [("eager", "on_start")]
    assert [s[1:] for s in events.of("started")] == [("eager", False)]
