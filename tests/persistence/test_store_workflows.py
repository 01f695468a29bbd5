"""Workflow records in the state stores: on_durable, coalescing, read-through, filters,
prune, migration from schema 1, kill -9, the CLI's in-file retry/discard, and rendering."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from minions_actors import persistence
from minions_actors.errors import (
    StateStoreClosed,
    StateStoreError,
    StateStoreLocked,
    WorkflowRecordNotFound,
    WorkflowStatusConflict,
)
from minions_actors.ops.inspect import (
    discard_workflow_in_file,
    render_inspect,
    render_workflows,
    retry_workflow_in_file,
)
from minions_actors.persistence import (
    InMemoryStateStore,
    SQLiteStateStore,
    StateStore,
    WorkflowRecord,
    WorkflowStore,
    supports_workflows,
)
from minions_actors.testing import writer_blocked, writer_queue

from .test_store import CHILD, LockHolder, wait_for

pytestmark = pytest.mark.timeout(60)


def rec(
    wid: str,
    *,
    path: str = "user/shop",
    status: str = "running",
    step: int = 0,
    created: float = 0.0,
    finished: float | None = None,
    error: str | None = None,
    context: Any = None,
) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=wid,
        minion_path=path,
        minion_class="Shop",
        workflow_name="order",
        status=status,
        next_step=step,
        step_name=None if status == "completed" else f"s{step}",
        context_json=json.dumps(context if context is not None else {"step": step}),
        attempts=0,
        error=error,
        created_at=created,
        updated_at=created,
        finished_at=finished,
    )


def db_rows(db: Path) -> dict[str, dict[str, Any]]:
    """Workflow rows as committed, read with a separate plain sqlite3 connection."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM workflows").fetchall()
    finally:
        conn.close()
    return {r["workflow_id"]: dict(r) for r in rows}


class Calls:
    """Counts on_durable calls per key, with the thread and what a fresh connection saw."""

    def __init__(self, db: Path | None = None) -> None:
        self.db = db
        self.cond = threading.Condition()
        self.calls: list[tuple[str, str, Any]] = []

    def cb(self, key: str, wid: str | None = None) -> Callable[[], None]:
        def on_durable() -> None:
            seen = db_rows(self.db).get(wid or key) if self.db is not None else None
            with self.cond:
                self.calls.append((key, threading.current_thread().name, seen))
                self.cond.notify_all()

        return on_durable

    def wait(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= n, timeout), self.calls

    def keys(self) -> list[str]:
        with self.cond:
            return [c[0] for c in self.calls]


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


