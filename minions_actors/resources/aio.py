"""Async resources: ``open``/``close``/``health_check`` written as ``async def`` run on the
system's event loop (:class:`~minions_actors.runtime.loophost.LoopHost`), so what they open
(an aiohttp session, an asyncpg pool) belongs to the loop the async minions await it on.

The registry calls them from its own threads (a minion's turn on the pool, the health
thread): the coroutine is handed to the loop and the calling thread waits for it, bounded
as a sync call is; past the bound the coroutine is cancelled (not left running, as a sync
call on its thread must be). The loop itself never waits for the registry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from minions_actors.errors import ResourceError, StillRunning
from minions_actors.resources.threads import run_bounded
from minions_actors.runtime.loophost import LoopHost


def is_coroutine_method(fn: Any) -> bool:
    """True for an ``async def`` method (bound or not)."""
    return inspect.iscoroutinefunction(fn)


async def _named(name: str, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` in a task named ``name`` (the loop-lag warning names what blocked)."""
    task = asyncio.current_task()
    if task is not None:
        task.set_name(name)
    return await coro


def run_on_loop(host: LoopHost, make: Callable[[], Any], timeout: float,
                name: str, bound: str = "stop_timeout") -> tuple[BaseException | None, Any]:
    """Run the coroutine ``make()`` on ``host``'s loop and wait at most ``timeout`` seconds
    (the option ``bound``): (what it raised, or :class:`StillRunning` once cancelled past
    the bound, or None; its result)."""
    if host.on_loop():
        return ResourceError(
            f"{name}: an async resource is opened, closed and checked by the runtime from its "
            "own threads, never on the event loop (a coroutine waiting there for itself "
            "would deadlock); spawn its users from outside the loop"), None
    inner = make()
    coro = _named(name, inner)
    try:
        future = asyncio.run_coroutine_threadsafe(coro, host.ensure())
    except RuntimeError as exc:  # the loop is closed: the system is shutting down
        coro.close()
        inner.close()
        return exc, None
    try:
        return None, future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        return StillRunning(f"it did not return within {timeout}s ({bound}); its coroutine "
                            f"was cancelled"), None
    except concurrent.futures.CancelledError:
        return StillRunning(f"its coroutine was cancelled before it returned ({bound})"), None
    except BaseException as exc:
        return exc, None


def call_bounded(host: LoopHost, fn: Callable[[], Any], timeout: float, name: str,
                 bound: str = "stop_timeout") -> BaseException | None:
    """``fn()`` bounded by ``timeout``: on the loop when it is a coroutine function, else on
    a thread of its own (:func:`run_bounded`); what it raised (or the timeout), else None."""
    if is_coroutine_method(fn):
        return run_on_loop(host, fn, timeout, name, bound)[0]
    return run_bounded(fn, timeout, name, bound)


def health(host: LoopHost, check: Callable[[], Any], timeout: float,
           name: str) -> tuple[BaseException | None, Any]:
    """Run a health check: a sync one here (the health thread), an async one on the loop
    bounded by ``timeout``; (what it raised, its result)."""
    if is_coroutine_method(check):
        return run_on_loop(host, check, timeout, name, "open_timeout")
    try:
        return None, check()
    except Exception as exc:
        return exc, None
