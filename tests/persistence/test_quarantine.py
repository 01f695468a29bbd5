"""A stored snapshot that ``restore()`` cannot load: crash and escalate (default), or, for a
class with ``restore_failure = "quarantine"``, set it aside and start the minion fresh."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, OneForOne, SupervisorGaveUp
from minions_actors.persistence import InMemoryStateStore, SQLiteStateStore

from ..observability.test_observability import scrape
from .test_persistence import QUIET, Events, stored


class Quarantines(Events):
    def snapshot_quarantined(self, cell: Any, exc: BaseException) -> None:
        self.rec.add(("quarantined", cell.path, repr(exc)))

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        super().minion_crashed(cell, exc, phase)
        self.rec.add(("crash-error", cell.path, str(exc)))


class Ledger(Minion):
    """Persistent; its restore needs the key "entries" (older versions stored "rows")."""

    def __init__(self, opening: int = 0) -> None:
        super().__init__()
        self.entries = [opening]

    def on_receive(self, message: Any) -> Any:
        if message != "get":
            self.entries.append(message)
        return self.entries

    def snapshot(self) -> dict[str, Any]:
        return {"entries": self.entries}

    def restore(self, state: dict[str, Any]) -> None:
        self.entries = state["entries"]


class SafeLedger(Ledger):
    restore_failure = "quarantine"


def _store_rows(db: Path, rows: dict[str, str]) -> None:
    with SQLiteStateStore(db) as store:
        for path, text in rows.items():
            store.save(path, "Ledger", text)
    conn = sqlite3.connect(db)  # a torn row that is not even JSON, written behind our back
    try:
        conn.execute("UPDATE minion_snapshots SET state_json = '{\"entr' WHERE path = 'torn'")
        conn.commit()
    finally:
        conn.close()


def test_default_crashes_escalates_and_keeps_the_row(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _store_rows(db, {"ledger": '{"rows": [1, 2]}'})
    events = Quarantines()
    system = ActorSystem.start(state_store=db, hooks=[events],
                               strategy=OneForOne(max_restarts=1, within=10), **QUIET)
    try:
        system.spawn(Ledger, name="ledger")
        assert system.wait(10)
        assert isinstance(system.failure, SupervisorGaveUp)
        assert system.exit_code == 1
        assert not events.rec.only(lambda e: e[0] == "quarantined")
    finally:
        system.shutdown()
    assert stored(db, "ledger") == {"rows": [1, 2]}


def test_quarantine_sets_the_row_aside_and_starts_fresh(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _store_rows(db, {"ledger": '{"rows": [1, 2]}', "torn": "{}"})
    events = Quarantines()
    lines: list[str] = []
    system = ActorSystem.start(state_store=db, hooks=[events], log_sinks=[lines.append],
                               **{**QUIET, "metrics_port": 0})
    try:
        ledger = system.spawn(SafeLedger, 7, name="ledger")
        torn = system.spawn(SafeLedger, name="torn")
        assert ledger.ask("get", timeout=5) == [7]  # fresh from the constructor
        assert torn.ask("get", timeout=5) == [0]
        assert ledger.ask(8, timeout=5) == [7, 8]
        assert system.flush(5)
        assert stored(db, "ledger") == {"entries": [7, 8]}
        assert system.failure is None
        assert not events.rec.only(lambda e: e[0] == "crashed")
        quarantined = events.rec.only(lambda e: e[0] == "quarantined")
        assert sorted(e[1] for e in quarantined) == ["ledger", "torn"]
        assert "KeyError('entries')" in dict((e[1], e[2]) for e in quarantined)["ledger"]
        assert system.metrics is not None and system.metrics.url is not None
        samples = scrape(system.metrics.url)
        key = ("minions_snapshots_quarantined_total", (("minion_class", "SafeLedger"),))
        assert samples[key] == 2
        store = system.store
        assert isinstance(store, SQLiteStateStore)
        aside = {q.path: q for q in store.quarantined()}
        assert aside["ledger"].state_json == '{"rows": [1, 2]}'
        assert aside["ledger"].error == "KeyError: 'entries'"
        assert aside["torn"].state_json == '{"entr' and "JSONDecodeError" in aside["torn"].error
    finally:
        assert system.shutdown(timeout=10)
    text = "".join(lines)
    assert "ERROR" in text and "moved to the store's quarantine" in text
    # The next start has nothing left to trip over.
    system = ActorSystem.start(state_store=db, **QUIET)
    try:
        assert system.spawn(Ledger, name="ledger").ask("get", timeout=5) == [7, 8]
    finally:
        assert system.shutdown(timeout=10)


def test_quarantine_works_with_the_in_memory_store() -> None:
    store = InMemoryStateStore()
    store.save("ledger", "Ledger", '{"rows": []}')
    system = ActorSystem.start(state_store=store, **QUIET)
    try:
        assert system.spawn(SafeLedger, name="ledger").ask("get", timeout=5) == [0]
    finally:
        assert system.shutdown(timeout=10)
    assert [q.path for q in store.quarantined()] == ["ledger"]
    assert store.load("ledger") == '{"entries":[0]}'  # the fresh state was snapshotted


@pytest.mark.parametrize("policy", ["ignore", None])
def test_an_unknown_policy_is_a_clear_crash(tmp_path: Path, policy: Any) -> None:
    class Odd(Ledger):
        restore_failure = policy

    store = InMemoryStateStore()
    store.save("odd", "Odd", '{"rows": []}')
    events = Quarantines()
    system = ActorSystem.start(state_store=store, hooks=[events],
                               strategy=OneForOne(max_restarts=0, within=10), **QUIET)
    try:
        system.spawn(Odd, name="odd")
        assert system.wait(10)
        errors = events.rec.only(lambda e: e[0] == "crash-error")
        assert errors and "Odd.restore_failure must be 'crash' or 'quarantine'" in errors[0][2]
        assert store.load("odd") == '{"rows": []}'  # nothing was set aside
    finally:
        system.shutdown()
