"""Minions' timers (``self.timers``) and the receive timeout, on real clocks with short
delays: order and replacement of keyed timers, cancel on restart and stop, no delivery after
a cancel, the rate of periodic timers under a slow handler, bad input, async minions, a
shutdown with 10,000 armed timers."""

from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, ReceiveTimeout
from tests.conftest import QUIET, Recorder, runtime_threads, scrape_samples, wait_until

pytestmark = pytest.mark.usefixtures("execution")


class Keyed(Minion):
    """Starts what it is told to, and records what its timers send."""

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "single":
            _, key, msg, delay = message
            self.timers.start_single(key, msg, delay)
        elif isinstance(message, tuple) and message[0] == "cancel":
            return self.timers.cancel(message[1])
        elif message == "keys":
            return self.timers.keys()
        else:
            self.rec.add(message)
        return None


def test_single_timers_fire_in_due_order_once_and_end(system: ActorSystem,
                                                      rec: Recorder) -> None:
    ref = system.spawn(Keyed, rec)
    for key, delay in (("c", 0.15), ("a", 0.05), ("b", 0.10)):
        ref.tell(("single", key, f"fired {key}", delay))
    assert ref.ask("keys") == ["c", "a", "b"]
    rec.wait_for(lambda evs: len(evs) == 3)
    assert rec.events == ["fired a", "fired b", "fired c"]
    assert ref.ask("keys") == []  # a single timer ends once its message was handled
    assert system.timer.stats.active == 0


def test_starting_a_key_again_replaces_its_timer(system: ActorSystem, rec: Recorder) -> None:
    ref = system.spawn(Keyed, rec)
    ref.tell(("single", "k", "old", 0.05))
    ref.tell(("single", "k", "new", 0.10))
    ref.tell(("single", "probe", "probe", 0.30))
    rec.wait_for(lambda evs: "probe" in evs)
    assert rec.events == ["new", "probe"]
    assert system.timer.stats.active == 0


class CancelInFlight(Minion):
    """Starts a timer, waits until its message is in the mailbox, then cancels or
    replaces it: the message already queued must not be delivered."""

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_receive(self, message: Any) -> None:
        if message in ("cancel", "replace"):
            self.timers.start_single("k", "stale", 0)
            wait_until(lambda: self.actor_inbox.qsize() > 0, 5, "the timer's message queued")
            if message == "cancel":
                assert self.timers.cancel("k")
                assert not self.timers.is_active("k")
            else:
                self.timers.start_single("k", "fresh", 0.05)
            self.timers.start_single("probe", "probe", 0.15)
        else:
            self.rec.add(message)


@pytest.mark.parametrize("how", ["cancel", "replace"])
def test_a_cancelled_timers_message_already_queued_is_not_delivered(
        system: ActorSystem, rec: Recorder, how: str) -> None:
    ref = system.spawn(CancelInFlight, rec)
    ref.tell(how)
    rec.wait_for(lambda evs: "probe" in evs)
    assert "stale" not in rec.events
    assert rec.events == (["probe"] if how == "cancel" else ["fresh", "probe"])


class Restarting(Minion):
    """Each incarnation starts a periodic timer tagged with its number; the first one
    crashes on its third tick."""

    incarnations = 0

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        Restarting.incarnations += 1
        self.n = Restarting.incarnations
        self.rec = rec

    def on_start(self) -> None:
        if self.n == 1:
            self.timers.start_periodic("tick", "tick", 0.02)
            self.timers.start_single("later", "later", 0.05)
        else:
            self.rec.add(("keys", self.n, self.timers.keys()))
            self.timers.start_single("probe", "probe", 0.3)

    def on_receive(self, message: Any) -> None:
        self.rec.add((self.n, message))
        if self.n == 1 and self.rec.count((1, "tick")) == 3:
            raise RuntimeError("third tick")


def test_a_restart_cancels_the_incarnations_timers(system: ActorSystem, rec: Recorder) -> None:
    Restarting.incarnations = 0
    system.spawn(Restarting, rec)
    rec.wait_for(lambda evs: (2, "probe") in evs)
    assert ("keys", 2, []) in rec.events
    assert [e for e in rec.events if isinstance(e, tuple) and e[0] == 2] == [(2, "probe")]
    assert system.timer.stats.active == 0