@pytest.fixture(params=["sqlite", "memory"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    s = SQLiteStateStore(tmp_path / "m.db")
    yield s
    s.close(timeout=10)


# ---------------------------------------------------------------------------- on_durable
def test_on_durable_once_per_save_after_commit_without_batch_window(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    # A 30 s batch window: callbacks arriving within the wait below prove it is skipped.
    with SQLiteStateStore(db, batch_interval=30.0) as s:
        n = 200
        for i in range(n):
            s.save_workflow(rec(f"w{i}", step=i, created=i + 1.0), on_durable=calls.cb(f"w{i}"))
        calls.wait(n)
        keys = calls.keys()
        assert sorted(keys) == sorted(f"w{i}" for i in range(n))  # each exactly once
        for key, thread, seen in calls.calls:
            assert thread == "minions-store-writer"
            assert seen is not None, f"{key}: row not visible from another connection"
            assert seen["next_step"] == int(key[1:])
        assert s.stats().workflow_rows_written == n
        assert s.stats().rows_written == 0  # snapshot counter untouched
    assert len(calls.calls) == n  # close() called nothing twice


def test_coalesced_saves_keep_every_callback(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, batch_interval=30.0) as s:
        with writer_blocked(s):
            s.save_workflow(rec("hot", step=0), on_durable=calls.cb("v0", "hot"))
            wait_for(lambda: "hot" in writer_queue(s).in_flight_workflows,
                     what="first batch in flight")
            for step in (1, 2, 3):
                s.save_workflow(rec("hot", step=step), on_durable=calls.cb(f"v{step}", "hot"))
            s.save_workflow(rec("plain", step=9))  # no callback: rides along
            # three saves of "hot" coalesced into one
            assert len(writer_queue(s).pending_workflows) == 2
            assert calls.calls == []
        calls.wait(4)
        assert sorted(calls.keys()) == ["v0", "v1", "v2", "v3"]
        final = [c for c in calls.calls if c[0] != "v0"]
        assert all(c[2]["next_step"] == 3 for c in final)  # newest won, then called back
        assert s.flush(timeout=5)
        assert s.stats().workflow_rows_written == 3  # hot v0, hot v3, plain
    assert db_rows(db)["hot"]["next_step"] == 3


def test_callbacks_survive_failing_writes_and_run_once_after_recovery(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, retry_max=0.1) as s:
        holder = LockHolder(db)
        try:
            s.save_workflow(rec("a", step=1), on_durable=calls.cb("a1", "a"))
            wait_for(lambda: s.stats().write_errors >= 2, what="failed attempts")
            s.save_workflow(rec("a", step=2), on_durable=calls.cb("a2", "a"))
            assert calls.calls == []
        finally:
            holder.release()
        calls.wait(2)
        assert sorted(calls.keys()) == ["a1", "a2"]
        assert all(c[2]["next_step"] == 2 for c in calls.calls)
        assert s.flush(timeout=5)
    assert len(calls.calls) == 2


def test_close_with_failing_writes_calls_nothing_and_counts_lost(
    tmp_path: Path, log_records: list[Any]
) -> None:
    db = tmp_path / "m.db"
    calls = Calls()
    s = SQLiteStateStore(db, retry_max=0.1)
    holder = LockHolder(db)
    try:
        s.save_workflow(rec("x"), on_durable=calls.cb("x"))
        s.save_workflow(rec("y"), on_durable=calls.cb("y"))
        s.save("snap", "S", "{}")
        wait_for(lambda: s.stats().write_errors >= 1, what="a failed attempt")
        s.close(timeout=0.5)
    finally:
        holder.release()
    assert calls.calls == []
    assert s.stats().lost == 3  # one snapshot + two workflow records
    assert any("on_durable callbacks are not called" in r["message"] for r in log_records)
    with pytest.raises(StateStoreClosed):
        s.save_workflow(rec("z"), on_durable=calls.cb("z"))


def test_callback_exception_is_logged_and_others_still_run(
    tmp_path: Path, log_records: list[Any]
) -> None:
    calls = Calls()

    def broken() -> None:
        raise RuntimeError("callback bug")

    with SQLiteStateStore(tmp_path / "m.db") as s:
        with writer_blocked(s):
            s.save_workflow(rec("a"), on_durable=calls.cb("first"))
            wait_for(lambda: "a" in writer_queue(s).in_flight_workflows, what="batch in flight")
            s.save_workflow(rec("b"), on_durable=broken)
            s.save_workflow(rec("c"), on_durable=calls.cb("after"))
        calls.wait(2)
        s.save_workflow(rec("d"), on_durable=calls.cb("later"))  # the writer still works
        calls.wait(3)
    assert any("on_durable" in r["message"] and r["exception"] for r in log_records)


def test_callback_may_save_the_next_checkpoint_but_not_flush(tmp_path: Path) -> None:
    done = threading.Event()
    errors: list[BaseException] = []
    with SQLiteStateStore(tmp_path / "m.db", batch_interval=30.0) as s:

        def step(n: int) -> Callable[[], None]:
            def on_durable() -> None:
                if n == 50:
                    try:
                        s.flush(timeout=1)
                    except RuntimeError as exc:
                        errors.append(exc)
                    done.set()
                    return
                s.save_workflow(rec("chain", step=n + 1), on_durable=step(n + 1))

            return on_durable

        s.save_workflow(rec("chain", step=0), on_durable=step(0))
        assert done.wait(10), "chain of 50 checkpoints did not finish"
        assert s.get_workflow("chain").next_step == 50  # type: ignore[union-attr]
    assert len(errors) == 1 and "writer thread" in str(errors[0])


def test_sync_mode_calls_on_durable_inline_after_commit(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, durability="sync") as s:
        for step in range(3):
            s.save_workflow(rec("w", step=step), on_durable=calls.cb(f"w{step}", "w"))
            assert len(calls.calls) == step + 1  # called before save_workflow returned
            _key, thread, seen = calls.calls[-1]
            assert thread == threading.current_thread().name
            assert seen["next_step"] == step
        assert s.delete_workflow("w") is True
        assert db_rows(db) == {}
        s.save_workflow(rec("v", status="failed", finished=5.0))
        s.save_workflow(rec("v2", status="completed", finished=5.0))
        assert s.prune_workflows(10.0, statuses=("failed", "completed")) == 2
        assert db_rows(db) == {}


def test_sync_mode_concurrent_savers_share_commits(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls()
    with SQLiteStateStore(db, durability="sync") as s:

        def chain(k: int) -> None:
            for step in range(20):
                s.save_workflow(rec(f"c{k}", step=step), on_durable=calls.cb(f"c{k}/{step}"))

        threads = [threading.Thread(target=chain, args=(k,)) for k in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert len(calls.calls) == 1000
        assert s.stats().batches < 1000  # waiting savers were committed together
    assert {r["next_step"] for r in db_rows(db).values()} == {19}


# ---------------------------------------------------------------------------- reads
def test_reads_go_through_pending_and_in_flight(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db, batch_interval=30.0) as s:
        s.save_workflow(rec("old", status="completed", created=1.0, finished=2.0))
        assert s.flush(timeout=5)
        with writer_blocked(s):
            s.save_workflow(rec("a", created=3.0), on_durable=lambda: None)
            wait_for(lambda: "a" in writer_queue(s).in_flight_workflows, what="batch in flight")
            s.save_workflow(rec("b", created=4.0, step=1))  # pending (30 s window)
            assert s.delete_workflow("old") is True  # pending delete of a committed row
            assert s.delete_workflow("never") is False
            assert db_rows(db).keys() == {"old"}  # nothing new committed yet
            got_a, got_b = s.get_workflow("a"), s.get_workflow("b")
            assert got_a is not None and got_a.status == "running"
            assert got_b is not None and got_b.next_step == 1
            assert s.get_workflow("old") is None
            assert [r.workflow_id for r in s.workflows()] == ["a", "b"]
            assert s.stats().pending == 4  # a in flight; b, old, never pending
        assert s.flush(timeout=5)
        assert db_rows(db).keys() == {"a", "b"}
        assert [r.workflow_id for r in s.workflows()] == ["a", "b"]


def test_records_are_copied_both_ways(any_store: Any) -> None:
    r = rec("w", step=1, created=1.0)
    any_store.save_workflow(r)
    r.next_step = 99  # the caller reuses its object
    r.status = "failed"
    got = any_store.get_workflow("w")
    assert got.next_step == 1 and got.status == "running"
    got.next_step = 42  # mutating a returned record changes nothing either
    assert any_store.get_workflow("w").next_step == 1
    [listed] = any_store.workflows()
    listed.status = "aborted"
    assert any_store.get_workflow("w").status == "running"


def test_finished_records_are_read_from_the_file(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as s:
        s.save_workflow(rec("run", created=1.0))
        s.save_workflow(rec("done", status="completed", created=2.0, finished=3.0))
        assert s.flush(timeout=5)
        # only unfinished records stay in memory
        assert writer_queue(s).live_workflows == {"run"}
        done = s.get_workflow("done")
        assert done is not None and done.status == "completed" and done.finished_at == 3.0
    with SQLiteStateStore(db) as s2:  # the live cache is rebuilt at open
        assert writer_queue(s2).live_workflows == {"run"}
        assert s2.get_workflow("run") == rec("run", created=1.0)
        assert s2.get_workflow("done") is not None


def test_defaults_filled_and_bad_records_rejected(any_store: Any) -> None:
    before = time.time()
    any_store.save_workflow(rec("w", status="failed", error="boom"))  # times left at 0.0
    got = any_store.get_workflow("w")
    assert got.created_at >= before and got.updated_at >= before
    assert got.finished_at == got.updated_at  # a finished record gets finished_at
    with pytest.raises(ValueError, match="status must be one of"):
        any_store.save_workflow(rec("x", status="done"))
    with pytest.raises(ValueError, match="non-empty"):
        any_store.save_workflow(rec(""))
    bad = rec("y")
    bad.context_json = {"not": "text"}  # type: ignore[assignment]
    with pytest.raises(TypeError, match="JSON text"):
        any_store.save_workflow(bad)
    with pytest.raises(ValueError, match="unknown workflow status"):
        any_store.workflows(status="complete")


def test_filters_and_order(any_store: Any) -> None:
    s = any_store
    s.save_workflow(rec("c", path="p/1", created=3.0))
    s.save_workflow(rec("a", path="p/1", created=1.0, status="failed", finished=5.0))
    s.save_workflow(rec("b", path="p/2", created=2.0, status="completed", finished=5.0))
    s.save_workflow(rec("d", path="p/2", created=4.0))
    s.flush(timeout=5)
    s.save_workflow(rec("e", path="p/1", created=0.5))  # not written yet (SQLite)

    def ids(**kw: Any) -> list[str]:
        return [r.workflow_id for r in s.workflows(**kw)]

    assert ids() == ["e", "a", "b", "c", "d"]
    assert ids(minion_path="p/1") == ["e", "a", "c"]
    assert ids(status="running") == ["e", "c", "d"]
    assert ids(minion_path="p/1", status="running") == ["e", "c"]
    assert ids(status=["failed", "completed"]) == ["a", "b"]
    assert ids(status=("aborted",)) == []
    assert ids(minion_path="nope") == []
    s.save_workflow(rec("c", path="p/1", created=3.0, status="aborted", finished=6.0))
    assert ids(status="running") == ["e", "d"]
    assert ids(status="aborted") == ["c"]


def test_delete_and_prune(any_store: Any) -> None:
    s = any_store
    s.save_workflow(rec("old1", status="completed", created=1.0, finished=10.0))
    s.save_workflow(rec("old2", status="completed", created=2.0, finished=20.0))
    s.save_workflow(rec("oldfail", status="failed", created=3.0, finished=10.0))
    s.save_workflow(rec("new", status="completed", created=4.0, finished=100.0))
    s.save_workflow(rec("run", created=5.0))
    assert s.flush(timeout=5)
    s.save_workflow(rec("pend", status="completed", created=6.0, finished=15.0))  # unwritten
    s.save_workflow(rec("old2", status="running", created=2.0))  # retried: no longer prunable
    assert s.prune_workflows(50.0) == 2  # old1 (file) + pend (queue)
    assert s.prune_workflows(50.0) == 0
    assert [r.workflow_id for r in s.workflows()] == ["old2", "oldfail", "new", "run"]
    assert s.prune_workflows(50.0, statuses=["failed", "aborted"]) == 1
    assert s.prune_workflows(1000.0, statuses=()) == 0
    assert s.delete_workflow("run") is True
    assert s.delete_workflow("run") is False
    assert [r.workflow_id for r in s.workflows()] == ["old2", "new"]
    assert s.stats().workflow_rows_written > 0


def test_prune_and_delete_are_durable(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as s:
        for i in range(100):
            s.save_workflow(rec(f"w{i}", status="completed", created=i + 1.0, finished=i + 1.0))
        s.save_workflow(rec("keep"))
        assert s.flush(timeout=5)
        assert s.prune_workflows(51.0) == 50  # w0..w49
        assert len(db_rows(db)) == 51  # the file part is committed on return
        s.delete_workflow("keep")
        assert s.flush(timeout=5)
    with SQLiteStateStore(db) as s2:
        assert [r.workflow_id for r in s2.workflows()] == [f"w{i}" for i in range(50, 100)]


# ---------------------------------------------------------------------------- protocol
def test_both_stores_implement_the_workflow_protocol(tmp_path: Path) -> None:
    mem = InMemoryStateStore()
    assert supports_workflows(mem) and isinstance(mem, WorkflowStore)
    with SQLiteStateStore(tmp_path / "m.db") as s:
        assert supports_workflows(s) and isinstance(s, StateStore)

    class SnapshotsOnly:
        def load(self, path: str) -> str | None:
            return None

    assert not supports_workflows(SnapshotsOnly())
    assert not supports_workflows(None)


def test_in_memory_store_calls_back_inline() -> None:
    m = InMemoryStateStore()
    seen: list[str] = []
    m.save_workflow(rec("w"), on_durable=lambda: seen.append(threading.current_thread().name))
    assert seen == [threading.current_thread().name]

    def broken() -> None:
        raise RuntimeError("bug")

    m.save_workflow(rec("w", step=1), on_durable=broken)  # logged, not raised
    assert m.get_workflow("w").next_step == 1  # type: ignore[union-attr]
    st = m.stats()
    assert st.workflow_rows_written == 2 and st.rows_written == 0
    m.close()
    assert m.get_workflow("w") is not None  # survives close, like snapshots


# ---------------------------------------------------------------------------- migration
def make_v1_file(db: Path) -> None:
    """A store file exactly as minions_actors with schema 1 wrote it (WAL, one snapshot)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        persistence.MIGRATIONS[0](conn)  # migration 1 is never edited
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO minion_snapshots VALUES ('keep', 'K', '{\"k\": 1}', 8, 1.0)"
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_schema_1_file_migrates_in_place(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    make_v1_file(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"minion_snapshots"}
    conn.close()
    assert "no workflows (schema version 1" in render_workflows(db)
    assert "workflows:" not in render_inspect(db)

    with SQLiteStateStore(db) as s:
        assert s.schema_found == 1
        assert s.load("keep") == '{"k": 1}'
        s.save_workflow(rec("w"))
        assert s.flush(timeout=5)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == persistence.schema_version()
        cols = [(r[1], r[2], bool(r[3])) for r in conn.execute("PRAGMA table_info(workflows)")]
        assert cols == [
            ("workflow_id", "TEXT", False),
            ("minion_path", "TEXT", True),
            ("minion_class", "TEXT", True),
            ("workflow_name", "TEXT", True),
            ("status", "TEXT", True),
            ("next_step", "INTEGER", True),
            ("step_name", "TEXT", False),
            ("context_json", "TEXT", True),
            ("attempts", "INTEGER", True),
            ("error", "TEXT", False),
            ("created_at", "REAL", True),
            ("updated_at", "REAL", True),
            ("finished_at", "REAL", False),
            ("wake_at", "REAL", False),
            ("waiting_for", "TEXT", False),
            ("signal_seq", "INTEGER", True),
            ("cancelled_by", "TEXT", False),
        ]
        indexes = {
            r[0]: [c[2] for c in conn.execute(f"PRAGMA index_info({r[0]})")]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                  "AND tbl_name = 'workflows' AND sql IS NOT NULL")
        }
        assert sorted(indexes.values()) == [["minion_path", "status"], ["status", "finished_at"]]
        plan = " ".join(
            str(r[3]) for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM workflows WHERE minion_path = ? AND status = ?",
                ("a", "running"),
            )
        )
        assert "idx_workflows_minion_status" in plan
    finally:
        conn.close()
    with SQLiteStateStore(db) as again:
        assert again.schema_found == persistence.schema_version()


# ---------------------------------------------------------------------------- kill -9
def _wf_round(db: Path, durability: str, start: int, kill_after: float) -> int:
    proc = subprocess.Popen(
        [sys.executable, CHILD, "wfloop", str(db), durability, str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    acked: dict[int, int] = {}
    first = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if parts and parts[0] == "W":
                k, step = int(parts[1]), int(parts[2])
                acked[k] = max(acked.get(k, 0), step)
                first.set()

    t = threading.Thread(target=reader, name="wf-crash-reader")
    t.start()
    try:
        assert first.wait(20), "child never acknowledged a checkpoint"
        time.sleep(kill_after)  # the kill point, not synchronisation
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=20) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        t.join(timeout=20)
        proc.stdout.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with SQLiteStateStore(db) as store:
        for k, step in acked.items():
            got = store.get_workflow(f"wf{k}")
            assert got is not None, f"wf{k} lost (acknowledged step {step})"
            assert got.next_step >= step, f"wf{k}: {got.next_step} < acknowledged {step}"
            assert json.loads(got.context_json)["step"] == got.next_step
    return sum(acked.values()) - start * len(acked)


@pytest.mark.parametrize("durability", ["batched", "sync"])
def test_kill_9_never_loses_acknowledged_checkpoints(tmp_path: Path, durability: str) -> None:
    db = tmp_path / f"wf-{durability}.db"
    total = 0
    for r, kill_after in enumerate((0.0, 0.05, 0.15, 0.3)):
        total += _wf_round(db, durability, start=(r + 1) * 10_000_000, kill_after=kill_after)
    assert total > 0


# ---------------------------------------------------------------------------- CLI on a file
def _file_with(db: Path, *records: WorkflowRecord) -> None:
    with SQLiteStateStore(db) as s:
        for r in records:
            s.save_workflow(r)


def test_retry_in_file(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _file_with(
        db,
        rec("failed", status="failed", step=2, created=1.0, finished=5.0, error="boom"),
        rec("aborted", status="aborted", step=1, created=2.0, finished=5.0),
        rec("done", status="completed", step=3, created=3.0, finished=5.0),
        rec("run", step=1, created=4.0),
    )
    got = retry_workflow_in_file(db, "failed")
    assert (got.status, got.attempts, got.error, got.finished_at, got.next_step) == (
        "running", 0, None, None, 2
    )
    row = db_rows(db)["failed"]
    assert (row["status"], row["attempts"], row["error"], row["finished_at"]) == (
        "running", 0, None, None
    )
    assert row["next_step"] == 2 and row["context_json"] == '{"step": 2}'
    assert retry_workflow_in_file(str(db), "aborted").status == "running"
    with pytest.raises(WorkflowStatusConflict, match="is completed: only failed or aborted"):
        retry_workflow_in_file(db, "done")
    with pytest.raises(WorkflowStatusConflict, match="is running"):
        retry_workflow_in_file(db, "run")
    with pytest.raises(WorkflowRecordNotFound, match="no workflow 'ghost'") as info:
        retry_workflow_in_file(db, "ghost")
    assert isinstance(info.value, KeyError) and isinstance(info.value, StateStoreError)
    with pytest.raises(StateStoreError, match="does not exist"):
        retry_workflow_in_file(tmp_path / "missing.db", "x")
    assert not (tmp_path / "missing.db").exists()
    # The app opening the file next resumes it at its failed step:
    with SQLiteStateStore(db) as s:
        running = s.workflows(minion_path="user/shop", status="running")
        assert [r.workflow_id for r in running] == ["failed", "aborted", "run"]


def test_retry_in_file_next_to_a_running_app(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as app:
        app.save_workflow(rec("f", status="failed", created=1.0, finished=2.0))
        assert app.flush(timeout=5)
        retry_workflow_in_file(db, "f")
        # The app's store sees the change the next time it looks (a minion starting).
        assert [r.workflow_id for r in app.workflows(status="running")] == ["f"]
        assert app.get_workflow("f").status == "running"  # type: ignore[union-attr]
        holder = LockHolder(db)  # the app's writer mid-commit, for too long
        try:
            with pytest.raises(StateStoreLocked):
                discard_workflow_in_file(db, "f", force=True, busy_timeout=0.2)
        finally:
            holder.release()


def test_discard_in_file(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _file_with(
        db,
        rec("failed", status="failed", created=1.0, finished=5.0),
        rec("run", step=1, created=2.0),
    )
    gone = discard_workflow_in_file(db, "failed")
    assert gone.workflow_id == "failed" and gone.status == "failed"
    assert db_rows(db).keys() == {"run"}
    with pytest.raises(WorkflowStatusConflict, match="needs force=True"):
        discard_workflow_in_file(db, "run")
    assert db_rows(db).keys() == {"run"}
    assert discard_workflow_in_file(db, "run", force=True).status == "running"
    assert db_rows(db) == {}
    with pytest.raises(WorkflowRecordNotFound):
        discard_workflow_in_file(db, "run")


# ---------------------------------------------------------------------------- rendering
def test_render_workflows_and_inspect_counts(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    long_error = "ValueError: " + "card declined " * 20 + "\nsecond line"
    _file_with(
        db,
        rec("order-1", path="user/shop", step=1, created=1.0),
        rec("order-2", path="user/shop", status="failed", step=2, created=2.0,
            finished=3.0, error=long_error),
        rec("order-3", path="user/other", status="completed", step=3, created=3.0,
            finished=4.0),
    )
    text = render_workflows(db)
    lines = text.splitlines()
    assert lines[0].endswith("3 workflows (1 running, 1 completed, 1 failed)")
    assert lines[2].split() == [
        "ID", "MINION", "WORKFLOW", "STATUS", "STEP", "ATTEMPTS", "UPDATED", "ERROR"
    ]
    assert lines[4].split()[:6] == ["order-1", "user/shop", "order", "running", "1", "s1"]
    failed = lines[5]
    assert "failed" in failed and "2 s2" in failed and "ValueError: card declined" in failed
    assert failed.endswith("...") and "second line" not in failed
    assert len(failed.split("ValueError")[1]) < 60
    assert "3 (done)" in lines[6] and "UTC" in lines[6]
    assert len(lines) == 7

    only_failed = render_workflows(db, status="failed").splitlines()
    assert "1 workflow with status failed" in only_failed[0]
    assert len(only_failed) == 5 and only_failed[4].startswith("order-2")
    assert "(no workflows with status aborted)" in render_workflows(db, status="aborted")
    with pytest.raises(ValueError, match="unknown workflow status"):
        render_workflows(db, status="broken")

    inspect = render_inspect(db).splitlines()
    assert inspect[-1] == "workflows: 1 running, 1 completed, 1 failed"
    assert "(no snapshots stored)" in inspect


def test_render_inspect_with_snapshots_and_no_workflows(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db) as s:
        s.save("user/counter", "Counter", '{"count": 10}')
    lines = render_inspect(db).splitlines()
    assert lines[2].split() == ["PATH", "CLASS", "SIZE", "LAST", "UPDATE"]
    assert lines[-1] == "workflows: none"
    assert "(no workflows)" in render_workflows(db)
