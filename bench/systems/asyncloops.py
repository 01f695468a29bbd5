"""Scenarios shared by the asyncio-hosted systems: async minions on the caller's loop and the
hand-written asyncio baseline (one task + one ``asyncio.Queue`` per actor).

As in ``threaded.py``, the actor logic lives in mixins (:class:`AsyncSleepLogic`,
:class:`AsyncCounterLogic`, :class:`AsyncPingLogic`) combined with ``Minion`` in one adapter
and with :class:`~bench.systems.asyncio_sys.QueueActor` in the other, so both run the same
coroutine handlers and the measurement loops below are identical; only starting, spawning,
asking and stopping differ. Every repetition runs in a fresh ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any, TypeVar

from bench.common import WAIT, percentile, rss_bytes
from bench.systems.base import Metrics, System
from bench.systems.threaded import FIN, GET

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one repetition in a fresh event loop; a hang fails after :data:`WAIT` seconds."""
    return asyncio.run(asyncio.wait_for(coro, WAIT))


class AsyncLatch:
    """A countdown latch for one event loop (``count_down`` from that loop only)."""

    __slots__ = ("_done", "_left")

    def __init__(self, n: int) -> None:
        self._left = n
        self._done = asyncio.Event()
        if n <= 0:
            self._done.set()

    def count_down(self) -> None:
        """Count one arrival."""
        self._left -= 1
        if self._left == 0:
            self._done.set()

    async def wait(self) -> None:
        """Wait until the count reached zero (the repetition's own timeout bounds it)."""
        await self._done.wait()


class AsyncSleepLogic:
    """One coroutine handler: sleep for the message's seconds, then count ``done`` down.
    No ``on_start``, so spawning one runs no coroutine."""

    def __init__(self, done: Any) -> None:
        super().__init__()
        self.done = done

    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(message)
        self.done.count_down()


class AsyncCounterLogic:
    """Coroutine handlers: an int is counted (no reply value), ``"get"`` answers the count,
    ``"fin"`` counts down ``done``. ``started`` counts down in ``on_start``.

    The latches are duck-typed (``count_down()``): an :class:`AsyncLatch` when the caller
    shares the actors' loop, a thread-safe :class:`~bench.common.Latch` when it does not.
    """

    def __init__(self, started: Any = None, done: Any = None) -> None:
        super().__init__()
        self.count = 0
        self.started = started
        self.done = done

    async def on_start(self) -> None:
        if self.started is not None:
            self.started.count_down()

    async def on_receive(self, message: Any) -> Any:
        if message.__class__ is int:
            self.count += 1
            return None
        if message == GET:
            return self.count
        if message == FIN and self.done is not None:
            self.done.count_down()
        return None


