"""How a minion placed in a child process fails, and whose fault it is: a message that
cannot be pickled is the sender's error, an idle child's death is a crash at once, asks in
flight are answered when the minion stops for good. Real child processes, real signals."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from minions_actors import (
    ActorSystem,
    ChildProcess,
    ChildProcessCrashed,
    Minion,
    MinionRef,
    MinionStopped,
    OneForOne,
    SidecarError,
    Terminated,
    UnpicklableMessage,
)

from ..apps.placed_minions import Ledger
from ..conftest import QUIET, Recorder, runtime_threads, wait_until
from .test_sidecar import Events, child_pids, tracker_pid

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

HERE = ChildProcess(call_timeout=20.0)
WAIT = 30.0  # generous: a loaded 2-core machine starts a child in seconds, not ms


class Refusals(Events):
    """Also records dead letters and refusals."""

    def message_refused(self, cell: Any, message: Any, exc: BaseException) -> None:
        self.rec.add(("refused", cell.path, type(message).__name__, exc))

    def dead_letter(self, cell: Any, message: Any, first: bool) -> None:
        self.rec.add(("dead", cell.path, 1))

    def messages_dropped(self, cell: Any, count: int) -> None:
        self.rec.add(("dead", cell.path, count))


@pytest.fixture
def events() -> Refusals:
    return Refusals()


@pytest.fixture
def system(events: Refusals) -> Iterator[ActorSystem]:
    """A quiet system; no child process nor watcher thread may survive its shutdown."""
    before = child_pids()
    sys_ = ActorSystem.start(hooks=[events], **QUIET)
    try:
        yield sys_
    finally:
        assert sys_.shutdown(timeout=20)
    assert multiprocessing.active_children() == []
    left = child_pids() - before - {tracker_pid()}
    assert not left, f"child processes left behind: {left}"
    assert runtime_threads() == [], f"threads left behind: {runtime_threads()}"


# ----------------------------------------------------------- a message that cannot travel
def test_an_ask_that_cannot_be_pickled_is_the_senders_error_and_no_crash(
    system: ActorSystem, events: Refusals,
) -> None:
    ref = system.spawn(Ledger, 1, name="picky", placement=HERE)
    pid = ref.ask("pid", timeout=WAIT)
    for _ in range(5):  # five crashes in 5 s would exhaust Gru and stop the system
        with pytest.raises(UnpicklableMessage, match="function") as info:
            ref.ask(lambda: 1, timeout=WAIT)
        assert isinstance(info.value, SidecarError)  # as before, for `except SidecarError`
    with pytest.raises(UnpicklableMessage, match="cannot be pickled"):
        ref.proxy().add(lambda: 1).get(timeout=WAIT)  # a proxy call's arguments too
    assert ref.ask("pid", timeout=WAIT) == pid  # the same process: not restarted
    assert ref.ask(2, timeout=WAIT) == 3
    assert events.crashes("picky") == [] and system.running


def test_a_tell_that_cannot_be_pickled_is_a_dead_letter_with_a_warning(
    system: ActorSystem, events: Refusals,
) -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        ref = system.spawn(Ledger, name="told", placement=HERE)
        # told before the child is up: they wait in the mailbox and travel as one batch
        for message in (1, lambda: 1, 2, lambda: 2, 3):
            ref.tell(message)
        assert ref.ask("seen", timeout=WAIT) == [1, 2, 3]
        pid = ref.ask("pid", timeout=WAIT)
        ref.tell(lambda: 3)  # alone, once the minion is idle
        ref.proxy().add.defer(lambda: 4)  # a told proxy call
        assert ref.ask("total", timeout=WAIT) == 6
    finally:
        logger.remove(sink)
    refused = events.rec.only(lambda e: e[:2] == ("refused", "told"))
    assert [e[2] for e in refused] == ["function"] * 3 + ["ProxyCall"]
    assert all(isinstance(e[3], UnpicklableMessage) for e in refused)
    assert ref.ask("pid", timeout=WAIT) == pid and events.crashes("told") == []
    assert sum("refused a function message" in w for w in warnings) == 3, warnings


def test_a_reply_that_cannot_be_pickled_is_the_minions_crash_naming_its_type(
    system: ActorSystem, events: Refusals,
) -> None:
    ref = system.spawn(Ledger, name="careless", placement=HERE)
    with pytest.raises(SidecarError, match="returned a function that cannot be pickled"):
        ref.ask("lambda", timeout=WAIT)
    events.rec.wait_for(lambda evs: events.crashes("careless"), timeout=WAIT)


class Relays(Minion):
    """A local minion whose own handler lets a MessageRefused through (say, from a nested
    ask to a placed minion): its crash like any other exception, not a refusal of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        self.count += 1
        if message == "relay":
            raise UnpicklableMessage("a placed minion refused what this handler sent it")
        return self.count


