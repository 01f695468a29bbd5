"""``python -m minions_actors inspect minions.db``: a table of what a state store holds.

The file is opened read-only (``mode=ro``), so inspecting a store that a running system is
writing is safe; nothing is changed and nothing but JSON metadata is read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from ._sqlite_writer import SNAPSHOT_TABLE
from .errors import StateStoreCorrupt, StateStoreError

__all__ = ["render_inspect"]


def _human_size(n: int) -> str:
    """1536 -> '1.5 KiB' (bytes below 1 KiB are shown exactly)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_inspect(db_path: str | os.PathLike[str]) -> str:
    """Render the minions stored in ``db_path`` as a text table (path, class, size, update).

    Raises :class:`StateStoreError` (a :class:`StateStoreCorrupt` for a file that is not a
    store) with a message ready to print when the file is missing or unreadable.
    """
    path = os.path.abspath(os.fspath(db_path))
    if not os.path.exists(path):
        raise StateStoreError(
            f"no state store at {path!r}: the file does not exist (the default is "
            "minions.db in the directory the system was started from)."
        )
    if os.path.isdir(path):
        raise StateStoreError(f"{path!r} is a directory, not a state store file.")
    try:
        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise StateStoreError(f"cannot open state store {path!r} read-only: {exc}") from exc
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (SNAPSHOT_TABLE,),
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateStoreCorrupt(
                f"{path!r} is not a SQLite database or is damaged ({exc})."
            ) from exc
        if not has_table:
            raise StateStoreCorrupt(
                f"{path!r} is a SQLite database but not a minions_actors state store "
                f"(no {SNAPSHOT_TABLE} table)."
            )
        rows = conn.execute(
            f"SELECT path, minion_class, size_bytes, updated_at FROM {SNAPSHOT_TABLE} ORDER BY path"
        ).fetchall()
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    total = sum(int(r[2]) for r in rows)
    header = (
        f"{path}: {len(rows)} stored minion{'s' if len(rows) != 1 else ''}, "
        f"{_human_size(total)} of snapshots, schema version {version}"
    )
    if not rows:
        return header + "\n(no snapshots stored)"
    table = [("PATH", "CLASS", "SIZE", "LAST UPDATE")] + [
        (str(r[0]), str(r[1]), _human_size(int(r[2])), _when(float(r[3]))) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [header, ""]
    for n, row in enumerate(table):
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].ljust(widths[3]),
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
