"""An async minion's lifecycle: async hooks, created tasks, and the cancellation of its
coroutines at stop(), shutdown() and restarts, under both ways of starting."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, MinionStopped

from .conftest import Events, Runner, until

pytestmark = pytest.mark.timeout(60)


class FailsToStart(Minion):
    """Its first incarnation's async ``on_start`` raises."""

    def __init__(self, starts: list[int]) -> None:
        super().__init__()
        self.starts = starts

    async def on_start(self) -> None:
        self.starts.append(1)
        await asyncio.sleep(0)
        if len(self.starts) == 1:
            raise RuntimeError("cannot connect")

    async def on_receive(self, message: Any) -> Any:
        return len(self.starts)


def test_an_async_on_start_that_fails_is_a_crash_in_phase_on_start(run: Runner) -> None:
    events, starts = Events(), []

    async def body(system: ActorSystem) -> Any:
        ref = system.spawn(FailsToStart, starts, name="starter")
        return await ref.ask_async("how many starts?", timeout=10)

    assert run(body, hooks=[events]) == 2
    crashed = events.of("crashed")
    assert [c[1:3] for c in crashed] == [("starter", "on_start")]
    assert "cannot connect" in crashed[0][3]


class Failing(Minion):
    """Records its async ``on_failure`` (after an await) and the next ``on_start``."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    async def on_start(self) -> None:
        self.log.append(("on_start", id(self)))

    async def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await asyncio.sleep(0.05)  # the restart must wait for it
        self.log.append(("on_failure", id(self), str(exc)))

    async def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise ValueError("bad message")
        return message


def test_an_async_on_failure_runs_before_the_restart(run: Runner) -> None:
    log: list[Any] = []

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Failing, log)
        await ref.tell_async("crash")
        assert await ref.ask_async("after", timeout=10) == "after"

    run(body)
    first, failure, second = log[:3]
    assert failure == ("on_failure", first[1], "bad message")
    assert second[0] == "on_start" and second[1] != first[1]


class Tasks(Minion):
    """Starts tasks with ``create_task``; each records how it ended."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    async def forever(self, tag: str) -> None:
        self.log.append(("running", tag))
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append(("cancelled", tag))
            raise

    async def failing(self) -> None:
        await asyncio.sleep(0)
        raise OSError("the task's connection dropped")

    async def on_receive(self, message: Any) -> Any:
        kind, tag = message
        if kind == "start":
            self.create_task(self.forever(tag), name=f"forever-{tag}")
        elif kind == "fail":
            self.create_task(self.failing())
        elif kind == "crash":
            raise RuntimeError("crash on purpose")
        return tag


def test_created_tasks_are_cancelled_at_restart_and_stop_and_their_error_is_a_crash(
        run: Runner) -> None:
    events, log = Events(), []

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Tasks, log, name="tasks")
        await ref.ask_async(("start", "first"), timeout=10)
        await until(lambda: ("running", "first") in log)
        await ref.tell_async(("crash", None))  # a restart cancels the task at once
        await until(lambda: ("cancelled", "first") in log, what="the task cancelled at restart")
        await ref.ask_async(("start", "second"), timeout=10)
        await ref.ask_async(("fail", None), timeout=10)  # its error crashes the minion
        await until(lambda: ("cancelled", "second") in log, what="the restart after the error")
        await until(lambda: len(events.of("started")) == 3, what="the third incarnation")
        await ref.ask_async(("start", "third"), timeout=10)
        await until(lambda: ("running", "third") in log)
        assert await ref.stop_async(timeout=10)
        # the stop cancels the task; it does not wait for the task to unwind
        await until(lambda: ("cancelled", "third") in log, what="the task cancelled at stop")

    run(body, hooks=[events], stop_timeout=0.3)
    crashes = [c[2:] for c in events.of("crashed")]
    assert crashes[0] == ("message", "RuntimeError('crash on purpose')")
    assert crashes[1] == ("message", "OSError(\"the task's connection dropped\")")


class Stuck(Minion):
    """A handler that awaits for ever (until cancelled), and an on_stop sync or async."""

    def __init__(self, log: list[Any], async_stop: bool) -> None:
        super().__init__()
        self.log = log
        if async_stop:
            self.on_stop = self.on_stop_async  # type: ignore[method-assign]

    async def on_receive(self, message: Any) -> Any:
        self.log.append("handling")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append("cancelled")
            raise

    def on_stop(self) -> None:
        self.log.append(("on_stop", "sync", threading.current_thread().name))

    async def on_stop_async(self) -> None:
        await asyncio.sleep(0)
        self.log.append(("on_stop", "async"))


