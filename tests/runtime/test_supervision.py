"""Supervision behaviours ported from Erlang/OTP's supervisor test suite, via the public API."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    AskTimeout,
    Backoff,
    Minion,
    OneForAll,
    OneForOne,
    RestForOne,
    SupervisorGaveUp,
)

from ..conftest import QUIET, Gate, Recorder, wait_until
from ..minions_for_tests import AllSup, RestSup, Sup, TightSup, Worker

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes


def starts(rec: Recorder, tag: str) -> int:
    return rec.count(("start", tag))


def all_started(rec: Recorder, tags: str) -> int:
    """Wait until every first child ran its on_start (``spawn`` returns before it runs, so
    dedicated children may start in any order); the number of events then."""
    rec.wait_for(lambda e: all(("start", t) in e for t in tags))
    return len(rec.events)


def test_one_for_one_restarts_only_the_crashed_child(system: ActorSystem, rec: Recorder) -> None:
    system.spawn(Sup, rec, "sup", ["a", "b", "c"], name="sup")
    rec.wait_for(lambda e: ("start", "c") in e)
    system.get("sup/b").tell("crash")
    rec.wait_count(("start", "b"), 2)
    assert system.get("sup/b").ask("ping", timeout=2) == "pong"
    assert (starts(rec, "a"), starts(rec, "b"), starts(rec, "c")) == (1, 2, 1)
    assert rec.count(("stop", "a")) == rec.count(("stop", "c")) == 0


class HoldingSup(Sup):
    """A supervisor whose handler holds on a :class:`Gate`."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Gate):
            message.hold()
        return super().on_receive(message)


def test_a_supervisor_busy_in_a_handler_restarts_its_child_only_after_it(
        system: ActorSystem, rec: Recorder) -> None:
    """Supervising is the supervisor's own work, one message at a time: a crash reported
    while its handler runs is acted on after that handler, whatever thread reports it."""
    sup = system.spawn(HoldingSup, rec, "sup", ["a"], name="sup")
    rec.wait_for(lambda e: ("start", "a") in e)
    gate = Gate()
    sup.tell(gate)
    gate.wait_entered()
    child = system.get("sup/a")
    child.tell("crash")
    with pytest.raises(AskTimeout):  # down until its supervisor is free to restart it
        child.ask("ping", timeout=0.3)
    assert starts(rec, "a") == 1
    gate.opened.set()
    assert child.ask("ping", timeout=5) == "pong"
    assert starts(rec, "a") == 2


def test_one_for_all_restarts_every_sibling(system: ActorSystem, rec: Recorder) -> None:
    system.spawn(AllSup, rec, "sup", ["a", "b", "c"], name="sup")
    started = all_started(rec, "abc")
    system.get("sup/b").tell("crash")
    rec.wait_for(lambda e: all(e.count(("start", t)) == 2 for t in "abc"))
    events = rec.events[started:]
    # the crashed child is not stopped normally; the others stop in reverse start order,
    # then all start again in start order
    assert events == [("stop", "c"), ("stop", "a"), ("start", "a"), ("start", "b"),
                      ("start", "c")]


def test_rest_for_one_restarts_crashed_and_younger(system: ActorSystem, rec: Recorder) -> None:
    system.spawn(RestSup, rec, "sup", ["a", "b", "c", "d"], name="sup")
    started = all_started(rec, "abcd")
    system.get("sup/b").tell("crash")
    rec.wait_for(lambda e: e.count(("start", "d")) == 2)
    events = rec.events[started:]
    assert events == [("stop", "d"), ("stop", "c"), ("start", "b"), ("start", "c"),
                      ("start", "d")]
    assert starts(rec, "a") == 1


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        ("permanent", "crash", True),
        ("permanent", "exit", True),
        ("transient", "crash", True),
        ("transient", "exit", False),
        ("temporary", "crash", False),
        ("temporary", "exit", False),
    ],
)
def test_restart_types(
    system: ActorSystem, rec: Recorder, restart: str, how: str, restarted: bool
) -> None:
    ref = system.spawn(Worker, rec, "w", name="w", restart=restart)
    assert ref.ask("ping", timeout=2) == "pong"
    ref.tell(how)
    if restarted:
        rec.wait_count(("start", "w"), 2)
        assert ref.ask("ping", timeout=2) == "pong"
        assert ref.is_alive()
    else:
        assert ref.actor_stopped.wait(5)
        assert not ref.is_alive()
        assert system.find("w") is None
        assert starts(rec, "w") == 1


