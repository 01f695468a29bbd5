"""Async minions (issue 19): the same coroutine handlers as the asyncio baseline.

- ``minions-async``: ``await ActorSystem.start_async(...)`` inside ``asyncio.run``; the
  minions run on the caller's loop and the caller awaits ``ref.ask_async``;
- ``minions-async-loop``: ``ActorSystem.start(...)``; the runtime owns the loop (a thread
  named ``minions-loop``) and the caller is plain synchronous code, as in ``threaded.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from bench.common import WAIT, Skip
from bench.systems.asyncloops import (
    AsyncCounterLogic,
    AsyncLoops,
    AsyncPingLogic,
    AsyncSleepLogic,
)
from bench.systems.minions_sys import MinionsSystem, options
from minions_actors import ActorSystem, Minion


class AsyncMinionCounter(AsyncCounterLogic, Minion):  # type: ignore[misc]
    """:class:`AsyncCounterLogic` as an async minion."""


class AsyncMinionPing(AsyncPingLogic, Minion):  # type: ignore[misc]
    """:class:`AsyncPingLogic` as an async minion."""


class AsyncMinionSleeper(AsyncSleepLogic, Minion):  # type: ignore[misc]
    """:class:`AsyncSleepLogic` as an async minion."""


def check_async() -> None:
    """Skip when this minions_actors has no async minions (before issue 19 landed)."""
    if not hasattr(ActorSystem, "start_async"):
        raise Skip("this minions_actors has no async minions (no ActorSystem.start_async)")


class MinionsAsync(AsyncLoops):
    """Async minions on the caller's event loop (``ActorSystem.start_async``)."""

    key = "minions-async"
    label = "minions_actors async, caller's loop"
    counter_cls = AsyncMinionCounter
    ping_cls = AsyncMinionPing
    sleeper_cls = AsyncMinionSleeper

    def __init__(self) -> None:
        self._system: Any = None
        self._null = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the adapter

    def check(self) -> None:
        check_async()

    def close(self) -> None:
        self._null.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        system = await ActorSystem.start_async(**options(self._null))  # type: ignore[attr-defined]
        self._system = system
        try:
            yield
        finally:
            self._system = None
            await system.shutdown_async(timeout=WAIT)

    def spawn(self, cls: Any, *args: Any) -> Any:
        assert self._system is not None
        return self._system.spawn(cls, *args)

    def asker(self, ref: Any) -> Callable[[Any], Awaitable[Any]]:
        return ref.ask_async  # type: ignore[no-any-return]

    async def stop_all(self, refs: list[Any]) -> None:
        await asyncio.gather(*(ref.stop_async(timeout=WAIT) for ref in refs))


class MinionsAsyncLoop(MinionsSystem):
    """Async minions on the runtime's own loop thread, driven by synchronous code."""

    key = "minions-async-loop"
    label = "minions_actors async, runtime's loop"
    counter_cls: Any = AsyncMinionCounter
    ping_cls: Any = AsyncMinionPing

    def check(self) -> None:
        check_async()