@pytest.mark.parametrize("on_stop", ["sync", "async"])
@pytest.mark.parametrize("stopper", ["stop_async", "stop", "shutdown"])
def test_stop_and_shutdown_cancel_a_handler_in_flight_and_run_on_stop(
        run: Runner, on_stop: str, stopper: str) -> None:
    log: list[Any] = []

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Stuck, log, on_stop == "async", name="stuck")
        asked = asyncio.ensure_future(ref.ask_async("wait", timeout=30))
        await until(lambda: "handling" in log)
        if stopper == "stop_async":
            assert await ref.stop_async(timeout=10)
        elif stopper == "stop":
            assert await asyncio.to_thread(ref.stop, timeout=10)
        else:  # a shutdown gives the handler stop_timeout, then cancels it
            assert await system.shutdown_async(timeout=15)
        with pytest.raises(MinionStopped, match=r"'stuck'.*cancelled"):
            await asyncio.wait_for(asyncio.shield(asked), 10)

    run(body, stop_timeout=0.3)
    assert log[:2] == ["handling", "cancelled"]
    assert log[2][:2] == ("on_stop", on_stop)
    if on_stop == "sync":
        assert log[2][2].startswith("minions-worker")  # the runtime's work stays on the pool


class Swallower(Minion):
    """A handler that swallows the cancel and goes on until the test releases it."""

    def __init__(self, log: list[Any], release: threading.Event) -> None:
        super().__init__()
        self.log, self.release = log, release

    async def on_receive(self, message: Any) -> Any:
        self.log.append("handling")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append("swallowed")
        await until(self.release.is_set, timeout=30)
        self.log.append("ended")

    def on_stop(self) -> None:
        self.log.append("on_stop")


def test_a_handler_that_swallows_cancellation_is_reported_and_the_stop_completes(
        run: Runner) -> None:
    events, log, lines, release = Events(), [], [], threading.Event()

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Swallower, log, release, name="swallower")
        await ref.tell_async("wait")
        await until(lambda: "handling" in log)
        assert await ref.stop_async(timeout=10)  # within stop_timeout + the grace
        assert log == ["handling", "swallowed", "on_stop"]
        release.set()
        await until(lambda: "ended" in log, what="the abandoned coroutine to end")

    run(body, hooks=[events], log_sinks=[lines.append], stop_timeout=0.3)
    (error,) = events.of("lifecycle_error")
    assert error[1:3] == ("swallower", "stop")
    assert "swallowed CancelledError" in error[3] and "re-raise it" in error[3]
    reported = [line for line in lines if "swallowed CancelledError" in line]
    assert reported and "swallower" in reported[0]
    # the stop went on: a warning, not an error in on_stop
    assert "WARNING" in reported[0] and "raised in stop" not in reported[0]
    assert reported[0].record["level"].no >= 30  # WARNING or worse


class WideCrash(Minion):
    """``max_concurrency = 3``: "wait" handlers await for ever, "crash" crashes."""

    max_concurrency = 3

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    async def on_receive(self, message: Any) -> Any:
        if message == "wait":
            self.log.append(("waiting", id(self)))
            await asyncio.sleep(3600)
        if message == "crash":
            await until(lambda: len(self.log) >= 2, what="both waits to start")
            raise RuntimeError("crash on purpose")
        return (message, id(self))


def test_a_crash_cancels_the_other_handlers_in_flight_and_the_queue_goes_to_the_next_incarnation(
        run: Runner) -> None:
    log: list[Any] = []

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(WideCrash, log, name="wide")
        waits = [asyncio.ensure_future(ref.ask_async("wait", timeout=30)) for _ in range(2)]
        crash = asyncio.ensure_future(ref.ask_async("crash", timeout=30))
        after = asyncio.ensure_future(ref.ask_async("after", timeout=30))  # queued: 3 in flight
        with pytest.raises(RuntimeError, match="crash on purpose"):
            await crash
        for wait in waits:  # their askers hear at once, not at their timeouts
            with pytest.raises(MinionStopped, match=r"'wide'.*cancelled \(the minion restarted\)"):
                await asyncio.wait_for(wait, 10)
        message, incarnation = await after
        assert message == "after" and incarnation != log[0][1]

    run(body)


CHILD = str(Path(__file__).with_name("_snapshot_child.py"))


@pytest.mark.parametrize("how", ["owned", "caller"])
def test_sigterm_cancels_a_handler_in_flight_and_runs_the_async_on_stop(how: str) -> None:
    proc = subprocess.Popen([sys.executable, CHILD, how, "sigterm"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "HANDLING"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.split() == ["CANCELLED", "ON_STOP", "EXIT", "True"], (out, err)


class HangsInOnFailure(Minion):
    """Its first incarnation crashes; its async ``on_failure`` then never returns."""

    def __init__(self, starts: list[int]) -> None:
        super().__init__()
        self.starts = starts
        starts.append(1)

    async def on_failure(self, *exc_info: Any) -> None:
        await asyncio.Event().wait()  # a connection close that never completes

    async def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        return len(self.starts)


def test_an_async_on_failure_that_never_returns_is_cancelled_at_stop_timeout(
        run: Runner) -> None:
    """The restart waits for ``on_failure`` (as for a sync one) but no longer than
    ``stop_timeout``: then it is cancelled, reported, and the minion restarts."""
    events, starts = Events(), []

    async def body(system: ActorSystem) -> Any:
        ref = system.spawn(HangsInOnFailure, starts, name="hangs")
        ref.tell("boom")
        return await ref.ask_async("incarnations?", timeout=20)

    assert run(body, hooks=[events], stop_timeout=0.5) == 2
    errors = [e for e in events.of("lifecycle_error") if e[1] == "hangs"]
    assert errors and "stop_timeout" in errors[0][3], errors
