"""Messaging, refs, lookup, dead letters, mailboxes, death watch and shutdown."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    AskTimeout,
    DuplicateName,
    Gru,
    Hooks,
    MailboxFull,
    Minion,
    MinionNotFound,
    MinionStopped,
    SpawnError,
    SystemAlreadyRunning,
    SystemNotRunning,
)

from ..conftest import QUIET, Gate, Recorder, runtime_threads, wait_until
from ..minions_for_tests import Sup, Watcher, Worker

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes


class Counter(Minion):
    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.count = start

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.count
        if message == "boom":
            raise KeyError("boom")
        self.count += message
        return None

    def add(self, n: int) -> int:
        self.count += n
        return self.count


class Events(Hooks):
    def __init__(self) -> None:
        self.rec = Recorder()

    def dead_letter(self, cell: Any, message: Any, first: bool) -> None:
        self.rec.add(("dead", cell.path, message, first))

    def lifecycle_error(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add(("lifecycle", cell.path, phase, str(exc)))


def test_tell_ask_and_proxy(system: ActorSystem) -> None:
    ref = system.spawn(Counter, 10, name="counter")
    ref.tell(5)
    assert ref.ask("get", timeout=2) == 15
    assert ref.proxy().add(1).get(timeout=2) == 16
    assert ref.proxy().count.get(timeout=2) == 16
    future = ref.ask("get", block=False)
    assert future.get(timeout=2) == 16


def test_ask_whose_message_crashes_raises_in_caller_and_ref_stays_valid(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Counter, 1, name="counter")
    proxy = ref.proxy()
    with pytest.raises(KeyError, match="boom"):
        ref.ask("boom", timeout=2)
    # same ref and same proxy work with the restarted instance (fresh state: no snapshot)
    assert ref.ask("get", timeout=2) == 1
    assert proxy.add(2).get(timeout=2) == 3
    assert system.get("counter") == ref


def test_ask_timeout_names_the_minion(system: ActorSystem) -> None:
    gate = threading.Event()
    ref = system.spawn(Worker, Recorder(), "slow", name="slow")
    ref.tell(gate)
    with pytest.raises(AskTimeout, match="'slow'") as info:
        ref.ask("ping", timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(AskTimeout, match="'slow'"):
        ref.proxy().tag.get(timeout=0.05)
    gate.set()
    assert ref.ask("ping", timeout=2) == "pong"


def test_dead_letters_are_counted_logged_once_and_never_raise() -> None:
    events = Events()
    system = ActorSystem.start(hooks=[events], **QUIET)
    try:
        ref = system.spawn(Counter, name="c")
        assert ref.stop(timeout=2)
        for i in range(3):
            ref.tell(i)  # never raises
        with pytest.raises(MinionStopped, match="'c'"):
            ref.ask("get", timeout=1)
        dead = events.rec.only(lambda e: e[0] == "dead")
        assert [(e[2], e[3]) for e in dead] == [(0, True), (1, False), (2, False)]
    finally:
        system.shutdown()


def test_unhandled_messages_by_default_are_dead_letters() -> None:
    events = Events()
    system = ActorSystem.start(hooks=[events], **QUIET)
    try:

        class Silent(Minion):
            pass

        ref = system.spawn(Silent, name="silent")
        ref.tell("hello")
        events.rec.wait_for(lambda e: ("dead", "silent", "hello", True) in e)
    finally:
        system.shutdown()


def test_bounded_mailbox_raise_and_block(system: ActorSystem) -> None:
    gate, gate_k = Gate(), Gate()
    ref = system.spawn(Worker, Recorder(), "b", name="b", mailbox_size=2,
                       mailbox_overflow="raise")
    ref.tell(gate)
    gate.wait_entered()  # its slot is free: the mailbox holds exactly what follows
    ref.tell(1)
    ref.tell(2)
    with pytest.raises(MailboxFull, match=r"'b'.*full \(2 messages"):
        ref.tell(3)
    blocking = system.spawn(Worker, Recorder(), "k", name="k", mailbox_size=1,
                            mailbox_put_timeout=0.05)
    blocking.tell(gate_k)
    gate_k.wait_entered()
    blocking.tell(1)
    with pytest.raises(MailboxFull):
        blocking.tell(2)  # waits 50 ms for a free slot, then raises
    gate.open()
    gate_k.open()
    # once both are taken out, "b" has a free slot for the ask ("1" freed its own before
    # "2" was taken), and "k" frees its one slot well within the ask's 50 ms wait
    wait_until(lambda: ref.actor_inbox.qsize() == 0 and blocking.actor_inbox.qsize() == 0)
    assert ref.ask("seen", timeout=2) == [1, 2]
    assert blocking.ask("seen", timeout=2) == [1]


def test_bad_mailbox_options_are_rejected(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="mailbox_size"):
        system.spawn(Counter, mailbox_size=0)
    with pytest.raises(ValueError, match="mailbox_overflow"):
        system.spawn(Counter, mailbox_size=1, mailbox_overflow="drop")  # type: ignore[arg-type]


def test_lookup_by_path_and_stop(system: ActorSystem, rec: Recorder) -> None:
    system.spawn(Sup, rec, "sup", ["a", "b"], name="sup")
    rec.wait_for(lambda e: ("start", "b") in e)
    assert system.get("sup/a").ask("ping", timeout=2) == "pong"
    with pytest.raises(MinionNotFound, match=r"'zz' is not among the children of sup \(a, b\)"):
        system.get("sup/zz")
    assert system.find("nope") is None
    assert system.stop("sup/a")
    assert ("stop", "a") in rec.events
    assert system.find("sup/a") is None
    assert rec.count(("start", "a")) == 1  # an explicit stop is not restarted


def test_spawn_errors_are_clear(system: ActorSystem) -> None:
    with pytest.raises(SpawnError, match=r"construct Counter\(start=0\).*too many positional"):
        system.spawn(Counter, 1, 2)
    with pytest.raises(SpawnError, match="Minion subclass"):
        system.spawn(dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="restart must be one of"):
        system.spawn(Counter, restart="sometimes")
    with pytest.raises(ValueError, match="without '/'"):
        system.spawn(Counter, name="a/b")
    system.spawn(Counter, name="twin")
    with pytest.raises(DuplicateName, match="'twin' is already running"):
        system.spawn(Counter, name="twin")
    with pytest.raises(TypeError, match=r"system\.spawn"):
        Counter()
    with pytest.raises(TypeError, match=r"system\.spawn"):
        Counter.start()


def test_forgetting_super_init_is_harmless(tmp_path: Path) -> None:
    class Forgetful(Minion):
        def __init__(self, start: int) -> None:
            self.count = start  # no super().__init__(): the runtime does not need it

        def on_receive(self, message: Any) -> Any:
            if message == "boom":
                raise RuntimeError("boom")
            self.count += message
            return self.count

        def add(self, n: int) -> int:
            self.count += n
            return self.count

        def snapshot(self) -> Any:
            return {"count": self.count}

        def restore(self, state: Any) -> None:
            self.count = state["count"]

    system = ActorSystem.start(**{**QUIET, "state_store": tmp_path / "f.db"})
    try:
        ref = system.spawn(Forgetful, 1, name="f")
        assert ref.ask(2, timeout=5) == 3
        assert ref.proxy().add(1).get(timeout=5) == 4
        with pytest.raises(RuntimeError):
            ref.ask("boom", timeout=5)
        assert ref.ask(0, timeout=5) == 4  # restarted with its last good state, same ref
        assert system.running and system.failure is None
    finally:
        assert system.shutdown()


def test_death_watch(system: ActorSystem, rec: Recorder) -> None:
    watcher = system.spawn(Watcher, rec, name="watcher")
    target = system.spawn(Worker, rec, "t", name="t", restart="temporary")
    assert watcher.ask(("watch", target), timeout=2) == "watching"
    target.tell("crash")  # a temporary minion is not restarted: it stops for good
    rec.wait_for(lambda e: ("terminated", "t", "crashed") in e)
    # watching something already dead delivers Terminated at once
    assert watcher.ask(("watch", target), timeout=2) == "watching"
    rec.wait_count(("terminated", "t", "crashed"), 2)


def test_restart_is_not_a_termination_for_watchers(system: ActorSystem, rec: Recorder) -> None:
    watcher = system.spawn(Watcher, rec, name="watcher")
    target = system.spawn(Worker, rec, "t", name="t")
    watcher.ask(("watch", target), timeout=2)
    target.tell("crash")
    rec.wait_count(("start", "t"), 2)
    target.stop(timeout=2)
    rec.wait_for(lambda e: ("terminated", "t", "stopped") in e)
    assert len(rec.only(lambda e: e[0] == "terminated")) == 1


def test_shutdown_stops_children_first_in_reverse_start_order(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET)
    system.spawn(Sup, rec, "s1", ["a", "b"], name="s1")
    system.spawn(Sup, rec, "s2", ["c", "d"], name="s2")
    rec.wait_for(lambda e: all(("start", t) in e for t in "abcd"))
    assert system.shutdown(timeout=10)
    stops = rec.only(lambda e: e[0] == "stop")
    assert stops == [("stop", t) for t in ["d", "c", "s2", "b", "a", "s1"]]
    assert runtime_threads() == []
    assert system.shutdown() is True  # idempotent
    with pytest.raises(SystemNotRunning):
        system.spawn(Counter)


def test_on_stop_exception_is_logged_and_does_not_block_shutdown() -> None:
    class BadStop(Minion):
        def on_stop(self) -> None:
            raise OSError("disk gone")

    events = Events()
    system = ActorSystem.start(hooks=[events], **QUIET)
    system.spawn(BadStop, name="bad")
    system.spawn(Counter, name="good").ask("get", timeout=2)
    assert system.shutdown(timeout=5)
    assert ("lifecycle", "bad", "on_stop", "disk gone") in events.rec.events


def test_one_system_per_process_then_a_new_one_after_shutdown() -> None:
    first = ActorSystem.start(**QUIET)
    try:
        with pytest.raises(SystemAlreadyRunning, match="one Gru per process"):
            ActorSystem.start(**QUIET)
    finally:
        first.shutdown()
    second = ActorSystem.start(**QUIET)
    assert ActorSystem.current() is second
    assert Gru.shutdown() is True  # the deployment guide's SIGTERM call
    assert ActorSystem.current() is None
    assert second.wait(0)
    assert Gru.shutdown() is True  # safe when nothing runs


def test_shutdown_from_inside_a_minion(rec: Recorder) -> None:
    class Quitter(Minion):
        def on_receive(self, message: Any) -> Any:
            self.system.shutdown()
            return "bye"

    system = ActorSystem.start(**QUIET)
    ref = system.spawn(Quitter, name="q")
    assert ref.ask("quit", timeout=2) == "bye"
    assert system.wait(10)
    assert system.exit_code == 0
    assert runtime_threads() == []


def test_normal_exit_of_a_transient_minion_with_children(system: ActorSystem,
                                                          rec: Recorder) -> None:
    ref = system.spawn(Sup, rec, "sup", ["a"], name="sup", restart="transient")
    rec.wait_for(lambda e: ("start", "a") in e)
    ref.proxy().stop()
    assert ref.actor_stopped.wait(5)
    assert rec.events[-2:] == [("stop", "a"), ("stop", "sup")]


def test_many_minions_spawn_and_stop(system: ActorSystem) -> None:
    refs = [system.spawn(Counter, i) for i in range(300)]
    assert sum(r.ask("get", timeout=5) for r in refs) == sum(range(300))
    assert len(system.cells()) == 300


def test_terminated_to_a_full_watcher_is_reported_not_raised() -> None:
    class BusyWatcher(Minion):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Gate):
                message.hold()
            elif isinstance(message, tuple):
                self.watch(message[1])
            return None

    events = Events()
    system = ActorSystem.start(hooks=[events], **QUIET)
    gate = Gate()
    try:
        watcher = system.spawn(BusyWatcher, name="watcher", mailbox_size=1,
                               mailbox_overflow="raise")
        target = system.spawn(Worker, Recorder(), "t", name="t")
        watcher.ask(("watch", target), timeout=2)
        watcher.tell(gate)  # busy until the gate opens
        gate.wait_entered()
        watcher.tell("filler")  # takes the only slot
        assert target.stop(timeout=5)  # Terminated cannot fit: reported; the stop completes
        events.rec.wait_for(lambda e: any(x[:3] == ("lifecycle", "watcher", "death-watch")
                                          for x in e))
        assert not target.is_alive()
    finally:
        gate.open()
        system.shutdown()


def test_self_stop_works_with_a_full_bounded_mailbox(system: ActorSystem) -> None:
    class Quits(Minion):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, Gate):
                message.hold()
                self.stop()  # the mailbox is full right now: the exit must still get in
            return None

    gate = Gate()
    ref = system.spawn(Quits, name="q", restart="transient", mailbox_size=1,
                       mailbox_overflow="raise")
    ref.tell(gate)
    gate.wait_entered()
    ref.tell("filler")
    gate.open()
    assert ref.actor_stopped.wait(5)  # a normal exit: transient, so not restarted
    assert system.find("q") is None


def test_a_stuck_minion_is_reported_by_name_and_gru_is_not() -> None:
    class Stuck(Minion):
        def on_receive(self, message: Any) -> Any:
            message.hold()

    events = Events()
    gate = Gate()
    system = ActorSystem.start(hooks=[events], stop_timeout=0.2, **QUIET)
    stuck = system.spawn(Stuck, name="stuck")
    stuck.tell(gate)
    gate.wait_entered()  # in the handler: the shutdown cannot drop it as backlog
    try:
        assert system.shutdown(timeout=0.5) is False  # not clean: a handler is still running
        reports = events.rec.only(lambda e: e[0] == "lifecycle" and e[2] == "shutdown")
        assert [r[1] for r in reports] == ["stuck"]
        assert "did not stop before the shutdown deadline" in reports[0][3]
        assert system.exit_code == 1
    finally:
        gate.open()
        stuck.actor_stopped.wait(5)
