"""Asks from threads outside any handler, mixed with tells, in both execution modes: one
message at a time, order per sender, supervision, AskDeadlock, ask(timeout=). (Written for a
caller-runs ask, which ran an idle pooled minion's turn on the asking thread; not merged: a
turn on a thread the pool does not own escapes its stuck-handler report.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from minions_actors import ActorSystem, AskDeadlock, AskTimeout, Minion

from ..conftest import QUIET

pytestmark = [pytest.mark.usefixtures("execution"), pytest.mark.timeout(120)]


class Probe(Minion):
    """Logs (sender, n) messages, noting overlapping turns; answers with its thread, its
    count, or by blocking/raising/asking as the message says."""

    def __init__(self, log: list[Any], overlaps: list[Any]) -> None:
        super().__init__()
        self.log, self.overlaps, self.inside = log, overlaps, False

    def on_receive(self, message: Any) -> Any:
        if self.inside:
            self.overlaps.append(message)
        self.inside = True
        try:
            return self.answer(message)
        finally:
            self.inside = False

    def answer(self, message: Any) -> Any:
        if message == "thread":
            return threading.get_ident()
        if message == "count":
            return len(self.log)
        if message == "boom":
            raise ValueError("boom in a handler")
        if message == "self":
            return self.ref.ask("count")
        if isinstance(message, threading.Event):
            assert message.wait(30)
            return "released"
        if message[0] == "via":  # ask the next minion, which asks on (a cycle closes)
            return message[1].ask(("via", *message[2:]) if len(message) > 2 else "count")
        self.log.append(message)
        return len(self.log)


def start() -> ActorSystem:
    return ActorSystem.start(**QUIET, pool_size=2)


def test_asks_and_tells_from_threads_are_one_at_a_time_and_in_order_per_sender() -> None:
    system = start()
    try:
        log: list[Any] = []
        overlaps: list[Any] = []
        target = system.spawn(Probe, log, overlaps)
        n = 300

        def sender(name: str) -> None:
            for i in range(n):
                if i % 3:
                    target.tell((name, i))
                else:
                    target.ask((name, i))

        threads = [threading.Thread(target=sender, args=(f"t{k}",)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert target.ask("count") == 4 * n
        assert overlaps == []
        for k in range(4):
            assert [i for s, i in log if s == f"t{k}"] == list(range(n))
    finally:
        system.shutdown(timeout=10)


def test_a_crash_in_an_asked_handler_reaches_the_caller_and_restarts_the_minion() -> None:
    system = start()
    try:
        log: list[Any] = []
        ref = system.spawn(Probe, log, [])
        assert ref.ask(("me", 0)) == 1
        with pytest.raises(ValueError, match="boom in a handler"):
            ref.ask("boom")
        assert ref.ask(("me", 1)) == 2  # served again (a fresh instance, the same log)
        assert ref.ask("count") == 2
    finally:
        system.shutdown(timeout=10)


def test_ask_deadlock_is_refused_for_an_ask_from_outside() -> None:
    system = start()
    try:
        a, b = system.spawn(Probe, [], []), system.spawn(Probe, [], [])
        with pytest.raises(AskDeadlock):
            a.ask("self")  # a handler asking its own minion
        with pytest.raises(AskDeadlock):
            a.ask(("via", b, a))  # a asks b, which asks a
        assert a.ask("count") == 0 and b.ask("count") == 0  # both serve again
    finally:
        system.shutdown(timeout=10)


def test_an_ask_with_a_timeout_gives_up_on_a_blocked_handler_of_an_idle_minion() -> None:
    system = start()
    gate = threading.Event()
    safety = threading.Timer(30, gate.set)  # a caller stuck in the handler fails, not hangs
    safety.start()
    try:
        ref = system.spawn(Probe, [], [])
        t0 = time.monotonic()
        with pytest.raises(AskTimeout):
            ref.ask(gate, timeout=0.3)
        assert time.monotonic() - t0 < 15
        gate.set()
        assert ref.ask("count", timeout=10) == 0
    finally:
        safety.cancel()
        gate.set()
        system.shutdown(timeout=10)
