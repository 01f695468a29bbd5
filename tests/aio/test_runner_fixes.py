"""Async minions' handler runner (issue 19's speed work) and the two bugs found beside it:
``minion_started`` fired when an async ``on_start`` began, and a handler started during a
caller's loop teardown and cancelled before it ran warned "coroutine ... was never awaited"."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from minions_actors import ActorSystem, Hooks, Minion

from .conftest import Runner, until


class SlowStart(Minion):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def on_start(self) -> None:
        self.log.append("begun")
        await asyncio.sleep(0.05)
        self.log.append("done")

    async def on_receive(self, msg: Any) -> Any:
        return msg


class StartedSeen(Hooks):
    """Records what the minion's log held when ``minion_started`` fired."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.seen: list[list[str]] = []

    def minion_started(self, cell: Any, restored: bool) -> None:
        if cell.cls_name == "SlowStart":
            self.seen.append(list(self.log))


def test_minion_started_fires_when_an_async_on_start_has_finished(run: Runner) -> None:
    log: list[str] = []
    hook = StartedSeen(log)

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(SlowStart, log)
        await until(lambda: hook.seen, what="minion_started")
        assert await ref.ask_async("hi", timeout=5) == "hi"

    run(body, hooks=[hook])
    assert hook.seen == [["begun", "done"]]  # [[]] before the fix: fired at its beginning


class Counter(Minion):
    """One at a time: every message runs on the cell's one runner, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    async def on_receive(self, msg: Any) -> Any:
        if msg == "seen":
            return self.seen
        await asyncio.sleep(0)
        self.seen.append(msg)
        return None


def test_one_runner_keeps_order_across_idle_and_busy_spells(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Counter)
        for i in range(200):
            ref.tell(i)
            if i % 50 == 0:  # let the runner park between bursts
                await asyncio.sleep(0.01)
        assert await ref.ask_async("seen", timeout=10) == list(range(200))

    run(body)


TEARDOWN = textwrap.dedent("""
    import asyncio, sys, warnings
    from minions_actors import ActorSystem, Minion

    class Handler(Minion):
        max_concurrency = int(sys.argv[1])

        async def on_receive(self, msg):
            await asyncio.sleep(10)

    holder = []

    async def main():
        system = await ActorSystem.start_async(log_level="ERROR", metrics_port=None)
        holder.append(system)
        ref = system.spawn(Handler)
        await asyncio.sleep(0.2)  # its first incarnation is built
        ref.tell("go")  # its turn is queued on this loop; main returns at once

    asyncio.run(main())
    holder[0].shutdown(timeout=10)
    print("ended")
""")


@pytest.mark.parametrize("limit", [1, 2])
def test_a_handler_cancelled_in_a_loop_teardown_before_it_ran_does_not_warn(
        limit: int) -> None:
    done = subprocess.run([sys.executable, "-W", "error", "-c", TEARDOWN, str(limit)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ended" in done.stdout
    assert "never awaited" not in done.stderr, done.stderr


def test_an_idle_minions_runner_ends_and_a_new_message_starts_another() -> None:
    async def main() -> None:
        async with ActorSystem.start_async(log_level="ERROR", metrics_port=None) as system:
            ref = system.spawn(Counter)
            ref.tell(1)
            assert await ref.ask_async("seen", timeout=5) == [1]

            def runners() -> list[asyncio.Task[Any]]:
                return [t for t in asyncio.all_tasks() if t.get_name().startswith("minion:")]

            assert runners(), "a runner awaits its handlers"
            await until(lambda: not runners(), timeout=10, what="the idle runner to end")
            ref.tell(2)
            assert await ref.ask_async("seen", timeout=5) == [1, 2]

    asyncio.run(main())
