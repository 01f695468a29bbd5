"""Found in the review of issue 19's eager paths (session 8): a start hurried by a proxy
while a task is current, a caller's loop with an eager task factory, a cancel that comes
with an answer (3.11), and a task kept by one minion's first step (fixed in session 9: see
also tests/aio/test_spare.py)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET
from .conftest import Runner, on_minions_loop

pytestmark = pytest.mark.timeout(90)


class Labelled(Minion):
    """An attribute set in ``__init__`` (a proxy's lookup needs the instance); it answers
    the messages it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.label = "labelled"
        self.seen: list[Any] = []

    async def on_receive(self, message: Any) -> Any:
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return message


async def _spawn_tell_and_read(system: Any) -> list[Any]:
    """On the minions' loop, in a task: spawn, tell, then hurry the start with a proxy."""
    ref = system.spawn(Labelled)
    ref.tell("first")  # waits for the start, which the proxy's lookup below hurries
    assert await ref.proxy().label == "labelled"
    return await ref.ask_async("seen", timeout=10)  # type: ignore[no-any-return]


def test_a_proxy_read_in_a_task_right_after_spawn_and_tell_handles_the_message(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        return await on_minions_loop(system, _spawn_tell_and_read(system))

    assert run(body) == ["first"]


def test_a_proxy_read_in_a_handler_right_after_spawn_and_tell_handles_the_message(
        run: Runner) -> None:
    class Spawner(Minion):
        async def on_receive(self, message: Any) -> Any:
            if message == "after-a-suspension":
                await asyncio.sleep(0)  # (its own task now, no longer its first step)
            return await _spawn_tell_and_read(self.system)

    async def body(system: ActorSystem) -> list[Any]:
        spawner = system.spawn(Spawner)
        return [await spawner.ask_async(how, timeout=20)
                for how in ("in-its-first-step", "after-a-suspension")]

    assert run(body) == [["first"], ["first"]]


class Sleeper(Minion):
    """Its handler suspends (its first step ends on an await): ``(_, seconds)``, or briefly."""

    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(message[1] if isinstance(message, tuple) else 0.001)
        return message


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is 3.12+")
def test_first_messages_are_handled_on_a_callers_loop_with_an_eager_task_factory() -> None:
    async def main() -> list[Any]:
        asyncio.get_running_loop().set_task_factory(
            asyncio.eager_task_factory)  # type: ignore[attr-defined]
        async with ActorSystem.start_async(**QUIET) as system:
            labelled = [system.spawn(Labelled) for _ in range(3)]
            sleepers = [system.spawn(Sleeper) for _ in range(3)]
            got = [await ref.ask_async(i, timeout=10) for i, ref in enumerate(labelled)]
            got += [await ref.ask_async(i, timeout=10) for i, ref in enumerate(sleepers)]
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == [], f"tasks left on the caller's loop after shutdown: {left}"
        return got

    assert asyncio.run(main()) == [0, 1, 2, 0, 1, 2]


class KeepsItsTask(Minion):
    """Keeps the task its first handler ran as, and later cancels it (that handler ended
    long ago: on its own task, a no-op)."""

    async def on_receive(self, message: Any) -> Any:
        if message == "remember":
            self.mine = asyncio.current_task()
            return "remembered"
        self.mine.cancel()
        return "cancelled"


def test_a_task_kept_by_one_minions_first_step_cancels_no_other_minions_handler(
        run: Runner) -> None:
    async def on_its_loop(system: ActorSystem) -> Any:
        keeper, sleeper = system.spawn(KeepsItsTask), system.spawn(Sleeper)
        assert await keeper.ask_async("remember", timeout=10) == "remembered"
        slept = asyncio.ensure_future(sleeper.ask_async(("slept", 0.3), timeout=10))
        await asyncio.sleep(0.05)  # (its first step suspended: it runs on)
        assert await keeper.ask_async("cancel", timeout=10) == "cancelled"
        return await slept

    async def body(system: ActorSystem) -> Any:  # (on the minions' loop, in a task)
        return await on_minions_loop(system, on_its_loop(system))

    assert run(body) == ("slept", 0.3)


class CancelsItsAsker(Minion):
    """Cancels the task given (its asker, awaiting the answer) and answers at once."""

    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(0)  # (so the asker awaits the answer meanwhile)
        message.cancel()
        return "answered"


def test_an_asker_cancelled_as_its_answer_comes_is_cancelled(run: Runner) -> None:
    async def on_its_loop(system: ActorSystem) -> list[Any]:
        ref = system.spawn(CancelsItsAsker)

        async def asker(timeout: float | None) -> Any:
            me = asyncio.current_task()
            await ref.ask_async(me, timeout=timeout)
            await asyncio.sleep(0)  # (a cancel request still pending is delivered here)
            return "the cancel was lost"

        seen = []
        for timeout in (None, 10.0):
            try:
                seen.append(await asyncio.ensure_future(asker(timeout)))
            except asyncio.CancelledError:
                seen.append("cancelled")
        return seen

    async def body(system: ActorSystem) -> Any:  # (on the minions' loop, in a task)
        return await on_minions_loop(system, on_its_loop(system))

    assert run(body) == ["cancelled", "cancelled"]


class Crashy(Minion):
    """Raises on "crash"; answers anything else, suspending on every third int."""

    async def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise ValueError("crash on purpose")
        if message % 3 == 0:
            await asyncio.sleep(0)
        return message


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is 3.12+")
def test_asks_after_a_crash_are_answered_on_a_callers_loop_with_an_eager_task_factory(
        ) -> None:
    async def main() -> list[Any]:
        asyncio.get_running_loop().set_task_factory(
            asyncio.eager_task_factory)  # type: ignore[attr-defined]
        async with ActorSystem.start_async(**QUIET) as system:
            ref = system.spawn(Crashy)
            assert await ref.ask_async(1, timeout=10) == 1
            with pytest.raises(ValueError, match="crash on purpose"):
                await ref.ask_async("crash", timeout=10)
            got = await asyncio.gather(*(ref.ask_async(i, timeout=10) for i in range(6)))
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == [], f"tasks left on the caller's loop after shutdown: {left}"
        return got

    assert asyncio.run(main()) == list(range(6))
