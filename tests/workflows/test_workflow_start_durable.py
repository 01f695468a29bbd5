"""``ask(StartWorkflow(...))`` answers only once the start record is durable. A real lock
holder keeps the store's writer from committing, so "durable" is under the test's control."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pykka
import pytest

from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow
from minions_actors.errors import StateStoreWriteFailed
from minions_actors.persistence import SQLiteStateStore

from ..conftest import wait_until
from ..persistence.test_persistence import QUIET
from ..persistence.test_store import LockHolder

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes

ROOT = Path(__file__).resolve().parents[2]


class Flow(Minion):
    flow = Workflow("one")

    def one(self, context: dict[str, Any]) -> None:
        return None

    def on_receive(self, message: Any) -> Any:
        return message


def in_file(db: Path, workflow_id: str) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT status FROM workflows WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def test_batched_start_is_answered_after_its_commit(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    store = SQLiteStateStore(db, busy_timeout=0.05, retry_max=0.05)
    system = ActorSystem.start(state_store=store, **QUIET)
    try:
        ref = system.spawn(Flow, name="f")
        assert ref.ask("ready", timeout=5) == "ready"
        holder = LockHolder(db)  # the writer's commits fail (and are retried) until released
        try:
            first = ref.ask(StartWorkflow("flow", "w1", {}), block=False)
            again = ref.ask(StartWorkflow("flow", "w1", {}), block=False)  # same id, pending
            wait_until(lambda: store.stats().write_errors >= 2, what="failed commits")
            assert ref.ask("still responsive", timeout=5) == "still responsive"
            for future in (first, again):
                with pytest.raises(pykka.Timeout):
                    future.get(timeout=0.2)  # not durable, so not answered
            assert in_file(db, "w1") is None
        finally:
            holder.release()
        info = first.get(timeout=10)
        assert info.workflow_id == "w1" and again.get(timeout=10).workflow_id == "w1"
        assert in_file(db, "w1") is not None  # answered after the record was committed
    finally:
        assert system.shutdown(timeout=10)


def test_sync_start_that_cannot_be_stored_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    store = SQLiteStateStore(db, durability="sync", busy_timeout=0.05)
    system = ActorSystem.start(state_store=store, **QUIET)
    try:
        ref = system.spawn(Flow, name="f")
        assert ref.ask("ready", timeout=5) == "ready"
        holder = LockHolder(db)
        try:
            with pytest.raises(StateStoreWriteFailed):
                ref.ask(StartWorkflow("flow", "w1", {}), timeout=10)
        finally:
            holder.release()
        assert system.workflow("w1") is None and in_file(db, "w1") is None
        info = ref.ask(StartWorkflow("flow", "w1", {}), timeout=10)  # a retry works
        assert info.workflow_id == "w1" and in_file(db, "w1") is not None
        wait_until(lambda: in_file(db, "w1") == "completed", what="workflow completed")
    finally:
        assert system.shutdown(timeout=10)


START_LOOP = """
import sys
from typing import Any
from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow

class Flow(Minion):
    flow = Workflow("one")

    def one(self, context: dict[str, Any]) -> None:
        return None

system = ActorSystem.start(state_store=sys.argv[1], metrics_port=None, file_logs=False,
                           stderr_logs=False, handle_signals=False)
ref = system.spawn(Flow, name="f")
i = int(sys.argv[2])
while True:
    i += 1
    ref.ask(StartWorkflow("flow", f"w{i}", {}), timeout=10)
    print(i, flush=True)
"""


def _kill_after_acks(db: Path, start: int, acks: int) -> list[int]:
    """Run the start loop until ``acks`` starts were answered, kill -9 it, return the ids."""
    proc = subprocess.Popen([sys.executable, "-c", START_LOOP, str(db), str(start)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    answered = [int(proc.stdout.readline()) for _ in range(acks)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    answered += [int(line) for line in proc.stdout.read().split()]  # answered before the kill
    proc.stdout.close()
    return answered


def _check_kill_rounds(tmp_path: Path, rounds: int) -> None:
    db = tmp_path / "m.db"
    start = 0
    for r in range(rounds):
        answered = _kill_after_acks(db, start, acks=20 + 37 * (r % 5))
        missing = [i for i in answered if in_file(db, f"w{i}") is None]
        assert not missing, f"round {r}: acknowledged starts lost after kill -9: {missing}"
        start = answered[-1] + 1000


@pytest.mark.pooled_by_default
def test_acknowledged_starts_survive_kill_9(tmp_path: Path) -> None:
    _check_kill_rounds(tmp_path, 3)


@pytest.mark.slow
def test_acknowledged_starts_survive_kill_9_campaign(tmp_path: Path) -> None:
    _check_kill_rounds(tmp_path, 40)
