"""Adversarial probes of the worker pool: races at turn boundaries, runnext, bounded
mailboxes, backoff, death watch, asks to oneself, the worker cap, shutdown under load,
starvation reports, hooks that raise, and thread counts. Each holds the pool (and, where
the ``execution`` fixture is used, the dedicated mode too) to a documented promise."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    AskTimeout,
    Backoff,
    Hooks,
    MailboxFull,
    Minion,
    OneForOne,
)
from minions_actors.runtime.minion import Terminated

from ..conftest import QUIET, Recorder, runtime_threads, wait_until
from .test_pool import Chain


class Log(Minion):
    """Appends every message to a shared list and answers it."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    def on_receive(self, message: Any) -> Any:
        self.log.append(message)
        return message

    def record(self, value: Any) -> None:
        self.log.append(value)


# ---------------------------------------------------------------- turn boundaries
def test_concurrent_senders_lose_no_wakeup_at_turn_ends() -> None:
    # throughput 1: every message ends a turn, so every put races the worker's
    # release-then-look of the minion's schedule flag
    system = ActorSystem.start(**QUIET, pool_size=2, pool_throughput=1)
    try:
        log: list[Any] = []
        refs = [system.spawn(Log, log) for _ in range(3)]
        per_thread = 1500

        def send(k: int) -> None:
            for i in range(per_thread):
                refs[i % 3].tell((k, i))

        senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        for ref in refs:  # a lost wake-up leaves a message unhandled: this times out
            ref.ask("sync", timeout=10)
        got = [m for m in log if m != "sync"]
        assert len(got) == 4 * per_thread
        for k in range(4):  # FIFO per sender and receiver
            for r in range(3):
                mine = [i for kk, i in got if kk == k and i % 3 == r]
                assert mine == list(range(r, per_thread, 3))
    finally:
        system.shutdown(timeout=10)


class TwoPaths(Minion):
    """Sends to ``peer`` alternately by tell, by proxy call and by ask without waiting."""

    def on_receive(self, message: Any) -> Any:
        peer, n = message
        proxy = peer.proxy()
        for i in range(n):
            if i % 3 == 0:
                peer.tell(i)
            elif i % 3 == 1:
                proxy.record(i)
            else:
                peer.ask(i, block=False)
        return n


@pytest.mark.usefixtures("execution")
def test_fifo_per_sender_across_tell_proxy_and_ask_paths() -> None:
    system = ActorSystem.start(**QUIET)
    try:
        log: list[Any] = []
        peer = system.spawn(Log, log)
        sender = system.spawn(TwoPaths)
        assert sender.ask((peer, 300), timeout=10) == 300
        peer.ask("end", timeout=10)
        assert log == [*range(300), "end"]
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- runnext and stuck handlers
class SendTwiceAndBlock(Minion):
    """Tells ``first``, waits on ``gate1``, tells ``second``, waits on ``gate2``: two
    sends from one handler that blocks on something the pool cannot see."""

    def on_receive(self, message: Any) -> Any:
        first, second, gate1, gate2 = message
        first.tell("one")
        assert gate1.wait(30)
        second.tell("two")
        assert gate2.wait(30)


def test_mail_sent_after_a_stuck_report_is_not_held_by_the_stuck_worker() -> None:
    # a handler reported stuck keeps its worker: what it sends afterwards must go to the
    # run queue, not to the stuck worker's runnext (which nobody flushes a second time)
    system = ActorSystem.start(**QUIET, pool_size=1, starvation_threshold=0.2)
    gate1, gate2 = threading.Event(), threading.Event()
    try:
        log: list[Any] = []
        first = system.spawn(Log, log)
        second = system.spawn(Log, log)
        first.ask("ready", timeout=5)
        second.ask("ready", timeout=5)
        system.spawn(SendTwiceAndBlock).tell((first, second, gate1, gate2))
        wait_until(lambda: "one" in log, timeout=5, what="the first peer got its message")
        gate1.set()
        wait_until(lambda: "two" in log, timeout=3,
                   what="the second peer got its message while the sender is still stuck")
        assert not gate2.is_set()
    finally:
        gate1.set()
        gate2.set()
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- bounded mailboxes
class Producer(Minion):
    """Tells ``target`` the numbers 0..n-1 from inside one handler."""

    def on_receive(self, message: Any) -> Any:
        target, n = message
        for i in range(n):
            target.tell(i)
        return n


