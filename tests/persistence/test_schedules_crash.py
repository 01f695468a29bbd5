"""Durable schedules across a real ``kill -9`` of a child process (tests/apps/schedule_child.py):
a durable timer fires once after the restart; a scheduled workflow starts exactly once per
slot, none missing, across random kills."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from minions_actors.persistence import SQLiteStateStore
from minions_actors.runtime.schedules import slot_workflow_id

ROOT = Path(__file__).resolve().parents[2]


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.schedule_child", *args], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_durable_timer_survives_kill_9_and_fires_once_after(tmp_path: Path) -> None:
    db, ledger = tmp_path / "m.db", tmp_path / "ledger"
    proc = _child("arm", str(db), str(ledger), "1.0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ARMED", line + proc.communicate(timeout=30)[1]
    finally:
        _kill(proc)  # kill -9 before the timer is due
    assert not ledger.exists() or ledger.read_text() == ""
    out, err = _child("wait", str(db), str(ledger), "1.5").communicate(timeout=60)
    assert "KEYS  ROWS 1" in out, out + err  # fired and consumed: one row write (the delete)
    assert [line.split()[0] for line in ledger.read_text().splitlines()] == ["wake"]
    out, err = _child("wait", str(db), str(ledger), "0.5").communicate(timeout=60)
    assert "KEYS  ROWS 0" in out, out + err  # a third start: nothing left to fire
    assert len(ledger.read_text().splitlines()) == 1


def _campaign(tmp_path: Path, kills: int) -> None:
    db, ledger = tmp_path / "m.db", tmp_path / "ledger"
    rng = random.Random(kills)
    for _ in range(kills):
        proc = _child("cron", str(db), str(ledger))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "READY", line + proc.communicate(timeout=30)[1]
            try:
                proc.wait(timeout=rng.uniform(0.3, 2.5))
            except subprocess.TimeoutExpired:
                pass
        finally:
            _kill(proc)
    with SQLiteStateStore(db) as store:
        done = len(store.workflows())
    proc = _child("cron", str(db), str(ledger), str(done + 2))  # then a clean end
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    with SQLiteStateStore(db) as store:
        records = store.workflows()
    slots = sorted(datetime.fromisoformat(r.workflow_id.split("@")[1]).timestamp()
                   for r in records)
    assert len(slots) >= kills
    # exactly one workflow per slot, and no slot missing between the first and the last
    assert slots == [slots[0] + i for i in range(len(slots))]
    assert {r.workflow_id for r in records} == {
        slot_workflow_id("reporter", "rep", s) for s in slots}
    ran = set(ledger.read_text().split())
    completed = [r for r in records if r.status == "completed"]
    assert len(completed) >= len(records) - 1  # (one may have started as the child ended)
    for r in completed:  # each completed workflow's step ran (at least once)
        assert r.workflow_id.split("@")[1].replace("Z", "+00:00") in ran


def test_a_scheduled_workflow_starts_once_per_slot_across_kills(tmp_path: Path) -> None:
    _campaign(tmp_path, 3)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_scheduled_workflow_starts_once_per_slot_across_20_random_kills(
        tmp_path: Path) -> None:
    _campaign(tmp_path, 20)
