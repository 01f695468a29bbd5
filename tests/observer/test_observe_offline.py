"""``minions-actors observe --db``: the same page, read-only, over a stopped app's store,
served by a real subprocess on 127.0.0.1 and stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, StartWorkflow

from ..conftest import QUIET, wait_until
from .observer_apps import SECRET, TOKEN, Orders, Team, get, post


@pytest.fixture
def stopped_store(tmp_path: Path) -> Path:
    db = tmp_path / "app.db"
    system = ActorSystem.start(**{**QUIET, "state_store": str(db)})
    try:
        system.spawn(Team, 3, name="team")
        for i in range(3):
            wait_until(lambda i=i: system.find(f"team/w{i}"), 10)
            system.get(f"team/w{i}").ask("ping", timeout=10)  # a snapshot each
        Orders.ok = False
        system.spawn(Orders, name="orders").ask(
            StartWorkflow("fulfil", "o-1", {"card": SECRET}), timeout=10)
        wait_until(lambda: system.workflows(status="failed"), 30)
        assert system.flush(10)
    finally:
        system.shutdown(timeout=10)
    return db


@pytest.fixture
def served(stopped_store: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minions_actors", "observe", "--db", str(stopped_store),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ.copy())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "(read-only) at http://127.0.0.1:" in line, (line, proc.stderr.read())
        yield line.rsplit(" ", 1)[-1].strip(), proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_the_stored_tree_and_workflows_are_browsable(
        served: tuple[str, Any]) -> None:
    base, _ = served
    assert get(base, "/api/config") == {"live": False, "actions": False}
    assert b"minions observer" in get(base, "")
    top = get(base, "/api/children?path=")
    assert [(r["path"], r["state"]) for r in top["rows"]] == [("team", "not stored")]
    team = get(base, "/api/children?path=team")
    assert [(r["path"], r["cls"], r["state"]) for r in team["rows"]] == [
        (f"team/w{i}", "Worker", "stored") for i in range(3)]
    assert get(base, "/api/search?q=w1")["total"] == 1
    m = get(base, "/api/minion?path=team/w0")
    assert m["state_shown"] is False and "snapshot" not in m and m["size_bytes"] > 0
    wf = get(base, "/api/workflows?status=failed")
    assert wf["counts"]["failed"] == 1 and wf["rows"][0]["error"].startswith("ConnectionError")
    assert get(base, "/api/events?since=0") == []
    assert get(base, "/api/overview")["minions"] == 3
    everything = "".join(str(get(base, p)) for p in (
        "/api/children?path=team", "/api/minion?path=team/w0", "/api/workflows",
        "/api/workflow?id=o-1"))
    assert SECRET not in everything  # neither the snapshots nor the workflow's context


def test_it_is_read_only_whatever_the_token(served: tuple[str, Any],
                                            stopped_store: Path) -> None:
    base, _ = served
    for action, body in (("retry", {"id": "o-1"}), ("discard", {"id": "o-1"}),
                         ("stop", {"path": "team/w0"})):
        status, answer = post(base, action, body, token=TOKEN)
        assert status == 403 and "read-only" in answer["error"]
    assert get(base, "/api/workflow?id=o-1")["status"] == "failed"


def test_sigterm_stops_it_cleanly(served: tuple[str, Any]) -> None:
    _, proc = served
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "minions_actors", "observe", "--db", str(tmp_path / "no.db"),
         "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "observe:" in done.stderr and "no.db" in done.stderr