@pytest.mark.usefixtures("execution")
def test_a_bounded_mailbox_fed_from_a_handler_on_one_worker_keeps_order() -> None:
    # one worker: the producer's blocking puts must let the consumer run (compensation)
    system = ActorSystem.start(**QUIET, pool_size=1)
    try:
        log: list[Any] = []
        consumer = system.spawn(Log, log, mailbox_size=2, mailbox_put_timeout=5)
        producer = system.spawn(Producer)
        assert producer.ask((consumer, 200), timeout=10) == 200
        consumer.ask("end", timeout=10)
        assert log == [*range(200), "end"]
    finally:
        system.shutdown(timeout=10)


def test_a_full_bounded_mailbox_at_the_worker_cap_is_a_clear_error() -> None:
    # no worker can be added: the blocked put gives up after its timeout with MailboxFull
    system = ActorSystem.start(**QUIET, pool_size=1, pool_max_workers=1)
    try:
        consumer = system.spawn(Log, [], mailbox_size=1, mailbox_put_timeout=0.2)
        producer = system.spawn(Producer)
        t0 = time.monotonic()
        with pytest.raises(Exception, match="is full") as info:
            producer.ask((consumer, 5), timeout=5)
        assert type(info.value).__name__ == "MailboxFull"
        assert time.monotonic() - t0 < 2
        assert consumer.ask("still-served", timeout=5) == "still-served"
        # stopped from here: at the cap a supervisor stopping its children holds the one
        # worker they need, and waits out their stop_timeout shares (see configuration.md)
        assert producer.stop(timeout=5) and consumer.stop(timeout=5)
    finally:
        system.shutdown(timeout=10)


class ProduceUntilFull(Minion):
    """Tells ``target`` 0, 1, 2... until its mailbox refuses; returns how many went in."""

    def on_receive(self, message: Any) -> Any:
        target, gate = message
        target.tell(gate)  # holds the consumer while its mailbox fills
        sent = 0
        try:
            while sent < 100:
                target.tell(sent)
                sent += 1
        except MailboxFull:
            return sent
        return sent


@pytest.mark.usefixtures("execution")
def test_overflow_raise_refuses_at_once_from_a_pooled_handler() -> None:
    system = ActorSystem.start(**QUIET)
    gate = threading.Event()
    try:
        log: list[Any] = []
        consumer = system.spawn(Gate2Log, log, mailbox_size=3, mailbox_overflow="raise")
        producer = system.spawn(ProduceUntilFull)
        t0 = time.monotonic()
        sent = producer.ask((consumer, gate), timeout=5)
        assert time.monotonic() - t0 < 1  # no waiting for room
        assert 2 <= sent <= 3  # 3 in the mailbox, the gate among them unless taken out
        gate.set()
        wait_until(lambda: len(log) == sent, what="the consumer drained its mailbox")
        consumer.ask("end", timeout=5)
        assert log == [*range(sent), "end"]
    finally:
        gate.set()
        system.shutdown(timeout=10)


class Gate2Log(Log):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):
            return message.wait(10)
        return super().on_receive(message)


# ---------------------------------------------------------------- backoff
class Crashy(Minion):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        return message

    def on_stop(self) -> None:
        self.rec.add("on_stop")


class LongBackoff(Minion):
    strategy = OneForOne(max_restarts=5, within=10, backoff=Backoff(initial=5.0, jitter=0))

    def on_receive(self, message: Any) -> Any:
        return self.spawn(Crashy, message, name="c")


@pytest.mark.usefixtures("execution")
def test_stop_cuts_a_restart_backoff_short(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET)
    try:
        sup = system.spawn(LongBackoff, name="sup")
        child = sup.ask(rec, timeout=5)
        with pytest.raises(RuntimeError):
            child.ask("crash", timeout=5)
        child.tell("queued during the backoff")
        t0 = time.monotonic()
        assert child.stop(timeout=3) is True  # well before the 5 s backoff ends
        assert time.monotonic() - t0 < 2
        assert not child.is_alive()
        with pytest.raises(Exception, match="not found"):
            child.ask("after", timeout=1)
    finally:
        t0 = time.monotonic()
        assert system.shutdown(timeout=10)
        assert time.monotonic() - t0 < 3


