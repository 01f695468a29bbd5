"""Workflows that wait, across real processes: a durable sleep survives kill -9 and fires
once after the restart with the time left; the CLI signals and cancels workflows of a
running application and of a stopped one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

# several child processes and CLI runs each, on a shared 2-core machine
pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def child(db: Path, ledger: Path, epoch: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.waiting_child", str(db), str(ledger), str(epoch),
         mode], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the child ended: {proc.communicate(timeout=10)[1]}")
    return line.strip()


def kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "minions_actors", "workflows", *args,
                           "--db", str(db)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=60)


def stored(db: Path, wid: str) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM workflows WHERE workflow_id = ?",
                                 (wid,)).fetchone())


def test_a_durable_sleep_survives_kill9_and_fires_once_with_the_time_left(
        tmp_path: Path) -> None:
    db, ledger = tmp_path / "m.db", tmp_path / "ledger"
    first = child(db, ledger, 1, "sleep")  # sleeps 8 s
    try:
        first_line(first)  # SPAWNING
        wake_at = float(first_line(first).split()[1])
        threading.Event().wait(4)  # (time passing is what is tested) 4 s are left
    finally:
        kill9(first)
    assert stored(db, "nap-1")["wake_at"] == wake_at  # durable before the kill

    second = child(db, ledger, 2, "sleep")
    try:
        spawning = float(first_line(second).split()[1])  # before the workflow resumes
        first_line(second)  # SLEEPING (None if the restart took longer than the time left)
        done = float(first_line(second).split()[1])
        assert second.wait(timeout=30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    # with the time left: at the first deadline (or at once if it passed meanwhile); from
    # zero it would end 8 s after the resume, at least 4 s later than that
    assert wake_at <= done < max(wake_at, spawning) + 4
    lines = [line.split() for line in ledger.read_text().splitlines()]
    assert [(e, s) for e, _w, s, *_ in lines] == [("1", "before"), ("2", "after")]
    assert float(lines[1][3]) >= wake_at
    assert stored(db, "nap-1")["status"] == "completed"


def test_the_cli_signals_and_cancels_workflows_of_a_running_application(
        tmp_path: Path) -> None:
    db, ledger = tmp_path / "m.db", tmp_path / "ledger"
    app = child(db, ledger, 1, "approve")
    try:
        assert first_line(app) == "WAITING"
        listed = cli(db, "list")
        assert "waiting for signal 'approval' until" in listed.stdout, listed
        as_json = [json.loads(line) for line in cli(db, "list", "--json").stdout.splitlines()]
        assert {w["waiting_for"] for w in as_json} == {"approval"}
        assert all(w["wake_at"] is not None for w in as_json)
        inspected = subprocess.run([sys.executable, "-m", "minions_actors", "inspect", str(db)],
                                   cwd=ROOT, env=ENV, capture_output=True, text=True,
                                   timeout=60)
        assert "2 running (2 waiting for a signal, next deadline " in inspected.stdout

        sent = cli(db, "signal", "ap-1", "approval", "--payload", '{"ok": true}')
        assert sent.returncode == 0, sent.stderr
        cancelled = cli(db, "cancel", "ap-2", "--by", "ops")
        assert cancelled.returncode == 0, cancelled.stderr
        assert "applied by the running application" in cancelled.stdout
        ends = {}
        for _ in range(2):
            _end, wid, status, info = first_line(app).split(" ", 3)
            ends[wid] = (status, json.loads(info))
        assert app.wait(timeout=30) == 0
    finally:
        if app.poll() is None:
            app.kill()
    assert ends["ap-1"][0] == "completed"
    assert ends["ap-1"][1]["context"]["approval"]["payload"] == {"ok": True}
    assert ends["ap-1"][1]["context"]["approval"]["sent_by"] == "cli"
    assert ends["ap-2"][0] == "cancelled" and ends["ap-2"][1]["cancelled_by"] == "ops"
    again = cli(db, "cancel", "ap-2")
    assert again.returncode == 4 and "is cancelled, not running (nothing was changed)" in \
        again.stderr
    assert stored(db, "ap-2")["cancelled_by"] == "ops"


def test_the_cli_on_a_stopped_application_and_the_signal_is_taken_at_restart(
        tmp_path: Path) -> None:
    db, ledger = tmp_path / "m.db", tmp_path / "ledger"
    app = child(db, ledger, 1, "approve")
    try:
        assert first_line(app) == "WAITING"
    finally:
        kill9(app)
    cancelled = cli(db, "cancel", "ap-2")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled by cli" in cancelled.stdout
    row = stored(db, "ap-2")
    assert (row["status"], row["cancelled_by"]) == ("cancelled", "cli")
    assert row["finished_at"] is not None
    assert cli(db, "signal", "ap-1", "approval", "--payload", "42").returncode == 0
    unknown = cli(db, "signal", "ghost", "approval")
    assert unknown.returncode == 4 and "no workflow 'ghost'" in unknown.stderr
    bad = cli(db, "signal", "ap-1", "approval", "--payload", "{")
    assert bad.returncode == 2 and "--payload is not JSON" in bad.stderr
    with sqlite3.connect(db) as conn:  # the refused ones stored nothing
        assert conn.execute("SELECT count(*) FROM workflow_inbox").fetchone()[0] == 1

    restarted = child(db, ledger, 2, "approve")
    try:
        assert first_line(restarted) == "WAITING"
        _end, wid, status, info = first_line(restarted).split(" ", 3)
        assert (wid, status) == ("ap-1", "completed")
        assert json.loads(info)["context"]["approval"]["payload"] == 42
        _end, wid, status, _info = first_line(restarted).split(" ", 3)
        assert (wid, status) == ("ap-2", "cancelled")
        assert restarted.wait(timeout=30) == 0
    finally:
        if restarted.poll() is None:
            restarted.kill()
    steps = [line.split()[1:3] for line in ledger.read_text().splitlines()]
    assert steps.count(["ap-1", "after"]) == 1 and ["ap-2", "after"] not in steps


def test_the_cli_reads_a_schema_2_file_and_refuses_signals_until_it_is_upgraded(
        tmp_path: Path) -> None:
    from sqlite_utils import Database

    from minions_actors.persistence.schema import MIGRATIONS

    db = tmp_path / "v2.db"
    base = Database(db)
    for migration in MIGRATIONS[:2]:  # the file as the previous release left it
        migration(base)
    base.execute("PRAGMA user_version = 2")
    base.execute("INSERT INTO workflows VALUES ('w', 'm', 'C', 'flow', 'failed', 1, 's', "
                 "'{}', 3, 'boom', 1.0, 2.0, 2.0)")
    base.conn.commit()
    base.close()
    listed = cli(db, "list")
    assert listed.returncode == 0 and "failed" in listed.stdout, listed.stderr
    assert cli(db, "retry", "w").returncode == 0
    refused = cli(db, "signal", "w", "approval")
    assert refused.returncode == 1 and "start the application once" in refused.stderr
