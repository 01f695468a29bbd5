"""Async resources: ``async def`` open/close/health_check run on the system's event loop
(the runtime's own, or the caller's under ``start_async``), bounded like sync ones; async
methods are awaited by async minions through a measured handle; closed at shutdown after
their users, before the loop ends, with nothing left pending."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from minions_actors import ActorSystem, Minion, Resource, ResourceError, uses
from tests.conftest import QUIET, Recorder, runtime_threads, wait_until
from tests.resources.test_resources import Crashes, _scrape


class Api(Resource):
    """An async resource recording on which thread each hook ran."""

    name = "api"

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.healthy = True
        self.session: asyncio.Event | None = None  # made on the loop it is used on

    async def open(self) -> None:
        await asyncio.sleep(0)
        self.session = asyncio.Event()
        self.rec.add(("open", threading.current_thread().name))

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.rec.add(("close", threading.current_thread().name))

    async def health_check(self) -> bool:
        await asyncio.sleep(0)
        self.rec.add(("health", self.healthy))
        return self.healthy

    async def get(self, key: str) -> str:
        assert self.session is not None
        self.session.set()  # bound to the loop that opened it: fails on another loop
        await asyncio.sleep(0)
        return f"api:{key}"


class Caller(Minion):
    api = uses(Api)

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    async def on_receive(self, message: Any) -> Any:
        return await self.api.get(message)

    async def on_stop(self) -> None:
        self.rec.add(("stop", self.path))


def test_async_open_and_close_run_on_the_loop_after_and_before_users(rec: Recorder) -> None:
    api = Api(rec)
    system = ActorSystem.start(**QUIET, resources=[api])
    try:
        caller = system.spawn(Caller, rec, name="caller")
        assert caller.ask("k", timeout=10) == "api:k"
        assert ("open", "minions-loop") in rec.events
        assert system.resources.state("api") == "open"
    finally:
        assert system.shutdown(timeout=15)
    assert rec.events[-2:] == [("stop", "caller"), ("close", "minions-loop")]
    assert system.resources.state("api") == "closed"
    assert runtime_threads() == []  # the loop ended: nothing of it left running


def test_async_methods_are_measured_until_their_coroutine_ends(rec: Recorder) -> None:
    class Failing(Api):
        async def fail(self) -> None:
            await asyncio.sleep(0)
            raise PermissionError("secret-token-123")

    class FailCaller(Caller):
        api = uses("api")  # type: ignore[assignment]

        async def on_receive(self, message: Any) -> Any:
            if message == "fail":
                try:
                    await self.api.fail()
                except PermissionError:
                    return "failed"
            return await self.api.get(message)

    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, resources=[Failing(rec)])
    try:
        caller = system.spawn(FailCaller, rec, name="caller")
        for i in range(3):
            assert caller.ask(i, timeout=10) == f"api:{i}"
        assert caller.ask("fail", timeout=10) == "failed"
        lines = _scrape(system).splitlines()
    finally:
        system.shutdown(timeout=15)
    assert 'minions_resource_calls_total{method="get",resource="api"} 3.0' in lines
    assert 'minions_resource_call_seconds_count{method="get",resource="api"} 3.0' in lines
    assert 'minions_resource_call_errors_total{method="fail",resource="api"} 1.0' in lines


def test_an_async_open_past_open_timeout_is_cancelled_and_fails_the_start() -> None:
    cancelled = threading.Event()

    class Stuck(Resource):
        name = "stuck"
        open_timeout = 0.5

        async def open(self) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    class User(Minion):
        stuck = uses("stuck")

        async def on_receive(self, message: Any) -> Any:
            return message

    crashes = Crashes()
    system = ActorSystem.start(**QUIET, resources=[Stuck()], hooks=[crashes])
    try:
        system.spawn(User, name="user", restart="temporary")
        path, phase, err = crashes.rec.wait_for(lambda evs: evs, timeout=10)[0]
        assert (path, phase, type(err)) == ("user", "init", ResourceError)
        assert "open_timeout" in str(err) and "cancelled" in str(err)
        assert cancelled.wait(10)  # not left running on the loop
        assert system.resources.state("stuck") == "closed"
    finally:
        assert system.shutdown(timeout=15)


def test_an_async_health_check_failing_reopens_on_the_loop(rec: Recorder) -> None:
    class Checked(Api):
        health_interval = 0.05

    api = Checked(rec)
    system = ActorSystem.start(**QUIET, resources=[api])
    try:
        caller = system.spawn(Caller, rec, name="caller")
        assert caller.ask("a", timeout=10) == "api:a"
        rec.wait_for(lambda evs: ("health", True) in evs, timeout=10)
        api.healthy = False
        rec.wait_for(lambda evs: evs.count(("open", "minions-loop")) >= 2, timeout=10)
        assert ("close", "minions-loop") in rec.events  # closed before it was reopened
        api.healthy = True
        wait_until(lambda: system.resources.state("api") == "open", timeout=10)
        assert caller.ask("b", timeout=10) == "api:b"
    finally:
        assert system.shutdown(timeout=15)


def test_under_start_async_the_resource_lives_on_the_callers_loop(rec: Recorder) -> None:
    async def main() -> None:
        async with ActorSystem.start_async(**QUIET, resources=[Api(rec)]) as system:
            caller = system.spawn(Caller, rec, name="caller")
            assert await caller.ask_async("x", timeout=10) == "api:x"
        assert system.resources.state("api") == "closed"

    asyncio.run(main())
    here = threading.current_thread().name
    assert ("open", here) in rec.events and ("close", here) in rec.events
    assert rec.events[-2:] == [("stop", "caller"), ("close", here)]


def test_a_resource_held_by_a_stuck_minion_is_closed_on_the_loop_at_shutdown(
        rec: Recorder) -> None:
    release = threading.Event()

    class Stuck(Minion):
        api = uses(Api)

        def on_receive(self, message: Any) -> Any:
            rec.add(("stuck", message))
            release.wait(30)  # past the shutdown's deadline

    system = ActorSystem.start(**QUIET, resources=[Api(rec)])
    try:
        system.spawn(Stuck, name="stuck").tell("go")
        rec.wait_for(lambda evs: ("stuck", "go") in evs, timeout=10)
        system.shutdown(timeout=1.0)
        # what was still open at the end is closed before the loop ends: on the loop
        assert ("close", "minions-loop") in rec.events
        assert system.resources.state("api") == "closed"
    finally:
        release.set()
