"""Async minions under both ways of starting: the runtime's own loop (``start()``) and the
caller's (``async with start_async()`` inside ``asyncio.run``). A test writes its body as
``async def body(system)`` and hands it to the ``run`` fixture, which checks afterwards
that no runtime thread, loop or task is left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from minions_actors import ActorSystem, Hooks

from ..conftest import QUIET, Recorder, runtime_threads

Body = Callable[[ActorSystem], Awaitable[Any]]
Runner = Callable[..., Any]


async def on_minions_loop(system: ActorSystem, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Await ``coroutine`` in a task on the minions' loop (the test's own, or the runtime's
    thread's)."""
    loop = system.loop_host.ensure()
    if loop is asyncio.get_running_loop():
        return await coroutine
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


async def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Await until ``predicate`` is truthy (polling without blocking the running loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.002)


class Events(Hooks):
    """The hooks an async minion's outcomes reach, as tuples in a :class:`Recorder`."""

    def __init__(self) -> None:
        self.rec = Recorder()

    def minion_started(self, cell: Any, restored: bool) -> None:
        self.rec.add(("started", cell.path, restored))

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add(("crashed", cell.path, phase, repr(exc)))

    def minion_stopped(self, cell: Any, reason: str) -> None:
        self.rec.add(("stopped", cell.path))

    def lifecycle_error(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add(("lifecycle_error", cell.path, phase, str(exc)))

    def loop_blocked(self, cell: Any, seconds: float, task: str | None) -> None:
        self.rec.add(("loop_blocked", None if cell is None else cell.path, seconds, task))

    def of(self, kind: str) -> list[Any]:
        return self.rec.only(lambda e: e[0] == kind)


def _run_owned(body: Body, options: dict[str, Any]) -> Any:
    system = ActorSystem.start(**options)
    try:
        # the test's own loop is a caller of the runtime's: awaits cross the two loops
        return asyncio.run(body(system))
    finally:
        # the test's own shutdown_timeout, if it set one (10,000 minions on a loaded 3.13t
        # took more than 15 s to stop)
        assert system.shutdown(timeout=options.get("shutdown_timeout", 15)), (
            "shutdown() did not finish in time")
        loop = system.loop_host.loop
        assert loop is None or loop.is_closed(), "the runtime's loop was left open"


def _run_caller(body: Body, options: dict[str, Any]) -> Any:
    async def main() -> Any:
        async with ActorSystem.start_async(**options) as system:
            result = await body(system)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == [], f"tasks left on the caller's loop after shutdown: {left}"
        return result

    return asyncio.run(main())


@pytest.fixture(params=["owned", "caller"])
def how(request: pytest.FixtureRequest) -> str:
    """'owned': ActorSystem.start() (the runtime's 'minions-loop' thread); 'caller':
    ``async with ActorSystem.start_async()`` (the minions run on the test's loop)."""
    return str(request.param)


@pytest.fixture
def run(how: str) -> Runner:
    """``run(body, **options)``: start a quiet system the ``how`` way, await ``body(system)``,
    shut down, and check that nothing the runtime started is left."""

    def runner(body: Body, **options: Any) -> Any:
        settings = {**QUIET, **options}
        try:
            result = (_run_owned if how == "owned" else _run_caller)(body, settings)
        finally:
            assert ActorSystem.current() is None
        assert runtime_threads() == [], f"threads left behind: {runtime_threads()}"
        return result

    return runner
