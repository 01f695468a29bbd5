"""State store: protocol behaviour, durability modes, faults with real files, inspect, speed."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from minions_actors import persistence, testing
from minions_actors.errors import (
    StateStoreClosed,
    StateStoreCorrupt,
    StateStoreError,
    StateStoreFull,
    StateStoreLocked,
    StateStoreReadOnly,
)
from minions_actors.ops.inspect import render_inspect
from minions_actors.persistence import (
    InMemoryStateStore,
    SQLiteStateStore,
    StateStore,
    StoredMinion,
    StoreStats,
    open_state_store,
)

CHILD = str(Path(__file__).with_name("_store_child.py"))


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def read_rows(db: Path) -> dict[str, dict[str, Any]]:
    """Snapshots as committed on disk, read with a separate plain sqlite3 connection."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT path, state_json FROM minion_snapshots").fetchall()
    finally:
        conn.close()
    return {p: json.loads(s) for p, s in rows}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStateStore]:
    s = SQLiteStateStore(tmp_path / "minions.db")
    yield s
    s.close(timeout=10)


@pytest.fixture
def log_records() -> Iterator[list[Any]]:
    records: list[Any] = []
    sink_id = logger.add(
        lambda m: records.append(m.record),
        level="DEBUG",
        filter=lambda r: bool(r["extra"].get("minions")),
    )
    yield records
    logger.remove(sink_id)


