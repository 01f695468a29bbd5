"""Scenarios shared by the two thread-per-actor systems: raw pykka and minions_actors.

The actor logic lives in mixins (:class:`CounterLogic`, :class:`PingLogic`) combined with
``pykka.ThreadingActor`` in one adapter and with ``Minion`` in the other, so both run the
same handler code and the measurement loops below are identical; only starting, spawning
and stopping differ.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from bench.common import WAIT, Latch, fan_in, percentile, rss_bytes
from bench.systems.base import Metrics, System

GET = "get"
FIN = "fin"


class CounterLogic:
    """Counts int messages; answers ``"get"`` with the count; ``"fin"`` counts down a latch.

    ``started`` (a :class:`Latch`) is counted down in ``on_start``: the actor is serving.
    """

    def __init__(self, started: Latch | None = None, done: Latch | None = None) -> None:
        super().__init__()
        self.count = 0
        self.started = started
        self.done = done

    def on_start(self) -> None:
        if self.started is not None:
            self.started.count_down()

    def on_receive(self, message: Any) -> Any:
        if message.__class__ is int:
            self.count += 1
            return None
        if message == GET:
            return self.count
        if message == FIN and self.done is not None:
            self.done.count_down()
        return None


class PingLogic:
    """Ping-pong: a ``("go", peer, n, event)`` message starts ``n`` round trips with ``peer``.

    The starter tells its own ref to the peer; the peer answers any ref with ``"pong"``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.left = 0
        self.peer: Any = None
        self.finished: threading.Event | None = None

    def on_receive(self, message: Any) -> Any:
        if message == "pong":
            self.left -= 1
            if self.left > 0:
                self.peer.tell(self.actor_ref)  # type: ignore[attr-defined]
            else:
                assert self.finished is not None
                self.finished.set()
        elif isinstance(message, tuple):
            _, self.peer, self.left, self.finished = message
            self.peer.tell(self.actor_ref)  # type: ignore[attr-defined]
        else:
            message.tell("pong")
        return None


class ThreadedSystem(System):
    """Measurement loops for systems with pykka-style ``tell``/``ask`` refs."""

    counter_cls: Any
    ping_cls: Any

    # -- what subclasses provide -------------------------------------------------------
    @contextmanager
    def running(self) -> Iterator[None]:
        """Start the runtime for one repetition and stop it (and every actor) after."""
        raise NotImplementedError
        yield  # pragma: no cover

    def spawn(self, cls: Any, *args: Any) -> Any:
        """Start one actor of ``cls`` and return its ref."""
        raise NotImplementedError

    def stop_all(self, refs: list[Any]) -> None:
        """Stop the given actors and wait until all have stopped."""
        raise NotImplementedError

    # -- scenarios ---------------------------------------------------------------------
    def tell(self, n: int) -> Metrics:
        with self.running():
            ref = self.spawn(self.counter_cls)
            ref.ask(GET, timeout=WAIT)
            tell = ref.tell
            t0 = perf_counter()
            for i in range(n):
                tell(i)
            got = ref.ask(GET, timeout=WAIT)
            elapsed = perf_counter() - t0
            assert got == n, (got, n)
        return {"rate": n / elapsed}

    def tell_multi(self, n: int, senders: int) -> Metrics:
        per = n // senders
        with self.running():
            ref = self.spawn(self.counter_cls)
            ref.ask(GET, timeout=WAIT)
            gate = threading.Barrier(senders + 1)

            def send() -> None:
                tell = ref.tell
                gate.wait()
                for i in range(per):
                    tell(i)

            t0 = fan_in(senders, send, gate)
            got = ref.ask(GET, timeout=WAIT)
            elapsed = perf_counter() - t0
            assert got == per * senders, (got, per * senders)
        return {"rate": per * senders / elapsed}

    def ask(self, n: int) -> Metrics:
        with self.running():
            ref = self.spawn(self.counter_cls)
            for _ in range(min(200, n)):
                ref.ask(GET, timeout=WAIT)
            samples = []
            ask = ref.ask
            for _ in range(n):
                t0 = perf_counter()
                ask(GET, timeout=WAIT)
                samples.append(perf_counter() - t0)
        return {"p50": percentile(samples, 50) * 1e6, "p99": percentile(samples, 99) * 1e6}

    def pingpong(self, n: int) -> Metrics:
        with self.running():
            a = self.spawn(self.ping_cls)
            b = self.spawn(self.ping_cls)
            warm = threading.Event()
            a.tell(("go", b, 100, warm))
            assert warm.wait(WAIT)
            done = threading.Event()
            t0 = perf_counter()
            a.tell(("go", b, n, done))
            assert done.wait(WAIT), "ping-pong did not finish"
            elapsed = perf_counter() - t0
        return {"rate": n / elapsed}

    def fanout(self, n: int) -> Metrics:
        with self.running():
            started = Latch(n)
            cls = self.counter_cls
            t0 = perf_counter()
            refs = [self.spawn(cls, started) for _ in range(n)]
            started.wait()
            t1 = perf_counter()
            futures = [ref.ask(i, block=False) for i, ref in enumerate(refs)]
            for future in futures:
                future.get(timeout=WAIT)
            t2 = perf_counter()
            self.stop_all(refs)
        return {"spawn": t1 - t0, "rate": n / (t2 - t1)}

    def spawn_stop(self, n: int) -> Metrics:
        with self.running():
            started = Latch(n)
            cls = self.counter_cls
            t0 = perf_counter()
            refs = [self.spawn(cls, started) for _ in range(n)]
            started.wait()
            t1 = perf_counter()
            self.stop_all(refs)
            t2 = perf_counter()
        return {"spawn": t1 - t0, "stop": t2 - t1}

    def memory_inproc(self, n: int) -> Metrics:
        """The body of :meth:`memory`, run inside a fresh interpreter by ``bench.memchild``."""
        with self.running():
            warm = Latch(10)
            self.stop_all([self.spawn(self.counter_cls, warm) for _ in range(10)])
            gc.collect()
            time.sleep(0.1)
            before = rss_bytes()
            started = Latch(n)
            refs = [self.spawn(self.counter_cls, started) for _ in range(n)]
            started.wait()
            gc.collect()
            time.sleep(0.2)
            after = rss_bytes()
            self.stop_all(refs)
        return {"kib": (after - before) / n / 1024}

    def memory(self, n: int) -> Metrics:
        from bench.memchild import measure

        return measure(self.key, n)

    def scaling(self, actors: int, n: int) -> Metrics:
        with self.running():
            started = Latch(actors)
            done = Latch(actors)
            cls = self.counter_cls
            refs = [self.spawn(cls, started, done) for _ in range(actors)]
            started.wait()
            tells = [r.tell for r in refs]
            t0 = perf_counter()
            for tell, i in zip(itertools.cycle(tells), range(n)):
                tell(i)
            for tell in tells:
                tell(FIN)
            done.wait()
            elapsed = perf_counter() - t0
            self.stop_all(refs)
        return {"rate": (n + actors) / elapsed}
