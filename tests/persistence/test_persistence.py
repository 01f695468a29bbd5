"""Persistent minions through the public API, against a real SQLite file."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Hooks,
    MetricsPortInUse,
    Minion,
    OneForOne,
    StateStoreError,
    SupervisorGaveUp,
)
from minions_actors.persistence import InMemoryStateStore, SQLiteStateStore

from ..conftest import Recorder, runtime_threads

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes

QUIET: dict[str, Any] = dict(metrics_port=None, file_logs=False, stderr_logs=False,
                             handle_signals=False)


class Account(Minion):
    def __init__(self, owner: str = "ann") -> None:
        super().__init__()
        self.owner = owner
        self.balance = 0
        self.history: list[int] = []
        self.extra: Any = None

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return {"balance": self.balance, "history": self.history}
        if message == "bad-snapshot":
            self.extra = {"when": object()}
            return None
        if message == "fix-snapshot":
            self.extra = None
            return None
        if message < 0:
            self.balance += message  # mutate, then crash: the change must be rolled back
            raise ValueError("overdraft")
        self.balance += message
        self.history.append(message)
        return self.balance

    def snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = {"balance": self.balance, "history": self.history}
        if self.extra is not None:
            state["extra"] = self.extra
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.balance = state["balance"]
        self.history = state["history"]


class Events(Hooks):
    def __init__(self) -> None:
        self.rec = Recorder()

    def snapshot_error(self, cell: Any, exc: BaseException, first: bool) -> None:
        self.rec.add(("snapshot_error", cell.path, str(exc), first))

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add(("crashed", cell.path, phase))


def stored(db: Path, path: str) -> Any:
    import json

    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state_json FROM minion_snapshots WHERE path = ?",
                           (path,)).fetchone()
    return json.loads(row[0]) if row else None


def test_crash_rolls_back_to_the_last_good_message(tmp_path: Path) -> None:
    system = ActorSystem.start(state_store=tmp_path / "m.db", **QUIET)
    try:
        ref = system.spawn(Account, name="acct")
        ref.tell(10)
        ref.tell(5)
        with pytest.raises(ValueError, match="overdraft"):
            ref.ask(-100, timeout=2)
        assert ref.ask("get", timeout=2) == {"balance": 15, "history": [10, 5]}
    finally:
        system.shutdown()


def test_rollback_works_without_a_store() -> None:
    system = ActorSystem.start(state_store=None, **QUIET)
    try:
        ref = system.spawn(Account, name="acct")
        ref.tell(7)
        ref.tell(-1)
        assert ref.ask("get", timeout=2)["balance"] == 7
    finally:
        system.shutdown()


def test_state_survives_a_new_system_and_nested_paths(tmp_path: Path) -> None:
    db = tmp_path / "m.db"

    class Branch(Minion):
        def on_start(self) -> None:
            self.spawn(Account, name="acct")

        def on_receive(self, message: Any) -> Any:
            return "ready"

    for expected in ([3], [3, 4]):
        system = ActorSystem.start(state_store=db, **QUIET)
        try:
            system.spawn(Branch, name="branch").ask("ready?", timeout=2)
            acct = system.get("branch/acct")
            acct.tell(expected[-1])
            assert acct.ask("get", timeout=2)["history"] == expected
        finally:
            assert system.shutdown()
    assert stored(db, "branch/acct") == {"balance": 7, "history": [3, 4]}


def test_flush_makes_snapshots_durable(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    system = ActorSystem.start(state_store=SQLiteStateStore(db, batch_interval=5.0), **QUIET)
    try:
        ref = system.spawn(Account, name="acct")
        ref.ask(42, timeout=2)
        assert system.flush(timeout=5)
        assert stored(db, "acct") == {"balance": 42, "history": [42]}
    finally:
        system.shutdown()


def test_synchronous_durability_commits_before_the_reply(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    system = ActorSystem.start(state_store=SQLiteStateStore(db, durability="sync"), **QUIET)
    try:
        ref = system.spawn(Account, name="acct")
        for n in range(1, 6):
            ref.ask(n, timeout=5)
            assert stored(db, "acct")["history"][-1] == n
    finally:
        system.shutdown()


def test_unserialisable_snapshot_is_reported_and_the_previous_one_kept(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    events = Events()
    system = ActorSystem.start(state_store=db, hooks=[events], **QUIET)
    try:
        ref = system.spawn(Account, name="acct")
        ref.ask(1, timeout=2)
        ref.ask("bad-snapshot", timeout=2)
        ref.ask(2, timeout=2)  # still unserialisable: reported again, not first
        errors = events.rec.only(lambda e: e[0] == "snapshot_error")
        assert [e[3] for e in errors] == [True, False]
        assert "'acct'" in errors[0][2] and "'extra.when'" in errors[0][2]
        assert "object" in errors[0][2]
        assert ref.ask("get", timeout=2)["balance"] == 3  # the minion kept running
        system.flush(5)
        assert stored(db, "acct") == {"balance": 1, "history": [1]}
        ref.ask("fix-snapshot", timeout=2)
        system.flush(5)
        assert stored(db, "acct") == {"balance": 3, "history": [1, 2]}
    finally:
        system.shutdown()


def test_restore_failure_is_a_crash_and_keeps_the_stored_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    store = SQLiteStateStore(db)
    store.save("acct", "Account", '{"unexpected": "shape"}')
    store.close()
    events = Events()
    system = ActorSystem.start(state_store=db, hooks=[events],
                               strategy=OneForOne(max_restarts=2, within=10), **QUIET)
    try:
        system.spawn(Account, name="acct")
        assert system.wait(10)
        assert isinstance(system.failure, SupervisorGaveUp)
        assert events.rec.only(lambda e: e[0] == "crashed") == [("crashed", "acct", "restore")] * 3
    finally:
        system.shutdown()
    assert stored(db, "acct") == {"unexpected": "shape"}


def test_stateless_run_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    system = ActorSystem.start(state_store=None, **QUIET)
    system.spawn(Account, name="acct").ask(1, timeout=2)
    system.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_default_store_is_minions_db_owner_only(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    system = ActorSystem.start(**QUIET)
    system.spawn(Account, name="acct").ask(1, timeout=2)
    system.shutdown()
    mode = stat.S_IMODE(os.stat(tmp_path / "minions.db").st_mode)
    assert mode == 0o600
    assert stored(tmp_path / "minions.db", "acct") == {"balance": 1, "history": [1]}


def test_in_memory_store_and_bad_store_argument() -> None:
    store = InMemoryStateStore()
    system = ActorSystem.start(state_store=store, **QUIET)
    try:
        system.spawn(Account, name="acct").ask(5, timeout=2)
    finally:
        system.shutdown()
    assert store.load("acct") == '{"balance":5,"history":[5]}'
    with pytest.raises(TypeError, match="state_store"):
        ActorSystem.start(state_store=42, **QUIET)  # type: ignore[arg-type]
    assert ActorSystem.current() is None


def test_corrupt_database_fails_start_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "garbage.db"
    db.write_bytes(b"this is not a database, just bytes" * 100)
    with pytest.raises(StateStoreError, match=r"garbage\.db"):
        ActorSystem.start(state_store=db, **QUIET)
    assert ActorSystem.current() is None
    assert runtime_threads() == []


def test_metrics_port_in_use_fails_start_and_releases_the_store(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(MetricsPortInUse, match=str(port)):
            ActorSystem.start(state_store=tmp_path / "m.db", metrics_port=port,
                              file_logs=False, stderr_logs=False, handle_signals=False)
        assert runtime_threads() == []
        # the store was closed: another system can open the same file right away
        system = ActorSystem.start(state_store=tmp_path / "m.db", **QUIET)
        system.shutdown()
    finally:
        holder.close()


def test_a_failing_store_is_reported_and_the_minion_keeps_running(tmp_path: Path) -> None:
    class BrokenStore(InMemoryStateStore):
        def save(self, path: str, minion_class: str, state_json: str) -> None:
            raise StateStoreError(f"cannot write {path}: the disk is gone")

    events = Events()
    system = ActorSystem.start(state_store=BrokenStore(), hooks=[events], **QUIET)
    try:
        ref = system.spawn(Account, name="acct")
        ref.ask(1, timeout=2)
        ref.ask(2, timeout=2)
        errors = events.rec.only(lambda e: e[0] == "snapshot_error")
        assert [e[3] for e in errors] == [True, False]  # reported once, then counted
        assert "the disk is gone" in errors[0][2]
        with pytest.raises(ValueError):
            ref.ask(-1, timeout=2)  # a crash still rolls back to the newest good state
        assert ref.ask("get", timeout=2)["balance"] == 3
    finally:
        system.shutdown()
