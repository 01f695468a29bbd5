"""Thespian: ``simpleSystemBase`` (in-process, single-threaded) and ``multiprocQueueBase``.

Each repetition starts a Thespian ``ActorSystem`` of the chosen base and shuts it down in a
``finally`` (the multiproc base runs an admin process plus one process per actor).
Senders other than the main thread use ``asys.private()`` contexts, as Thespian requires.
"""

from __future__ import annotations

import gc
import importlib.util
import itertools
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from bench.common import WAIT, Skip, fan_in, percentile, rss_bytes
from bench.systems.base import Metrics, System

if importlib.util.find_spec("thespian") is not None:
    from thespian.actors import Actor, ActorExitRequest, ActorSystem

    class ThCounter(Actor):  # type: ignore[misc]
        """Counts int messages; answers ``"get"`` with the count."""

        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def receiveMessage(self, message: Any, sender: Any) -> None:
            if message.__class__ is int:
                self.count += 1
            elif message == "get":
                self.send(sender, self.count)

    class ThPing(Actor):  # type: ignore[misc]
        """Ping-pong: ``("go", peer, n)`` starts ``n`` round trips, then replies ``"done"``."""

        def __init__(self) -> None:
            super().__init__()
            self.left = 0
            self.peer: Any = None
            self.requester: Any = None

        def receiveMessage(self, message: Any, sender: Any) -> None:
            if message == "ping":
                self.send(sender, "pong")
            elif message == "pong":
                self.left -= 1
                if self.left > 0:
                    self.send(self.peer, "ping")
                else:
                    self.send(self.requester, "done")
            elif isinstance(message, tuple):
                _, self.peer, self.left = message
                self.requester = sender
                self.send(self.peer, "ping")


class ThespianSystem(System):
    """One Thespian system base."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.key = "thespian-simple" if base == "simpleSystemBase" else "thespian-mp"
        self.label = f"thespian {base}"
        self.slow = base != "simpleSystemBase"
        self.max_actors = 10**9 if base == "simpleSystemBase" else 10

    def check(self) -> None:
        if importlib.util.find_spec("thespian") is None:
            raise Skip("thespian is not installed (pip install thespian)")

    @contextmanager
    def running(self) -> Iterator[Any]:
        self.check()
        # Actor processes are forked from this one; a SIGTERM handler installed in C by
        # another library (Ray's driver, which may install it again at any time) would be
        # inherited and print a stack dump when Thespian terminates them. The benchmark
        # process needs no SIGTERM handler of its own, so reset it before every start.
        if self.slow and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        asys = ActorSystem(self.base)
        try:
            yield asys
        finally:
            asys.shutdown()

    def _get(self, asys: Any, addr: Any) -> Any:
        reply = asys.ask(addr, "get", WAIT)
        if reply is None:
            raise TimeoutError(f"{self.label}: no reply within {WAIT}s")
        return reply

    def tell(self, n: int) -> Metrics:
        with self.running() as asys:
            addr = asys.createActor(ThCounter)
            self._get(asys, addr)
            t0 = perf_counter()
            for i in range(n):
                asys.tell(addr, i)
            got = self._get(asys, addr)
            elapsed = perf_counter() - t0
            assert got == n, (got, n)
        return {"rate": n / elapsed}

    def tell_multi(self, n: int, senders: int) -> Metrics:
        per = n // senders
        with self.running() as asys:
            addr = asys.createActor(ThCounter)
            self._get(asys, addr)
            gate = threading.Barrier(senders + 1)
            errors: list[BaseException] = []

            def send() -> None:
                try:
                    with asys.private() as ctx:
                        gate.wait()
                        for i in range(per):
                            ctx.tell(addr, i)
                except BaseException as exc:
                    errors.append(exc)

            t0 = fan_in(senders, send, gate)
            if errors:
                raise errors[0]
            got = self._get(asys, addr)
            elapsed = perf_counter() - t0
            assert got == per * senders, (got, per * senders)
        return {"rate": per * senders / elapsed}

    def ask(self, n: int) -> Metrics:
        with self.running() as asys:
            addr = asys.createActor(ThCounter)
            for _ in range(min(50, n)):
                self._get(asys, addr)
            samples = []
            for _ in range(n):
                t0 = perf_counter()
                self._get(asys, addr)
                samples.append(perf_counter() - t0)
        return {"p50": percentile(samples, 50) * 1e6, "p99": percentile(samples, 99) * 1e6}

    def pingpong(self, n: int) -> Metrics:
        with self.running() as asys:
            a = asys.createActor(ThPing)
            b = asys.createActor(ThPing)
            assert asys.ask(a, ("go", b, 20), WAIT) == "done"
            t0 = perf_counter()
            reply = asys.ask(a, ("go", b, n), WAIT)
            elapsed = perf_counter() - t0
            assert reply == "done", reply
        return {"rate": n / elapsed}

    def spawn_stop(self, n: int) -> Metrics:
        if self.slow:
            raise Skip(f"{self.label} runs one OS process per actor; {n:,} would not fit")
        with self.running() as asys:
            t0 = perf_counter()
            addrs = [asys.createActor(ThCounter) for _ in range(n)]
            t1 = perf_counter()
            for addr in addrs:
                asys.tell(addr, ActorExitRequest())
            t2 = perf_counter()
        return {"spawn": t1 - t0, "stop": t2 - t1}

    def memory(self, n: int) -> Metrics:
        if self.slow:
            raise Skip(f"{self.label} runs one OS process per actor (tens of MB each)")
        from bench.memchild import measure

        return measure(self.key, n)

    def memory_inproc(self, n: int) -> Metrics:
        """The body of :meth:`memory`, run inside a fresh interpreter."""
        with self.running() as asys:
            for addr in [asys.createActor(ThCounter) for _ in range(10)]:
                asys.tell(addr, ActorExitRequest())
            gc.collect()
            time.sleep(0.1)
            before = rss_bytes()
            addrs = [asys.createActor(ThCounter) for _ in range(n)]
            gc.collect()
            time.sleep(0.2)
            after = rss_bytes()
            del addrs
        return {"kib": (after - before) / n / 1024}

    def restart(self, n: int) -> Metrics:
        raise Skip(f"{self.label}: no supervisor restart of a crashed actor (minions only)")

    def scaling(self, actors: int, n: int) -> Metrics:
        if actors > self.max_actors:
            raise Skip(f"{self.label}: {actors:,} actors would be {actors:,} OS processes")
        with self.running() as asys:
            addrs = [asys.createActor(ThCounter) for _ in range(actors)]
            for addr in addrs:
                self._get(asys, addr)
            tell = asys.tell
            t0 = perf_counter()
            for addr, i in zip(itertools.cycle(addrs), range(n)):
                tell(addr, i)
            total = sum(self._get(asys, addr) for addr in addrs)
            elapsed = perf_counter() - t0
            assert total == n, (total, n)
        return {"rate": (n + actors) / elapsed}
