"""A sync method of an async minion may return any awaitable, not only a coroutine: its
task steps the awaitable's iterator (``runtime.async_job``), and an ``__await__`` that
raises is a crash of that handler, as awaiting it would be."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from .conftest import Events, Runner, until

pytestmark = pytest.mark.timeout(60)


class Later:
    """An awaitable (not a coroutine) that yields to the loop once, then gives ``value``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return (yield from asyncio.sleep(0, result=self.value).__await__())


class Broken:
    """An awaitable whose ``__await__`` itself raises."""

    def __await__(self) -> Generator[Any, None, Any]:
        raise ValueError("no iterator here")


class Returns(Minion):
    async def on_receive(self, message: Any) -> Any:
        return message

    def later(self, value: Any) -> Later:  # (a sync method: it runs on the pool)
        return Later(value)

    def broken(self) -> Broken:
        return Broken()


def test_awaitables_that_are_not_coroutines_answer_or_crash(run: Runner) -> None:
    events = Events()

    async def body(system: ActorSystem) -> tuple[Any, str, Any]:
        # (each one's first message: run as a task of its own, not by a runner)
        answer = await system.spawn(Returns).proxy().later(41)
        ref = system.spawn(Returns, name="returns")
        try:
            await ref.proxy().broken()
            error = "no error"
        except ValueError as exc:
            error = str(exc)
        await until(lambda: events.of("crashed"), what="the crash")
        return answer, error, await ref.ask_async("still here", timeout=10)

    answer, error, after = run(body, hooks=[events])
    assert answer == 41
    assert error == "no iterator here"
    assert events.of("crashed")[0][1:3] == ("returns", "message")
    assert after == "still here"  # restarted, its mailbox kept
