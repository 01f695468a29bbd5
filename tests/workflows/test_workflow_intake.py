"""The workflow intake bound: a minion runs at most ``max_workflows_in_flight`` workflows at
once (starts beyond it are saved and wait their turn), and a pipeline feeding it waits for
workflows to end before it hands over more events. Counted, never timed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Batch,
    Minion,
    Pipeline,
    StartWorkflow,
    WaitSignal,
    Workflow,
)

from ..conftest import QUIET, wait_until

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes

LIMIT = 6
ROOT = Path(__file__).resolve().parents[2]


class Counts:
    """Workflows whose first step ran and whose last did not, and handled events whose
    workflow has not ended: their peaks, and the order first steps ran in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stepping: set[str] = set()
        self.peak_stepping = 0
        self.handled = self.ended = self.peak_open = 0
        self.first_steps: list[str] = []

    def event(self) -> None:
        with self.lock:
            self.handled += 1
            self.peak_open = max(self.peak_open, self.handled - self.ended)

    def first(self, wid: str) -> None:
        with self.lock:
            self.stepping.add(wid)
            self.first_steps.append(wid)
            self.peak_stepping = max(self.peak_stepping, len(self.stepping))

    def last(self, wid: str) -> None:
        with self.lock:
            self.stepping.discard(wid)
            self.ended += 1


class Bounded(Minion):
    max_workflows_in_flight = LIMIT
    flow = Workflow("a", "b", "c")

    def __init__(self, counts: Counts) -> None:
        super().__init__()
        self.counts = counts

    def on_receive(self, seq: int) -> None:
        self.counts.event()
        self.start_workflow("flow", f"e{seq}", {"seq": seq})

    def a(self, ctx: dict[str, Any]) -> None:
        self.counts.first(f"e{ctx['seq']}")

    def b(self, ctx: dict[str, Any]) -> None:
        ctx["b"] = True

    def c(self, ctx: dict[str, Any]) -> None:
        self.counts.last(f"e{ctx['seq']}")


class Flood(Pipeline):
    """Every event at once, in batches far larger than the bound."""

    subscribers = ["bounded"]
    poll_interval = 0.01

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    def open(self, position: Any) -> None:
        self.next = position or 0

    def produce(self) -> Batch | None:
        if self.next >= self.total:
            return None
        events = list(range(self.next, min(self.total, self.next + 400)))
        self.next = events[-1] + 1
        return Batch(events, self.next)


@contextlib.contextmanager
def _system(tmp_path: Path) -> Iterator[ActorSystem]:
    system = ActorSystem.start(**{**QUIET, "state_store": tmp_path / "s.db"})
    try:
        yield system
    finally:
        system.shutdown()


def _completed(system: ActorSystem) -> int:
    return len(system.workflows(status="completed"))


def test_a_flooding_pipeline_keeps_workflows_in_flight_bounded(tmp_path: Path) -> None:
    total, counts = 800, Counts()  # two batches of 400: each floods the bound of 6
    with _system(tmp_path) as system:
        system.spawn(Bounded, counts, name="bounded")
        system.spawn(Flood, total, name="flood")
        wait_until(lambda: _completed(system) == total, timeout=120,
                   what="every event's workflow to complete")
    assert counts.ended == total
    assert counts.peak_stepping <= LIMIT, counts.peak_stepping
    # The pipeline hands an event over only while the workflows running plus the messages
    # queued stay under the bound; one more can be in the subscriber's hands, between
    # leaving the mailbox and starting its workflow, when the pipeline looks.
    assert counts.peak_open <= LIMIT + 1, counts.peak_open