@pytest.mark.usefixtures("execution")
def test_shutdown_during_a_restart_backoff_is_quick_and_clean(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET)
    sup = system.spawn(LongBackoff, name="sup")
    child = sup.ask(rec, timeout=5)
    with pytest.raises(RuntimeError):
        child.ask("crash", timeout=5)
    t0 = time.monotonic()
    assert system.shutdown(timeout=10) is True
    assert time.monotonic() - t0 < 3
    assert runtime_threads() == []


# ---------------------------------------------------------------- restarts and threads
class Fragile(Minion):
    strategy = OneForOne(max_restarts=10_000, within=60)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        return message


def test_many_restarts_create_no_thread() -> None:
    system = ActorSystem.start(**QUIET, strategy=OneForOne(max_restarts=10_000, within=60))
    try:
        ref = system.spawn(Fragile, name="f")
        ref.ask("warm", timeout=5)
        before = {t.ident for t in threading.enumerate()}
        for _ in range(300):
            ref.tell("crash")
        assert ref.ask("alive", timeout=10) == "alive"
        assert system.get("f") == ref  # the same ref, kept across the restarts
        after = {t.ident for t in threading.enumerate()}
        assert after <= before, "a restart started a thread"
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- death watch
class Watcher(Minion):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Terminated):
            self.rec.add(("terminated", message.path))
        else:
            self.watch(message)
        return None


class StopsItself(Minion):
    def on_receive(self, message: Any) -> Any:
        self.stop()
        return "stopping"


@pytest.mark.usefixtures("execution")
def test_watchers_hear_of_a_minion_that_stops_itself_mid_turn(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET)
    try:
        watchers = [system.spawn(Watcher, rec, name=f"w{i}") for i in range(3)]
        target = system.spawn(StopsItself, name="t", restart="transient")
        for w in watchers:
            w.ask(target, timeout=5)
        for _ in range(50):  # a backlog behind the stop: it becomes dead letters
            target.tell("go")
        wait_until(lambda: not target.is_alive(), what="the target stopped")
        rec.wait_count(("terminated", "t"), 3)
        time.sleep(0.05)
        assert rec.count(("terminated", "t")) == 3  # exactly once each
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- asking oneself
class AsksItself(Minion):
    """Asks itself (or waits on its own proxy call) from inside its handler."""

    def on_receive(self, message: Any) -> Any:
        t0 = time.monotonic()
        try:
            if message == "ask":
                self.ref.ask("inner", timeout=5)
            else:
                self.ref.proxy().inner().get(timeout=5)
        except Exception as exc:
            return type(exc).__name__, str(exc), time.monotonic() - t0
        return "no error", "", time.monotonic() - t0

    def inner(self) -> str:
        return "inner"


@pytest.mark.usefixtures("execution")
@pytest.mark.parametrize("how", ["ask", "proxy"])
def test_asking_oneself_from_a_handler_is_a_clear_error_at_once(how: str) -> None:
    system = ActorSystem.start(**QUIET)
    try:
        ref = system.spawn(AsksItself, name="me")
        name, text, seconds = ref.ask(how, timeout=10)
        assert name == "AskDeadlock" and seconds < 1
        assert "'me'" in text and "its own" in text
        assert ref.ask("ask", timeout=10)[0] == "AskDeadlock"  # the minion carries on
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- the worker cap
def test_asks_beyond_the_worker_cap_time_out_and_say_why() -> None:
    records: list[Any] = []
    system = ActorSystem.start(**{**QUIET, "log_sinks": [(records.append,
                                                         {"level": "WARNING"})]},
                               pool_size=1, pool_max_workers=2, starvation_threshold=60)
    try:
        ref = None
        for i in range(4):
            ref = system.spawn(Chain, ref, 0.5, name=f"c{i}")
        assert ref is not None
        with pytest.raises(AskTimeout):
            ref.ask(0, timeout=5)
        # once per episode (every worker waiting), not once per wait: the chain's waits
        # end one after the other, so one or two episodes
        text = [str(r) for r in records if "pool_max_workers (2) is reached" in str(r)]
        assert 1 <= len(text) <= 2
        assert "2" in text[0] and "dedicated_thread" in text[0]
        # the pool recovers once the waits end
        assert system.spawn(Chain, None, 0.5).ask(1, timeout=5) == 2
    finally:
        system.shutdown(timeout=10)