def test_a_stop_cancels_the_timers(system: ActorSystem, rec: Recorder) -> None:
    ref = system.spawn(Keyed, rec)
    for i in range(50):
        ref.tell(("single", f"k{i}", i, 30.0))
    ref.tell(("single", "soon", "soon", 0.01))
    rec.wait_for(lambda evs: "soon" in evs)
    assert system.timer.stats.active == 50
    ref.stop()
    assert system.timer.stats.active == 0
    assert system.timer.pending() <= 2  # (the workflow pruning and inbox poll, if any)


class Periodic(Minion):
    def __init__(self, rec: Recorder, fixed: str, interval: float, work: float) -> None:
        super().__init__()
        self.rec, self.work = rec, work
        self.timers.start_periodic("p", "tick", interval, fixed=fixed)  # type: ignore[arg-type]

    def on_receive(self, message: Any) -> None:
        self.rec.add((message, time.monotonic()))
        if len(self.rec.events) >= 11:
            self.timers.cancel("p")
        time.sleep(self.work)  # a slow handler


def _ticks(rec: Recorder) -> list[float]:
    rec.wait_for(lambda evs: len(evs) >= 11, timeout=20)
    return [t for _, t in rec.events[:11]]


def test_a_fixed_rate_timer_keeps_its_rate_under_a_slow_handler(
        system: ActorSystem, rec: Recorder) -> None:
    # a handler half the interval: fixed delay would tick every 0.3 s; 0.1 s left for the
    # tick to reach a worker (a loaded 2-core host took over the 0.02 s once left here:
    # a tick due while the last is unhandled is skipped, so it ticked every 0.1 s, not 0.05)
    system.spawn(Periodic, rec, "rate", 0.2, 0.1)
    ticks = _ticks(rec)
    mean = (ticks[-1] - ticks[0]) / 10
    assert mean < 0.25, f"ticks every {mean:.3f}s, not the rate's 0.2"
    assert mean > 0.18


def test_a_fixed_delay_timer_waits_its_interval_after_each_handled_message(
        system: ActorSystem, rec: Recorder) -> None:
    system.spawn(Periodic, rec, "delay", 0.05, 0.03)
    ticks = _ticks(rec)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= 0.079, gaps  # the handler's 0.03 plus the interval, every time


class BadInput(Minion):
    def on_start(self) -> None:
        self.timers.start_single("keep", "kept", 30.0)

    def on_receive(self, message: Any) -> Any:
        call, args = message
        try:
            getattr(self.timers if call != "rt" else self, call if call != "rt"
                    else "set_receive_timeout")(*args)
        except (TypeError, ValueError) as exc:
            return type(exc).__name__, str(exc), self.timers.keys(), self.receive_timeout
        return "accepted"


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, -math.inf, True, "1"])
def test_bad_delays_are_clear_errors_that_change_nothing(system: ActorSystem,
                                                         bad: object) -> None:
    ref = system.spawn(BadInput)
    for call, args in (("start_single", ("keep", "x", bad)),
                       ("start_periodic", ("keep", "x", bad)),
                       ("rt", (bad,))):
        kind, text, keys, idle = ref.ask((call, args))
        assert kind == ("TypeError" if isinstance(bad, (bool, str)) else "ValueError")
        assert repr(bad) in text and "seconds" in text
        assert keys == ["keep"] and idle is None
    kind, text, _, _ = ref.ask(("start_periodic", ("p", "x", 0)))
    assert "> 0" in text
    assert ref.ask(("start_single", ("now", "x", 0))) == "accepted"


class Idle(Minion):
    def __init__(self, rec: Recorder, where: str = "on_start") -> None:
        super().__init__()
        self.rec, self.where = rec, where

    def on_start(self) -> None:
        if self.where == "on_start":
            self.go()
        else:
            self.ref.tell("go")

    def go(self) -> None:
        self.set_receive_timeout(0.2)
        self.timers.start_periodic("busy", "busy", 0.05)

    def on_receive(self, message: Any) -> None:
        if message == "go":  # set while the loop runs (a dedicated thread's never returns)
            self.go()
            return
        self.rec.add((message, time.monotonic()))
        busy = [e for e in self.rec.events if e[0] == "busy"]
        if len(busy) == 5:
            self.timers.cancel("busy")
        if isinstance(message, ReceiveTimeout):
            timeouts = [e for e in self.rec.events if isinstance(e[0], ReceiveTimeout)]
            if len(timeouts) == 2:
                self.set_receive_timeout(None)
                self.timers.start_single("probe", "probe", 0.5)