@pytest.mark.parametrize("how", ["ask", "tell"])
def test_a_refusal_raised_by_a_handler_is_a_crash_of_that_minion(
    system: ActorSystem, events: Refusals, how: str,
) -> None:
    ref = system.spawn(Relays, name="relay")
    assert ref.ask("n", timeout=WAIT) == 1
    if how == "ask":
        with pytest.raises(UnpicklableMessage):
            ref.ask("relay", timeout=WAIT)
    else:
        ref.tell("relay")
    events.rec.wait_for(lambda evs: events.crashes("relay"), timeout=WAIT)
    assert ref.ask("n", timeout=WAIT) == 1  # restarted: a fresh instance, not rolled on
    assert events.rec.only(lambda e: e[:2] == ("refused", "relay")) == []


# ------------------------------------------------------------- an idle child that dies
def test_an_idle_childs_death_is_a_crash_at_once(
    system: ActorSystem, events: Refusals,
) -> None:
    ref = system.spawn(Ledger, name="idle", placement=HERE)
    assert ref.ask(2, timeout=WAIT) == 2
    pid = ref.ask("pid", timeout=WAIT)
    os.kill(pid, signal.SIGKILL)  # no message follows: only a watcher can notice
    [(phase, exc)] = events.rec.wait_for(lambda evs: events.crashes("idle"), timeout=WAIT)
    assert phase == "placement" and isinstance(exc, ChildProcessCrashed)
    assert f"process {pid} killed by SIGKILL" in str(exc) and "while idle" in str(exc)
    events.rec.wait_for(lambda evs: ("restarting", "idle") in evs, timeout=WAIT)
    assert ref.ask("total", timeout=WAIT) == 2  # the next ask is answered, restored
    assert ref.ask("pid", timeout=WAIT) != pid


class Watcher(Minion):
    """Watches a minion and records its Terminated."""

    def __init__(self, target: MinionRef[Any], rec: Recorder) -> None:
        super().__init__()
        self.target = target
        self.rec = rec

    def on_start(self) -> None:
        self.watch(self.target)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Terminated):
            self.rec.add(("terminated", message.path))
        return None


def test_a_watcher_sees_an_idle_temporary_minions_death(
    system: ActorSystem, events: Refusals,
) -> None:
    ref = system.spawn(Ledger, name="brief", restart="temporary", placement=HERE)
    pid = ref.ask("pid", timeout=WAIT)
    rec = Recorder()
    system.spawn(Watcher, ref, rec, name="watcher")
    os.kill(pid, signal.SIGKILL)
    rec.wait_for(lambda evs: ("terminated", "brief") in evs, timeout=WAIT)
    assert not ref.is_alive()


# ----------------------------------------------- asks in flight when the minion stops
class Strict(Minion):
    """Spawns a placed Ledger and gives up at its first crash."""

    strategy = OneForOne(max_restarts=0, within=60)

    def on_receive(self, message: Any) -> Any:
        return self.spawn(Ledger, name="ledger", restart=message, placement=HERE)


@pytest.mark.parametrize("restart", ["permanent", "temporary"])
def test_an_ask_carried_past_a_crash_is_answered_when_the_minion_stops_for_good(
    system: ActorSystem, restart: str,
) -> None:
    ref = system.spawn(Strict, name="strict").ask(restart, timeout=WAIT)
    # queued before the child is up: one batch; the child dies in it, so the batch and
    # the ask after it are carried to a next incarnation that never comes
    for message in (1, "segfault", 2):
        ref.tell(message)
    future = ref.ask("total", block=False)
    started = time.monotonic()
    with pytest.raises(MinionStopped):
        future.get(timeout=WAIT)
    assert time.monotonic() - started < WAIT / 2  # answered, not timed out


def test_a_watcher_whose_wait_fails_says_so_and_the_next_watch_starts_it_again() -> None:
    from minions_actors.placement.watch import Watcher

    class Flaky(Watcher):
        thread_name = "minions-test-watch"

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def wait_lost(self, watched: dict[Any, Any]) -> list[Any]:
            self.calls += 1
            if self.calls == 1:
                raise OSError("the wait broke")
            return list(watched)  # every handle gone at once

    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR")
    rec = Recorder()
    watcher = Flaky()
    try:
        watcher.watch("a", object(), lambda: rec.add("a lost"))
        wait_until(lambda: errors, timeout=WAIT)
        assert "minions-test-watch stopped: OSError: the wait broke" in errors[0]
        watcher.watch("b", object(), lambda: rec.add("b lost"))  # a new thread, not a dead one
        rec.wait_for(lambda evs: "b lost" in evs, timeout=WAIT)
    finally:
        logger.remove(sink)
    wait_until(lambda: "minions-test-watch" not in
               [t.name for t in threading.enumerate()], timeout=WAIT)
