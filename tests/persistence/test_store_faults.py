"""State-store faults at open: one owner per file, read-only tools, corrupt pages, RLIMIT_FSIZE,
and the accuracy of the errors. Real files, real second processes."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minions_actors import ActorSystem
from minions_actors.errors import StateStoreCorrupt, StateStoreFull, StateStoreLocked
from minions_actors.persistence import SQLiteStateStore, WorkflowRecord

from ..conftest import QUIET

ROOT = Path(__file__).resolve().parents[2]

OWNER = textwrap.dedent(
    """
    import sys, time
    from minions_actors.persistence import SQLiteStateStore
    store = SQLiteStateStore(sys.argv[1], batch_interval=0.01)
    i = 0
    while True:
        i += 1
        store.save("live/counter", "Counter", '{"count": %d}' % i)
        if i == 1:
            store.flush(timeout=10)
            print("owning", flush=True)
        time.sleep(0.005)
    """
)


class Owner:
    """A real second process that owns the store file and keeps writing to it."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(db)], cwd=ROOT, stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == "owning", line

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Owner]:
    o = Owner(tmp_path / "minions.db")
    try:
        yield o
    finally:
        o.kill()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minions_actors", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )


# ---------------------------------------------------------------------------- one owner
def test_a_symlink_to_an_owned_store_is_refused_too(tmp_path: Path, owner: Owner) -> None:
    link = tmp_path / "elsewhere.db"
    link.symlink_to(tmp_path / "minions.db")
    with pytest.raises(StateStoreLocked, match=f"pid {owner.proc.pid}"):
        SQLiteStateStore(link, open_timeout=0.1)


def test_second_process_is_refused_naming_the_file_and_owner_pid(
    tmp_path: Path, owner: Owner
) -> None:
    db = tmp_path / "minions.db"
    t0 = time.monotonic()
    with pytest.raises(StateStoreLocked) as info:
        ActorSystem.start(**{**QUIET, "state_store": str(db)})
    assert time.monotonic() - t0 < 2, "an owned store must be refused at once, not after waiting"
    text = str(info.value)
    assert str(db) in text and f"pid {owner.proc.pid}" in text, text
    assert "retrying" not in text
    assert owner.proc.poll() is None  # the owner is untouched and keeps writing


def test_kill_9_owner_leaves_no_stale_ownership(tmp_path: Path, owner: Owner) -> None:
    db = tmp_path / "minions.db"
    owner.kill()
    t0 = time.monotonic()
    system = ActorSystem.start(**{**QUIET, "state_store": str(db)})
    try:
        assert time.monotonic() - t0 < 2
        assert system.store is not None and system.store.load("live/counter") is not None
    finally:
        assert system.shutdown(timeout=10)
    # Ownership ended with the clean shutdown too: the next owner starts at once.
    SQLiteStateStore(db, open_timeout=0.1).close()


