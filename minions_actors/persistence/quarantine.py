"""The snapshot quarantine: stored snapshots that ``restore()`` could not load, set aside.

A class with ``restore_failure = "quarantine"`` does not crash-loop on a snapshot it cannot
load: the row is copied to the ``quarantined_snapshots`` table (created on first use, so
the schema version does not change), removed from ``minion_snapshots``, and the minion starts
fresh. Nothing is ever deleted from the quarantine by the runtime; operators read it with
:meth:`~minions_actors.persistence.SQLiteStateStore.quarantined` or plain SQL, fix or drop
rows, and may copy a fixed snapshot back.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "QUARANTINE_TABLE",
    "SELECT_QUARANTINED",
    "QuarantinedSnapshot",
    "insert_quarantined",
    "select_quarantined",
]

#: Table of snapshots set aside because ``restore()`` raised for them.
QUARANTINE_TABLE = "quarantined_snapshots"

_CREATE = f"""CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    path           TEXT NOT NULL,
    minion_class   TEXT NOT NULL,
    state_json     TEXT NOT NULL,
    error          TEXT NOT NULL,
    quarantined_at REAL NOT NULL
)"""


@dataclass(frozen=True)
class QuarantinedSnapshot:
    """One snapshot set aside: the minion it belonged to, its JSON text, and why."""

    path: str
    minion_class: str
    state_json: str
    error: str
    quarantined_at: datetime  # timezone-aware, UTC


def insert_quarantined(
    conn: sqlite3.Connection, path: str, minion_class: str, state_json: str, error: str
) -> None:
    """Add one row (the caller runs this inside a write transaction)."""
    conn.execute(_CREATE)
    conn.execute(
        f"INSERT INTO {QUARANTINE_TABLE} (path, minion_class, state_json, error, quarantined_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (path, minion_class, state_json, error, time.time()),
    )


#: Lists the quarantine, oldest first; run only when the table exists.
SELECT_QUARANTINED = (
    f"SELECT path, minion_class, state_json, error, quarantined_at FROM {QUARANTINE_TABLE} "
    "ORDER BY id"
)


def select_quarantined(rows: list[tuple[str, str, str, str, float]]) -> list[QuarantinedSnapshot]:
    """Rows of :data:`SELECT_QUARANTINED` as records."""
    return [
        QuarantinedSnapshot(p, c, s, e, datetime.fromtimestamp(t, tz=UTC))
        for p, c, s, e, t in rows
    ]
