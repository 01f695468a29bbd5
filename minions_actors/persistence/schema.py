"""The SQLite schema and its migrations (``PRAGMA user_version`` counts them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlite_utils import Database

from minions_actors.errors import (
    StateStoreError,
)
from minions_actors.persistence.sqlite_common import (
    SNAPSHOT_TABLE,
    WORKFLOW_INBOX_TABLE,
    WORKFLOW_TABLE,
    immediate_transaction,
    store_log,
)

# ---------------------------------------------------------------------------- schema
#: A migration gets the open database inside the migration transaction and changes the schema.
Migration = Callable[[Database], None]


def _m1_minion_snapshots(db: Database) -> None:
    """Schema 1: one row per persistent minion holding its newest JSON snapshot."""
    db.table(SNAPSHOT_TABLE).create(
        {
            "path": str,
            "minion_class": str,
            "state_json": str,
            "size_bytes": int,
            "updated_at": float,  # unix time, seconds
        },
        pk="path",
        not_null={"minion_class", "state_json", "size_bytes", "updated_at"},
        if_not_exists=True,
    )


def _m2_workflows(db: Database) -> None:
    """Schema 2: one row per durable workflow, with its checkpoint (next step, context)."""
    db.execute(
        f"""CREATE TABLE IF NOT EXISTS {WORKFLOW_TABLE} (
            workflow_id   TEXT PRIMARY KEY,
            minion_path   TEXT NOT NULL,
            minion_class  TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            status        TEXT NOT NULL,
            next_step     INTEGER NOT NULL,
            step_name     TEXT,
            context_json  TEXT NOT NULL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            error         TEXT,
            created_at    REAL NOT NULL,
            updated_at    REAL NOT NULL,
            finished_at   REAL
        )"""
    )
    db.execute(
        f"CREATE INDEX IF NOT EXISTS idx_workflows_minion_status "
        f"ON {WORKFLOW_TABLE} (minion_path, status)"
    )
    db.execute(
        f"CREATE INDEX IF NOT EXISTS idx_workflows_status_finished "
        f"ON {WORKFLOW_TABLE} (status, finished_at)"
    )


def _m3_workflow_waits(db: Database) -> None:
    """Schema 3: workflows that wait (a sleep's or signal's deadline, the signal awaited, who
    cancelled) and the inbox of signals and cancel requests, which any process may append to
    (the CLI while the application runs)."""
    for column, kind in (("wake_at", "REAL"), ("waiting_for", "TEXT"),
                         ("signal_seq", "INTEGER NOT NULL DEFAULT 0"), ("cancelled_by", "TEXT")):
        db.execute(f"ALTER TABLE {WORKFLOW_TABLE} ADD COLUMN {column} {kind}")
    db.execute(
        f"""CREATE TABLE IF NOT EXISTS {WORKFLOW_INBOX_TABLE} (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            workflow_id  TEXT NOT NULL,
            kind         TEXT NOT NULL,
            name         TEXT NOT NULL,
            payload_json TEXT NOT NULL,
            sent_by      TEXT NOT NULL,
            sent_at      REAL NOT NULL
        )"""
    )
    db.execute(f"CREATE INDEX IF NOT EXISTS idx_workflow_inbox_workflow "
               f"ON {WORKFLOW_INBOX_TABLE} (workflow_id)")


#: Applied in order; migration ``i`` (1-based) brings the file to ``PRAGMA user_version = i``.
#: Add a new schema by appending a function: never edit or reorder the existing ones.
MIGRATIONS: list[Migration] = [_m1_minion_snapshots, _m2_workflows, _m3_workflow_waits]


def schema_version() -> int:
    """The schema version this code writes (the number of known migrations)."""
    return len(MIGRATIONS)


def _migrate(db: Database, db_path: str) -> int:
    """Bring the file to the newest schema in one transaction; returns the version found.

    Always writes ``user_version`` so that a file we cannot write fails here, at open,
    rather than later in the writer thread.
    """
    conn: sqlite3.Connection = db.conn
    with immediate_transaction(conn):
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        latest = schema_version()
        if found > latest:
            raise StateStoreError(
                f"state store {db_path!r} has schema version {found}, newer than this "
                f"minions_actors knows ({latest}): upgrade minions_actors or use another file."
            )
        for number in range(found + 1, latest + 1):
            MIGRATIONS[number - 1](db)
        if found == 0:  # a new file: creating is not migrating, nothing to tell the operator
            store_log.current.debug(
                "state store {!r}: created with schema version {}", db_path, latest
            )
        elif found < latest:
            store_log.current.info(
                "state store {!r}: migrated schema from version {} to {}", db_path, found, latest
            )
        conn.execute(f"PRAGMA user_version = {latest}")
    return found