# ---------------------------------------------------------------------------- basics
def test_save_load_reopen_delete(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as s:
        assert s.load("a") is None
        s.save("a", "Counter", '{"count": 1}')
        s.save("b/c", "Child", '{"x": "é"}')
        assert s.load("a") == '{"count": 1}'  # visible before the commit
        assert s.flush(timeout=5)
        s.delete("b/c")
        assert s.load("b/c") is None
        assert s.flush(timeout=5)
    assert read_rows(db) == {"a": {"count": 1}}
    with SQLiteStateStore(db) as s2:
        assert s2.load("a") == '{"count": 1}'
        assert s2.load_many(["a", "zzz"]) == {"a": '{"count": 1}'}
        assert s2.load_all() == {"a": '{"count": 1}'}
        [only] = s2.stored()
        assert isinstance(only, StoredMinion)
        assert (only.path, only.minion_class, only.size_bytes) == ("a", "Counter", 12)
        assert abs(only.updated_at.timestamp() - time.time()) < 60


def test_writer_thread_named_non_daemon(store: SQLiteStateStore) -> None:
    [writer] = [t for t in threading.enumerate() if t.name == "minions-store-writer"]
    assert not writer.daemon


def test_coalescing_writes_newest_once(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "m.db", batch_interval=30.0) as s:
        for i in range(1000):
            s.save("hot", "Hot", json.dumps({"i": i}))
        assert s.stats().pending == 1
        assert s.flush(timeout=5)
        st = s.stats()
        assert (st.rows_written, st.batches, st.pending) == (1, 1, 0)
    assert read_rows(tmp_path / "m.db") == {"hot": {"i": 999}}


def test_batched_save_is_cheap_and_committed_within_window(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db, batch_interval=0.05) as s:
        t0 = time.perf_counter()
        for i in range(20_000):
            s.save(f"p{i % 100}", "C", '{"v": 1}')
        per_save = (time.perf_counter() - t0) / 20_000
        assert per_save < 50e-6, f"save took {per_save * 1e6:.1f} us"
        # Without any flush the writer commits by itself shortly after the batch window.
        wait_for(lambda: len(read_rows(db)) == 100, what="background commit")


def test_sync_mode_commits_before_save_returns(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db, durability="sync") as s:
        assert s.durability == "sync"
        for i in range(5):
            s.save("s", "S", json.dumps({"i": i}))
            assert read_rows(db) == {"s": {"i": i}}
        s.delete("s")
        assert read_rows(db) == {}
        assert testing.store_pragma(s, "synchronous") == 2  # FULL


def test_rejects_non_text_and_bad_options(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "m.db") as s, pytest.raises(TypeError, match="JSON text"):
        s.save("a", "A", {"not": "text"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="durability"):
        SQLiteStateStore(tmp_path / "x.db", durability="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_interval"):
        SQLiteStateStore(tmp_path / "x.db", batch_interval=-1)


# ---------------------------------------------------------------------------- close
def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_close_leaves_no_thread_and_no_fd(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    s = SQLiteStateStore(tmp_path / "m.db")
    for i in range(100):
        s.save(f"p{i}", "C", "{}")
    assert _fds() != fds_before
    s.close()
    s.close()  # idempotent
    assert s.closed
    assert set(threading.enumerate()) == threads_before
    assert _fds() == fds_before
    assert len(read_rows(tmp_path / "m.db")) == 100  # close flushed
    with pytest.raises(StateStoreClosed, match=r"m\.db"):
        s.save("late", "C", "{}")
    assert s.flush(timeout=1)


def test_program_that_forgets_close_still_exits_and_writes(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    proc = subprocess.run(
        [sys.executable, CHILD, "noclose", str(db)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert read_rows(db) == {"left/behind": {"written": True}, "late/worker": {"after_main": True}}
    assert read_rows(tmp_path / "m.db.second") == {"second": {}}


# ---------------------------------------------------------------------------- files
@pytest.mark.parametrize("write", [False, True])
def test_files_are_owner_only(tmp_path: Path, write: bool) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as s:
        if write:
            s.save("a", "A", "{}")
            assert s.flush(timeout=5)
        for name in ("m.db", "m.db-wal", "m.db-shm"):
            f = tmp_path / name
            assert f.exists(), name
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, name


def test_schema_version_and_json_columns(store: SQLiteStateStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == persistence.schema_version()
        cols = [r[1] for r in conn.execute("PRAGMA table_info(minion_snapshots)")]
        assert cols == ["path", "minion_class", "state_json", "size_bytes", "updated_at"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateStoreError, match="schema version 99"):
        SQLiteStateStore(db)


def test_appended_migration_upgrades_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as s:
        s.save("keep", "K", '{"k": 1}')

    current = persistence.schema_version()

    def m_next(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE future_things (id TEXT PRIMARY KEY, data TEXT)")

    # the list lives in persistence.schema (re-exported as persistence.MIGRATIONS)
    monkeypatch.setattr(persistence.schema, "MIGRATIONS", [*persistence.MIGRATIONS, m_next])
    with SQLiteStateStore(db) as s:
        assert s.schema_found == current
        assert s.load("keep") == '{"k": 1}'
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current + 1
        assert conn.execute("SELECT count(*) FROM future_things").fetchone()[0] == 0
    finally:
        conn.close()


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "garbage.db"
    junk = os.urandom(8192)
    db.write_bytes(junk)
    with pytest.raises(StateStoreCorrupt, match=r"garbage\.db.*move the file away"):
        SQLiteStateStore(db)
    assert db.read_bytes() == junk  # untouched
    assert not [t for t in threading.enumerate() if t.name == "minions-store-writer"]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="does not exist"):
        SQLiteStateStore(tmp_path / "nope" / "m.db")


def _probe_open(db: Path) -> dict[str, Any]:
    """Open the store in a subprocess that obeys file modes even when tests run as root."""
    proc = subprocess.run(
        [sys.executable, CHILD, "open", str(db)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_read_only_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    SQLiteStateStore(db).close()
    db.chmod(0o400)
    result = _probe_open(db)
    assert result["error"] == "StateStoreReadOnly", result
    assert str(db) in result["message"] and "writable" in result["message"]


def test_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    ro_dir.chmod(0o500)
    try:
        result = _probe_open(ro_dir / "m.db")
    finally:
        ro_dir.chmod(0o700)
    assert result["error"] == "StateStoreReadOnly", result
    assert str(ro_dir) in result["message"] and "not writable" in result["message"]
    assert issubclass(StateStoreReadOnly, StateStoreError)


# ---------------------------------------------------------------------------- faults
class LockHolder:
    """A real second process that holds the database's write lock until released."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, CHILD, "lock", str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == "locked", line

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


def test_locked_by_another_process_retries_and_keeps_newest(
    tmp_path: Path, log_records: list[Any]
) -> None:
    db = tmp_path / "m.db"
    errors: list[StateStoreError] = []
    with SQLiteStateStore(db, on_error=errors.append, retry_max=0.2) as s:
        s.save("a", "A", '{"v": 0}')
        assert s.flush(timeout=5)
        holder = LockHolder(db)
        try:
            s.save("a", "A", '{"v": 1}')
            wait_for(lambda: s.stats().write_errors >= 2, what="failed write attempts")
            s.save("a", "A", '{"v": 2}')  # newer value queued during the outage
            assert s.flush(timeout=0.3) is False
            st = s.stats()
            assert st.pending == 1 and st.last_error and "locked" in st.last_error
        finally:
            holder.release()
        assert s.flush(timeout=10)
        assert s.stats().last_error is None
    assert read_rows(db) == {"a": {"v": 2}}
    assert errors and all(isinstance(e, StateStoreLocked) for e in errors)
    assert str(db) in str(errors[0])
    messages = [r["message"] for r in log_records]
    assert any("write failed" in m and "locked" in m for m in messages), messages
    assert any("recovered" in m for m in messages), messages


def test_full_database_retries_until_space_is_freed(tmp_path: Path, log_records: list[Any]) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db, retry_max=0.2) as s:
        s.save("small", "S", '{"v": 0}')
        assert s.flush(timeout=5)
        s.max_size_bytes = os.path.getsize(db) + 4096  # about one spare page: "disk full"
        big = "x" * 200_000
        s.save("big", "B", json.dumps({"v": 1, "pad": big}))
        wait_for(lambda: s.stats().write_errors >= 2, what="SQLITE_FULL attempts")
        s.save("big", "B", json.dumps({"v": 2, "pad": big}))
        assert s.flush(timeout=0.3) is False
        assert "full" in (s.stats().last_error or "")
        s.max_size_bytes = None  # space freed
        assert s.flush(timeout=10)
    rows = read_rows(db)
    assert rows["big"]["v"] == 2 and rows["small"] == {"v": 0}
    assert any("write failed" in r["message"] and "full" in r["message"] for r in log_records)
    assert issubclass(StateStoreFull, StateStoreError)


def test_close_gives_up_after_timeout_when_writes_keep_failing(
    tmp_path: Path, log_records: list[Any]
) -> None:
    db = tmp_path / "m.db"
    threads_before = set(threading.enumerate())
    s = SQLiteStateStore(db, retry_max=0.1)
    holder = LockHolder(db)
    try:
        s.save("lost", "L", "{}")
        t0 = time.monotonic()
        s.close(timeout=0.5)
        assert time.monotonic() - t0 < 5
    finally:
        holder.release()
    assert set(threading.enumerate()) == threads_before
    assert s.stats().lost == 1
    assert any("not written" in r["message"] for r in log_records)


def test_open_while_locked_for_migration_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    sqlite3.connect(db).close()  # empty file: opening needs to create the schema
    holder = LockHolder(db)
    try:
        with pytest.raises(StateStoreLocked, match=r"m\.db"):
            SQLiteStateStore(db, open_timeout=0.2)
    finally:
        holder.release()
    SQLiteStateStore(db).close()


# ---------------------------------------------------------------------------- memory + factory
def test_in_memory_store_protocol() -> None:
    m = InMemoryStateStore()
    assert isinstance(m, StateStore)
    m.save("a", "A", '{"a": 1}')
    m.save("a", "A", '{"a": 2}')
    m.save("b", "B", "{}")
    m.delete("b")
    assert m.load("a") == '{"a": 2}' and m.load("b") is None
    assert m.load_many(["a", "b"]) == {"a": '{"a": 2}'}
    assert m.flush() is True
    assert [x.path for x in m.stored()] == ["a"]
    assert m.stats() == StoreStats(rows_written=4, batches=4)
    m.close()
    m.close()
    assert m.load("a") == '{"a": 2}'  # survives close: one instance can back a restart


def test_open_state_store_accepts_path_store_or_none(tmp_path: Path) -> None:
    assert open_state_store(None) is None
    mem = InMemoryStateStore()
    assert open_state_store(mem) is mem
    for spec in (str(tmp_path / "a.db"), tmp_path / "b.db"):
        s = open_state_store(spec)
        assert isinstance(s, SQLiteStateStore)
        s.close()
    for bad in (42, b"x.db", object()):
        with pytest.raises(TypeError, match=r"file path .* StateStore protocol .* None"):
            open_state_store(bad)
    with SQLiteStateStore(tmp_path / "c.db") as sqlite_store:
        assert isinstance(sqlite_store, StateStore)


# ---------------------------------------------------------------------------- speed
@pytest.mark.timeout(60)
def test_load_10000_minions_at_start_is_fast(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db, batch_interval=10) as s:
        for i in range(10_000):
            s.save(f"user/m{i}", "Counter", json.dumps({"count": i, "name": f"m{i}"}))
    t0 = time.perf_counter()
    s2 = SQLiteStateStore(db)
    states = {f"user/m{i}": s2.load(f"user/m{i}") for i in range(10_000)}
    elapsed = time.perf_counter() - t0
    s2.close()
    assert json.loads(states["user/m9999"] or "null") == {"count": 9999, "name": "m9999"}
    assert elapsed < 2.0, f"open + 10,000 loads took {elapsed:.2f}s"


# ---------------------------------------------------------------------------- inspect
def test_render_inspect_table(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as s:
        s.save("user/counter", "Counter", '{"count": 10}')
        s.save("user/counter/child", "Child", json.dumps({"pad": "x" * 3000}))
        assert s.flush(timeout=5)
        text = render_inspect(str(db))  # works next to a live writer
    lines = text.splitlines()
    assert "2 stored minions" in lines[0]
    assert f"schema version {persistence.schema_version()}" in lines[0]
    assert lines[2].split() == ["PATH", "CLASS", "SIZE", "LAST", "UPDATE"]
    assert lines[4].startswith("user/counter ") and "Counter" in lines[4] and "13 B" in lines[4]
    assert "Child" in lines[5] and "2.9 KiB" in lines[5] and "UTC" in lines[5]


def test_render_inspect_errors(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="does not exist"):
        render_inspect(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateStoreCorrupt, match="not a SQLite database"):
        render_inspect(str(junk))
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.close()
    with pytest.raises(StateStoreCorrupt, match="not a minions_actors state store"):
        render_inspect(str(other))
    empty = tmp_path / "empty.db"
    SQLiteStateStore(empty).close()
    assert "(no snapshots stored)" in render_inspect(empty)
