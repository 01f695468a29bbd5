"""The asyncio face of the system: ``start_async``, ``shutdown_async``, ``wait_async``.

Started with ``await ActorSystem.start_async(...)`` (or ``async with``) on a running loop,
the system's async minions run on that loop. Starting and stopping block (a store to open,
minions to stop), so they run on a short-lived named thread while the caller's loop goes on;
the signal handlers, which only the main thread may install, are installed on the caller's.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Generator
from typing import Any, Generic, Protocol, TypeVar

from minions_actors.errors import AskDeadlock
from minions_actors.hosting.options import StartOptions
from minions_actors.runtime.context import current_cell
from minions_actors.runtime.loophost import LoopHost
from minions_actors.support.threads import in_thread


class AsyncStartable(Protocol):
    """What this module needs of the system (``ActorSystem``, a layer above)."""

    _signals: Any
    _shutdown: Any
    loop_host: LoopHost

    def shutdown(self, timeout: float | None = None) -> bool: ...

    async def shutdown_async(self, timeout: float | None = None) -> bool: ...


S = TypeVar("S", bound=AsyncStartable)


class Starting(Generic[S]):
    """What ``ActorSystem.start_async()`` returns: ``await`` it for the running system, or
    use it as ``async with ... as system:`` (the exit awaits ``shutdown_async()``)."""

    def __init__(self, start: Callable[..., S], options: dict[str, Any]) -> None:
        self._start_system = start  # ActorSystem._start
        self._settings = StartOptions.of(options)  # a bad option raises here, at once
        self.system: S | None = None

    def __await__(self) -> Generator[Any, None, S]:
        return self._start().__await__()

    async def __aenter__(self) -> S:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        if self.system is not None:
            await self.system.shutdown_async()

    async def _start(self) -> S:
        settings = self._settings
        host = LoopHost(asyncio.get_running_loop())  # async minions run on this loop
        start = functools.partial(self._start_system, settings, loop_host=host, signals=False)
        try:
            system = await in_thread(start, "minions-start")
        except BaseException:
            host.close(1.0)
            raise
        if settings.handle_signals:
            system._signals.install()  # (on the main thread only, as start() does)
        self.system = system
        return system


def refuse_blocking_shutdown(loop_host: LoopHost, stopped: bool) -> None:
    """``shutdown()`` in a coroutine on the loop that runs the async minions would block
    that loop while their handlers and ``on_stop`` need it: refuse it at once."""
    if not stopped and loop_host.running_here():
        raise AskDeadlock(
            "system.shutdown() was called from code running on the event loop that runs "
            "the async minions: it would block that loop while their handlers and on_stop "
            "need it; use 'await system.shutdown_async()' (or leave the 'async with' block)")


async def shutdown_async(system: AsyncStartable, timeout: float | None = None) -> bool:
    """``shutdown()`` without blocking the loop; inside a minion it runs in the background
    (as ``shutdown()`` does there), since the minion cannot wait for its own stop."""
    if current_cell() is not None:
        return system.shutdown(timeout)
    done = await in_thread(functools.partial(system.shutdown, timeout), "minions-shutdown")
    await system.loop_host.guard_ended()  # (no task of the runtime's is left on this loop)
    system._signals.restore()  # (the main thread's: shutdown() on another could not)
    return done


async def wait_async(system: AsyncStartable, timeout: float | None = None) -> bool:
    """``wait()`` without blocking the loop: True once the system has stopped."""
    stopped = system._shutdown.stopped
    done = bool(await in_thread(functools.partial(stopped.wait, timeout), "minions-wait"))
    if done:
        system._signals.restore()
    return done
