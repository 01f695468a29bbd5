"""The CLI never dumps a traceback: a closed pipe, damaged pages, rows that are not UTF-8, a
``run`` target that raises, a live owner during ``discard --force``; and ``workflows list``'s
``--limit``/``--since`` and program name. Real subprocesses against real SQLite files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minions_actors.errors import StateStoreCorrupt
from minions_actors.persistence import SQLiteStateStore

from .test_cli import ROOT, run_cli
from .test_cli_store import record

# each test starts up to a dozen CLI processes one after the other: on a loaded 2-core box
# one takes 2-12 s to start (free-threaded 3.13t imports slowest), past the 60 s default
pytestmark = pytest.mark.timeout(240)

SCRIPT = Path(sys.executable).parent / "minions-actors"
BAD_TEXT = "CAST(x'7b2278223a2022ff1b5b324a227d' AS TEXT)"  # {"x": "<0xff>ESC[2J"}
RAW = ("\x1b", "\ufffd", "\udcff")  # ESC, a replacement character, a surrogate escape


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``minions-actors`` console script of the venv, on this worktree's code."""
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@contextlib.contextmanager
def _sql(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection that commits and closes (the last close checkpoints the WAL)."""
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        yield conn


def filled_store(db: Path, minions: int, workflows: int, *, age: float = 0.0) -> Path:
    """A store whose snapshots fill the first pages and workflows the later ones."""
    with SQLiteStateStore(db):
        pass
    now = time.time()
    with _sql(db) as conn:
        conn.executemany(
            "INSERT INTO minion_snapshots VALUES (?, 'C', ?, 600, ?)",
            [(f"m{i:05}", '{"x": "%s"}' % ("y" * 590), now) for i in range(minions)],
        )
        for i in range(workflows):
            rec = record(f"w{i:05}", "completed", step=2)
            rec.created_at = rec.updated_at = now - age + i
            conn.execute(
                "INSERT INTO workflows (workflow_id, minion_path, minion_class, workflow_name, "
                "status, next_step, step_name, context_json, attempts, error, created_at, "
                "updated_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec.workflow_id, rec.minion_path, rec.minion_class, rec.workflow_name,
                 rec.status, rec.next_step, rec.step_name, rec.context_json, rec.attempts,
                 rec.error, rec.created_at, rec.updated_at, rec.finished_at),
            )
    return db


# ------------------------------------------------------------------------ item 3: SIGPIPE
def test_a_closed_pipe_ends_the_output_quietly_like_head_expects(tmp_path: Path) -> None:
    db = filled_store(tmp_path / "big.db", minions=3000, workflows=0)  # ~300 KB of JSON
    proc = subprocess.Popen(
        [sys.executable, "-m", "minions_actors", "inspect", str(db), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["path"] == "m00000"
    proc.stdout.close()  # what `| head -1` does after its line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == -signal.SIGPIPE, err  # killed by SIGPIPE, like cat
    assert err == ""
    shell = subprocess.run(
        ["bash", "-c", f"'{SCRIPT}' workflows --db '{db}' list --json | head -1; "
         f"'{SCRIPT}' inspect '{db}' --json | head -1 >/dev/null"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert shell.returncode == 0 and shell.stderr == "", shell.stderr


# ---------------------------------------------------------------------- item 4: damaged pages
@pytest.mark.parametrize("args", [("inspect",), ("inspect", "--json"), ("workflows", "list"),
                                  ("workflows", "show", "w00001"),
                                  ("workflows", "discard", "w00001")])
def test_damaged_pages_are_refused_as_the_runtime_refuses_them(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = filled_store(tmp_path / "minions.db", minions=300, workflows=300)
    with open(db, "r+b") as f:  # the header (page 1) is intact; a snapshot page is not
        f.seek(4096 * 20 + 100)
        f.write(b"\xff" * 2000)
    with pytest.raises(StateStoreCorrupt) as refused:
        SQLiteStateStore(db)
    runtime_says = str(refused.value).split(": its pages are damaged")[1][:40]
    out = run_cli(*args, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "its pages are damaged" in out.stderr and runtime_says in out.stderr
    assert "sqlite3 FILE .recover" in out.stderr


# --------------------------------------------------------------- item 5: rows that are not UTF-8
def test_a_snapshot_that_is_not_utf8_is_quarantined_at_open_and_named(tmp_path: Path) -> None:
    from loguru import logger

    db = filled_store(tmp_path / "minions.db", minions=3, workflows=0)
    with _sql(db) as conn:
        conn.execute(f"UPDATE minion_snapshots SET state_json = {BAD_TEXT} WHERE path = 'm00001'")
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="ERROR")
    try:
        with SQLiteStateStore(db) as store:
            assert store.load("m00001") is None and store.load("m00002") is not None
            [q] = store.quarantined()
    finally:
        logger.remove(sink)
    assert q.path == "m00001" and "not valid UTF-8" in q.error and "state_json" in q.error
    assert "\\xff" in q.state_json  # the damaged byte, kept as an escape
    assert any("m00001" in m and "quarantine" in m for m in messages), messages
    assert not any(c in m for m in messages for c in RAW)
    with SQLiteStateStore(db) as store:  # set aside once: the next open is clean
        assert len(store.quarantined()) == 1 and len(store.stored()) == 2


def test_a_running_workflow_that_is_not_utf8_names_itself_and_a_recipe(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as store:
        store.save_workflow(record("job-7", "running", path="shop"))
    with _sql(db) as conn:
        conn.execute(f"UPDATE workflows SET context_json = {BAD_TEXT}")
    with pytest.raises(StateStoreCorrupt) as refused:
        SQLiteStateStore(db)
    text = str(refused.value)
    assert "'job-7'" in text and "'shop'" in text and "context_json" in text
    assert "discard job-7 --force" in text
    assert not any(c in text for c in RAW)
    shown = run_cli("workflows", "show", "job-7", cwd=tmp_path)  # the recipe's tools work
    assert shown.returncode == 0, shown.stderr
    assert "\\xff" in shown.stdout and not any(c in shown.stdout + shown.stderr for c in RAW)
    assert "not valid UTF-8" in shown.stderr and "job-7" in shown.stderr
    gone = run_cli("workflows", "discard", "job-7", "--force", cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    with SQLiteStateStore(db) as store:
        assert store.workflows() == []


@pytest.mark.parametrize("args", [("inspect",), ("inspect", "--json"), ("workflows",),
                                  ("workflows", "--json")])
def test_the_cli_shows_rows_that_are_not_utf8_escaped(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as store:
        store.save("ok", "C", "{}")
        store.save_workflow(record("job-1", "failed", error="x"))
    with _sql(db) as conn:
        conn.execute(f"INSERT INTO minion_snapshots VALUES ({BAD_TEXT}, 'C', '{{}}', 2, 0)")
        conn.execute(f"UPDATE workflows SET error = {BAD_TEXT}, minion_path = {BAD_TEXT}")
    out = run_cli(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert not any(c in out.stdout + out.stderr for c in RAW)
    assert "\\xff" in out.stdout
    assert "not valid UTF-8" in out.stderr


# ------------------------------------------------------------------ item 6: run target raises
def test_a_run_target_that_raises_shows_the_users_traceback(tmp_path: Path) -> None:
    (tmp_path / "brokenapp.py").write_text(
        "import os\n\n\ndef main():\n    return os.environ['APP_DB_PATH']\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "APP_DB_PATH"}
    out = subprocess.run(
        [sys.executable, "-m", "minions_actors", "run", "brokenapp:main"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 3
    assert f'File "{tmp_path / "brokenapp.py"}", line 5, in main' in out.stderr
    assert "KeyError: 'APP_DB_PATH'" in out.stderr and "failed to start" in out.stderr
    assert "ops/cli.py" not in out.stderr  # the user's frames, not the CLI's


@pytest.mark.parametrize("body", ["import not_installed_dependency_xyz\n",
                                  "SETTINGS = {}\nDB = SETTINGS['db']\n"])
def test_a_run_target_that_fails_to_import_shows_the_users_traceback(
    tmp_path: Path, body: str
) -> None:
    (tmp_path / "brokenimport.py").write_text(body + "\n\ndef main():\n    pass\n")
    out = run_cli("run", "brokenimport:main", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "failed to import" in out.stderr
    assert f'File "{tmp_path / "brokenimport.py"}", line {body.count(chr(10))}' in out.stderr
    missing = run_cli("run", "not_a_module_here:main", cwd=tmp_path)  # the target itself
    assert missing.returncode == 2 and "cannot load" in missing.stderr
    assert "Traceback" not in missing.stderr


# ----------------------------------------------------- item 7: --limit, --since, program name
def test_workflows_list_has_a_limit_and_since(tmp_path: Path) -> None:
    filled_store(tmp_path / "minions.db", minions=0, workflows=150, age=3 * 86400)
    with _sql(tmp_path / "minions.db") as conn:  # the 5 newest: updated today
        conn.execute("UPDATE workflows SET updated_at = ? WHERE workflow_id >= 'w00145'",
                     (time.time(),))
    default = run_cli("workflows", "list", "--json", cwd=tmp_path)
    ids = [json.loads(line)["workflow_id"] for line in default.stdout.splitlines()]
    assert ids == [f"w{i:05}" for i in range(50, 150)]  # the newest 100, oldest first
    assert "100 of 150" in default.stderr and "--limit 0" in default.stderr
    table = run_cli("workflows", "list", "--limit", "3", cwd=tmp_path)
    assert table.returncode == 0 and "3 of 150" in table.stdout
    assert "w00149" in table.stdout and "w00146" not in table.stdout
    every = run_cli("workflows", "list", "--json", "--limit", "0", cwd=tmp_path)
    assert len(every.stdout.splitlines()) == 150 and every.stderr == ""
    recent = run_cli("workflows", "--since", "1d", "--json", cwd=tmp_path)
    assert [json.loads(line)["workflow_id"] for line in recent.stdout.splitlines()] == [
        f"w{i:05}" for i in range(145, 150)]
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    assert len(run_cli("workflows", "list", "--since", day, "--json",
                       cwd=tmp_path).stdout.splitlines()) == 5
    bad = run_cli("workflows", "list", "--since", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr and "2h" in bad.stderr
    assert run_cli("workflows", "list", "--limit", "-1", cwd=tmp_path).returncode == 2


def test_usage_and_errors_name_the_program_as_it_was_run(tmp_path: Path) -> None:
    out = run_script("workflows", "frobnicate", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("usage: minions-actors workflows")
    out = run_script("inspect", "--db", "typo.db", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("minions-actors inspect: no state")
    out = run_cli("workflows", "frobnicate", cwd=tmp_path)
    assert out.stderr.startswith("usage: python -m minions_actors workflows")
    helped = run_script("workflows", "list", "--help", cwd=tmp_path)
    assert "JSON Lines" in helped.stdout and "--limit" in helped.stdout


# --------------------------------------------------------- item 8: discard --force on a live store
def test_discard_force_is_refused_while_the_store_has_an_owner(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    store = SQLiteStateStore(db)  # this test process owns the store, as a running app would
    try:
        store.save_workflow(record("job-1", "running"))
        assert store.flush(timeout=10)
        out = run_cli("workflows", "discard", "job-1", "--force", cwd=tmp_path)
        assert out.returncode == 1, out.stdout
        assert "discarded" not in out.stdout and "Traceback" not in out.stderr
        assert f"pid {os.getpid()}" in out.stderr and "stop it" in out.stderr
        store.save_workflow(record("job-1", "completed"))  # the app finishes the workflow
    finally:
        store.close()
    with SQLiteStateStore(db) as again:
        assert again.get_workflow("job-1") is not None  # nothing was reported that did not stick
    out = run_cli("workflows", "discard", "job-1", "--force", cwd=tmp_path)  # app stopped
    assert out.returncode == 0 and "discarded" in out.stdout, out.stderr


def test_discard_force_refuses_a_fifo_planted_at_the_lock_path(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as store:
        store.save_workflow(record("job-1", "running"))
    os.mkfifo(str(db) + ".lock")  # no writer ever opens it: a blocking open would hang
    out = run_cli("workflows", "discard", "job-1", "--force", cwd=tmp_path, timeout=20)
    assert out.returncode == 1, out.stdout
    assert "not a regular file" in out.stderr and "Traceback" not in out.stderr
    assert "discarded" not in out.stdout
