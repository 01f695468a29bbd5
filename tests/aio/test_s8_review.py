"""Found in the review of issue 19's eager paths (session 8): what runs a handler's first
step at once must not do so while a task is current."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from .conftest import Runner

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
        loop = system.loop_host.ensure()
        if loop is asyncio.get_running_loop():
            return await _spawn_tell_and_read(system)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            _spawn_tell_and_read(system), loop))

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
