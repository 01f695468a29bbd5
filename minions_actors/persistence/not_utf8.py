"""Rows whose text is not valid UTF-8, found while a store opens: sqlite3 refuses to decode
them, quoting the raw bytes. A snapshot row no ``restore()`` could load is set aside in the
quarantine (as a failed restore is) and named in an ERROR; an unfinished workflow is a
:class:`StateStoreCorrupt` that names it and says how to see and drop it."""

from __future__ import annotations

import sqlite3

from minions_actors.errors import StateStoreCorrupt
from minions_actors.persistence.quarantine import insert_quarantined
from minions_actors.persistence.sqlite_common import (
    SNAPSHOT_TABLE,
    WF_SELECT,
    Entry,
    immediate_transaction,
    store_log,
)
from minions_actors.records import WORKFLOW_COLUMNS
from minions_actors.support.text import not_utf8_columns, printable, tolerant_text

__all__ = ["is_not_utf8_error", "read_snapshots_setting_aside", "refuse_not_utf8_workflow"]

_SNAPSHOT_COLUMNS = ("path", "minion_class", "state_json")


def is_not_utf8_error(exc: BaseException) -> bool:
    """True for sqlite3's "Could not decode to UTF-8 column ..." error."""
    return isinstance(exc, sqlite3.OperationalError) and "decode to UTF-8" in str(exc)


def _tolerant_rows(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    conn.text_factory = tolerant_text
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.text_factory = str


def read_snapshots_setting_aside(conn: sqlite3.Connection, path: str) -> dict[str, Entry]:
    """Every snapshot, after moving the rows that are not valid UTF-8 to the quarantine (with
    their bad bytes as ``\\xNN`` escapes) in one transaction, each named in an ERROR."""
    rows = _tolerant_rows(
        conn, f"SELECT path, minion_class, state_json, updated_at, CAST(path AS BLOB) "
        f"FROM {SNAPSHOT_TABLE}")
    cache: dict[str, Entry] = {}
    bad: list[tuple[tuple[object, ...], list[str]]] = []
    for row in rows:
        columns = not_utf8_columns(_SNAPSHOT_COLUMNS, row)
        if columns:
            bad.append((row, columns))
        else:
            cache[str(row[0])] = (str(row[1]), str(row[2]), float(row[3]))  # type: ignore[arg-type]
    with immediate_transaction(conn):
        for row, columns in bad:
            error = (f"not valid UTF-8 in column {', '.join(columns)} (found when the store was "
                     "opened; each invalid byte is kept as a \\xNN escape)")
            insert_quarantined(conn, str(row[0]), str(row[1]), str(row[2]), error)
            conn.execute(f"DELETE FROM {SNAPSHOT_TABLE} WHERE CAST(path AS BLOB) = ?", (row[4],))
    for row, columns in bad:
        store_log.current.error(
            "state store {!r}: the snapshot of minion {!r} is not valid UTF-8 (column {}); "
            "moved to the quarantine (store.quarantined(), table quarantined_snapshots) and "
            "the minion starts fresh",
            path, printable(str(row[0])), ", ".join(columns),
        )
    return cache


def refuse_not_utf8_workflow(conn: sqlite3.Connection, path: str, where: str) -> None:
    """Raise :class:`StateStoreCorrupt` naming the first workflow ``where`` selects whose
    text is not valid UTF-8, with how to see and drop it."""
    for row in _tolerant_rows(conn, f"{WF_SELECT} {where}"):
        columns = not_utf8_columns(WORKFLOW_COLUMNS, row)
        if columns:
            wid, minion = printable(str(row[0])), printable(str(row[1]))
            cli = f"python -m minions_actors workflows --db {printable(path)}"
            raise StateStoreCorrupt(
                f"cannot open state store {printable(path)!r}: workflow {wid!r} of minion "
                f"{minion!r} is not valid UTF-8 (column {', '.join(columns)}). Keep a copy "
                f"of the file; then, with the application stopped, see the record with "
                f"`{cli} show {wid}` (invalid bytes shown as \\xNN) and drop it with "
                f"`{cli} discard {wid} --force`, or repair the row with the sqlite3 shell."
            )
