"""A minion's first message runs its first step as the loop's spare task (issue 19's speed
work: a minion told or asked once needs no task of its own unless its handler suspends).
What one handler does to that task or its context never reaches another minion's handler;
one that suspends keeps the task it started as, named for its minion."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, MinionStopped

from .conftest import Events, Runner, on_minions_loop, until

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


def test_first_steps_that_keep_nothing_run_as_one_task(run: Runner) -> None:
    class Plain(Minion):
        async def on_receive(self, message: Any) -> Any:
            return id(asyncio.current_task())  # (its id: a task kept would be replaced)

    async def on_its_loop(system: ActorSystem) -> set[int]:
        refs = [system.spawn(Plain) for _ in range(50)]
        await asyncio.sleep(0)  # (their starts: the loop's next callback)
        return {await ref.ask_async("id", timeout=10) for ref in refs}

    async def body(system: ActorSystem) -> set[int]:  # (on the minions' loop, in a task)
        return await on_minions_loop(system, on_its_loop(system))  # type: ignore[no-any-return]

    assert len(run(body)) == 1  # the speed the spare is for: no task per first message


class Keeper(Minion):
    """Its first message's handler never suspends and keeps the task it ran as, the way the
    message names; a later message cancels that task, awaits it, closes its coroutine, or
    waits for its done callback (the end of that handler, not another's)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: Any = None
        self.ends: list[str] = []  # the names the kept task's done callback saw

    async def on_receive(self, message: Any) -> Any:
        if message == "cancel":
            task = self.kept() if isinstance(self.kept, weakref.ref) else self.kept
            return task is not None and task.cancel()
        if message == "await":  # (its own task would be done: the await returns at once)
            return await self.kept
        if message == "close":
            self.kept.close()
            return None
        if message == "ends":
            while not self.ends:
                await asyncio.sleep(0)
            return list(self.ends)
        task = asyncio.current_task()
        assert task is not None
        if message == "strong":
            self.kept = task
        elif message == "weak":
            self.kept = weakref.ref(task)
        elif message == "coro":
            self.kept = task.get_coro()
        else:  # "callback"
            task.add_done_callback(lambda t: self.ends.append(t.get_name()))
        return "kept"


class ConcurrentKeeper(Keeper):
    """A :class:`Keeper` with handlers in flight at once: each runs its first step so."""

    max_concurrency = 2


class Gated(Minion):
    """Its handler notes that it waits, then awaits the gate it is given (suspending in its
    first step) and notes how it ended."""

    async def on_receive(self, message: Any) -> Any:
        gate, log = message
        log.append("waiting")
        try:
            await gate.wait()
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        return "opened"


@pytest.mark.parametrize("keeper", [Keeper, ConcurrentKeeper])
@pytest.mark.parametrize(("keep", "then"), [
    ("strong", "cancel"), ("strong", "await"), ("weak", "cancel"), ("coro", "close"),
    ("callback", "ends")])
def test_a_task_kept_from_a_first_step_that_never_suspended_reaches_no_other_minion(
        run: Runner, keeper: type[Keeper], keep: str, then: str) -> None:
    async def on_its_loop(system: ActorSystem) -> None:
        kept, gated = system.spawn(keeper), system.spawn(Gated)
        await asyncio.sleep(0)  # (their starts: the loop's next callback)
        assert await kept.ask_async(keep, timeout=10) == "kept"
        gate, log = asyncio.Event(), []
        opened = asyncio.ensure_future(gated.ask_async((gate, log), timeout=10))
        await until(lambda: log == ["waiting"], what="the gated handler's first step")
        got = await kept.ask_async(then, timeout=5)  # (not waiting for the gated handler)
        if then == "ends":  # (its callback saw that handler's end, not the gated one's)
            assert len(got) == 1 and gated.path not in got[0]
        assert log == ["waiting"]
        gate.set()  # (a cancel delivered to the gated handler would reach it first)
        assert await opened == "opened"
        assert log == ["waiting"]

    async def body(system: ActorSystem) -> None:  # (on the minions' loop, in a task)
        await on_minions_loop(system, on_its_loop(system))

    run(body)


def test_a_first_message_after_a_kept_task_is_still_cancelled_by_its_stop(
        run: Runner) -> None:
    async def on_its_loop(system: ActorSystem) -> list[str]:
        kept, gated = system.spawn(Keeper), system.spawn(Gated)
        await asyncio.sleep(0)  # (their starts: the loop's next callback)
        assert await kept.ask_async("strong", timeout=10) == "kept"
        log: list[str] = []
        opened = asyncio.ensure_future(gated.ask_async((asyncio.Event(), log), timeout=20))
        await until(lambda: log == ["waiting"], what="the gated handler's first step")
        await kept.ask_async("cancel", timeout=5)
        assert await gated.stop_async(timeout=10)
        with pytest.raises(MinionStopped, match="cancelled"):
            await opened
        return log

    async def body(system: ActorSystem) -> list[str]:  # (on the minions' loop, in a task)
        return await on_minions_loop(system, on_its_loop(system))  # type: ignore[no-any-return]

    assert run(body, stop_timeout=0.2) == ["waiting", "cancelled"]


class CancelsItself(Minion):
    """Its first message's handler cancels its own task, then awaits (asyncio delivers the
    cancel there)."""

    async def on_receive(self, message: Any) -> Any:
        if message != "cancel-then-await":
            return message
        me = asyncio.current_task()
        assert me is not None
        me.cancel()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "cancelled at the await"
        return "not cancelled"


def test_a_first_message_that_cancels_its_own_task_and_awaits_is_no_runtime_error(
        run: Runner) -> None:
    events = Events()

    async def on_its_loop(system: ActorSystem) -> list[Any]:
        plain, cancels = system.spawn(CancelsItself), system.spawn(CancelsItself)
        await asyncio.sleep(0)  # (their starts: the loop's next callback)
        assert await plain.ask_async("plain", timeout=10) == "plain"
        await asyncio.sleep(0)  # (the spare that step ran as parks: the loop's next step)
        return [await cancels.ask_async(m, timeout=10) for m in ("cancel-then-await", "next")]

    async def body(system: ActorSystem) -> list[Any]:  # (on the minions' loop, in a task)
        return await on_minions_loop(system, on_its_loop(system))  # type: ignore[no-any-return]

    assert run(body, hooks=[events]) == ["cancelled at the await", "next"]
    assert events.of("lifecycle_error") == []  # (an InvalidStateError in the turn, before)