def test_read_only_tools_work_against_a_live_store(tmp_path: Path, owner: Owner) -> None:
    db = tmp_path / "minions.db"
    shown = _cli("inspect", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "live/counter" in shown.stdout
    listed = _cli("workflows", "--db", str(db), "list")
    assert listed.returncode == 0, listed.stderr
    assert owner.proc.poll() is None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_tools_leave_a_closed_store_untouched(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as store:
        store.save("a", "A", '{"a": 1}')
        store.save_workflow(WorkflowRecord("w1", "a", "A", "flow", "completed", 1, None, "{}"))
    before = sorted(os.listdir(tmp_path))
    digest = _digest(db)
    assert not (tmp_path / "minions.db-wal").exists()
    for args in (("inspect", str(db)), ("workflows", "--db", str(db), "list")):
        result = _cli(*args)
        assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == before  # no -wal or -shm left behind
    assert _digest(db) == digest
    SQLiteStateStore(db, open_timeout=0.1).close()  # and no lock kept


# ---------------------------------------------------------------------------- open errors
def test_locked_at_open_is_an_accurate_error(tmp_path: Path) -> None:
    from .test_store import LockHolder

    db = tmp_path / "m.db"
    sqlite3.connect(db).close()  # empty file: opening must write the schema
    holder = LockHolder(db)
    try:
        with pytest.raises(StateStoreLocked) as info:
            SQLiteStateStore(db, open_timeout=0.2)
    finally:
        holder.release()
    text = str(info.value)
    assert text.startswith(f"cannot open state store {str(db)!r}: the database is locked"), text
    assert "retrying" not in text


FSIZE_SYNC_CHILD = textwrap.dedent(
    """
    import resource, sys
    from minions_actors.errors import StateStoreWriteFailed
    from minions_actors.persistence import SQLiteStateStore
    store = SQLiteStateStore(sys.argv[1], durability="sync")
    store.save("m", "M", '{"v": 1}')
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
    try:
        for i in range(100):
            store.save(f"m{i}", "M", '{"pad": "%s"}' % ("x" * 4000))
        print("all committed")
    except StateStoreWriteFailed as exc:
        print(type(exc.__cause__).__name__, store.load(f"m{i}"), i > 0)
    """
)


def test_file_size_limit_fails_a_sync_save_and_takes_it_back(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FSIZE_SYNC_CHILD, str(tmp_path / "m.db")], cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["StateStoreFull", "None", "True"], proc.stdout


FSIZE_CHILD = textwrap.dedent(
    """
    import resource, sys
    from minions_actors.persistence import SQLiteStateStore
    errors = []
    store = SQLiteStateStore(sys.argv[1], on_error=errors.append, retry_max=0.05)
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, resource.RLIM_INFINITY))
    for i in range(200):
        store.save(f"m{i}", "M", '{"pad": "%s"}' % ("x" * 4000))
    print("flushed" if store.flush(timeout=2) else "not flushed")
    store.close(timeout=0.5)
    print(type(errors[0]).__name__ if errors else "no error")
    print(errors[0] if errors else "")
    """
)


def test_file_size_limit_is_state_store_full(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    proc = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD, str(db)], cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )
    # Python ignores SIGXFSZ, so the process is not killed: the write fails with EFBIG.
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "not flushed" and lines[1] == StateStoreFull.__name__, proc.stdout
    assert "RLIMIT_FSIZE" in lines[2] and "400000" in lines[2], lines[2]


def _store_with_rows(path: Path, rows: int) -> None:
    with SQLiteStateStore(path) as store:
        for i in range(rows):
            store.save(f"m/{i:06d}", "M", f'{{"i": {i}, "pad": "{"p" * (i % 50)}"}}')
            if i % 3 == 0:
                store.save_workflow(WorkflowRecord(
                    f"w{i}", f"m/{i:06d}", "M", "flow", "completed", 1, None, "{}",
                ))


def test_corrupt_pages_are_detected_at_open(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    _store_with_rows(good, 3000)
    page_size = 4096
    pages = good.stat().st_size // page_size
    assert pages > 50
    rng = random.Random(9)
    for trial in range(30):
        bad = tmp_path / f"bad{trial}.db"
        shutil.copyfile(good, bad)
        page = rng.randrange(1, pages)  # any page but the header page (that one is "not a db")
        with open(bad, "r+b") as f:
            f.seek(page * page_size)
            f.write(rng.randbytes(page_size))
        with pytest.raises(StateStoreCorrupt) as info:
            SQLiteStateStore(bad, open_timeout=0.5).close()
        text = str(info.value)
        assert str(bad) in text and ("damaged" in text), (trial, page, text)
    SQLiteStateStore(good).close()  # the original is fine


def test_open_check_can_be_turned_off_and_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="open_check"):
        SQLiteStateStore(tmp_path / "x.db", open_check="full")  # type: ignore[arg-type]
    SQLiteStateStore(tmp_path / "y.db", open_check="none").close()


# ---------------------------------------------------------------------------- shutdown
def test_shutdown_that_loses_snapshots_returns_false_and_says_what(tmp_path: Path) -> None:
    from ..apps.full_store_app import fill

    lines: list[str] = []
    store = SQLiteStateStore(tmp_path / "m.db", retry_max=0.05)
    system = ActorSystem.start(**{**QUIET, "state_store": store, "log_sinks": [lines.append]})
    fill(system)
    t0 = time.monotonic()
    assert system.shutdown(timeout=1.0) is False
    assert time.monotonic() - t0 < 5
    assert system.exit_code == 1
    assert store.stats().lost == 1
    text = "".join(lines)
    assert "1 snapshots not written (e.g. big)" in text, text
    assert "shutdown reports failure" in text


def test_run_exits_non_zero_when_the_shutdown_lost_snapshots(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "minions_actors", "run", "tests.apps.full_store_app:main"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "APP_DB": str(tmp_path / "app.db")},
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "not written (e.g. big)" in proc.stderr and "not clean" in proc.stderr, proc.stderr
