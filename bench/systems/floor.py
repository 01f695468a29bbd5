"""The floor: a bare pooled scheduler in pure Python, what an actor costs with nothing more.

Each actor is a ``collections.deque`` mailbox and a flag saying it is queued; a tell appends
and, when the actor is idle, puts it on the one run queue (a ``queue.SimpleQueue``) that the
worker threads (CPU count + 1, like the pool's default) take from; a turn handles up to
``THROUGHPUT`` messages. No supervision, names, restarts, metrics or logs: the ratios to it
(issue 22) say what minions_actors' features cost on a spawn, a stop, a hop.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import WAIT, Latch, Skip
from bench.systems.base import Metrics
from bench.systems.threaded import CounterLogic, PingLogic, ThreadedSystem

THROUGHPUT = 100
"""Messages per turn before the actor goes to the back of the run queue."""
_STOP = object()
_START = object()  # the first message: runs on_start
_DONE = object()  # tells a worker thread to exit


class _Reply:
    """The answer to an ask: a lock released once the value is set."""

    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value
        self._lock.release()

    def get(self, timeout: float = WAIT) -> Any:
        if not self._lock.acquire(timeout=timeout):
            raise TimeoutError("no reply")
        return self.value


class _Ask:
    __slots__ = ("message", "reply")

    def __init__(self, message: Any, reply: _Reply) -> None:
        self.message = message
        self.reply = reply


class FloorRef:
    """An actor: its mailbox, its queued flag, its instance (tell/ask/stop as pykka's)."""

    __slots__ = ("_lock", "_pool", "_queued", "actor", "mailbox", "stopped")

    def __init__(self, pool: FloorPool, actor: Any) -> None:
        self.mailbox: deque[Any] = deque()
        self._queued = False
        self._lock = pool.lock  # one lock for every actor's flag: no allocation per actor
        self._pool = pool
        self.actor = actor
        self.stopped: Latch | None = None

    def tell(self, message: Any) -> None:
        self.mailbox.append(message)
        if not self._queued:
            with self._lock:
                if self._queued:
                    return
                self._queued = True
            self._pool.runq.put(self)

    def ask(self, message: Any, block: bool = True, timeout: float = WAIT) -> Any:
        reply = _Reply()
        self.tell(_Ask(message, reply))
        return reply.get(timeout) if block else reply

    def turn(self) -> None:
        """Handle up to THROUGHPUT messages; queue the actor again when more are waiting."""
        mailbox = self.mailbox
        actor = self.actor
        for _ in range(THROUGHPUT):
            if not mailbox:
                break
            msg = mailbox.popleft()
            if msg.__class__ is _Ask:
                msg.reply.set(actor.on_receive(msg.message))
            elif msg is _START:
                actor.on_start()
            elif msg is _STOP:
                actor.on_stop()
                mailbox.clear()
                if self.stopped is not None:
                    self.stopped.count_down()
                return  # never queued again (the flag stays set)
            else:
                actor.on_receive(msg)
        with self._lock:
            if mailbox:
                self._pool.runq.put(self)
                return
            self._queued = False
        # a tell that appended after the look above and read the flag before it was
        # cleared queued nothing (its check takes no lock): look once more
        if mailbox:
            with self._lock:
                if self._queued or not mailbox:
                    return
                self._queued = True
            self._pool.runq.put(self)


class FloorPool:
    """The run queue and its worker threads."""

    def __init__(self, workers: int) -> None:
        self.runq: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, name=f"floor-{i}", daemon=True)
                        for i in range(workers)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        get = self.runq.get
        while True:
            ref = get()
            if ref is _DONE:
                return
            ref.turn()

    def close(self) -> None:
        for _ in self.threads:
            self.runq.put(_DONE)
        for thread in self.threads:
            thread.join(WAIT)


class FloorActor:
    """The actor base: ``on_start`` runs as its first message, ``on_stop`` as its last."""

    actor_ref: FloorRef

    def on_start(self) -> None:
        pass

    def on_stop(self) -> None:
        pass

    def on_receive(self, message: Any) -> Any:
        return None


class FloorCounter(CounterLogic, FloorActor):
    """:class:`CounterLogic` on the floor."""


class FloorPing(PingLogic, FloorActor):
    """:class:`PingLogic` on the floor."""


class FloorSystem(ThreadedSystem):
    """The floor as a benchmarked system (see the module docstring)."""

    key = "floor"
    label = "floor (bare pooled scheduler)"
    counter_cls = FloorCounter
    ping_cls = FloorPing

    def __init__(self, workers: int | None = None) -> None:
        self._pool: FloorPool | None = None
        self._workers = workers or min(8, max(2, (os.cpu_count() or 1) + 1))

    @contextmanager
    def running(self) -> Iterator[None]:
        self._pool = FloorPool(self._workers)
        try:
            yield
        finally:
            self._pool.close()
            self._pool = None

    def spawn(self, cls: Any, *args: Any) -> FloorRef:
        assert self._pool is not None
        actor = cls(*args)
        ref = FloorRef(self._pool, actor)
        actor.actor_ref = ref
        ref.mailbox.append(_START)
        ref._queued = True
        self._pool.runq.put(ref)
        return ref

    def stop_all(self, refs: list[Any]) -> None:
        done = Latch(len(refs))
        for ref in refs:
            ref.stopped = done
            ref.tell(_STOP)
        done.wait(WAIT)

    def million(self, n: int) -> Metrics:
        from bench.millionchild import measure

        return measure(n, self.key)

    def restart(self, n: int) -> Metrics:
        raise Skip("the floor has no supervisor (nothing restarts)")


