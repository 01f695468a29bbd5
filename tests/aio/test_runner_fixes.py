"""Async minions' handler runner (issue 19's speed work) and the two bugs found beside it:
``minion_started`` fired when an async ``on_start`` began, and a handler started during a
caller's loop teardown and cancelled before it ran warned "coroutine ... was never awaited"."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Hooks, Minion, MinionStopped

from .conftest import Events, Runner, until
from .test_semantics import Crashy


class SlowStart(Minion):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def on_start(self) -> None:
        self.log.append("begun")
        await asyncio.sleep(0.05)
        self.log.append("done")

    async def on_receive(self, msg: Any) -> Any:
        return msg


class StartedSeen(Hooks):
    """Records what the minion's log held when ``minion_started`` fired."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.seen: list[list[str]] = []

    def minion_started(self, cell: Any, restored: bool) -> None:
        if cell.cls_name == "SlowStart":
            self.seen.append(list(self.log))


def test_minion_started_fires_when_an_async_on_start_has_finished(run: Runner) -> None:
    log: list[str] = []
    hook = StartedSeen(log)

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(SlowStart, log)
        await until(lambda: hook.seen, what="minion_started")
        assert await ref.ask_async("hi", timeout=5) == "hi"

    run(body, hooks=[hook])
    assert hook.seen == [["begun", "done"]]  # [[]] before the fix: fired at its beginning


class Counter(Minion):
    """One at a time: every message runs on the cell's one runner, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    async def on_receive(self, msg: Any) -> Any:
        if msg == "seen":
            return self.seen
        await asyncio.sleep(0)
        self.seen.append(msg)
        return None


def test_one_runner_keeps_order_across_idle_and_busy_spells(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Counter)
        for i in range(200):
            ref.tell(i)
            if i % 50 == 0:  # let the runner park between bursts
                await asyncio.sleep(0.01)
        assert await ref.ask_async("seen", timeout=10) == list(range(200))

    run(body)


TEARDOWN = textwrap.dedent("""
    import asyncio, sys, warnings
    from minions_actors import ActorSystem, Minion

    class Handler(Minion):
        max_concurrency = int(sys.argv[1])

        async def on_receive(self, msg):
            if msg != "warm":
                await asyncio.sleep(10)

    holder = []

    async def main():
        system = await ActorSystem.start_async(log_level="ERROR", metrics_port=None)
        holder.append(system)
        ref = system.spawn(Handler)
        await asyncio.sleep(0.2)  # its first incarnation is built
        if sys.argv[2] == "warm":  # then "go" runs on a runner (its first message: a task)
            await ref.ask_async("warm", timeout=5)
        ref.tell("go")  # its turn is queued on this loop; main returns at once

    asyncio.run(main())
    holder[0].shutdown(timeout=10)
    print("ended")
