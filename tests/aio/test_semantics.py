"""What an async minion does with its messages: crashes, ordering, concurrency, asks,
mixed sync and async methods, refusals and death watch, under both ways of starting."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    AskDeadlock,
    AskTimeout,
    ChildProcess,
    Minion,
    MinionRef,
    SpawnError,
    Terminated,
)

from .conftest import Events, Runner, until

pytestmark = pytest.mark.timeout(60)


class Crashy(Minion):
    """Crashes on "boom" once ``release`` is set; logs the other messages per incarnation."""

    def __init__(self, log: list[Any], release: threading.Event) -> None:
        super().__init__()
        self.log, self.release = log, release

    async def on_receive(self, message: Any) -> Any:
        if message == "boom":
            self.log.append(("boom", id(self)))
            await until(self.release.is_set, what="the test to release the crash")
            raise RuntimeError("boom")
        self.log.append((message, id(self)))
        return message


def test_a_crash_in_a_coroutine_restarts_the_minion_and_keeps_its_mailbox(run: Runner) -> None:
    events, log, release = Events(), [], threading.Event()

    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Crashy, log, release, name="crashy")
        await ref.tell_async("boom")
        for i in range(5):
            await ref.tell_async(i)  # queued behind the crash
        await until(lambda: log, what="the crash to start")
        release.set()
        assert await ref.ask_async("last", timeout=10) == "last"

    run(body, hooks=[events])
    (crashed,) = events.of("crashed")
    assert crashed[1:3] == ("crashy", "message") and "boom" in crashed[3]
    boomed = log[0][1]
    handled = log[1:]
    assert [m for m, _ in handled] == [0, 1, 2, 3, 4, "last"]
    assert all(inst != boomed for _, inst in handled), "the new incarnation handled them"


class Counter(Minion):
    """A read-modify-write across an await: interleaving would lose increments."""

    def __init__(self) -> None:
        super().__init__()
        self.n = self.inside = self.overlaps = 0

    async def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.n, self.overlaps
        self.inside += 1
        self.overlaps += self.inside > 1
        seen = self.n
        await asyncio.sleep(0)
        await asyncio.sleep(0.0005)
        self.n = seen + 1
        self.inside -= 1
        return None


def test_one_message_at_a_time_holds_across_awaits(run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        ref = system.spawn(Counter)
        senders = [ref.tell_async(i) for i in range(300)]
        await asyncio.gather(*senders, *(ref.ask_async(i, timeout=30) for i in range(50)))
        return await ref.ask_async("get", timeout=30)

    assert run(body) == (350, 0)


N = 4


class Wide(Minion):
    """``max_concurrency = N``: every handler waits until N run at once (which fails with
    fewer), then holds a moment so that an N+1th would be counted in ``peak``. Once fewer
    than N of the ``5 * N`` messages are left unfinished, it waits for those: handlers end
    and start one by one, so the last one may well run alone."""

    max_concurrency = N

    def __init__(self) -> None:
        super().__init__()
        self.running = self.peak = self.finished = 0

    async def on_receive(self, message: Any) -> Any:
        if message == "peak":
            return self.peak
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await until(lambda: self.running >= min(N, 5 * N - self.finished),
                        what=f"{N} handlers at once")
            await asyncio.sleep(0.02)
        finally:
            self.running -= 1
            self.finished += 1
        return message


def test_max_concurrency_interleaves_handlers_and_bounds_them(run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        ref = system.spawn(Wide)
        replies = await asyncio.gather(*(ref.ask_async(i, timeout=30) for i in range(5 * N)))
        assert replies == list(range(5 * N))  # each asker gets its own reply
        return await ref.ask_async("peak", timeout=10)

    assert run(body) == N


class Mixed(Minion):
    def where_sync(self) -> str:
        return threading.current_thread().name

    async def where_async(self) -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    async def on_receive(self, message: Any) -> Any:
        return ("got", message)


def test_sync_and_async_methods_of_one_class_and_awaitable_proxies_and_futures(
        run: Runner, how: str) -> None:
    async def body(system: ActorSystem) -> tuple[str, str, Any]:
        ref = system.spawn(Mixed)
        proxy = ref.proxy()
        sync_thread = await proxy.where_sync()
        async_thread = await proxy.where_async()
        reply = await ref.ask("x", block=False)
        return sync_thread, async_thread, reply

    sync_thread, async_thread, reply = run(body)
    assert sync_thread.startswith("minions-worker"), sync_thread  # a pool worker
    loop_thread = "minions-loop" if how == "owned" else threading.current_thread().name
    assert async_thread == loop_thread
    assert reply == ("got", "x")


class Slow(Minion):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    async def on_receive(self, message: Any) -> Any:
        await until(self.release.is_set, timeout=30)
        return message


def test_ask_async_times_out_with_the_same_error_as_ask(run: Runner) -> None:
    release = threading.Event()

    async def body(system: ActorSystem) -> tuple[BaseException, BaseException]:
        ref = system.spawn(Slow, release, name="slow")
        with pytest.raises(AskTimeout, match="'slow'") as awaited:
            await ref.ask_async("a", timeout=0.2)
        with pytest.raises(AskTimeout) as blocked:  # the blocking ask, off the loop
            await asyncio.to_thread(ref.ask, "b", timeout=0.2)
        release.set()
        assert await ref.ask_async("c", timeout=10) == "c"
        return awaited.value, blocked.value

    awaited, blocked = run(body)
    assert type(awaited) is type(blocked) is AskTimeout


class Pinger(Minion):
    """Asks its peer, which asks back: a cycle (each handles one message at a time)."""

    peer: MinionRef[Any] | None = None

    async def on_receive(self, message: Any) -> Any:
        if isinstance(message, MinionRef):
            self.peer = message
            return None
        assert self.peer is not None
        if message == "start":
            try:
                await self.peer.ask_async("back", timeout=20)
            except (AskTimeout, AskDeadlock) as exc:
                return type(exc).__name__, str(exc)
            return "no cycle?"
        return await self.peer.ask_async("never answered", timeout=20)


def test_an_ask_cycle_between_async_minions_is_refused_not_left_to_the_timeouts(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        a, b = system.spawn(Pinger, name="a"), system.spawn(Pinger, name="b")
        await a.ask_async(b, timeout=10)
        await b.ask_async(a, timeout=10)
        began = time.monotonic()
        ended = await a.ask_async("start", timeout=30)
        return ended, time.monotonic() - began

    (kind, text), took = run(body)
    assert kind == "AskDeadlock"  # b's ask, which closes the cycle, is refused...
    assert "ask cycle 'b' -> 'a' -> 'b'" in text
    assert took < 10  # ...at once, not when the 20 s timeouts pass


class Blocker(Minion):
    def __init__(self, other: MinionRef[Any]) -> None:
        super().__init__()
        self.other = other

    async def on_receive(self, message: Any) -> Any:
        return self.other.ask(message, timeout=5)  # blocking: refused in a coroutine


class Echo(Minion):
    async def on_receive(self, message: Any) -> Any:
        return message


def test_a_blocking_ask_inside_an_async_handler_raises_ask_deadlock(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        ref = system.spawn(Blocker, system.spawn(Echo, name="echo"), name="blocker")
        with pytest.raises(AskDeadlock, match=r"await ref\.ask_async\(\.\.\.\)") as err:
            await ref.ask_async("hi", timeout=10)
        assert "'echo'" in str(err.value) and "blocking" in str(err.value)

    run(body)


class AsyncOnly(Minion):
    async def on_receive(self, message: Any) -> Any:
        return message


class AsyncOnOwnThread(AsyncOnly):
    dedicated_thread = True


def test_dedicated_thread_and_placement_are_refused_for_async_classes(run: Runner) -> None:
    async def body(system: ActorSystem) -> None:
        with pytest.raises(SpawnError, match=r"AsyncOnly is an async minion .*drop dedicated"):
            system.spawn(AsyncOnly, dedicated_thread=True)
        with pytest.raises(SpawnError, match="AsyncOnOwnThread is an async minion"):
            system.spawn(AsyncOnOwnThread)
        with pytest.raises(SpawnError, match=r"cannot be placed.*spawn it here"):
            system.spawn(AsyncOnly, placement=ChildProcess())

    run(body)


class Watcher(Minion):
    def __init__(self, target: MinionRef[Any], seen: list[Any]) -> None:
        super().__init__()
        self.target, self.seen = target, seen

    async def on_start(self) -> None:
        await asyncio.sleep(0)
        self.watch(self.target)

    async def on_receive(self, message: Any) -> Any:
        if isinstance(message, Terminated):
            await asyncio.sleep(0)
            self.seen.append((message.path, message.reason))
        return "watching"


def test_death_watch_reaches_an_async_watcher(run: Runner) -> None:
    seen: list[Any] = []

    async def body(system: ActorSystem) -> None:
        target = system.spawn(Echo, name="target")
        watcher = system.spawn(Watcher, target, seen, name="watcher")
        assert await watcher.ask_async("ready?", timeout=10) == "watching"
        assert await target.stop_async(timeout=10)
        await until(lambda: seen, what="Terminated at the watcher")

    run(body)
    assert seen == [("target", "stopped")]


class SyncPeer(Minion):
    def method(self, x: Any) -> Any:
        return ("method", x)

    def on_receive(self, message: Any) -> Any:
        return ("received", message)


class Awaiter(Minion):
    """Awaits, in its handler, futures and proxy calls of sync minions (a peer, a child)."""

    def __init__(self, peer: MinionRef[Any]) -> None:
        super().__init__()
        self.peer = peer

    async def on_receive(self, message: Any) -> Any:
        if message == "self":
            return await self.ref.proxy().method_of_self()
        child = self.spawn(SyncPeer, name="child")
        return [await self.peer.ask("x", block=False), await self.peer.proxy().method(1),
                await self.peer.ask_async("y", timeout=10), await child.proxy().method(2),
                await child.stop_async(timeout=10)]

    def method_of_self(self) -> str:
        return "never: the reply would wait for this handler"


def test_an_async_handler_awaits_futures_and_proxies_of_sync_minions_but_not_its_own(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> Any:
        ref = system.spawn(Awaiter, system.spawn(SyncPeer), name="awaiter")
        with pytest.raises(AskDeadlock, match=r"'awaiter'.*reply from itself"):
            await ref.ask_async("self", timeout=10)
        return await ref.ask_async("go", timeout=10)

    assert run(body) == [("received", "x"), ("method", 1), ("received", "y"), ("method", 2),
                         True]
