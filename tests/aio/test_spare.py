"""A minion's first message runs its first step as the loop's spare task (issue 19's speed
work: a minion told or asked once needs no task of its own unless its handler suspends).
What one handler does to that task or its context never reaches another minion's handler;
one that suspends keeps the task it started as, named for its minion."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from .conftest import Runner, until

pytestmark = pytest.mark.timeout(90)
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("spare_var", default="unset")


class Once(Minion):
    """Each instance is asked once (its first message); what it does is the message."""

    async def on_receive(self, message: Any) -> Any:
        seen = VAR.get()
        me = asyncio.current_task()
        assert me is not None
        if message == "set":  # sets a context variable and ends: no other minion sees it
            VAR.set("leaked?")
        elif message == "cancel-self":  # cancels its own task and ends at once
            me.cancel()
        elif message == "suspend":  # its task and context hold across the await
            VAR.set("mine")
            name = me.get_name()
            await asyncio.sleep(0.001)
            return seen, asyncio.current_task() is me, VAR.get(), name
        elif message == "timeout":  # asyncio.timeout cancels the task that runs it
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(30)
            except TimeoutError:
                return seen, "timed out"
        return seen, me.get_name()


def test_a_first_steps_context_variable_or_self_cancel_reaches_no_other_minion(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        for first in ("set", "cancel-self", "set", "cancel-self"):
            a, b, c = (system.spawn(Once) for _ in range(3))
            await asyncio.sleep(0)  # (their starts: the loop's next callback, on its loop)
            await a.ask_async(first, timeout=10)
            assert (await b.ask_async("plain", timeout=10))[0] == "unset"
            seen, same, var, name = await c.ask_async("suspend", timeout=10)
            assert (seen, same, var) == ("unset", True, "mine")  # (not cancelled)
            assert name == f"minion:{c.path}"

    run(body)


def test_first_messages_that_suspend_each_keep_their_own_task(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        refs = [system.spawn(Once) for _ in range(200)]
        got = await asyncio.gather(*(r.ask_async("suspend", timeout=10) for r in refs))
        assert got == [("unset", True, "mine", f"minion:{r.path}") for r in refs]
        timed = await asyncio.gather(*(system.spawn(Once).ask_async("timeout", timeout=10)
                                       for _ in range(20)))
        assert timed == [("unset", "timed out")] * 20

    run(body)


def test_a_first_step_told_from_a_callback_runs_as_a_task_named_for_its_minion(
        run: Runner) -> None:
    class Namer(Minion):
        def __init__(self, names: list[str]) -> None:
            super().__init__()
            self.names = names

        async def on_receive(self, message: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self.names.append(task.get_name())

    async def body(system: ActorSystem) -> None:
        names: list[str] = []
        refs = [system.spawn(Namer, names) for _ in range(10)]
        loop = asyncio.get_running_loop()
        for ref in refs:
            loop.call_soon(ref.tell, "go")  # (on the caller's loop: a drain runs them)
        await until(lambda: len(names) == 10, what="ten handlers")
        assert sorted(names) == sorted(f"minion:{r.path}" for r in refs)

    run(body)


def test_a_first_step_run_as_a_start_asks_another_minions_first_message(run: Runner) -> None:
    class Asker(Minion):
        def __init__(self, to: Any) -> None:
            super().__init__()
            self.to = to

        async def on_receive(self, message: Any) -> Any:  # its first step asks
            return await self.to.ask_async(message, timeout=10)

    async def body(system: ActorSystem) -> None:
        for _ in range(3):
            target = system.spawn(Once)
            await asyncio.sleep(0)  # (its start: the loop's next callback, on its loop)
            asker = system.spawn(Asker, target)
            asker.tell("queued")  # (its first turn, as it starts, runs this first step)
            seen, name = await asker.ask_async("plain", timeout=10)
            assert (seen, name) == ("unset", f"minion:{target.path}")

    run(body)
