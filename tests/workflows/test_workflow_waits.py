"""Workflows that wait: durable Sleep, WaitSignal with a timeout, cancel; their bad input,
their row writes and their metric (in one process; kill -9 and the CLI: test_waits_kill9.py)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Minion,
    Sleep,
    StartWorkflow,
    WaitSignal,
    Workflow,
    WorkflowError,
)
from tests.conftest import QUIET, Recorder, scrape_samples, wait_until

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes


class Waiter(Minion):
    """``plain`` and ``nap`` differ by one Sleep; ``approve`` waits for a signal after a
    step that holds until ``gate`` opens; ``by_key`` sleeps as long as its context says."""

    plain = Workflow("before", "after")
    nap = Workflow("before", Sleep(0.3), "after")
    long_nap = Workflow("before", Sleep(3600), "after")
    approve = Workflow("hold", WaitSignal("approval", timeout=30), "after")
    quick = Workflow("before", WaitSignal("approval", timeout=0.05), "after")
    by_key = Workflow(Sleep("delay"), "after")

    def __init__(self, rec: Recorder, gate: threading.Event) -> None:
        super().__init__()
        self.rec, self.gate = rec, gate

    def before(self, ctx: dict[str, Any]) -> None:
        self.rec.add(("before", ctx.get("id")))

    def hold(self, ctx: dict[str, Any]) -> None:
        self.rec.add(("holding", ctx.get("id")))
        assert self.gate.wait(10)

    def after(self, ctx: dict[str, Any]) -> None:
        self.rec.add(("after", ctx.get("id")))
        ctx["outcome"] = "approved" if ctx.get("approval", {}).get("payload") else "no answer"

    def on_workflow_cancelled(self, info: Any) -> None:
        self.rec.add(("cancelled", info.workflow_id, info.cancelled_by))


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    system = ActorSystem.start(**{**QUIET, "state_store": tmp_path / "wf.db",
                                  "metrics_port": 0})
    rec, gate = Recorder(), threading.Event()
    ref = system.spawn(Waiter, rec, gate, name="waiter")
    yield system, ref, rec, gate
    gate.set()
    system.shutdown()


def _start(ref: Any, name: str, wid: str, **ctx: Any) -> None:
    ref.ask(StartWorkflow(name, wid, {"id": wid, **ctx}), timeout=10)


def test_a_sleep_costs_one_row_write_when_it_starts_and_one_when_it_ends(
        tmp_path: Path) -> None:
    from minions_actors.persistence import SQLiteStateStore

    store = SQLiteStateStore(tmp_path / "sync.db", durability="sync")  # no write coalesced
    system = ActorSystem.start(**{**QUIET, "state_store": store})
    try:
        ref = system.spawn(Waiter, Recorder(), threading.Event(), name="w")

        def rows_for(name: str, wid: str) -> int:
            before = store.stats().workflow_rows_written
            _start(ref, name, wid)
            assert system.wait_workflow(wid, timeout=30).status == "completed"
            return store.stats().workflow_rows_written - before

        assert rows_for("nap", "n1") - rows_for("plain", "p1") == 2
    finally:
        system.shutdown()


def test_a_sleeping_workflow_holds_no_thread_and_shows_its_deadline(setup: Any) -> None:
    system, ref, _rec, _gate = setup
    threads = threading.active_count()
    for i in range(20):
        _start(ref, "long_nap", f"n{i}")
    wait_until(lambda: all(getattr(system.workflow(f"n{j}"), "sleeping", False)
                           for j in range(20)), timeout=20, what="20 workflows sleeping")
    infos = [system.workflow(f"n{j}") for j in range(20)]
    assert all(3500 < i.wake_at - i.updated_at <= 3600 for i in infos)
    assert threading.active_count() <= threads + 1  # the timer's thread at most
    assert ref.ask("ping", timeout=5) is None  # the minion is free while they sleep
    samples = scrape_samples(system)
    assert samples["minions_workflows_waiting[('kind', 'sleep')]"] == 20
    assert samples["minions_workflows_waiting[('kind', 'signal')]"] == 0


def test_a_signal_sent_before_the_workflow_waits_is_not_lost(setup: Any) -> None:
    system, ref, rec, gate = setup
    _start(ref, "approve", "a1")
    rec.wait_for(lambda evs: ("holding", "a1") in evs, timeout=10)
    system.signal_workflow("a1", "approval", {"by": "boss"})  # the wait has not begun
    gate.set()
    done = system.wait_workflow("a1", timeout=20)
    assert done.status == "completed"
    assert done.context["approval"] == {"payload": {"by": "boss"}, "timed_out": False,
                                        "sent_by": "api"}
    assert done.context["outcome"] == "approved"


def test_a_signal_wakes_a_waiting_workflow_and_the_metric_counts_it(setup: Any) -> None:
    system, ref, _rec, gate = setup
    gate.set()
    _start(ref, "approve", "a2")
    wait_until(lambda: getattr(system.workflow("a2"), "waiting_for", None) == "approval",
               10, "waiting")
    assert scrape_samples(system)["minions_workflows_waiting[('kind', 'signal')]"] == 1
    system.signal_workflow("a2", "other")  # another name: still waiting
    system.signal_workflow("a2", "approval", True)
    assert system.wait_workflow("a2", timeout=20).context["approval"]["payload"] is True


def test_a_signal_timeout_is_an_outcome_the_next_step_handles(setup: Any) -> None:
    system, ref, _rec, _gate = setup
    _start(ref, "quick", "q1")
    done = system.wait_workflow("q1", timeout=20)
    assert done.status == "completed"
    assert done.context["approval"] == {"payload": None, "timed_out": True, "sent_by": None}
    assert done.context["outcome"] == "no answer"


def test_a_signal_to_an_unknown_or_finished_workflow_changes_nothing(setup: Any) -> None:
    system, ref, _rec, gate = setup
    gate.set()
    with pytest.raises(WorkflowError, match="no workflow with id 'ghost'"):
        system.signal_workflow("ghost", "approval")
    _start(ref, "plain", "p1")
    system.wait_workflow("p1", timeout=20)
    with pytest.raises(WorkflowError, match="'p1' is completed, not running"):
        system.signal_workflow("p1", "approval")
    _start(ref, "approve", "a3")
    with pytest.raises(WorkflowError, match="not JSON"):
        system.signal_workflow("a3", "approval", {1, 2})
    with pytest.raises(WorkflowError, match="non-empty str"):
        system.signal_workflow("a3", "", None)
    assert system.workflow_store.workflow_requests() == []


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, True, "", None])
def test_bad_delays_are_refused_when_declared(bad: Any) -> None:
    with pytest.raises(ValueError):
        Sleep(bad)
    if bad not in ("", None):
        with pytest.raises(ValueError, match="timeout"):
            WaitSignal("x", timeout=bad)


def test_a_bad_delay_in_the_context_fails_the_workflow_clearly(setup: Any) -> None:
    system, ref, _rec, _gate = setup
    _start(ref, "by_key", "k1", delay=-5)
    failed = system.wait_workflow("k1", timeout=20)
    assert failed.status == "failed"
    assert "context['delay'] must be a finite number of seconds >= 0, got -5" in failed.error
    _start(ref, "by_key", "k2", delay=0.01)
    assert system.wait_workflow("k2", timeout=20).status == "completed"


def test_cancel_a_sleeping_workflow(setup: Any) -> None:
    system, ref, rec, _gate = setup
    _start(ref, "long_nap", "c1")
    wait_until(lambda: getattr(system.workflow("c1"), "sleeping", False), 10, "sleeping")
    info = system.cancel_workflow("c1", by="alice")
    assert (info.status, info.cancelled_by, info.error) == ("cancelled", "alice",
                                                          "cancelled by alice")
    assert info.finished_at is not None and info.wake_at is None
    assert system.wait_workflow("c1", timeout=5).status == "cancelled"
    rec.wait_for(lambda evs: ("cancelled", "c1", "alice") in evs)
    assert ("after", "c1") not in rec.events
    assert system.flush(timeout=10)
    assert system.workflow_store.get_workflow("c1").cancelled_by == "alice"


def test_cancel_a_running_step_lets_it_end_and_runs_no_further_step(setup: Any) -> None:
    system, ref, rec, gate = setup
    _start(ref, "approve", "c2")
    rec.wait_for(lambda evs: ("holding", "c2") in evs, timeout=10)
    result: list[Any] = []
    canceller = threading.Thread(target=lambda: result.append(
        system.cancel_workflow("c2", by="ops")))
    canceller.start()
    gate.set()  # the step in progress ends; then the cancel is applied
    canceller.join(20)
    assert result and result[0].status == "cancelled"
    assert system.wait_workflow("c2", timeout=5).cancelled_by == "ops"
    assert ("after", "c2") not in rec.events


def test_cancel_of_a_finished_or_unknown_workflow_changes_nothing(setup: Any) -> None:
    system, ref, _rec, gate = setup
    gate.set()
    _start(ref, "plain", "f1")
    done = system.wait_workflow("f1", timeout=20)
    with pytest.raises(WorkflowError, match="'f1' is completed, not running"):
        system.cancel_workflow("f1")
    assert system.workflow("f1") == done
    with pytest.raises(WorkflowError, match="no workflow with id 'ghost'"):
        system.cancel_workflow("ghost")


def test_signal_and_cancel_while_the_minion_is_stopped(setup: Any) -> None:
    system, ref, rec, gate = setup
    gate.set()
    _start(ref, "approve", "s1")
    _start(ref, "long_nap", "s2")
    wait_until(lambda: getattr(system.workflow("s1"), "waiting_for", None) == "approval"
               and getattr(system.workflow("s2"), "sleeping", False), 10, "both waiting")
    assert system.stop("waiter", timeout=10)
    system.signal_workflow("s1", "approval", {"ok": 1})  # stored for the next incarnation
    info = system.cancel_workflow("s2", by="ops")  # nobody holds it: written at once
    assert (info.status, info.cancelled_by) == ("cancelled", "ops")
    system.spawn(Waiter, rec, gate, name="waiter")  # resumes s1 only
    assert system.wait_workflow("s1", timeout=20).context["approval"]["payload"] == {"ok": 1}
    assert system.workflow("s2").status == "cancelled"  # type: ignore[union-attr]
    assert ("after", "s2") not in rec.events
