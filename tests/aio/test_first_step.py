"""A one-at-a-time async minion's handler runs its first step at once, in the loop callback
that drains ready minions, as the runner task that owns the rest (issue 19's speed work):
asyncio semantics hold from the handler's first line, order holds across many hops, a
crash there is a crash, and a long ping-pong does not starve the loop's other callbacks."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import sys
import threading
import time
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion
from minions_actors.runtime import task_entry

from .conftest import Events, Runner, until

# Every minion below is warmed with one message first: a minion's first message runs as a
# task of its own; the ones after run on its runner, first step at once.
WARM = "warm"
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("first_step_var", default="unset")


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="checked on the Pythons CI runs")
def test_first_step_runs_as_the_given_task_in_its_context() -> None:
    """The private asyncio functions exist on this Python and do what task_entry needs."""
    assert task_entry.AVAILABLE

    async def owner_body() -> None:
        await asyncio.sleep(3600)

    async def step() -> Any:
        VAR.set("set in the step")
        return asyncio.current_task()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        owner = loop.create_task(owner_body())
        context = contextvars.Context()
        seen: list[Any] = []
        loop.call_soon(lambda: seen.append(task_entry.first_step(loop, owner, context,
                                                                 step())))
        await until(lambda: seen)
        assert seen == [(task_entry.DONE, owner)]
        assert context[VAR] == "set in the step"
        assert VAR.get() == "unset"  # (not the caller's context)
        owner.cancel()

    asyncio.run(main())


class Semantics(Minion):
    """Handlers whose first step uses what captures the current task, then suspends."""

    async def on_receive(self, msg: Any) -> Any:
        if msg == WARM:
            return WARM
        if msg == "task":
            first = asyncio.current_task()
            VAR.set("from the first step")
            await asyncio.sleep(0.001)
            return first is asyncio.current_task() and first is not None, VAR.get()
        if msg == "timeout":
            try:
                async with asyncio.timeout(0.05):
                    await asyncio.sleep(30)
            except TimeoutError:
                return "timed out"
            return "not timed out"
        if msg == "taskgroup":
            async with asyncio.TaskGroup() as group:
                one = group.create_task(asyncio.sleep(0.01, result=1))
                two = group.create_task(asyncio.sleep(0.02, result=2))
            return one.result() + two.result()
        if msg == "taskgroup-fails":  # a child fails before the handler's await resumes
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(_fail_now())
                    await asyncio.sleep(30)
            except ExceptionGroup as group_error:
                return [type(e).__name__ for e in group_error.exceptions]
            return "no failure"
        if msg == "self-cancel":  # the cancel reaches the runner before it resumes this
            asyncio.current_task().cancel()  # type: ignore[union-attr]
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                return "cancelled at its await"
            return "not cancelled"
        return msg


async def _fail_now() -> None:
    raise ValueError("at once")


@pytest.mark.parametrize("msg,expected", [
    ("task", (True, "from the first step")),
    ("timeout", "timed out"),
    ("taskgroup", 3),
    ("taskgroup-fails", ["ValueError"]),
    ("self-cancel", "cancelled at its await"),
])
def test_a_first_step_sees_the_task_that_runs_the_rest(run: Runner, msg: str,
                                                       expected: Any) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Semantics)
        assert await ref.ask_async(WARM, timeout=10) == WARM
        for _ in range(3):  # (the runner parked, then busy)
            assert await ref.ask_async(msg, timeout=10) == expected
        assert await ref.ask_async("after", timeout=10) == "after"

    run(body)


class Hop(Minion):
    """Forwards each number to ``next`` (records it when last); awaits on some."""

    def __init__(self, nxt: Any) -> None:
        super().__init__()
        self.next = nxt
        self.seen: list[int] = []

    async def on_receive(self, msg: Any) -> Any:
        if msg == "seen":
            return self.seen
        if msg % 7 == 0:
            await asyncio.sleep(0)  # a suspension now and then: order must hold across it
        if self.next is None:
            self.seen.append(msg)
        else:
            self.next.tell(msg)
        return None


def test_order_holds_across_many_hops(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        last = system.spawn(Hop, None)
        chain = [last]
        for _ in range(9):
            chain.append(system.spawn(Hop, chain[-1]))
        first = chain[-1]
        for i in range(2000):
            first.tell(i)
            if i % 500 == 0:
                await asyncio.sleep(0.005)  # let runners park between bursts
        deadline = time.monotonic() + 60
        while len(seen := await last.ask_async("seen", timeout=10)) < 2000:
            assert time.monotonic() < deadline, f"{len(seen)} of 2000 arrived"
            await asyncio.sleep(0.01)
        assert seen == list(range(2000))

    run(body)


class CrashFirst(Minion):
    """Raises in its first step (no await before the error)."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    async def on_receive(self, msg: Any) -> Any:
        if msg == "boom":
            raise RuntimeError("boom in the first step")
        self.log.append(msg)
        return msg


