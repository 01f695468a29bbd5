"""The store commands of the CLI as operators and scripts use them, through real subprocesses:
``workflows`` parsing, ``--json``, exit codes, escaping of stored strings, and the demo's
failed start."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from minions_actors.persistence import SQLiteStateStore, WorkflowRecord

from .test_cli import run_cli

# each test starts up to a dozen CLI processes one after the other: on a loaded 2-core box
# one takes 2-12 s to start (free-threaded 3.13t imports slowest), past the 60 s default
pytestmark = pytest.mark.timeout(240)

EVIL = "\x1b]0;pwned\x07\x1b[2J\u202e"  # retitle the terminal, clear it, flip the text


def record(wid: str, status: str, *, path: str = "shop", error: str | None = None,
           step: int = 1) -> WorkflowRecord:
    now = time.time()
    return WorkflowRecord(
        workflow_id=wid, minion_path=path, minion_class="Shop", workflow_name="fulfil",
        status=status, next_step=step, step_name=None if status == "completed" else "charge",
        context_json='{"order": 7}', attempts=1 if error else 0, error=error,
        created_at=now, updated_at=now,
        finished_at=None if status == "running" else now,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as s:
        s.save("shop", "Shop", '{"n": 1}')
        s.save(f"evil{EVIL}", f"Evil{EVIL}", "{}")
        s.save_workflow(record("job-1", "failed", error="ValueError: card declined"))
        s.save_workflow(record("job-2", "completed", step=2))
        s.save_workflow(record(f"job{EVIL}", "failed", error=f"boom {EVIL}"))
        assert s.flush(timeout=5)
    return db


def test_workflows_take_action_and_id_positionally(store: Path) -> None:
    cwd = store.parent  # --db defaults to minions.db in the working directory
    listing = run_cli("workflows", "list", cwd=cwd)
    assert listing.returncode == 0, listing.stderr
    assert "job-1" in listing.stdout and "job-2" in listing.stdout
    failed = run_cli("workflows", "--status", "failed", cwd=cwd)  # list is the default
    assert "job-1" in failed.stdout and "job-2" not in failed.stdout
    shown = run_cli("workflows", "show", "job-1", cwd=cwd)
    assert shown.returncode == 0 and "card declined" in shown.stdout
    assert '"order": 7' in shown.stdout
    retried = run_cli("workflows", "retry", "job-1", cwd=cwd)
    assert retried.returncode == 0, retried.stderr
    assert "resume at step 'charge'" in retried.stdout
    # --db before or after the action, from another directory
    elsewhere = store.parent / "sub"
    elsewhere.mkdir()
    out = run_cli("workflows", "--db", str(store), "show", "job-1", "--json", cwd=elsewhere)
    assert json.loads(out.stdout)["status"] == "running"
    out = run_cli("workflows", "discard", "job-2", "--db", str(store), cwd=elsewhere)
    assert out.returncode == 0 and "job-2 (completed) discarded" in out.stdout


def test_exit_codes_tell_usage_from_nothing_to_do_from_failure(store: Path) -> None:
    cwd = store.parent
    # nothing to do: 4
    assert run_cli("workflows", "retry", "job-2", cwd=cwd).returncode == 4  # completed
    assert run_cli("workflows", "retry", "nope", cwd=cwd).returncode == 4
    assert run_cli("workflows", "discard", "nope", cwd=cwd).returncode == 4
    assert run_cli("workflows", "show", "nope", cwd=cwd).returncode == 4
    # bad usage: 2
    assert run_cli("workflows", "retry", cwd=cwd).returncode == 2  # no id
    assert run_cli("workflows", "frobnicate", cwd=cwd).returncode == 2
    assert run_cli("workflows", "--db", "typo.db", cwd=cwd).returncode == 2
    assert run_cli("inspect", "--db", "typo.db", cwd=cwd).returncode == 2
    old_form = run_cli("workflows", "minions.db", "retry", "job-1", cwd=cwd)  # before --db
    assert old_form.returncode == 2
    assert "workflows --db minions.db retry job-1" in old_form.stderr
    # failed: 1 (the file exists but is not a store)
    (cwd / "notes.db").write_text("not a database")
    out = run_cli("inspect", "--db", "notes.db", cwd=cwd)
    assert out.returncode == 1 and "not a SQLite database" in out.stderr
    assert run_cli("workflows", "--db", "notes.db", "list", cwd=cwd).returncode == 1


def test_json_output_is_one_object_per_line(store: Path) -> None:
    cwd = store.parent
    out = run_cli("inspect", "--json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    minions = [json.loads(line) for line in out.stdout.splitlines()]
    assert [m["path"] for m in minions] == ["evil" + EVIL, "shop"]
    assert set(minions[1]) == {"path", "class", "size_bytes", "updated_at", "schedules"}
    assert minions[1]["schedules"] == []
    out = run_cli("workflows", "list", "--json", "--status", "failed", cwd=cwd)
    workflows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {w["workflow_id"] for w in workflows} == {"job-1", "job" + EVIL}
    assert all(w["status"] == "failed" and "context" not in w for w in workflows)
    assert "\x1b" not in out.stdout  # JSON escapes control characters (ensure_ascii)
    empty = run_cli("workflows", "list", "--json", "--status", "running", cwd=cwd)
    assert empty.returncode == 0 and empty.stdout == ""


@pytest.mark.parametrize("args", [("inspect",), ("workflows",), ("workflows", "show", "job" + EVIL),
                                  ("workflows", "retry", "job" + EVIL)])
def test_stored_strings_are_escaped(store: Path, args: tuple[str, ...]) -> None:
    out = run_cli(*args, cwd=store.parent)
    assert out.returncode == 0, out.stderr
    assert not any(c in out.stdout + out.stderr for c in "\x1b\x07\u202e")
    assert "\\x1b]0;pwned\\x07" in out.stdout


def test_demo_with_its_port_taken_is_a_failed_start_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli("demo", "--metrics-port", str(port), cwd=tmp_path)
    assert out.returncode == 3
    assert "--metrics-port 0" in out.stderr and f"port {port} is in use" in out.stderr
    assert "Traceback" not in out.stderr and "metrics_port=" not in out.stderr
