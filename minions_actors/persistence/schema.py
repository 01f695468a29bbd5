"""The SQLite schema and its migrations (``PRAGMA user_version`` counts them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from minions_actors.errors import (
    StateStoreError,
)
from minions_actors.persistence.sqlite_common import (
    SCHEDULE_TABLE,
    SNAPSHOT_TABLE,
    WORKFLOW_INBOX_TABLE,
    WORKFLOW_TABLE,
    immediate_transaction,
    store_log,
)

# ---------------------------------------------------------------------------- schema
#: A migration gets the open connection inside the migration transaction and changes the
#: schema. Plain ``sqlite3``: sqlite-utils imports numpy and pandas whenever they are installed.
Migration = Callable[[sqlite3.Connection], None]


def _m1_minion_snapshots(conn: sqlite3.Connection) -> None:
    """Schema 1: one row per persistent minion holding its newest JSON snapshot (the text
    sqlite-utils 4 generated for it, so new files stay identical to older ones)."""
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS "{SNAPSHOT_TABLE}" (
   "path" TEXT PRIMARY KEY,
   "minion_class" TEXT NOT NULL,
   "state_json" TEXT NOT NULL,
   "size_bytes" INTEGER NOT NULL,
   "updated_at" REAL NOT NULL
)"""
    )


def _m2_workflows(conn: sqlite3.Connection) -> None:
    """Schema 2: one row per durable workflow, with its checkpoint (next step, context)."""
    conn.execute(
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
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS idx_workflows_minion_status "
        f"ON {WORKFLOW_TABLE} (minion_path, status)"
    )
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS idx_workflows_status_finished "
        f"ON {WORKFLOW_TABLE} (status, finished_at)"
    )


def _m3_schedules(conn: sqlite3.Connection) -> None:
    """Schema 3: one row per durable schedule of a persistent minion (``self.schedules``):
    its definition as JSON and when it is next due (unix time)."""
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {SCHEDULE_TABLE} (
            path          TEXT NOT NULL,
            key           TEXT NOT NULL,
            minion_class  TEXT NOT NULL,
            spec_json     TEXT NOT NULL,
            next_due      REAL NOT NULL,
            updated_at    REAL NOT NULL,
            PRIMARY KEY (path, key)
        )"""
    )


def _m4_workflow_waits(conn: sqlite3.Connection) -> None:
    """Schema 4: workflows that wait (a sleep's or signal's deadline, the signal awaited, who
    cancelled) and the inbox of signals and cancel requests, which any process may append to
    (the CLI while the application runs)."""
    for column, kind in (("wake_at", "REAL"), ("waiting_for", "TEXT"),
                         ("signal_seq", "INTEGER NOT NULL DEFAULT 0"), ("cancelled_by", "TEXT")):
        conn.execute(f"ALTER TABLE {WORKFLOW_TABLE} ADD COLUMN {column} {kind}")
    conn.execute(
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
    conn.execute(f"CREATE INDEX IF NOT EXISTS idx_workflow_inbox_workflow "
                 f"ON {WORKFLOW_INBOX_TABLE} (workflow_id)")


#: Applied in order; migration ``i`` (1-based) brings the file to ``PRAGMA user_version = i``.
#: Add a new schema by appending a function: never edit or reorder the existing ones.
MIGRATIONS: list[Migration] = [_m1_minion_snapshots, _m2_workflows, _m3_schedules,
                               _m4_workflow_waits]


def schema_version() -> int:
    """The schema version this code writes (the number of known migrations)."""
    return len(MIGRATIONS)


def _migrate(conn: sqlite3.Connection, db_path: str) -> int:
    """Bring the file to the newest schema in one transaction; returns the version found.

    Always writes ``user_version`` so that a file we cannot write fails here, at open,
    rather than later in the writer thread.
    """
    with immediate_transaction(conn):
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        latest = schema_version()
        if found > latest:
            raise StateStoreError(
                f"state store {db_path!r} has schema version {found}, newer than this "
                f"minions_actors knows ({latest}): upgrade minions_actors or use another file."
            )
        for number in range(found + 1, latest + 1):
            MIGRATIONS[number - 1](conn)
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