def test_a_crash_in_a_first_step_restarts_and_keeps_the_mailbox(run: Runner) -> None:
    events, log = Events(), []

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(CrashFirst, log, name="crashy")
        assert await ref.ask_async(WARM, timeout=10) == WARM
        asked = asyncio.ensure_future(ref.ask_async("boom", timeout=10))
        for i in range(5):  # queued behind the crash: kept for the next incarnation
            ref.tell(i)
        with pytest.raises(RuntimeError, match="boom in the first step"):
            await asked
        await until(lambda: log[-1:] == [4], timeout=30, what="the kept messages")
        assert log == [WARM, 0, 1, 2, 3, 4]

    run(body, hooks=[events])
    assert [e[1:3] for e in events.of("crashed")] == [("crashy", "message")]


class Ping(Minion):
    """Ping-pong by tells: ``("go", peer, n, done)`` starts ``n`` round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.left = 0
        self.peer: Any = None
        self.done: Any = None

    async def on_receive(self, msg: Any) -> Any:
        if msg == "pong":
            self.left -= 1
            if self.left > 0:
                self.peer.tell(self.actor_ref)
            else:
                self.done.set()
        elif isinstance(msg, tuple):
            _, self.peer, self.left, self.done = msg
            self.peer.tell(self.actor_ref)
        else:
            msg.tell("pong")


def test_a_long_ping_pong_does_not_starve_the_loops_other_callbacks(run: Runner) -> None:
    """Round trips run many to a loop callback, but a bounded number: a callback that
    queues itself again keeps running meanwhile, with a short lag."""
    rounds = 20_000

    async def body(system: ActorSystem) -> None:
        a, b = system.spawn(Ping), system.spawn(Ping)
        loop = system.loop_host.ensure()  # (the runtime's starts on first use)
        assert loop is not None
        ticks: list[float] = []
        done = threading.Event()

        def tick() -> None:  # on the minions' loop
            ticks.append(time.monotonic())
            if not done.is_set():
                loop.call_soon(tick)  # type: ignore[union-attr]

        warm = threading.Event()
        a.tell(("go", b, 10, warm))
        await until(warm.is_set, what="the warm-up round trips")
        loop.call_soon_threadsafe(tick)
        await until(lambda: ticks, what="the ticker")
        start = len(ticks)
        a.tell(("go", b, rounds, done))
        await until(done.is_set, timeout=120, what="the ping-pong")
        during = ticks[start:]
        # 2 turns a round trip, DRAIN_TURNS (100) turns a callback at most: ~400 drains
        assert len(during) >= 100, len(during)
        gaps = [y - x for x, y in itertools.pairwise(during)]
        assert max(gaps) < 5.0, max(gaps)  # (a drain: ~1 ms quiet; generous for a loaded box)

    run(body)


class Interleaving(Semantics):
    max_concurrency = 2  # every handler has a task of its own


FIRST_MESSAGES = [("task", (True, "from the first step")), ("timeout", "timed out"),
                  ("taskgroup-fails", ["ValueError"]), ("self-cancel", "cancelled at its await")]


@pytest.mark.parametrize("msg,expected", FIRST_MESSAGES)
def test_a_first_step_in_a_handlers_own_task_sees_that_task(run: Runner, msg: str,
                                                            expected: Any) -> None:
    """A minion's first message, and every message of one with max_concurrency above 1,
    runs in a task of its own: its first step runs as that task (eagerly on 3.12+; before,
    see async_tasks._Rest)."""
    async def body(system: ActorSystem) -> None:
        for _ in range(3):
            assert await system.spawn(Semantics).ask_async(msg, timeout=10) == expected
        interleaving = system.spawn(Interleaving)
        for _ in range(3):
            assert await interleaving.ask_async(msg, timeout=10) == expected

    run(body)
