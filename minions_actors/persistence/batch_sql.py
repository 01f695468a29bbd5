"""The SQL of one writer batch: snapshot, workflow and schedule rows in one transaction.

:class:`~minions_actors.persistence.writer.SnapshotWriter` decides when a batch is written
and by which thread; this module only turns a batch into statements.
"""

from __future__ import annotations

import operator
import sqlite3
from typing import Any

from minions_actors.persistence.sqlite_common import (
    SNAPSHOT_COLUMNS,
    SNAPSHOT_TABLE,
    WORKFLOW_TABLE,
    Entry,
    SchedEntry,
    WfEntry,
    immediate_transaction,
    write_schedules,
)
from minions_actors.records import WORKFLOW_COLUMNS, WorkflowRecord, workflow_row

__all__ = ["WF_STEP", "WF_UPSERT", "WorkflowWrites", "batch_rows", "write_many"]

# An upsert, not INSERT OR REPLACE: an update in place leaves the index entries of columns
# that did not change (a running workflow's path and status) alone, so a checkpoint writes
# one page to the WAL instead of three (~30% less per commit; the row ends up the same).
WF_UPSERT = (
    f"INSERT INTO {WORKFLOW_TABLE} ({', '.join(WORKFLOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(WORKFLOW_COLUMNS))}) ON CONFLICT (workflow_id) DO UPDATE "
    f"SET {', '.join(f'{c} = excluded.{c}' for c in WORKFLOW_COLUMNS if c != 'workflow_id')}"
)
WF_DELETE = f"DELETE FROM {WORKFLOW_TABLE} WHERE workflow_id = ?"
# What a checkpoint between two steps may change (the rest is fixed while a workflow runs)
_WF_MOVING = ("next_step", "step_name", "context_json", "attempts", "error", "updated_at",
              "wake_at", "waiting_for", "signal_seq")
WF_STEP = (f"UPDATE {WORKFLOW_TABLE} SET {', '.join(f'{c} = ?' for c in _WF_MOVING)} "
           "WHERE workflow_id = ? AND status = 'running'")
_step_row = operator.attrgetter(*_WF_MOVING, "workflow_id")
_steady_of = operator.attrgetter(*(c for c in WORKFLOW_COLUMNS if c not in _WF_MOVING))
_SNAP_UPSERT = (
    f"INSERT OR REPLACE INTO {SNAPSHOT_TABLE} ({', '.join(SNAPSHOT_COLUMNS)}) VALUES "
)
_SNAP_ROW = f"({', '.join('?' * len(SNAPSHOT_COLUMNS))})"


#: Rows per INSERT statement (5 columns x 1000 stays far below SQLite's variable limit).
_ROWS_PER_STATEMENT = 1000

Rows = list[tuple[Any, ...]]


def batch_rows(batch: dict[str, Entry | None]) -> tuple[Rows, list[tuple[str]]]:
    """A batch's snapshot rows and deletes."""
    rows: Rows = []
    deletes: list[tuple[str]] = []
    for path, entry in batch.items():
        if entry is None:
            deletes.append((path,))
        else:
            cls, text, ts = entry
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
            rows.append((path, cls, text, size, ts))
    return rows, deletes


class WorkflowWrites:
    """A batch's workflow records as statements. A checkpoint between two steps changes
    only the moving columns; when this connection committed the workflow's row before, with
    the other (steady) columns as the record has them, the checkpoint is an UPDATE of the
    moving ones: 10 values bound instead of 17 and no index entry touched (about 45% less
    per row). Used under the store's connection lock, as the writes are."""

    def __init__(self) -> None:
        self.steady: dict[str, tuple[Any, ...]] = {}  # running workflows' committed rows

    def split(self, wf_batch: dict[str, WfEntry]) -> tuple[list[WorkflowRecord],
                                                          list[WorkflowRecord], list[tuple[str]]]:
        """The records written whole, those written as a step's UPDATE, and the deletes."""
        whole: list[WorkflowRecord] = []
        steps: list[WorkflowRecord] = []
        deletes: list[tuple[str]] = []
        steady = self.steady
        for wid, rec in wf_batch.items():
            if rec is None:
                deletes.append((wid,))
            elif rec.status == "running" and steady.get(wid) == _steady_of(rec):
                steps.append(rec)
            else:
                whole.append(rec)
        return whole, steps, deletes

    @staticmethod
    def write(conn: sqlite3.Connection, whole: list[WorkflowRecord],
              steps: list[WorkflowRecord]) -> None:
        """Execute the upserts and the steps' UPDATEs; a step that finds no running row of
        its id (never while this store owns the file) is written whole after all."""
        if steps:
            done = conn.executemany(WF_STEP, [_step_row(r) for r in steps]).rowcount
            if done != len(steps):
                whole = whole + steps  # (an upsert of a row just updated is the same row)
        if whole:
            conn.executemany(WF_UPSERT, [workflow_row(r) for r in whole])

    def committed(self, whole: list[WorkflowRecord], deletes: list[tuple[str]]) -> None:
        """The batch is durable: remember the steady columns of its running rows (a step's
        UPDATE left them as they were)."""
        steady = self.steady
        for rec in whole:
            if rec.status == "running":
                steady[rec.workflow_id] = _steady_of(rec)
            else:
                steady.pop(rec.workflow_id, None)
        for (wid,) in deletes:
            steady.pop(wid, None)


def write_many(conn: sqlite3.Connection, rows: list[tuple[Any, ...]],
               deletes: list[tuple[str]], workflows: tuple[list[WorkflowRecord],
                                                           list[WorkflowRecord]],
               wf_deletes: list[tuple[str]],
               schedules: dict[tuple[str, str], SchedEntry]) -> None:
    """Every change of a batch in one transaction (``workflows``: written whole, steps)."""
    with immediate_transaction(conn):
        if rows:
            _upsert_snapshots(conn, rows)
        if deletes:
            conn.executemany(f"DELETE FROM {SNAPSHOT_TABLE} WHERE path = ?", deletes)
        WorkflowWrites.write(conn, *workflows)
        if wf_deletes:
            conn.executemany(WF_DELETE, wf_deletes)
        if schedules:
            write_schedules(conn, schedules)


def _upsert_snapshots(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace snapshot rows, many per statement (what sqlite-utils' ``insert_all``
    did, without importing sqlite-utils, which pulls numpy and pandas in when installed)."""
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        sql = _SNAP_UPSERT + ", ".join([_SNAP_ROW] * len(chunk))
        conn.execute(sql, [value for row in chunk for value in row])
