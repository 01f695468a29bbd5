"""Plain asyncio, the floors async minions are measured against.

- ``asyncio-gather``: ``asyncio.gather`` of the same sleeps, no actors at all;
- ``asyncio-queue``: what an asyncio user writes by hand: one task and one ``asyncio.Queue``
  per actor; ``tell`` puts ``(message, None)``, ``ask`` puts ``(message, future)`` and awaits
  the future. No supervision, no names, no stop protocol beyond cancelling the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

from bench.systems.asyncloops import (
    AsyncCounterLogic,
    AsyncLoops,
    AsyncPingLogic,
    AsyncSleepLogic,
    run,
)
from bench.systems.base import Metrics, System


class QueueActor:
    """One task draining one ``asyncio.Queue`` into ``on_receive`` (one message at a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future[Any] | None]] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._serve())

    @property
    def actor_ref(self) -> QueueActor:
        return self

    async def on_start(self) -> None:
        """Overridden by the logic mixins."""

    async def on_receive(self, message: Any) -> Any:
        """Overridden by the logic mixins."""

    async def _serve(self) -> None:
        await self.on_start()
        get = self.queue.get
        handle = self.on_receive
        while True:
            message, future = await get()
            try:
                reply = await handle(message)
            except Exception as exc:  # the hand-written baseline: the caller gets it
                if future is not None and not future.done():
                    future.set_exception(exc)
                continue
            if future is not None and not future.done():
                future.set_result(reply)

    def tell(self, message: Any) -> None:
        self.queue.put_nowait((message, None))

    async def ask(self, message: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((message, future))
        return await future


class QueueCounter(AsyncCounterLogic, QueueActor):
    """:class:`AsyncCounterLogic` on a task + queue."""


class QueuePing(AsyncPingLogic, QueueActor):
    """:class:`AsyncPingLogic` on a task + queue."""


class QueueSleeper(AsyncSleepLogic, QueueActor):
    """:class:`AsyncSleepLogic` on a task + queue."""


class QueueBaseline(AsyncLoops):
    """The hand-written asyncio actor: one task + one queue each."""

    key = "asyncio-queue"
    label = "asyncio task+Queue per actor"
    counter_cls = QueueCounter
    ping_cls = QueuePing
    sleeper_cls = QueueSleeper

    def __init__(self) -> None:
        self._actors: list[QueueActor] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.stop_all(self._actors)
            self._actors = []

    def spawn(self, cls: Any, *args: Any) -> Any:
        actor = cls(*args)
        self._actors.append(actor)
        return actor

    def asker(self, ref: Any) -> Callable[[Any], Awaitable[Any]]:
        return ref.ask  # type: ignore[no-any-return]

    async def stop_all(self, refs: list[Any]) -> None:
        tasks = [ref.task for ref in refs]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class GatherBaseline(System):
    """``asyncio.gather`` of the sleeps themselves: the floor for the sleep scenario."""

    key = "asyncio-gather"
    label = "asyncio.gather (no actors)"

    def sleep_each(self, n: int, seconds: float) -> Metrics:
        return run(self._sleep_each(n, seconds))

    async def _sleep_each(self, n: int, seconds: float) -> Metrics:
        t0 = perf_counter()
        tasks = [asyncio.ensure_future(asyncio.sleep(seconds)) for _ in range(n)]
        t1 = perf_counter()
        await asyncio.gather(*tasks)
        t2 = perf_counter()
        return {"total": t2 - t0, "spawn": t1 - t0, "after": t2 - t1}