@pytest.mark.parametrize("where", ["on_start", "on_receive"])
def test_the_receive_timeout_comes_after_idle_periods_only(system: ActorSystem,
                                                           rec: Recorder, where: str) -> None:
    system.spawn(Idle, rec, where)
    rec.wait_for(lambda evs: any(e[0] == "probe" for e in evs), timeout=10)
    kinds = [type(e[0]).__name__ if not isinstance(e[0], str) else e[0] for e in rec.events]
    assert kinds == ["busy"] * 5 + ["ReceiveTimeout"] * 2 + ["probe"]
    last_busy, first, second = rec.events[4][1], rec.events[5][1], rec.events[6][1]
    assert first - last_busy >= 0.19 and second - first >= 0.19
    assert system.timer.stats.active == 0


class AsyncTimers(Minion):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    async def on_start(self) -> None:
        self.timers.start_periodic("p", "tick", 0.02)
        self.set_receive_timeout(0.1)

    async def on_receive(self, message: Any) -> None:
        import asyncio

        await asyncio.sleep(0)
        self.rec.add(message)
        if self.rec.count("tick") == 3:
            self.timers.cancel("p")


def test_timers_reach_an_async_minions_coroutine(system: ActorSystem, rec: Recorder) -> None:
    system.spawn(AsyncTimers, rec)
    rec.wait_for(lambda evs: any(isinstance(e, ReceiveTimeout) for e in evs))
    assert rec.events[:3] == ["tick"] * 3


class ManyTimers(Minion):
    def on_start(self) -> None:
        for i in range(10_000):
            self.timers.start_single(i, i, 60.0 + i / 1000)

    def on_receive(self, message: Any) -> Any:
        return len(self.timers.keys())


def test_a_shutdown_with_10000_armed_timers_is_bounded_and_leaves_no_thread() -> None:
    system = ActorSystem.start(**QUIET)
    try:
        ref = system.spawn(ManyTimers)
        assert ref.ask("count", timeout=30) == 10_000
        assert system.timer.stats.active == 10_000
        started = time.monotonic()
    finally:
        assert system.shutdown(timeout=20)
    assert time.monotonic() - started < 10
    assert runtime_threads() == []
    assert not [t for t in threading.enumerate() if t.name == "minions-timer"]


def test_the_metrics_count_active_timers_and_how_late_they_fire(rec: Recorder) -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        ref = system.spawn(Keyed, rec)
        for i in range(3):
            ref.tell(("single", f"later{i}", i, 30.0))
        for i in range(5):
            ref.tell(("single", f"now{i}", f"now{i}", 0.01))
        rec.wait_for(lambda evs: len(evs) == 5)
        samples = scrape_samples(system)
        assert samples["minions_timers_active[]"] == 3
        assert samples["minions_timer_lateness_seconds_count[]"] == 5
        assert samples["minions_timer_lateness_seconds_bucket[('le', '+Inf')]"] == 5
        assert 0 <= samples["minions_timer_lateness_seconds_sum[]"] < 5
    finally:
        system.shutdown(timeout=10)


class BusyWithTells(Minion):
    """Sets its receive timeout while handling a message, then keeps busy for longer than
    the timeout with plain tells to itself (a slow chain of work)."""

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_start(self) -> None:
        self.ref.tell("go")

    def on_receive(self, message: Any) -> None:
        if message == "go":
            self.set_receive_timeout(0.2)
            self.ref.tell(1)
        elif isinstance(message, ReceiveTimeout):
            self.rec.add(("timeout", time.monotonic()))
            self.set_receive_timeout(None)
        else:
            self.rec.add(("work", time.monotonic()))
            time.sleep(0.02)  # a slow handler: 15 of them outlast the timeout
            if message < 15:
                self.ref.tell(message + 1)


def test_plain_tells_count_as_activity_from_the_message_after_setting_it(
        system: ActorSystem, rec: Recorder) -> None:
    system.spawn(BusyWithTells, rec)
    rec.wait_for(lambda evs: any(e[0] == "timeout" for e in evs), timeout=10)
    kinds = [kind for kind, _ in rec.events]
    assert kinds == ["work"] * 15 + ["timeout"]
    assert rec.events[-1][1] - rec.events[-2][1] >= 0.19
