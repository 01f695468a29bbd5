"""Crash campaign: workflows under repeated kill -9 of real processes.

Every workflow must complete exactly once as a whole, with no step skipped; a step may run
again only right after a kill (the step that was interrupted), and the database stays intact.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["s1", "s2", "s3", "s4"]


def run_child(db: Path, ledger: Path, epoch: int, kill_after: float | None,
              minions: int, workflows: int) -> bool:
    """Run one process; kill -9 it ``kill_after`` seconds after READY. True if it finished."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.workflow_child", str(db), str(ledger), str(epoch),
         str(minions), str(workflows)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", line + proc.communicate(timeout=10)[1]
        if kill_after is None:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            return "ALL-DONE" in out
        try:
            proc.wait(timeout=kill_after)
            return True  # it finished before the kill
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check(db: Path, ledger: Path, workflows: int) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(conn.execute("SELECT workflow_id, status FROM workflows").fetchall())
    assert len(rows) == workflows
    assert set(rows.values()) == {"completed"}, rows

    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for line in ledger.read_text().splitlines():
        epoch, wid, step = line.split()
        runs[wid].append((int(epoch), STEPS.index(step)))
    assert sorted(runs) == sorted(rows)
    for wid, seq in runs.items():
        # every step ran, in order, the last one last
        assert sorted({s for _, s in seq}) == list(range(len(STEPS))), (wid, seq)
        for (e1, s1), (e2, s2) in itertools.pairwise(seq):
            if e2 == e1:
                assert s2 == s1 + 1, f"{wid}: skipped or repeated a step within one run {seq}"
            else:
                # a new process resumes at the next step, or re-runs the interrupted one
                assert s2 in (s1, s1 + 1), f"{wid}: resumed at the wrong step {seq}"
        assert seq[-1][1] == len(STEPS) - 1
        assert seq[0][1] == 0


def campaign(tmp_path: Path, kills: int, workflows: int, minions: int = 2) -> None:
    """``workflows`` is sized so that the work outlasts ``kills`` kills (asserted)."""
    db, ledger = tmp_path / "wf.db", tmp_path / "ledger.txt"
    rng = random.Random(kills)
    for epoch in range(1, kills + 1):
        finished = run_child(db, ledger, epoch, rng.uniform(0.02, 0.3), minions, workflows)
        assert not finished, f"all work finished after {epoch - 1} kills: raise `workflows`"
    assert run_child(db, ledger, kills + 1, None, minions, workflows)
    check(db, ledger, workflows)


@pytest.mark.pooled_by_default
@pytest.mark.timeout(180)
def test_workflows_survive_ten_kills(tmp_path: Path) -> None:
    campaign(tmp_path, kills=10, workflows=160)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_workflows_survive_fifty_kills(tmp_path: Path) -> None:
    campaign(tmp_path, kills=50, workflows=800)