def test_a_chain_of_asks_on_a_single_worker() -> None:
    system = ActorSystem.start(**QUIET, pool_size=1, starvation_threshold=60)
    try:
        ref = None
        for i in range(8):
            ref = system.spawn(Chain, ref, 0.5, name=f"c{i}")
        assert ref is not None
        assert [ref.ask(i, timeout=5) for i in range(20)] == [i + 8 for i in range(20)]
        wait_until(lambda: system.worker_pool.workers() <= 8, what="no worker per ask")
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- shutdown under load
class Gate(Minion):
    """Blocks on an Event message; a (started, gate) pair sets ``started`` first."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple):
            started, message = message
            started.set()
        if isinstance(message, threading.Event):
            message.wait(30)
        return message


def test_shutdown_under_a_flood_with_a_stuck_handler_is_bounded_and_reports_it() -> None:
    records: list[Any] = []
    system = ActorSystem.start(**{**QUIET, "log_sinks": [(records.append, {"level": "ERROR"})]},
                               pool_size=2, starvation_threshold=0.1)
    gate = threading.Event()
    try:
        stuck = system.spawn(Gate, name="stuck")
        flooded = [system.spawn(Gate, name=f"f{i}") for i in range(4)]
        started = threading.Event()
        stuck.tell((started, gate))
        assert started.wait(5)
        for _ in range(5000):
            for ref in flooded:
                ref.tell("x")
        t0 = time.monotonic()
        assert system.shutdown(timeout=1.0) is False
        assert time.monotonic() - t0 < 2.5
        reported = [str(r) for r in records if "did not stop before the shutdown" in str(r)]
        assert len(reported) == 1 and "'stuck'" in reported[0]
        assert "minions-worker-" in reported[0]
        assert all(not ref.is_alive() for ref in flooded)
        # what is left is the one worker in the stuck handler, named (and reported above)
        left = [t.name for t in threading.enumerate()
                if t is not threading.main_thread() and t.is_alive() and not t.daemon]
        assert len(left) == 1 and left[0].startswith("minions-worker-"), left
    finally:
        gate.set()
        wait_until(lambda: runtime_threads() == [], what="every runtime thread ends")


# ---------------------------------------------------------------- hooks that raise
class Raising(Hooks):
    def __init__(self) -> None:
        self.starved: list[str] = []

    def minion_started(self, cell: Any, restored: bool) -> None:
        raise RuntimeError("hook boom (started)")

    def minion_stopped(self, cell: Any, reason: str) -> None:
        raise RuntimeError("hook boom (stopped)")

    def worker_starved(self, cell: Any, seconds: float) -> None:
        self.starved.append(cell.path)
        raise RuntimeError("hook boom (starved)")


def test_hooks_that_raise_on_a_worker_are_logged_and_the_pool_carries_on() -> None:
    hooks = Raising()
    records: list[Any] = []
    system = ActorSystem.start(**{**QUIET, "log_sinks": [(records.append, {"level": "ERROR"})]},
                               pool_size=1, starvation_threshold=0.1, hooks=[hooks])
    gates = [threading.Event(), threading.Event()]
    try:
        refs = [system.spawn(Gate, name=f"g{i}") for i in range(2)]
        assert [r.ask("hi", timeout=5) for r in refs] == ["hi", "hi"]
        for ref, gate in zip(refs, gates, strict=True):  # two stuck handlers, one after the other
            ref.tell(gate)
            wait_until(lambda ref=ref: ref.path in hooks.starved, what="stuck reported")
            gate.set()
        assert hooks.starved == ["g0", "g1"]  # the monitor survived the first raise
        assert refs[0].stop(timeout=5) is True
        assert refs[1].ask("still", timeout=5) == "still"
        assert any("hook boom (started)" in str(r) for r in records)
        assert any("hook boom (starved)" in str(r) for r in records)
        assert all(t.is_alive() for t in system.worker_pool.threads())
    finally:
        for gate in gates:
            gate.set()
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- runnext fairness
class Pinger(Minion):
    """Plays ping-pong with a peer until ``rounds`` exchanges, counting in ``score``."""

    def __init__(self, score: list[int], rounds: int) -> None:
        super().__init__()
        self.score, self.rounds, self.peer = score, rounds, None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple):
            self.peer = message[0]
            return None
        self.score[0] += 1
        if message < self.rounds:
            assert self.peer is not None
            self.peer.tell(message + 1)
        return None


def test_two_minions_playing_ping_pong_on_runnext_do_not_starve_a_third() -> None:
    # each message makes the other minion this worker's runnext: the run queue must still
    # be served every `throughput` such turns
    rounds = 200_000
    system = ActorSystem.start(**QUIET, pool_size=1, pool_throughput=8)
    try:
        score = [0]
        a, b = system.spawn(Pinger, score, rounds), system.spawn(Pinger, score, rounds)
        a.ask((b,), timeout=5)
        b.ask((a,), timeout=5)
        quiet = system.spawn(Log, [])
        quiet.ask("warm", timeout=5)
        a.tell(0)
        wait_until(lambda: score[0] > 1000, what="the ping-pong is under way")
        assert quiet.ask("served", timeout=5) == "served"
        assert score[0] < rounds, "the quiet minion waited for the whole ping-pong"
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- starvation reports
class Sleeper(Minion):
    def on_receive(self, message: Any) -> Any:
        time.sleep(message)
        return message


def test_stuck_reports_racing_turn_ends_leave_the_pool_consistent() -> None:
    # the monitor checks every 10 ms and each handler is just past the 40 ms threshold:
    # reports and turn ends interleave in every order
    hooks = Recorder()

    class Count(Hooks):
        def worker_starved(self, cell: Any, seconds: float) -> None:
            hooks.add(cell.path)

    system = ActorSystem.start(**QUIET, pool_size=2, starvation_threshold=0.04,
                               hooks=[Count()])
    try:
        pool = system.worker_pool
        refs = [system.spawn(Sleeper, name=f"s{i}") for i in range(3)]
        futures = [ref.ask(0.045, block=False) for _ in range(6) for ref in refs]
        assert all(f.get(timeout=10) == 0.045 for f in futures)
        assert 1 <= len(hooks.events) <= 18  # at most once per stuck handler
        # every report was undone when its turn ended: nothing counts as blocked any more
        wait_until(lambda: pool._blocked == 0 and not any(s.stuck for s in pool._slots),
                   timeout=2, what="no worker left counted as stuck")
        assert pool.workers() <= pool.max_workers
        assert [r.ask(0, timeout=5) for r in refs] == [0, 0, 0]
    finally:
        system.shutdown(timeout=10)


@pytest.mark.slow
def test_after_slow_turns_the_pool_shrinks_back_to_its_size() -> None:
    # a turn of several messages each slower than the threshold is reported once per
    # message; it must still count as one stuck worker, or the extra workers never leave
    system = ActorSystem.start(**QUIET, pool_size=2, starvation_threshold=0.04)
    try:
        pool = system.worker_pool
        refs = [system.spawn(Sleeper, name=f"s{i}") for i in range(3)]
        futures = [ref.ask(0.045, block=False) for _ in range(6) for ref in refs]
        assert all(f.get(timeout=10) == 0.045 for f in futures)
        assert pool.workers() > 2
        wait_until(lambda: pool.workers() == 2, timeout=8, what="extra workers left")
    finally:
        system.shutdown(timeout=10)


class Polite(Minion):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_stop(self) -> None:
        self.rec.add(("stop", self.path))


@pytest.mark.usefixtures("execution")
def test_a_shutdown_shorter_than_the_threshold_stops_the_rest_beside_a_stuck_handler(
        rec: Recorder) -> None:
    # every worker is stuck in a handler and the shutdown ends before the starvation
    # monitor would add one: the other minions must still stop in order (each on_stop
    # runs), as they do with a thread each
    system = ActorSystem.start(**QUIET, pool_size=1)
    gate = threading.Event()
    try:
        polite = [system.spawn(Polite, rec, name=f"p{i}") for i in range(3)]
        for ref in polite:
            ref.ask("ready", timeout=5)
        stuck = system.spawn(Gate, name="stuck")
        started = threading.Event()
        stuck.tell((started, gate))
        assert started.wait(5)
        t0 = time.monotonic()
        assert system.shutdown(timeout=0.3) is False  # the stuck one is reported
        assert time.monotonic() - t0 < 2
        assert [e[1] for e in rec.events if e[0] == "stop"] == ["p2", "p1", "p0"]
    finally:
        gate.set()
        wait_until(lambda: runtime_threads() == [], what="every runtime thread ends")


# ---------------------------------------------------------------- restarts and runnext
class BackoffParent(Minion):
    strategy = OneForOne(max_restarts=5, within=10, backoff=Backoff(initial=0.1, jitter=0))

    def on_receive(self, message: Any) -> Any:
        return self.spawn(LogOrCrash, message, name="b")


class LogOrCrash(Log):
    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        return super().on_receive(message)


class TellThenSleep(Minion):
    """Tells ``peer`` (making it this worker's runnext) then sleeps past its backoff."""

    def on_receive(self, message: Any) -> Any:
        peer, seconds = message
        peer.tell("during the backoff")
        time.sleep(seconds)
        return "slept"


def test_a_restart_due_while_the_minion_waits_in_another_workers_runnext() -> None:
    # the backoff's wake-up finds the minion already scheduled (in a runnext): it must
    # still restart and handle its mail, in order, once that worker is free
    system = ActorSystem.start(**QUIET, pool_size=2, starvation_threshold=5)
    try:
        log: list[Any] = []
        parent = system.spawn(BackoffParent)
        b = parent.ask(log, timeout=5)
        b.tell("before")
        with pytest.raises(RuntimeError):
            b.ask("crash", timeout=5)  # restarted after a 0.1 s backoff
        sender = system.spawn(TellThenSleep)
        t0 = time.monotonic()
        assert sender.ask((b, 0.3), timeout=5) == "slept"
        assert b.ask("after", timeout=5) == "after"
        assert time.monotonic() - t0 >= 0.3
        assert log == ["before", "during the backoff", "after"]
        assert b.is_alive()
    finally:
        system.shutdown(timeout=10)


@pytest.mark.usefixtures("execution")
def test_a_normal_exit_and_restart_is_no_death_but_the_final_stop_is(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET)
    try:
        watcher = system.spawn(Watcher, rec, name="w")
        target = system.spawn(StopsItself, name="t")  # permanent: a normal exit restarts it
        watcher.ask(target, timeout=5)
        target.tell("exit")
        wait_until(lambda: system.get("t").ask("ping", timeout=5) == "stopping")
        assert target.is_alive() and rec.count(("terminated", "t")) == 0
        assert target.stop(timeout=5) is True
        rec.wait_count(("terminated", "t"), 1)
    finally:
        system.shutdown(timeout=10)


class LaterGet(Minion):
    """Asks itself without waiting, and reads the answer in a later message."""

    def __init__(self) -> None:
        super().__init__()
        self.future: Any = None

    def on_receive(self, message: Any) -> Any:
        if message == "start":
            self.future = self.ref.ask("inner", block=False)
            return "queued"
        if message == "inner":
            return "answered"
        return self.future.get(timeout=1)  # handled after "inner": answered already


@pytest.mark.usefixtures("execution")
def test_a_minion_may_read_its_own_answered_future_in_a_later_message() -> None:
    system = ActorSystem.start(**QUIET)
    try:
        ref = system.spawn(LaterGet)
        assert ref.ask("start", timeout=5) == "queued"
        assert ref.ask("read", timeout=5) == "answered"
    finally:
        system.shutdown(timeout=10)


# ---------------------------------------------------------------- stops during a linger
@pytest.mark.usefixtures("execution")
def test_stops_and_shutdowns_arriving_while_the_worker_lingers(rec: Recorder) -> None:
    # right after a reply the worker waits a little on the same mailbox (the linger): a
    # stop or a shutdown's halt arriving then must be handled at once, on_stop included
    for i in range(30):
        system = ActorSystem.start(**QUIET, pool_size=1)
        a = system.spawn(Polite, rec, name="a")
        b = system.spawn(Polite, rec, name="b")
        a.ask("hello", timeout=5)
        assert a.stop(timeout=2) is True
        b.ask("hello", timeout=5)
        t0 = time.monotonic()
        assert system.shutdown(timeout=5) is True
        assert time.monotonic() - t0 < 1
        assert [e[1] for e in rec.events if e[0] == "stop"] == ["a", "b"] * (i + 1)


# ---------------------------------------------------------------- a random mix
class Node(Minion):
    """Records ("rec", sender, seq); forwards ("fwd", ref, sender, seq) from its handler;
    asks another node ("ask", ref); answers "ping"; crashes on "crash"."""

    def __init__(self, log: dict[Any, list[int]]) -> None:
        super().__init__()
        self.log = log

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        if message == "ping":
            return "pong"
        kind = message[0]
        if kind == "rec":
            self.log.setdefault((self.path, message[1]), []).append(message[2])
        elif kind == "fwd":
            message[1].tell(("rec", message[2], message[3]))
        elif kind == "ask":
            return message[1].ask("ping", timeout=5)
        return None


@pytest.mark.usefixtures("execution")
def test_a_random_mix_of_tells_asks_forwards_and_crashes_keeps_every_promise() -> None:
    import random

    system = ActorSystem.start(**QUIET, pool_size=2, pool_throughput=2,
                               starvation_threshold=0.05,
                               strategy=OneForOne(max_restarts=100_000, within=60))
    try:
        log: dict[Any, list[int]] = {}
        nodes = [system.spawn(Node, log, name=f"n{i}",  # half with a bounded mailbox
                              mailbox_size=4 if i % 2 else None, mailbox_put_timeout=5)
                 for i in range(6)]
        sent: dict[Any, list[int]] = {}
        errors: list[BaseException] = []

        def client(k: int) -> None:
            rnd = random.Random(k)
            seq = 0
            try:
                for _ in range(3000):
                    target = rnd.choice(nodes)
                    op = rnd.random()
                    if op < 0.5:  # a tell, direct or forwarded by an earlier node's handler
                        seq += 1  # (waits go one way: bounded mailboxes in a cycle deadlock)
                        at = nodes.index(target)
                        via = rnd.choice(nodes[:at]) if at else target
                        forward = op < 0.25 and at > 0
                        sender = (k, via.path) if forward else (k, "direct")
                        sent.setdefault((target.path, sender), []).append(seq)
                        if forward:
                            via.tell(("fwd", target, sender, seq))
                        else:
                            target.tell(("rec", sender, seq))
                    elif op < 0.8:
                        assert target.ask("ping", timeout=5) == "pong"
                    elif op < 0.95:
                        # only to a later node: a cycle of asks deadlocks in any mode
                        at = nodes.index(target)
                        if at + 1 < len(nodes):
                            other = rnd.choice(nodes[at + 1:])
                            assert target.ask(("ask", other), timeout=5) == "pong"
                    else:
                        target.tell("crash")
            except BaseException as exc:  # reported below
                errors.append(exc)

        clients = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(30)
        for ref in nodes:  # everything queued so far is handled
            assert ref.ask("ping", timeout=5) == "pong"
            for via in nodes[:nodes.index(ref)]:
                assert via.ask(("ask", ref), timeout=5) == "pong"
        assert not errors, errors[:3]
        # nothing lost across the crashes, FIFO per sender (a forwarding node is a sender)
        for key, seqs in sent.items():
            assert log.get(key) == seqs, key
        assert all(ref.is_alive() for ref in nodes)
        pool = system.worker_pool  # quiet again: no worker counted as waiting or stuck
        wait_until(lambda: pool._blocked == 0, timeout=2, what="no blocked worker left")
    finally:
        assert system.shutdown(timeout=10)


@pytest.mark.usefixtures("execution")
def test_a_shutdown_with_a_stuck_handler_returns_at_its_timeout_not_after() -> None:
    # the stuck worker (or thread) is reported, not waited for past the deadline; the bug
    # added 0.1 s (a join floor) to every try, a loaded host adds delay to some: best of 3
    took = [_shutdown_beside_a_stuck_handler() for _ in range(3)]
    assert min(took) < 0.58, took  # (it waited 0.6 s: a 0.1 s join floor)


def _shutdown_beside_a_stuck_handler() -> float:
    """How long ``shutdown(timeout=0.5)`` took while a handler stays stuck."""
    system = ActorSystem.start(**QUIET, pool_size=2)
    gate = threading.Event()
    try:
        stuck = system.spawn(Gate, name="stuck")
        started = threading.Event()
        stuck.tell((started, gate))
        assert started.wait(5)
        t0 = time.monotonic()
        assert system.shutdown(timeout=0.5) is False
        return time.monotonic() - t0
    finally:
        gate.set()
        wait_until(lambda: runtime_threads() == [], what="every runtime thread ends")