class AsyncPingLogic:
    """Ping-pong by tells, as :class:`~bench.systems.threaded.PingLogic` but in a coroutine:
    ``("go", peer, n, finished)`` starts ``n`` round trips; any ref is answered ``"pong"``.
    ``finished`` is anything with ``set()`` (an ``asyncio.Event`` on the same loop, a
    ``threading.Event`` from another thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.left = 0
        self.peer: Any = None
        self.finished: Any = None

    async def on_receive(self, message: Any) -> Any:
        if message == "pong":
            self.left -= 1
            if self.left > 0:
                self.peer.tell(self.actor_ref)  # type: ignore[attr-defined]
            else:
                self.finished.set()
        elif isinstance(message, tuple):
            _, self.peer, self.left, self.finished = message
            self.peer.tell(self.actor_ref)  # type: ignore[attr-defined]
        else:
            message.tell("pong")
        return None


class AsyncLoops(System):
    """Measurement loops for actors hosted on the caller's event loop."""

    counter_cls: Any
    ping_cls: Any
    sleeper_cls: Any

    # -- what subclasses provide -------------------------------------------------------
    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start the runtime on the running loop for one repetition and stop it after."""
        raise NotImplementedError
        yield  # pragma: no cover

    def spawn(self, cls: Any, *args: Any) -> Any:
        """Start one actor of ``cls`` on the running loop and return its ref."""
        raise NotImplementedError

    def asker(self, ref: Any) -> Callable[[Any], Awaitable[Any]]:
        """The awaitable ask of ``ref``: ``await asker(ref)(message)`` is the reply."""
        raise NotImplementedError

    async def stop_all(self, refs: list[Any]) -> None:
        """Stop the given actors and wait until all have stopped."""
        raise NotImplementedError

    # -- scenarios ---------------------------------------------------------------------
    def sleep_each(self, n: int, seconds: float) -> Metrics:
        return run(self._sleep_each(n, seconds))

    async def _sleep_each(self, n: int, seconds: float) -> Metrics:
        async with self.running():
            done = AsyncLatch(n)
            cls = self.sleeper_cls
            t0 = perf_counter()
            refs = [self.spawn(cls, done) for _ in range(n)]
            t1 = perf_counter()
            for ref in refs:
                ref.tell(seconds)
            await done.wait()
            t2 = perf_counter()
        return {"total": t2 - t0, "spawn": t1 - t0, "after": t2 - t1}

    def pingpong(self, n: int) -> Metrics:
        return run(self._pingpong(n))

    async def _pingpong(self, n: int) -> Metrics:
        async with self.running():
            a = self.spawn(self.ping_cls)
            b = self.spawn(self.ping_cls)
            warm = asyncio.Event()
            a.tell(("go", b, 100, warm))
            await warm.wait()
            done = asyncio.Event()
            t0 = perf_counter()
            a.tell(("go", b, n, done))
            await done.wait()
            elapsed = perf_counter() - t0
        return {"rate": n / elapsed}

    def fanout(self, n: int) -> Metrics:
        return run(self._fanout(n))

    async def _fanout(self, n: int) -> Metrics:
        async with self.running():
            started = AsyncLatch(n)
            cls = self.counter_cls
            t0 = perf_counter()
            refs = [self.spawn(cls, started) for _ in range(n)]
            await started.wait()
            t1 = perf_counter()
            asks = [self.asker(ref) for ref in refs]
            got = await asyncio.gather(*(ask(i) for i, ask in enumerate(asks)))
            t2 = perf_counter()
            assert len(got) == n, (len(got), n)
        return {"spawn": t1 - t0, "rate": n / (t2 - t1)}

    def ask(self, n: int) -> Metrics:
        return run(self._ask(n))

    async def _ask(self, n: int) -> Metrics:
        async with self.running():
            ask = self.asker(self.spawn(self.counter_cls))
            for _ in range(min(200, n)):
                await ask(GET)
            samples = []
            for _ in range(n):
                t0 = perf_counter()
                await ask(GET)
                samples.append(perf_counter() - t0)
        return {"p50": percentile(samples, 50) * 1e6, "p99": percentile(samples, 99) * 1e6}

    def memory_inproc(self, n: int) -> Metrics:
        """The body of :meth:`memory`, run inside a fresh interpreter by ``bench.memchild``."""
        return run(self._memory(n))

    async def _memory(self, n: int) -> Metrics:
        async with self.running():
            warm = AsyncLatch(10)
            refs = [self.spawn(self.counter_cls, warm) for _ in range(10)]
            await warm.wait()
            await self.stop_all(refs)
            gc.collect()
            await asyncio.sleep(0.1)
            before = rss_bytes()
            started = AsyncLatch(n)
            refs = [self.spawn(self.counter_cls, started) for _ in range(n)]
            await started.wait()
            gc.collect()
            await asyncio.sleep(0.2)
            after = rss_bytes()
            await self.stop_all(refs)
        return {"kib": (after - before) / n / 1024}

    def memory(self, n: int) -> Metrics:
        from bench.memchild import measure

        return measure(self.key, n)