""")


@pytest.mark.parametrize(("limit", "warm"), [(1, "cold"), (1, "warm"), (2, "cold")])
def test_a_handler_cancelled_in_a_loop_teardown_before_it_ran_does_not_warn(
        limit: int, warm: str, tmp_path: Path) -> None:
    # the default options: its store and log file go to the working directory, tmp_path
    done = subprocess.run([sys.executable, "-W", "error", "-c", TEARDOWN, str(limit), warm],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ended" in done.stdout
    assert "never awaited" not in done.stderr, done.stderr


def test_an_idle_minions_runner_ends_and_a_new_message_starts_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default store and log file go there, not to the checkout

    async def main() -> None:
        async with ActorSystem.start_async(log_level="ERROR", metrics_port=None) as system:
            ref = system.spawn(Counter)
            ref.tell(1)
            assert await ref.ask_async("seen", timeout=5) == [1]

            def runners() -> list[asyncio.Task[Any]]:
                return [t for t in asyncio.all_tasks() if t.get_name().startswith("minion:")]

            assert runners(), "a runner awaits its handlers"
            await until(lambda: not runners(), timeout=10, what="the idle runner to end")
            ref.tell(2)
            assert await ref.ask_async("seen", timeout=5) == [1, 2]

    asyncio.run(main())


# The tests below warm each minion with one message first, so that the handler under test
# runs on its runner (a minion's first message runs as a task of its own).


class Hang(Minion):
    """After "warm", a handler that awaits for ever; it may swallow the cancel."""

    def __init__(self, log: list[Any], swallow: bool, release: threading.Event) -> None:
        super().__init__()
        self.log, self.swallow, self.release = log, swallow, release

    async def on_receive(self, message: Any) -> Any:
        if message == "warm":
            return "warm"
        self.log.append("handling")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append("cancelled")
            if not self.swallow:
                raise
        await until(self.release.is_set, timeout=30)
        self.log.append("ended")
        return "ended"

    def on_stop(self) -> None:
        self.log.append("on_stop")


def test_a_stop_cancels_the_runners_handler_at_its_deadline_and_runs_on_stop(
        run: Runner) -> None:
    log: list[Any] = []

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Hang, log, False, threading.Event(), name="hang")
        assert await ref.ask_async("warm", timeout=5) == "warm"
        asked = asyncio.ensure_future(ref.ask_async("wait", timeout=30))
        await until(lambda: "handling" in log)
        assert await ref.stop_async(timeout=10)
        with pytest.raises(MinionStopped, match=r"'hang'.*cancelled"):
            await asyncio.wait_for(asyncio.shield(asked), 10)

    run(body, stop_timeout=0.3)
    assert log == ["handling", "cancelled", "on_stop"]


def test_a_runners_handler_that_swallows_the_cancel_is_reported_once_and_the_stop_ends(
        run: Runner) -> None:
    events, log, release = Events(), [], threading.Event()

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Hang, log, True, release, name="swallows")
        assert await ref.ask_async("warm", timeout=5) == "warm"
        await ref.tell_async("wait")
        await until(lambda: "handling" in log)
        assert await ref.stop_async(timeout=10)  # within stop_timeout + the grace
        assert log == ["handling", "cancelled", "on_stop"]
        release.set()
        await until(lambda: "ended" in log, what="the abandoned coroutine to end")

    run(body, hooks=[events], stop_timeout=0.3)
    (error,) = events.of("lifecycle_error")
    assert error[1:3] == ("swallows", "stop") and "swallowed CancelledError" in error[3]


def test_a_crash_on_the_runner_restarts_the_minion_and_keeps_its_mailbox(run: Runner) -> None:
    events, log, release = Events(), [], threading.Event()

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Crashy, log, release, name="crashy")
        assert await ref.ask_async("warm", timeout=5) == "warm"
        await ref.tell_async("boom")
        for i in range(5):
            await ref.tell_async(i)  # queued behind the crash
        await until(lambda: len(log) > 1, what="the crash to start")
        release.set()
        assert await ref.ask_async("last", timeout=10) == "last"

    run(body, hooks=[events])
    (crashed,) = events.of("crashed")
    assert crashed[1:3] == ("crashy", "message") and "boom" in crashed[3]
    boomed = log[1][1]
    handled = log[2:]
    assert [m for m, _ in handled] == [0, 1, 2, 3, 4, "last"]
    assert all(inst != boomed for _, inst in handled), "the new incarnation handled them"


class TaskOf(Minion):
    async def on_receive(self, message: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        return id(task), task.get_name()


def test_after_its_first_message_a_minions_handlers_run_in_one_task_named_for_it(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(TaskOf, name="one")
        await ref.ask_async("first", timeout=5)
        second, third = [await ref.ask_async(i, timeout=5) for i in range(2)]
        assert second == third and second[1] == "minion:one"

    run(body)


class Payload:
    """A message the test can see collected (a weak reference to it)."""


class SwallowThenCrash(Minion):
    """Two handlers at once: a Payload's swallows the restart's cancel and goes on until the
    test releases it; "boom" crashes the minion (which is restarted)."""

    max_concurrency = 2

    def __init__(self, log: list[Any], release: threading.Event) -> None:
        super().__init__()
        self.log, self.release = log, release

    async def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "ping":
            return "pong"
        self.log.append("handling")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append("cancelled")
        await until(self.release.is_set, timeout=30)
        self.log.append("ended")


def test_an_abandoned_handler_that_ends_later_leaves_nothing_behind(run: Runner) -> None:
    # An abandoned job (it swallowed the cancel) is forgotten by its cell when its coroutine
    # finally ends: the restarted minion must not keep the old handler's message for ever.
    events, log, release = Events(), [], threading.Event()
    gone = threading.Event()

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(SwallowThenCrash, log, release, name="swallows")
        payload = Payload()
        weakref.finalize(payload, gone.set)
        await ref.tell_async(payload)
        del payload
        await until(lambda: "handling" in log)
        await ref.tell_async("boom")
        await until(lambda: events.of("lifecycle_error"), what="the abandon (after the grace)")
        release.set()
        await until(lambda: "ended" in log, what="the abandoned coroutine to end")
        assert await ref.ask_async("ping", timeout=5) == "pong"  # restarted
        for _ in range(3):
            gc.collect()
        assert gone.is_set(), "the abandoned handler's message is still referenced"

    run(body, hooks=[events])
