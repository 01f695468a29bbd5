"""Shutdown under load: bounded by its timeout whatever the backlog (real process, real signal)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from minions_actors.persistence import SNAPSHOT_TABLE

ROOT = Path(__file__).resolve().parent.parent
SHUTDOWN_TIMEOUT = 5.0


def test_sigterm_with_a_flooded_backlog_exits_within_the_timeout(tmp_path: Path) -> None:
    db = tmp_path / "flood.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "minions_actors", "run", "tests.apps.flood_app:main"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "APP_DB": str(db), "APP_STOP_TIMEOUT": "0.5",
             "APP_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + (proc.stderr.read() if proc.stderr else "")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # the process must be gone within its shutdown timeout (plus interpreter exit)
        _, err = proc.communicate(timeout=SHUTDOWN_TIMEOUT + 5)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err[-3000:]
    assert took < SHUTDOWN_TIMEOUT + 2, f"exit took {took:.1f}s"
    assert "did not stop" not in err
    # dropped messages are accounted in bulk: at most one line per minion, with a count
    dropped = re.findall(r"minion (tally-\d+) stopped with (\d+) queued messages", err)
    assert dropped, err[-3000:]
    assert len({name for name, _ in dropped}) == len(dropped)
    assert sum(int(n) for _, n in dropped) > 0
    # and the store was flushed and closed: every minion has its row
    with sqlite3.connect(db) as con:
        paths = {row[0] for row in con.execute(f"select path from {SNAPSHOT_TABLE}")}
    assert {f"tally-{i}" for i in range(50)} <= paths