def test_intensity_exceeded_stops_children_and_fails_upward(
    system: ActorSystem, rec: Recorder
) -> None:
    # TightSup allows 1 restart in 10 s; its own supervisor (Gru) restarts it.
    system.spawn(TightSup, rec, "sup", ["a", "b"], name="sup")
    rec.wait_for(lambda e: ("start", "b") in e)
    system.get("sup/a").tell("crash")
    rec.wait_count(("start", "a"), 2)
    system.get("sup/a").tell("crash")  # second restart in the window: give up
    # sup stops its children, fails, and Gru restarts sup, which spawns fresh children
    rec.wait_count(("start", "sup"), 2)
    rec.wait_count(("start", "b"), 2)
    assert ("stop", "b") in rec.events
    assert system.get("sup/a").ask("ping", timeout=2) == "pong"


def test_restart_window_slides() -> None:
    rec = Recorder()
    system = ActorSystem.start(strategy=OneForOne(max_restarts=2, within=0.3), **QUIET)
    try:
        ref = system.spawn(Worker, rec, "w", name="w")
        for n in range(2, 8):  # 6 crashes, but never more than 2 inside any 0.3 s window
            ref.tell("crash")
            rec.wait_count(("start", "w"), n)
            wait_until(lambda: system.find("w") is not None and system.get("w").ask(
                "ping", timeout=2) == "pong")
            # let the window slide past the older restart before crashing again
            ref.ask("ping", timeout=2)
            import time

            time.sleep(0.16)  # time passing is what is under test, not synchronisation
        assert system.running and system.failure is None
    finally:
        system.shutdown()


def test_root_escalation_shuts_the_system_down_with_failure() -> None:
    rec = Recorder()
    system = ActorSystem.start(strategy=OneForOne(max_restarts=2, within=10), **QUIET)
    try:
        ref = system.spawn(Worker, rec, "w", name="w")
        for n in range(2, 4):
            ref.tell("crash")
            rec.wait_count(("start", "w"), n)
        ref.tell("crash")  # third restart within the window exceeds max_restarts=2
        assert system.wait(10)
        assert isinstance(system.failure, SupervisorGaveUp)
        assert "more than 2 restarts within 10" in str(system.failure)
        assert system.exit_code == 1
        assert not ref.is_alive()
    finally:
        system.shutdown()


def test_escalation_through_two_levels(system: ActorSystem, rec: Recorder) -> None:
    class Middle(Minion):
        strategy = OneForOne(max_restarts=0, within=10)

        def on_start(self) -> None:
            rec.add(("start", "middle"))
            self.spawn(TightSup, rec, "inner", ["leaf"], name="inner")

    class Top(Minion):
        strategy = OneForOne(max_restarts=5, within=10)

        def on_start(self) -> None:
            rec.add(("start", "top"))
            self.spawn(Middle, name="middle")

    system.spawn(Top, name="top")
    rec.wait_for(lambda e: ("start", "leaf") in e)
    leaf = system.get("top/middle/inner/leaf")
    leaf.tell("crash")
    rec.wait_count(("start", "leaf"), 2)
    system.get("top/middle/inner/leaf").tell("crash")  # inner gives up -> middle gives up
    rec.wait_count(("start", "middle"), 2)  # top restarts middle, re-creating its subtree
    rec.wait_count(("start", "leaf"), 3)
    assert system.get("top/middle/inner/leaf").ask("ping", timeout=2) == "pong"
    assert starts(rec, "top") == 1


class FailsInInit(Minion):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        rec.add("init")
        raise ValueError("bad config")


class FailsInStart(Minion):
    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def on_start(self) -> None:
        self.rec.add("on_start")
        raise ValueError("cannot connect")


