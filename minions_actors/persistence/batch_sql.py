"""The SQL of one writer batch: snapshot, workflow and schedule rows in one transaction.

:class:`~minions_actors.persistence.writer.SnapshotWriter` decides when a batch is written
and by which thread; this module only turns a batch into statements.
"""

from __future__ import annotations

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
from minions_actors.records import WORKFLOW_COLUMNS, workflow_row

__all__ = ["WF_UPSERT", "batch_rows", "write_many"]

# An upsert, not INSERT OR REPLACE: an update in place leaves the index entries of columns
# that did not change (a running workflow's path and status) alone, so a checkpoint writes
# one page to the WAL instead of three (~30% less per commit; the row ends up the same).
WF_UPSERT = (
    f"INSERT INTO {WORKFLOW_TABLE} ({', '.join(WORKFLOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(WORKFLOW_COLUMNS))}) ON CONFLICT (workflow_id) DO UPDATE "
    f"SET {', '.join(f'{c} = excluded.{c}' for c in WORKFLOW_COLUMNS if c != 'workflow_id')}"
)
WF_DELETE = f"DELETE FROM {WORKFLOW_TABLE} WHERE workflow_id = ?"
_SNAP_UPSERT = (
    f"INSERT OR REPLACE INTO {SNAPSHOT_TABLE} ({', '.join(SNAPSHOT_COLUMNS)}) VALUES "
)
_SNAP_ROW = f"({', '.join('?' * len(SNAPSHOT_COLUMNS))})"


#: Rows per INSERT statement (5 columns x 1000 stays far below SQLite's variable limit).
_ROWS_PER_STATEMENT = 1000

Rows = list[tuple[Any, ...]]


def batch_rows(batch: dict[str, Entry | None], wf_batch: dict[str, WfEntry]
               ) -> tuple[Rows, list[tuple[str]], Rows, list[tuple[str]]]:
    """A batch's snapshot rows and deletes, and its workflow rows and deletes."""
    rows: Rows = []
    deletes: list[tuple[str]] = []
    for path, entry in batch.items():
        if entry is None:
            deletes.append((path,))
        else:
            cls, text, ts = entry
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
            rows.append((path, cls, text, size, ts))
    wf_rows: Rows = []
    wf_deletes: list[tuple[str]] = []
    for wid, rec in wf_batch.items():
        if rec is None:
            wf_deletes.append((wid,))
        else:
            wf_rows.append(workflow_row(rec))
    return rows, deletes, wf_rows, wf_deletes


def write_many(conn: sqlite3.Connection, rows: list[tuple[Any, ...]],
                deletes: list[tuple[str]], wf_rows: list[tuple[Any, ...]],
                wf_deletes: list[tuple[str]],
                schedules: dict[tuple[str, str], SchedEntry]) -> None:
    """Every change of a batch in one transaction."""
    with immediate_transaction(conn):
        if rows:
            _upsert_snapshots(conn, rows)
        if deletes:
            conn.executemany(f"DELETE FROM {SNAPSHOT_TABLE} WHERE path = ?", deletes)
        if wf_rows:
            conn.executemany(WF_UPSERT, wf_rows)
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
