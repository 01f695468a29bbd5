"""An ``await ref.ask_async()`` from a task on the minions' loop to an idle async minion runs
the minion's turn at once, in the asker's step (issue 19's speed work): what a handler sees
is still its own task and context, order per sender holds when some messages run at once
and others queue, what needs the pool (a snapshot, a crash) still goes there, and a loop of
such asks still lets the loop's other callbacks run."""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from .conftest import Events, Runner, until
from .persistent import Tally
from .test_snapshots import stored

pytestmark = pytest.mark.timeout(90)
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("eager_ask_var", default="unset")


class Seer(Minion):
    """Answers what its handler sees: its task, a context variable, the messages so far."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    async def on_receive(self, message: Any) -> Any:
        if message == "who":
            return asyncio.current_task(), VAR.get()
        if message == "seen":
            return list(self.seen)
        if isinstance(message, tuple):  # ("sleep", n): suspends before it records n
            await asyncio.sleep(0.001)
            message = message[1]
        self.seen.append(message)
        return message


def test_a_handler_asked_in_the_askers_step_sees_its_own_task_and_context(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Seer)
        VAR.set("the asker's")
        me = asyncio.current_task()
        for _ in range(3):  # the first message (a task of its own), then its runner's
            task, var = await ref.ask_async("who", timeout=10)
            assert task is not None and task is not me
            assert var == "unset"  # (not the asker's context)
            assert asyncio.current_task() is me  # the asker is current again
            assert VAR.get() == "the asker's"

    run(body)


def test_order_per_sender_holds_when_some_asks_run_at_once_and_others_queue(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Seer)
        sent: list[int] = []
        for i in range(600):
            sent.append(i)
            if i % 3 == 0:
                ref.tell(i)  # queues it (and the asks behind it wait for it)
            elif i % 5 == 0:
                assert await ref.ask_async(("sleep", i), timeout=10) == i  # suspends
            else:
                assert await ref.ask_async(i, timeout=10) == i
        assert await ref.ask_async("seen", timeout=10) == sent

    run(body)


def test_many_askers_at_once_each_get_their_answer_in_order(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        refs = [system.spawn(Seer) for _ in range(50)]

        async def asker(k: int) -> list[Any]:
            return [await refs[(k + j) % 50].ask_async([k, j], timeout=10)
                    for j in range(20)]

        got = await asyncio.gather(*(asker(k) for k in range(50)))
        assert got == [[[k, j] for j in range(20)] for k in range(50)]
        for ref in refs:  # every minion saw each asker's messages in the order sent
            seen = await ref.ask_async("seen", timeout=10)
            for k in range(50):
                mine = [s for s in seen if s[0] == k]
                assert mine == sorted(mine)

    run(body)


def test_an_answer_in_the_askers_step_still_comes_after_the_snapshot(
        run: Runner, tmp_path: Path) -> None:
    db, events = tmp_path / "state.db", Events()

    class Quick(Tally):  # never suspends: its handler ends in the asker's step
        async def on_receive(self, message: Any) -> Any:
            if message == "crash":
                raise RuntimeError("crash on purpose")
            if message != "get":
                self.total += message
            return self.total

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Quick, name="quick")
        assert await ref.ask_async(5, timeout=10) == 5
        assert await ref.ask_async(7, timeout=10) == 12
        with pytest.raises(RuntimeError, match="crash on purpose"):
            await ref.ask_async("crash", timeout=10)
        assert await ref.ask_async("get", timeout=10) == 12  # restored by the restart
        assert await asyncio.to_thread(system.flush, 10)
        assert stored(db, "quick") == {"total": 12}

    run(body, state_store=db, hooks=[events])
    assert [e[1:] for e in events.of("started")] == [("quick", False), ("quick", True)]
    assert [e[1:3] for e in events.of("crashed")] == [("quick", "message")]


def test_a_loop_of_asks_answered_at_once_lets_the_loops_callbacks_run(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Seer)
        await ref.ask_async("who", timeout=10)  # (its first message: a task of its own)
        ticks: list[int] = []
        loop = asyncio.get_running_loop()

        def tick() -> None:
            ticks.append(len(ticks))
            if len(ticks) < 1000:
                loop.call_soon(tick)

        loop.call_soon(tick)
        for _ in range(2000):  # never suspends but for the asks' own yields
            await ref.ask_async("who", timeout=10)
        assert len(ticks) >= 10, "a loop of asks held the event loop"
        await until(lambda: len(ticks) == 1000, what="the ticks")

    run(body)


def test_an_async_minion_asking_another_in_its_handler_is_answered(run: Runner) -> None:
    class Relay(Minion):
        def __init__(self, to: Any) -> None:
            super().__init__()
            self.to = to

        async def on_receive(self, message: Any) -> Any:
            await asyncio.sleep(0)  # on its task: the next ask runs in this step
            return ("relayed", await self.to.ask_async(message, timeout=10),
                    await self.to.ask_async("who", timeout=10))

    async def body(system: ActorSystem) -> None:
        seer = system.spawn(Seer)
        relay = system.spawn(Relay, seer)
        for i in range(5):
            relayed, answer, (task, _) = await relay.ask_async(i, timeout=10)
            assert (relayed, answer) == ("relayed", i)
            assert task is not asyncio.current_task()
        assert await seer.ask_async("seen", timeout=10) == list(range(5))

    run(body)
