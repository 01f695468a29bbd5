"""What the SQLite store's modules share: the table names, the store's logger, the
transaction helper, the connection settings, and SQLite errors turned into clear ones."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from loguru import logger

from minions_actors.errors import (
    StateStoreCorrupt,
    StateStoreError,
    StateStoreFull,
    StateStoreLocked,
    StateStoreReadOnly,
)
from minions_actors.records import WORKFLOW_COLUMNS, WorkflowRecord
from minions_actors.support.text import printable

if TYPE_CHECKING:
    from loguru import Logger

class _StoreLog:
    """The logger store records go through: the running system's (set at start) or loguru's.

    One system runs per process, so one module-level setting is enough; the system points
    it at its own logger (an injected one included) before opening the store.
    """

    current: Logger = logger.bind(minions=True, component="state_store")


store_log = _StoreLog()


def use_store_logger(log: Logger | None) -> None:
    """Send store records through ``log`` (None: back to loguru's global logger)."""
    store_log.current = (log if log is not None else logger).bind(
        minions=True, component="state_store"
    )

#: Table holding one row per persistent minion: its newest snapshot.
SNAPSHOT_TABLE = "minion_snapshots"
#: Column order used by the writer's list-mode ``insert_all``.
SNAPSHOT_COLUMNS = ["path", "minion_class", "state_json", "size_bytes", "updated_at"]

#: A pending change: ``(minion_class, state_json, updated_at)``; ``None`` means "delete".
Entry = tuple[str, str, float]

#: Table holding one row per durable workflow (schema version 2).
WORKFLOW_TABLE = "workflows"
#: Signals and cancel requests for workflows, appended by any process (schema version 3).
WORKFLOW_INBOX_TABLE = "workflow_inbox"
#: A pending workflow change: a private copy of the record; ``None`` means "delete".
WfEntry: TypeAlias = "WorkflowRecord | None"

#: Table holding one row per durable schedule of a minion (schema version 3).
SCHEDULE_TABLE = "minion_schedules"
#: A pending schedule change: ``(minion_class, spec_json, next_due, updated_at)``; ``None``
#: means "delete". Keyed by ``(path, key)``.
SchedEntry: TypeAlias = "tuple[str, str, float, float] | None"

@contextlib.contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error, roll back and re-raise the original
    error (a failed ROLLBACK must not hide the failure worth reporting)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


#: Margin under ``RLIMIT_FSIZE`` within which an I/O error is taken for "file size limit
#: reached": SQLite writes one page (at most 64 KiB) plus a 24-byte WAL frame header at a time.
_FSIZE_MARGIN = 2 * 65536


def _fsize_limit_hit(db_path: str) -> int | None:
    """The soft ``RLIMIT_FSIZE`` when the store's files have reached it, else None.

    Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, which SQLite reports
    as a generic ``SQLITE_IOERR_WRITE``; the file sizes tell the two apart.
    """
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):  # pragma: no cover - not on Linux/macOS
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    for name in (db_path, db_path + "-wal", db_path + "-journal"):
        try:
            if os.path.getsize(name) + _FSIZE_MARGIN >= soft:
                return int(soft)
        except OSError:
            continue
    return None


def classify_sqlite_error(
    exc: BaseException, db_path: str, *, opening: bool = False
) -> StateStoreError:
    """Turn a sqlite3 exception into the matching :class:`StateStoreError` with a helpful text
    (``opening``: the error happened while opening the file, so the text says so)."""
    if isinstance(exc, StateStoreError):
        return exc
    name = getattr(exc, "sqlite_errorname", "") or ""
    # sqlite3's decoding error quotes the stored bytes, escape sequences included
    text = printable(str(exc).split(" with text '")[0])
    low = text.lower()
    kind: type[StateStoreError] = StateStoreError
    what = f"{type(exc).__name__}: {text}"
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in low:
        kind = StateStoreLocked
        what = (
            f"the database is locked by another process or connection ({text}); only one "
            "process may write a store file: stop the other writer"
        )
    elif name.startswith("SQLITE_FULL") or "is full" in low:
        kind = StateStoreFull
        what = f"the disk or the store's size cap is full ({text}): free disk space or " \
            "raise max_size_bytes"
    elif (name.startswith("SQLITE_IOERR") or "disk i/o error" in low) and (
        (limit := _fsize_limit_hit(db_path)) is not None
    ):
        kind = StateStoreFull
        what = (
            f"the process's file size limit (RLIMIT_FSIZE, `ulimit -f`) of {limit} bytes is "
            f"reached ({text}): raise it (systemd: LimitFSIZE=) or keep the store smaller"
        )
    elif name.startswith("SQLITE_READONLY") or "readonly" in low:
        kind = StateStoreReadOnly
        what = (
            f"the file cannot be written ({text}): make the file and its directory writable "
            "by this user, or choose another state_store path"
        )
    elif (
        name.startswith("SQLITE_NOTADB")
        or name.startswith("SQLITE_CORRUPT")
        or "not a database" in low
        or "malformed" in low
    ):
        kind = StateStoreCorrupt
        what = (
            f"it is not a SQLite database or is damaged ({text}): move the file away (a fresh "
            "store is created on the next start) or restore it from a backup"
        )
    return kind(f"{'cannot open ' if opening else ''}state store {db_path!r}: {what}.")




def connect(path: str, timeout: float) -> sqlite3.Connection:
    """A connection to the existing store file ``path`` (never creates it), in autocommit
    mode (transactions are explicit), usable from the thread that holds its lock."""
    return sqlite3.connect(
        f"{Path(path).as_uri()}?mode=rw",
        uri=True,
        timeout=timeout,
        isolation_level=None,
        check_same_thread=False,
    )


#: The workflow table's SELECT, every column in record order (``wf_record`` reads a row).
WF_SELECT = f"SELECT {', '.join(WORKFLOW_COLUMNS)} FROM {WORKFLOW_TABLE}"


def wf_record(row: tuple[Any, ...]) -> WorkflowRecord:
    """A row of :data:`WF_SELECT` as a record."""
    return WorkflowRecord(*row)


#: Durable schedules: the writer's statements and the read at open.
_SCHED_UPSERT = (
    f"INSERT OR REPLACE INTO {SCHEDULE_TABLE} "
    "(path, key, minion_class, spec_json, next_due, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_SCHED_DELETE = f"DELETE FROM {SCHEDULE_TABLE} WHERE path = ? AND key = ?"
SELECT_SCHEDULES = (
    f"SELECT path, key, minion_class, spec_json, next_due, updated_at FROM {SCHEDULE_TABLE} "
    "ORDER BY path, key"
)


def write_schedules(conn: sqlite3.Connection,
                    changes: dict[tuple[str, str], SchedEntry]) -> None:
    """The writer's part of one batch: upsert or delete each changed schedule row."""
    rows = [(p, k, *e) for (p, k), e in changes.items() if e is not None]
    gone = [(p, k) for (p, k), e in changes.items() if e is None]
    if rows:
        conn.executemany(_SCHED_UPSERT, rows)
    if gone:
        conn.executemany(_SCHED_DELETE, gone)
