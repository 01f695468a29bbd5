"""Regression tests for races found in review: stops, group restarts, runtime faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Backoff,
    Minion,
    OneForAll,
    OneForOne,
    StartWorkflow,
    Workflow,
    testing,
)
from minions_actors.persistence import InMemoryStateStore, WorkflowRecord

from ..conftest import QUIET, Recorder, runtime_threads, wait_until
from ..minions_for_tests import Worker

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes


def test_stopping_a_crashed_child_from_its_parents_handler_does_not_deadlock(
    rec: Recorder,
) -> None:
    class Parent(Minion):
        def on_start(self) -> None:
            self.child = self.spawn(Worker, rec, "c", name="c")

        def on_receive(self, message: Any) -> Any:
            self.child.tell("crash")  # the child's crash report queues behind this handler
            rec.wait_for(lambda e: len(e) >= 1 and e.count(("start", "c")) >= 1)
            wait_until(lambda: testing.between_incarnations(self.child))
            return self.child.stop(timeout=5)  # must not wait for a restart that needs us

    system = ActorSystem.start(**QUIET)
    try:
        parent = system.spawn(Parent, name="p")
        assert parent.ask("reset", timeout=10) is True
        assert system.find("p/c") is None
        assert rec.count(("start", "c")) == 1  # stopped for good, not restarted
    finally:
        assert system.shutdown(timeout=5)
    assert runtime_threads() == []


def test_stop_during_restart_backoff_removes_without_restarting(rec: Recorder) -> None:
    slow = OneForOne(max_restarts=5, within=10, backoff=Backoff(initial=2.0, jitter=0))
    system = ActorSystem.start(strategy=slow, **QUIET)
    try:
        ref = system.spawn(Worker, rec, "w", name="w")
        ref.ask("ping", timeout=5)
        ref.tell("crash")
        wait_until(lambda: testing.between_incarnations(ref))  # waiting out the 2 s backoff
        t0 = time.monotonic()
        assert system.stop("w", timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert rec.count(("start", "w")) == 1
    finally:
        system.shutdown()


def test_self_ref_stop_inside_a_handler_returns(system: ActorSystem) -> None:
    class Quitter(Minion):
        def on_receive(self, message: Any) -> Any:
            return self.ref.stop()  # cannot wait for itself: queued, returns at once

    ref = system.spawn(Quitter, name="q")
    assert ref.ask("quit", timeout=5) is True
    assert ref.actor_stopped.wait(5)


def test_group_restart_skips_a_sibling_that_is_stopping(rec: Recorder) -> None:
    gate = threading.Event()

    class SlowStop(Minion):
        def on_stop(self) -> None:
            rec.add("slow-stop")
            gate.wait(10)

    class Team(Minion):
        strategy = OneForAll(max_restarts=5, within=10)

        def on_start(self) -> None:
            self.spawn(Worker, rec, "a", name="a")
            self.spawn(SlowStop, name="b")

        def on_receive(self, message: Any) -> Any:
            return "ready"

    system = ActorSystem.start(**QUIET)
    try:
        system.spawn(Team, name="team").ask("ready?", timeout=5)
        system.get("team/b").stop(block=False)
        rec.wait_for(lambda e: "slow-stop" in e)  # b is inside on_stop, still a child
        a = system.get("team/a")
        a.tell("crash")
        t0 = time.monotonic()
        rec.wait_count(("start", "a"), 2, timeout=3)
        assert a.ask("ping", timeout=3) == "pong"
        assert time.monotonic() - t0 < 2.0  # not the 5 s a stalled group step would take
    finally:
        gate.set()
        system.shutdown()


def test_group_restart_backoff_is_shared_and_shutdown_is_prompt(rec: Recorder) -> None:
    class Team(Minion):
        strategy = OneForAll(max_restarts=5, within=30,
                             backoff=Backoff(initial=2.0, jitter=0))

        def on_start(self) -> None:
            for tag in "abcd":
                self.spawn(Worker, rec, tag, name=tag)

        def on_receive(self, message: Any) -> Any:
            return "ready"

    system = ActorSystem.start(**QUIET)
    system.spawn(Team, name="team").ask("ready?", timeout=5)
    system.get("team/a").tell("crash")
    rec.wait_for(lambda e: ("stop", "d") in e)  # the group restart is under way
    t0 = time.monotonic()
    assert system.shutdown(timeout=3)  # does not queue behind 4 x 2 s of backoff
    assert time.monotonic() - t0 < 2.0
    assert runtime_threads() == []


def test_a_stored_step_index_the_code_no_longer_has_fails_the_workflow(rec: Recorder) -> None:
    class Shortened(Minion):
        flow = Workflow("one", "two")  # a deploy removed steps three and four

        def one(self, ctx: dict[str, Any]) -> None:
            pass

        def two(self, ctx: dict[str, Any]) -> None:
            pass

        def on_receive(self, message: Any) -> Any:
            return "alive"

    store = InMemoryStateStore()
    now = time.time()
    store.save_workflow(WorkflowRecord(
        workflow_id="old", minion_path="s", minion_class="Shortened", workflow_name="flow",
        status="running", next_step=3, step_name="four", context_json="{}", attempts=0,
        error=None, created_at=now, updated_at=now, finished_at=None))
    system = ActorSystem.start(**{**QUIET, "state_store": store})
    try:
        ref = system.spawn(Shortened, name="s")
        info = wait_until(lambda: (i := system.workflow("old")) and i.status == "failed" and i)
        assert "step index 3 does not exist" in info.error
        assert ref.ask("ping", timeout=5) == "alive"
    finally:
        system.shutdown()


def test_a_failing_checkpoint_is_retried_and_the_workflow_completes(rec: Recorder) -> None:
    class Flaky(InMemoryStateStore):
        failures = 3

        def save_workflow(self, record: WorkflowRecord, on_durable: Any = None) -> None:
            if Flaky.failures > 0:
                Flaky.failures -= 1
                raise OSError("disk hiccup")
            super().save_workflow(record, on_durable)

    class Two(Minion):
        flow = Workflow("one", "two")

        def one(self, ctx: dict[str, Any]) -> None:
            rec.add("one")

        def two(self, ctx: dict[str, Any]) -> None:
            rec.add("two")

    system = ActorSystem.start(**{**QUIET, "state_store": Flaky()})
    try:
        ref = system.spawn(Two, name="t")
        ref.tell(StartWorkflow("flow", "w1", {}))
        wait_until(lambda: (i := system.workflow("w1")) and i.status == "completed", 10)
        assert rec.events == ["one", "two"]
    finally:
        system.shutdown()
