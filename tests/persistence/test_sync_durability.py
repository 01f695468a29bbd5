"""Sync durability under store faults: a message whose snapshot could not be committed is not
acknowledged, and the minion's state goes back to what the file holds. Real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion
from minions_actors.errors import StateStoreFull, StateStoreLocked, StateStoreWriteFailed
from minions_actors.persistence import SQLiteStateStore, WorkflowRecord
from minions_actors.testing import writer_queue

from ..conftest import wait_until
from .test_persistence import QUIET, Events
from .test_store import LockHolder


class Tally(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.pad = ""

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.total
        if isinstance(message, str):
            self.pad += message
            return len(self.pad)
        self.total += message
        return self.total

    def snapshot(self) -> dict[str, Any]:
        return {"total": self.total, "pad": self.pad}

    def restore(self, state: dict[str, Any]) -> None:
        self.total = state["total"]
        self.pad = state["pad"]


def stored(db: Path) -> Any:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT state_json FROM minion_snapshots WHERE path = 'tally'"
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


@pytest.fixture
def sync_system(tmp_path: Path) -> Iterator[tuple[ActorSystem, SQLiteStateStore, Events]]:
    store = SQLiteStateStore(tmp_path / "m.db", durability="sync", busy_timeout=0.1)
    events = Events()
    system = ActorSystem.start(state_store=store, hooks=[events], **QUIET)
    try:
        yield system, store, events
    finally:
        system.shutdown(timeout=10)


def test_ask_is_not_acknowledged_when_the_commit_is_locked_out(
    tmp_path: Path, sync_system: tuple[ActorSystem, SQLiteStateStore, Events]
) -> None:
    system, store, events = sync_system
    db = tmp_path / "m.db"
    ref = system.spawn(Tally, name="tally")
    assert ref.ask(1, timeout=5) == 1
    holder = LockHolder(db)  # another process holds the write lock past busy_timeout
    try:
        with pytest.raises(StateStoreWriteFailed, match="not acknowledged") as info:
            ref.ask(5, timeout=10)
        assert isinstance(info.value.__cause__, StateStoreLocked)
        assert stored(db) == {"total": 1, "pad": ""}
    finally:
        holder.release()
    # The minion crashed and was restarted from what is stored: 1, not 6.
    assert ref.ask("get", timeout=5) == 1
    assert ("crashed", "tally", "snapshot") in events.rec.events
    assert store.load("tally") == json.dumps({"total": 1, "pad": ""}, separators=(",", ":"))
    assert ref.ask(2, timeout=5) == 3  # the store works again
    assert stored(db) == {"total": 3, "pad": ""}


def test_tell_is_rolled_back_when_the_disk_is_full(
    tmp_path: Path, sync_system: tuple[ActorSystem, SQLiteStateStore, Events]
) -> None:
    system, store, events = sync_system
    db = tmp_path / "m.db"
    ref = system.spawn(Tally, name="tally")
    assert ref.ask(1, timeout=5) == 1
    store.max_size_bytes = os.path.getsize(db) + 4096  # about one spare page: "disk full"
    ref.tell("x" * 300_000)  # a tell: nobody to answer, but it must not stay in the state
    events.rec.wait_for(lambda evs: ("crashed", "tally", "snapshot") in evs)
    assert ref.ask("get", timeout=5) == 1
    store.max_size_bytes = None
    assert ref.ask("y", timeout=5) == 1  # the 300,000 x's are gone: only "y"
    assert stored(db) == {"total": 1, "pad": "y"}
    assert store.stats().write_errors >= 1


def test_a_save_that_times_out_before_its_commit_is_taken_back(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SQLiteStateStore(db, durability="sync", sync_timeout=0.3, busy_timeout=2.0) as store:
        store.save("a", "A", '{"v": 1}')
        holder = LockHolder(db)  # the first commit waits 2 s for the lock; ours queues behind
        try:
            slow = threading.Thread(target=store.save, args=("b", "B", "{}"))
            slow.start()
            wait_until(lambda: store.stats().pending == 1
                       and writer_queue(store).in_flight == 1)
            with pytest.raises(StateStoreWriteFailed, match="within sync_timeout"):
                store.save("a", "A", '{"v": 2}')  # never taken by the writer: withdrawn
            assert store.load("a") == '{"v": 1}'
        finally:
            holder.release()
        slow.join(10)
        assert not slow.is_alive() and store.load("b") == "{}"  # in flight: waited for, committed
        assert store.flush(timeout=5)  # nothing left behind to wait for
    assert stored_rows(db) == {"a": {"v": 1}, "b": {}}


def stored_rows(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        return {p: json.loads(t) for p, t in conn.execute(
            "SELECT path, state_json FROM minion_snapshots")}
    finally:
        conn.close()


def test_failed_sync_save_is_taken_back_not_retried(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    errors: list[Exception] = []
    with SQLiteStateStore(db, durability="sync", on_error=errors.append) as store:
        store.save("a", "A", '{"v": 1}')
        store.max_size_bytes = os.path.getsize(db) + 4096
        with pytest.raises(StateStoreWriteFailed) as info:
            store.save("a", "A", json.dumps({"v": 2, "pad": "z" * 300_000}))
        assert isinstance(info.value.__cause__, StateStoreFull)
        assert store.load("a") == '{"v": 1}'  # the in-memory view matches the file
        rec = WorkflowRecord("w", "a", "A", "flow", "running", 0, "s0", '{"pad": "%s"}' % (
            "q" * 300_000))
        with pytest.raises(StateStoreWriteFailed):
            store.save_workflow(rec)
        assert store.get_workflow("w") is None
        store.max_size_bytes = None
        assert store.flush(timeout=5)
        writes = store.stats().write_errors
        wait_until(lambda: store.stats().pending == 0)
        assert store.stats().write_errors == writes  # nothing left to retry
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT state_json FROM minion_snapshots").fetchall() == [
            ('{"v": 1}',)
        ]
        assert conn.execute("SELECT count(*) FROM workflows").fetchone()[0] == 0
    finally:
        conn.close()
    assert errors and isinstance(errors[0], StateStoreFull)
