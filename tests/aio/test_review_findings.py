"""Review of the async minions core (S4): each test reproduces one finding through the public
API on real loops and threads. Those marked ``EAGER`` need Python 3.12+ (eager tasks): run
them with /work/mx/venv-3.12/bin/python or /work/mx/venv-3.13t/bin/python."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, OneForAll
from minions_actors.errors import AskDeadlock, MinionStopped

from ..conftest import QUIET

EAGER = pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks: Python 3.12+")


class Svc(Minion):
    async def on_receive(self, msg: Any) -> Any:
        if msg == "boom":
            raise ValueError("boom")
        if msg == "cancel-me":
            fut = asyncio.get_running_loop().create_future()
            fut.cancel()
            await fut  # CancelledError at once, without suspending
        return msg

    async def add(self, a: int, b: int) -> int:
        return a + b


class Slow(Minion):
    async def on_receive(self, msg: Any) -> Any:
        await asyncio.sleep(0.3)
        return msg


class Forever(Minion):
    async def on_receive(self, msg: Any) -> Any:
        await asyncio.sleep(60)


class TaskExits(Minion):
    async def on_receive(self, msg: Any) -> Any:
        async def bad() -> None:
            await asyncio.sleep(0.05)
            raise SystemExit(3)

        self.create_task(bad())
        return msg


def test_proxy_call_with_bad_arguments_is_answered(system: ActorSystem) -> None:
    """async_dispatch._start_here queues the TypeError and returns True: _turn then ends
    DONE (inflight == limit) and no turn collects it until the next message."""
    proxy = system.spawn(Svc).proxy()
    assert proxy.add(1, 2).get(timeout=5) == 3
    with pytest.raises(TypeError):
        proxy.add(1, 2, 3).get(timeout=3)  # AskTimeout before the fix


@EAGER
def test_handler_error_before_first_await_is_answered(system: ActorSystem) -> None:
    """Same lost wake-up for an eagerly finished handler that raised (or any outcome the
    loop cannot collect: a snapshot to write, a stale incarnation)."""
    ref = system.spawn(Svc)
    assert ref.ask("warm", timeout=5) == "warm"
    with pytest.raises(ValueError):
        ref.ask("boom", timeout=3)  # AskTimeout before the fix


@EAGER
def test_handler_cancelled_before_first_await_does_not_wedge_the_minion(
        system: ActorSystem) -> None:
    """task.result() raises CancelledError in _start_here: the job is never queued, inflight
    stays 1 and the minion handles nothing again (its stop times out)."""
    ref = system.spawn(Svc)
    assert ref.ask("warm", timeout=5) == "warm"  # (the first message goes through the pool)
    with pytest.raises(MinionStopped):
        ref.ask("cancel-me", timeout=3)
    assert ref.ask("after", timeout=3) == "after"


def test_stop_handles_the_backlog_until_its_deadline_then_cancels_the_handler_in_flight(
        ) -> None:
    """ref.stop() comes after the backlog (as for sync minions), and the minion gets
    stop_timeout to stop: the backlog's handlers that end before then are answered, the
    one in flight at the deadline is cancelled (whenever it started: a hung one would hold
    the stop for ever), and the stop completes."""
    system = ActorSystem.start(**QUIET, stop_timeout=0.5)
    try:
        ref = system.spawn(Slow)
        futures = [ref.ask(i, block=False) for i in range(5)]
        stop = ref.stop(block=False)
        assert futures[0].get(timeout=10) == 0  # (0.0-0.3 s: before the deadline)
        with pytest.raises(MinionStopped):
            futures[1].get(timeout=10)  # (0.3-0.6 s: in flight at the 0.5 s deadline)
        assert stop.get(timeout=10) is True
    finally:
        system.shutdown(timeout=10)


class Hangs(Minion):
    async def on_receive(self, message: Any) -> Any:
        await asyncio.Event().wait()


def test_a_stop_cancels_a_backlog_handler_that_started_after_the_stop_came() -> None:
    """The handler of a message queued before the stop may start after the stop came (the
    stop's request is handled at once): it is cancelled at the deadline all the same."""
    system = ActorSystem.start(**QUIET, stop_timeout=0.3)
    try:
        ref = system.spawn(Hangs)
        ref.tell("wait")  # (its turn may not have begun when the stop arrives)
        assert ref.stop(timeout=10) is True
    finally:
        system.shutdown(timeout=10)


def test_shutdown_cancels_handlers_in_flight_in_time() -> None:
    """The shutdown's Terminate carries the parent's share of the whole shutdown as its
    deadline; the cancel fires only then, when the parent has given the child up: the
    shutdown takes its whole timeout and reports itself unclean."""
    system = ActorSystem.start(**QUIET, stop_timeout=0.5)
    ref = system.spawn(Forever)
    future = ref.ask("x", block=False)
    time.sleep(0.2)
    t0 = time.monotonic()
    clean = system.shutdown(timeout=10)
    took = time.monotonic() - t0
    assert clean, "shutdown was unclean"
    assert took < 5.0, f"shutdown took {took:.1f}s of its 10s"
    with pytest.raises(MinionStopped):
        future.get(timeout=1)


def test_system_exit_in_a_created_task_stays_in_the_runtime() -> None:
    """A created task is not wrapped like handlers are (_outcome): its SystemExit escapes
    Task.__step and ends the loop's run_forever: the caller's asyncio.run() (under
    start_async), or the thread minions-loop (start(): in-flight handlers of unrelated
    minions are then cancelled, and the shutdown is sometimes unclean)."""

    async def main() -> bool:
        system = await ActorSystem.start_async(**QUIET, stop_timeout=1)
        try:
            ref = system.spawn(TaskExits)
            assert await ref.ask_async("go", timeout=5) == "go"
            return await system.wait_async(timeout=10)  # the SystemExit stops the system
        finally:
            await system.shutdown_async(timeout=10)

    try:
        stopped = asyncio.run(main())
    except SystemExit as exc:  # before the fix
        pytest.fail(f"the minion's SystemExit({exc.code}) ended the caller's event loop")
    assert stopped


class TaskOutcomes(Minion):
    async def on_receive(self, msg: Any) -> Any:
        async def value() -> int:
            await asyncio.sleep(0)
            return 7

        async def error() -> None:
            await asyncio.sleep(0)
            raise KeyError("mine")

        got = await self.create_task(value())
        try:
            await self.create_task(error())
        except KeyError as exc:
            return got, exc.args
        return got, None


def test_a_created_tasks_result_and_exception_stay_its_coroutines_own(
        system: ActorSystem) -> None:
    """The wrapper that keeps a task's SystemExit in the runtime leaves the rest alone (the
    KeyError also crashes the minion, as a created task's error does, after the answer)."""
    assert system.spawn(TaskOutcomes).ask("go", timeout=5) == (7, ("mine",))


def test_two_coroutines_awaiting_one_future_are_both_woken() -> None:
    """MinionFuture._waiter holds one (loop, future): a second awaiter replaces the first,
    which is never woken."""

    async def main() -> tuple[int, int]:
        async with ActorSystem.start_async(**QUIET) as system:
            future = system.spawn(Slow).ask("x", block=False)

            async def waiter() -> Any:
                return await future

            done, pending = await asyncio.wait(
                [asyncio.create_task(waiter()) for _ in range(2)], timeout=5)
            for task in pending:
                task.cancel()
            return len(done), len(pending)

    assert asyncio.run(main()) == (2, 0)


def test_blocking_ask_on_the_hosting_loop_fails_at_once() -> None:
    """Under start_async, a blocking ask() (or stop(), shutdown()) from a coroutine of the
    hosting loop can never be answered by an async minion (it needs that loop): refuse it
    at once, as get() does inside an async minion, instead of a timeout (or a hang)."""

    async def main() -> float:
        async with ActorSystem.start_async(**QUIET) as system:
            ref = system.spawn(Svc)
            assert await ref.ask_async("warm", timeout=5) == "warm"
            t0 = time.monotonic()
            with pytest.raises((AskDeadlock, RuntimeError)):
                ref.ask("x", timeout=3)  # AskTimeout after 3 s before the fix
            return time.monotonic() - t0

    assert asyncio.run(main()) < 1.0


def test_blocking_stop_and_shutdown_on_the_hosting_loop_fail_at_once() -> None:
    """As for ask(): ref.stop() of an async minion and system.shutdown() from a coroutine of
    the loop that hosts the async minions are refused at once, pointing to their async
    forms, which then work."""

    async def main() -> None:
        async with ActorSystem.start_async(**QUIET) as system:
            ref = system.spawn(Svc)
            assert await ref.ask_async("warm", timeout=5) == "warm"
            t0 = time.monotonic()
            with pytest.raises(AskDeadlock, match="stop_async"):
                ref.stop(timeout=3)
            with pytest.raises(AskDeadlock, match="shutdown_async"):
                system.shutdown(timeout=3)
            assert time.monotonic() - t0 < 1.0
            assert await ref.stop_async(timeout=5)

    asyncio.run(main())


def test_asks_are_answered_when_the_caller_loop_closes() -> None:
    """The caller's loop (start_async) closes while the runtime has just posted work to it
    (call_soon_threadsafe of _begin, or of loop_turn with ``sched`` held): the callback is
    dropped with the loop, the job never settles (inflight stays 1, "coroutine never
    awaited") or the cell keeps ``sched`` for ever: the ask is never answered and the
    minion never stops. Intermittent per round (about one in two here), so five rounds."""

    async def main() -> tuple[ActorSystem, list[Any]]:
        system = await ActorSystem.start_async(**QUIET, stop_timeout=1)
        ref = system.spawn(Slow)
        return system, [ref.ask(i, block=False) for i in range(3)]

    for _ in range(5):
        system, futures = asyncio.run(main())
        try:
            for future in futures:
                with pytest.raises(MinionStopped):
                    future.get(timeout=5)  # AskTimeout before the fix
        finally:
            assert system.shutdown(timeout=5)
    assert not [t for t in threading.enumerate() if t.name.startswith("minions-")]


class Poller(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.result: Any = None

    async def on_receive(self, msg: Any) -> Any:
        if msg == "start":
            async def background() -> None:
                await asyncio.sleep(0.05)  # the handler has ended by now
                try:
                    self.result = await self.actor_ref.ask_async("ping", timeout=2)
                except Exception as exc:
                    self.result = exc

            self.create_task(background())
            return "started"
        if msg == "ping":
            return "pong"
        return self.result


def test_a_created_task_is_not_its_handler(system: ActorSystem) -> None:
    """start_task copies the creating handler's context, current_handler_cell included: a
    background task asking its own minion (free again) is refused as a self-wait."""
    ref = system.spawn(Poller)
    assert ref.ask("start", timeout=5) == "started"
    ref.ask("sleep", timeout=5)
    deadline = time.monotonic() + 5
    while ref.ask("result", timeout=5) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ref.ask("result", timeout=5) == "pong"  # AskDeadlock before the fix


class Kicker(Minion):
    async def on_receive(self, msg: Any) -> Any:
        if isinstance(msg, tuple):
            msg[0].tell(self.actor_ref)  # B's turn is scheduled from this coroutine
            return "kicked"
        return "a-answer"


class Concurrent(Minion):
    max_concurrency = 2

    def __init__(self) -> None:
        super().__init__()
        self.result: Any = None

    async def on_receive(self, msg: Any) -> Any:
        if msg == "result":
            return self.result
        try:
            self.result = await msg.ask_async("hello", timeout=2)
        except Exception as exc:
            self.result = exc
        return None


def test_a_turn_scheduled_from_a_coroutine_does_not_inherit_its_context(
        system: ActorSystem) -> None:
    """LoopHost.call on the loop thread uses loop.call_soon, whose Handle copies the calling
    coroutine's context (A's handler); B's handler (max_concurrency 2: the handler var is
    not reset) then runs as A's handler, and B asking A is refused as A asking itself."""
    b = system.spawn(Concurrent)
    a = system.spawn(Kicker)
    assert a.ask((b,), timeout=5) == "kicked"
    deadline = time.monotonic() + 5
    while b.ask("result", timeout=5) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.ask("result", timeout=5) == "a-answer"  # AskDeadlock before the fix


class Listener(Minion):
    async def on_receive(self, msg: Any) -> Any:
        await asyncio.sleep(30)  # a long poll
        return "poll-ended"


class Fragile(Minion):
    def on_receive(self, msg: Any) -> Any:
        raise RuntimeError("crash")


class GroupSup(Minion):
    strategy = OneForAll(max_restarts=5, within=60)

    def on_start(self) -> None:
        self.listener = self.spawn(Listener, name="listener")
        self.fragile = self.spawn(Fragile, name="fragile")

    def on_receive(self, msg: Any) -> Any:
        return (self.listener, self.fragile)


def test_a_group_restart_cancels_an_async_siblings_handler(system: ActorSystem) -> None:
    """StopInstance (one_for_all) ends the async sibling's incarnation, but nothing cancels
    its handler: the StopInstance waits behind it, the supervisor waits GROUP_STEP_TIMEOUT
    (5 s) twice, and the sibling keeps its old incarnation until the handler ends."""
    sup = system.spawn(GroupSup)
    listener, fragile = sup.ask("refs", timeout=5)
    poll = listener.ask("poll", block=False)
    time.sleep(0.2)
    fragile.tell("boom")
    with pytest.raises(MinionStopped):
        poll.get(timeout=4)  # AskTimeout before the fix
    deadline = time.monotonic() + 4
    while listener._cell.incarnation < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listener._cell.incarnation == 2