@pytest.mark.parametrize("cls", [FailsInInit, FailsInStart])
def test_crash_at_start_counts_and_a_child_that_never_starts_escalates(cls: Any) -> None:
    rec = Recorder()
    system = ActorSystem.start(strategy=OneForOne(max_restarts=3, within=10), **QUIET)
    try:
        system.spawn(cls, rec, name="bad")
        assert system.wait(10), "Gru should give up after 1 start + 3 restarts"
        assert len(rec.events) == 4
        assert isinstance(system.failure, SupervisorGaveUp)
        assert "'bad'" in str(system.failure) and "ValueError" in str(system.failure)
    finally:
        system.shutdown()


def test_crash_never_disturbs_unrelated_minions(system: ActorSystem, rec: Recorder) -> None:
    calm = system.spawn(Worker, rec, "calm", name="calm")
    for i in range(100):
        calm.tell(i)
    crashy = system.spawn(Worker, rec, "crashy", name="crashy")
    crashy.tell("crash")
    rec.wait_count(("start", "crashy"), 2)
    assert calm.ask("seen", timeout=2) == list(range(100))
    assert starts(rec, "calm") == 1


def test_mailbox_survives_restart_only_the_crashing_message_is_dropped(
    system: ActorSystem, rec: Recorder
) -> None:
    import threading

    ref = system.spawn(Worker, rec, "w", name="w")
    gate = threading.Event()
    ref.tell(gate)  # hold the minion busy while we queue messages behind it
    ref.tell("before")
    ref.tell("crash")
    for i in range(50):
        ref.tell(i)
    gate.set()
    rec.wait_count(("start", "w"), 2)
    # the restarted instance got a fresh state and then the queued messages, in order
    assert ref.ask("seen", timeout=5) == list(range(50))


def test_backoff_delays_restarts() -> None:
    import time

    rec = Recorder()
    strategy = OneForOne(max_restarts=5, within=30, backoff=Backoff(initial=0.2, jitter=0))
    system = ActorSystem.start(strategy=strategy, **QUIET)
    try:
        ref = system.spawn(Worker, rec, "w", name="w")
        ref.ask("ping", timeout=2)
        t0 = time.monotonic()
        ref.tell("crash")
        rec.wait_count(("start", "w"), 2)
        first = time.monotonic() - t0
        t1 = time.monotonic()
        ref.tell("crash")
        rec.wait_count(("start", "w"), 3)
        second = time.monotonic() - t1
        assert first >= 0.2
        assert second >= 0.4  # doubled
    finally:
        system.shutdown()


def test_strategies_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        OneForOne(max_restarts=-1)
    with pytest.raises(ValueError, match="within"):
        OneForAll(within=0)
    with pytest.raises(TypeError, match="backoff"):
        RestForOne(backoff=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2)


class CountingSup(Sup):
    """Allows exactly 24 restarts in an hour (the crashes of the test below)."""

    strategy = OneForOne(max_restarts=24, within=3600.0)


def test_concurrent_crashes_each_count_once_against_the_intensity(
        system: ActorSystem, rec: Recorder) -> None:
    """Children crashing at once, each deciding in its own turn or handing the report to
    the supervisor's: every restart is counted once (no lost update of the window), so the
    limit's crashes are all restarted and the one past it gives up."""
    tags = [f"c{i}" for i in range(6)]
    system.spawn(CountingSup, rec, "sup", tags, name="sup")
    rec.wait_for(lambda e: all(("start", t) in e for t in tags))

    def crash_four_times(tag: str) -> None:
        for n in range(2, 6):
            system.get(f"sup/{tag}").tell("crash")
            rec.wait_count(("start", tag), n)

    threads = [threading.Thread(target=crash_four_times, args=(t,)) for t in tags]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(starts(rec, t) == 5 for t in tags)  # 24 restarts: within the limit
    assert starts(rec, "sup") == 1
    system.get("sup/c0").tell("crash")  # the 25th: the supervisor gives up
    rec.wait_count(("start", "sup"), 2)
