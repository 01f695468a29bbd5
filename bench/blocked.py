"""The pool under blocking handlers: while ``n`` pooled handlers block outside the runtime
(sleeping, reading a socket, waiting on a lock) or spin in pure Python, how fast and how
late do the other minions answer?

One repetition: spawn the blockers and ``OTHERS`` other minions, warm the others up, tell
every blocker its blocking message and at once start asking the others round-robin from this
thread for ``Sizes.blocked_seconds``. The worst ask therefore includes the time the pool
takes to notice the blocked workers and replace them. Then the blockers are released and the
system shut down.
"""

from __future__ import annotations

import socket
import threading
import time
from time import perf_counter
from typing import Any

from bench.common import WAIT, Sizes, Skip
from bench.systems.base import Metrics, System
from minions_actors import Minion

OTHERS = 20
KINDS = ("sleep", "socket", "lock", "spin")


class Blocker(Minion):
    """Blocks in its one message the way ``kind`` says, until ``release`` is called."""

    def __init__(self, kind: str, stop: threading.Event, lock: threading.Lock,
                 sock: socket.socket | None) -> None:
        super().__init__()
        self.kind, self.stop, self.lock, self.sock = kind, stop, lock, sock

    def on_receive(self, message: Any) -> Any:
        if message != "block":
            return message
        if self.kind == "sleep":
            while not self.stop.is_set():
                time.sleep(0.01)
        elif self.kind == "socket":
            assert self.sock is not None
            self.sock.recv(1)  # until release() writes a byte
        elif self.kind == "lock":
            with self.lock:  # held by the benchmark until release()
                pass
        else:  # spin: pure Python, the GIL taken back every switch interval
            stop, n = self.stop, 0
            while not stop.is_set():
                n += 1
        return None


class Other(Minion):
    def on_receive(self, message: Any) -> Any:
        return message


def run(system: System, sizes: Sizes, kind: str, blocked: int) -> Metrics:
    """One repetition (see the module docstring): worst ask in us, asks/s, peak threads."""
    start = getattr(system, "start_system", None)
    if start is None:
        raise Skip(f"{system.label} has no pooled minions")
    stop, lock = threading.Event(), threading.Lock()
    lock.acquire()
    pairs = [socket.socketpair() for _ in range(blocked if kind == "socket" else 0)]
    asys = start()
    try:
        socks = [mine for mine, _theirs in pairs] or [None] * blocked
        blockers = [asys.spawn(Blocker, kind, stop, lock, sock) for sock in socks]
        others = [asys.spawn(Other) for _ in range(OTHERS)]
        for ref in others:
            ref.ask("warm", timeout=WAIT)
        for ref in blockers:
            ref.tell("block")
        got = _ask_round_robin(others, sizes.blocked_seconds)
        stop.set()
        lock.release()
        for _mine, theirs in pairs:
            theirs.send(b"x")
        for ref in blockers:
            ref.ask("done", timeout=WAIT)
    finally:
        stop.set()
        if lock.locked():
            lock.release()
        asys.shutdown(timeout=WAIT)
        for a, b in pairs:
            a.close()
            b.close()
    return got


def _ask_round_robin(others: list[Any], seconds: float) -> Metrics:
    worst, asks, peak = 0.0, 0, threading.active_count()
    t0 = perf_counter()
    end = t0 + seconds
    now = t0
    while now < end:
        ref = others[asks % len(others)]
        began = now
        ref.ask(asks, timeout=WAIT)
        now = perf_counter()
        worst = max(worst, now - began)
        asks += 1
        if asks % 64 == 0:
            peak = max(peak, threading.active_count())
    peak = max(peak, threading.active_count())
    return {"worst": worst * 1e6, "rate": asks / (now - t0), "threads": float(peak)}
