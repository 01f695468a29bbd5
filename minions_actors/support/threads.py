"""Awaiting a blocking call from asyncio code on a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[[], T], name: str) -> T:
    """Run ``fn`` on a new thread named ``name`` and await its result without blocking the
    loop. No executor: the thread ends with the call (and is joined), nothing is left."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def run() -> None:
        try:
            result: Any = (True, fn())
        except BaseException as exc:  # (handed to the awaiting caller)
            result = (False, exc)
        try:
            loop.call_soon_threadsafe(settle, *result)
        except RuntimeError:  # the caller's loop closed meanwhile: nobody awaits it
            pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        return await future
    finally:
        if future.done():
            thread.join()  # (it has handed its result over: it ends now)