def test_starts_beyond_the_bound_are_durable_and_run_in_order(tmp_path: Path) -> None:
    counts = Counts()
    ids = [f"e{i}" for i in range(40)]
    with _system(tmp_path) as system:
        ref = system.spawn(Bounded, counts, name="bounded")
        for i in range(len(ids)):  # all at once: most are parked
            ref.tell(StartWorkflow("flow", ids[i], {"seq": i}))
        ref.ask(StartWorkflow("flow", ids[-1], {"seq": len(ids) - 1}), timeout=30)
        assert system.flush(timeout=30)
        # every start is durable, parked or not (a kill -9 now would lose none)
        assert {w.workflow_id for w in system.workflows()} == set(ids)
        wait_until(lambda: _completed(system) == len(ids), timeout=60,
                   what="the parked workflows to run")
    assert counts.peak_stepping <= LIMIT, counts.peak_stepping
    assert counts.first_steps == ids  # parked ones start in the order they came


def test_none_means_no_bound(tmp_path: Path) -> None:
    class Unbounded(Bounded):
        max_workflows_in_flight = None

    counts = Counts()
    with _system(tmp_path) as system:
        ref = system.spawn(Unbounded, counts, name="unbounded")
        for i in range(20):
            ref.tell(StartWorkflow("flow", f"e{i}", {"seq": i}))
        wait_until(lambda: _completed(system) == 20, timeout=60, what="all to complete")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_a_bad_bound_is_refused_at_class_definition(bad: object) -> None:
    with pytest.raises(TypeError, match=r"Wrong\.max_workflows_in_flight must be an int "
                                        r">= 1 or None"):
        type("Wrong", (Minion,), {"max_workflows_in_flight": bad, "flow": Workflow("s"),
                                  "s": lambda self, ctx: None})


def _child(db: Path, ledger: Path, epoch: int, total: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.intake_child", str(db), str(ledger), str(epoch),
         str(total)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _seqs(ledger: Path) -> list[int]:
    return [int(line.split()[1]) for line in ledger.read_text().splitlines()]


@pytest.mark.pooled_by_default  # two app processes and 700 workflows per mode
def test_kill_9_with_the_bound_loses_no_workflow(tmp_path: Path) -> None:
    """Started workflows that wait for a slot are durable: a kill -9 mid-flood loses none,
    and the next run resumes them (still bounded) and the pipeline after its position."""
    total, db, ledger = 700, tmp_path / "state.db", tmp_path / "ledger"  # killed at 200+
    first = _child(db, ledger, 1, total)
    try:
        wait_until(lambda: ledger.exists() and len(_seqs(ledger)) >= 200, timeout=60,
                   what="the first run to complete 200 workflows")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        first.kill()
        first.communicate()
    assert len(set(_seqs(ledger))) < total, "the first run finished before the kill"
    second = _child(db, ledger, 2, total)
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0 and "DONE" in out, err
    assert set(_seqs(ledger)) == set(range(total))  # every event's workflow ran to the end


class Approvals(Minion):
    """Each workflow waits for its own signal: a waiting workflow holds no slot."""

    max_workflows_in_flight = 2
    approve = Workflow(WaitSignal("go", timeout=60), "done")

    def __init__(self, finished: list[str]) -> None:
        super().__init__()
        self.finished = finished

    def done(self, ctx: dict[str, Any]) -> None:
        self.finished.append(ctx["id"])


def test_waiting_workflows_hold_no_slot_of_the_bound(tmp_path: Path) -> None:
    """Five workflows waiting for approval under a bound of 2 all begin their wait (a slot
    held while waiting would park three of them until two others were approved, and
    approvals sent in the other order would never be seen); they all end once signalled."""
    system = ActorSystem.start(**{**QUIET, "state_store": tmp_path / "wf.db"})
    try:
        finished: list[str] = []
        ref = system.spawn(Approvals, finished, name="approvals")
        ids = [f"w{i}" for i in range(5)]
        for wid in ids:
            ref.ask(StartWorkflow("approve", wid, {"id": wid}), timeout=10)
        wait_until(lambda: all(getattr(system.workflow(w), "waiting_for", None) == "go"
                               for w in ids), 10, "all five waiting for their signal")
        for wid in reversed(ids):  # the last started is approved first
            system.signal_workflow(wid, "go", True)
        for wid in ids:
            assert system.wait_workflow(wid, timeout=20).status == "completed"
        assert sorted(finished) == ids
    finally:
        system.shutdown()
