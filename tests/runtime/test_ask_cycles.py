"""Ask cycles between minions (A asks B asks A, or longer): the minion whose wait would close
the cycle gets AskDeadlock at once instead of every minion in it waiting forever. Every wait
from the test itself has a timeout, so a regression fails (AskTimeout) rather than hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, AskDeadlock, Minion, StartWorkflow, Workflow
from minions_actors.persistence import SQLiteStateStore

from ..conftest import QUIET, wait_until
from ..persistence.test_store import LockHolder

pytestmark = [pytest.mark.usefixtures("execution"), pytest.mark.timeout(120)]

WAIT = 15  # seconds the test waits for an answer that comes at once when the runtime is right


class Hop(Minion):
    """``("hop", [paths], how, catch)``: ask the first path the rest of the way, by ``ask``,
    by a proxy call, or by ``ask`` with a timeout; with ``catch`` an AskDeadlock is the reply."""

    def on_receive(self, message: Any) -> Any:
        _, rest, how, catch = message
        if not rest:
            return f"end at {self.ref.path}"
        try:
            return self.hop(rest, how, catch)
        except AskDeadlock as exc:
            if not catch:
                raise
            return f"refused in {self.ref.path}: {exc}"

    def hop(self, rest: list[str], how: str, catch: bool) -> Any:
        target = self.system.get(rest[0])  # asks via system.get(...) are covered too
        onward = ("hop", rest[1:], how, catch)
        if how == "proxy":
            return target.proxy().relay(onward).get()
        if how == "timeout":
            return target.ask(onward, timeout=60)
        return target.ask(onward)

    def relay(self, message: Any) -> Any:
        return self.on_receive(message)


@pytest.fixture
def hops() -> Iterator[ActorSystem]:
    system = ActorSystem.start(**QUIET)
    for name in "abc":
        system.spawn(Hop, name=name)
    yield system
    assert system.shutdown(timeout=WAIT), "shutdown left minions waiting"


def hop(system: ActorSystem, path: list[str], how: str = "ask", catch: bool = False) -> Any:
    return system.get(path[0]).ask(("hop", path[1:], how, catch), timeout=WAIT)


@pytest.mark.parametrize("how", ["ask", "proxy", "timeout"])
def test_a_two_cycle_is_refused_in_the_minion_that_closes_it(hops: ActorSystem, how: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(AskDeadlock) as caught:  # b refused, crashed; a got b's error
        hop(hops, ["a", "b", "a"], how)
    assert time.monotonic() - t0 < WAIT / 2  # at once, even with the inner 60 s timeout
    text = str(caught.value)
    closers = [("b", "'b' -> 'a' -> 'b'")]
    if how == "proxy":  # a proxy call is sent before its get() waits: b, running at once on
        closers.append(("a", "'a' -> 'b' -> 'a'"))  # 3.13t, may ask a first; then a closes it
    assert any(f"minion '{who}'" in text and cycle in text for who, cycle in closers), text
    assert "tell()" in text


def test_the_closer_can_catch_it_and_the_cycle_unwinds(hops: ActorSystem) -> None:
    reply = hop(hops, ["a", "b", "a"], catch=True)
    assert reply.startswith("refused in b: ") and "'b' -> 'a' -> 'b'" in reply


@pytest.mark.parametrize("how", ["ask", "proxy"])
def test_a_three_cycle_names_every_minion_in_it(hops: ActorSystem, how: str) -> None:
    reply = hop(hops, ["a", "b", "c", "a"], how, catch=True)
    assert reply.startswith("refused in c: ") and "'c' -> 'a' -> 'b' -> 'c'" in reply


def test_a_chain_without_a_cycle_is_untouched(hops: ActorSystem) -> None:
    assert hop(hops, ["a", "b", "c"]) == "end at c"
    assert hop(hops, ["c", "b", "a"], "proxy") == "end at a"
    tail = hop(hops, ["a", "b", "c", "b"], catch=True)  # a waits into a cycle, not in it
    assert tail.startswith("refused in c: ") and "cycle 'c' -> 'b' -> 'c' (" in tail


def test_after_a_refused_cycle_the_same_minions_ask_each_other_again(hops: ActorSystem) -> None:
    with pytest.raises(AskDeadlock):  # a and b crash and are restarted
        hop(hops, ["a", "b", "a"])
    for _ in range(5):  # (caught from here: a few more crashes would exceed the restarts)
        assert hop(hops, ["a", "b"]) == "end at b"  # no edge is left behind
        assert hop(hops, ["b", "a"]) == "end at a"
        assert hop(hops, ["a", "b", "a"], catch=True).startswith("refused in b: ")


class Racer(Minion):
    """``("race", other, barrier, sent)``: meet the other racer, then ask it at the same
    instant; ``sent``: both asks are sent first, then both wait on their futures at once."""

    def on_receive(self, message: Any) -> Any:
        if message == "ping":
            return "pong"
        _, other, barrier, sent = message
        barrier.wait(timeout=WAIT)  # both are in this turn: neither can answer a ping now
        try:
            if sent:
                future = self.system.get(other).ask("ping", block=False)
                barrier.wait(timeout=WAIT)  # both pings are sent
                return future.get()
            return self.system.get(other).ask("ping")
        except AskDeadlock:
            return "refused"


@pytest.mark.parametrize("sent", [False, True], ids=["ask", "both-sent-then-get"])
def test_two_minions_asking_each_other_at_once_exactly_one_is_refused(sent: bool) -> None:
    system = ActorSystem.start(pool_size=2, **QUIET)  # both handlers run at the same time
    try:
        a, b = system.spawn(Racer, name="a"), system.spawn(Racer, name="b")
        for _ in range(100):
            barrier = threading.Barrier(2)
            fa = a.ask(("race", "b", barrier, sent), block=False)
            fb = b.ask(("race", "a", barrier, sent), block=False)
            outcome = sorted([fa.get(timeout=WAIT), fb.get(timeout=WAIT)])
            assert outcome == ["pong", "refused"]
    finally:
        assert system.shutdown(timeout=WAIT)


class Starter(Minion):
    """Waits for a durable workflow start of ``f``; answers ``ping`` meanwhile-queued."""

    def on_receive(self, message: Any) -> Any:
        if message == "ping":
            return "pong"
        return self.system.get("f").ask(StartWorkflow("flow", "w1", {})).workflow_id


class Flow(Minion):
    flow = Workflow("one")

    def one(self, context: dict[str, Any]) -> None:
        return None

    def on_receive(self, message: Any) -> Any:
        if message == "ask x":
            return self.system.get("x").ask("ping")
        return message


def test_a_start_answered_by_the_store_writer_is_no_wait_on_the_minion(tmp_path: Path) -> None:
    # x waits for f's workflow start; f's turn is over, the writer owes the answer; f then
    # asks x: a wait on x, not a cycle (x is released by the commit, then answers f)
    db = tmp_path / "m.db"
    store = SQLiteStateStore(db, busy_timeout=0.05, retry_max=0.05)
    system = ActorSystem.start(**{**QUIET, "state_store": store})
    try:
        x, f = system.spawn(Starter, name="x"), system.spawn(Flow, name="f")
        assert f.ask("ready", timeout=WAIT) == "ready"
        holder = LockHolder(db)  # the start is not durable, so not answered, until released
        try:
            started = x.ask("start", block=False)
            wait_until(lambda: store.stats().write_errors >= 1, WAIT, "a failed commit")
            assert f.ask("ready", timeout=WAIT) == "ready"  # f's turn with the start is over
            asked = f.ask("ask x", block=False)
        finally:
            holder.release()
        assert started.get(timeout=WAIT) == "w1"
        assert asked.get(timeout=WAIT) == "pong"
    finally:
        assert system.shutdown(timeout=WAIT)
