"""A checkpoint between two steps is written as an UPDATE of the columns a step may change
when the writer committed that workflow's row before: the row it leaves is the record
exactly, and a row that is not as the writer left it is written whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from minions_actors.persistence import SQLiteStateStore, WorkflowRecord
from minions_actors.records import workflow_row

pytestmark = pytest.mark.timeout(60)


def record(step: int, **changes: object) -> WorkflowRecord:
    rec = WorkflowRecord(
        workflow_id="w", minion_path="user/shop", minion_class="Shop", workflow_name="order",
        status="running", next_step=step, step_name=f"s{step}",
        context_json=f'{{"step":{step}}}', created_at=1.0, updated_at=1.0 + step)
    for name, value in changes.items():
        setattr(rec, name, value)
    return rec


def in_file(db: Path) -> tuple[object, ...] | None:
    """The workflow's row as another connection reads it from the file."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT * FROM workflows WHERE workflow_id = 'w'").fetchone()
    return None if row is None else tuple(row)


@pytest.mark.parametrize("durability", ["batched", "sync"])
def test_every_changed_column_of_a_step_reaches_the_file(tmp_path: Path,
                                                         durability: str) -> None:
    db = tmp_path / "wf.db"
    store = SQLiteStateStore(db, durability=durability)  # type: ignore[arg-type]
    try:
        store.save_workflow(record(0))
        store.flush()
        later = record(1, attempts=2, error="ValueError: x", wake_at=9.5,
                       waiting_for="approval", signal_seq=3)
        store.save_workflow(later)  # the steady columns as committed: a step's UPDATE
        store.flush()
        assert in_file(db) == workflow_row(later)
        store.save_workflow(record(2))  # the wait's columns back to None
        store.flush()
        assert in_file(db) == workflow_row(record(2))
        done = record(3, status="completed", step_name=None, finished_at=5.0)
        store.save_workflow(done)  # a steady column changes: written whole
        store.flush()
        assert in_file(db) == workflow_row(done)
    finally:
        store.close()


@pytest.mark.parametrize("tamper", [
    "DELETE FROM workflows WHERE workflow_id = 'w'",
    "UPDATE workflows SET status = 'failed' WHERE workflow_id = 'w'",
])
def test_a_row_changed_behind_the_writer_is_written_whole(tmp_path: Path,
                                                          tamper: str) -> None:
    db = tmp_path / "wf.db"
    store = SQLiteStateStore(db)
    try:
        store.save_workflow(record(0))
        store.flush()
        store.save_workflow(record(1))
        store.flush()
        with sqlite3.connect(db) as conn:  # a tool that ignored the store's owner lock
            conn.execute(tamper)
        conn.close()
        store.save_workflow(record(2))
        store.flush()
        assert in_file(db) == workflow_row(record(2))
        store.save_workflow(record(3))
        store.flush()
        assert in_file(db) == workflow_row(record(3))
    finally:
        store.close()
