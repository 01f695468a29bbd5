"""Opening a store file: create it owner-only, take ownership, set WAL, check the pages,
migrate, and read what the store keeps in memory (every snapshot, the unfinished workflows)."""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass

from minions_actors.errors import StateStoreError, StateStoreReadOnly
from minions_actors.persistence.not_utf8 import (
    is_not_utf8_error,
    read_snapshots_setting_aside,
    refuse_not_utf8_workflow,
)
from minions_actors.persistence.schema import _migrate
from minions_actors.persistence.sqlite_common import (
    SNAPSHOT_TABLE,
    WF_SELECT,
    Entry,
    classify_sqlite_error,
    connect,
    store_log,
    wf_record,
)
from minions_actors.persistence.store_file import OpenCheck, OwnerLock, check_pages
from minions_actors.records import WorkflowRecord


@dataclass
class OpenedStore:
    """An open store file and what was read from it."""

    owner: OwnerLock
    db: sqlite3.Connection
    cache: dict[str, Entry]  # every snapshot, by path
    wf_live: dict[str, WorkflowRecord]  # the unfinished workflow records, by id
    schema_found: int  # the schema version the file had before migrating


def open_store_file(
    path: str, *, sync: bool, open_check: OpenCheck, open_timeout: float, busy_timeout: float
) -> OpenedStore:
    """Create/open the file (0600), take ownership, set WAL, check the pages, migrate, and
    read every snapshot and unfinished workflow; on failure nothing stays open or owned."""
    _prepare_file(path)
    owner = OwnerLock(path, open_timeout)
    try:
        conn = connect(path, open_timeout)
    except sqlite3.Error as exc:
        owner.release()
        raise classify_sqlite_error(exc, path, opening=True) from exc
    try:
        opened = _set_up(conn, path, sync=sync, open_check=open_check, owner=owner)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    except BaseException as exc:
        conn.close()
        owner.release()
        if isinstance(exc, sqlite3.Error):
            raise classify_sqlite_error(exc, path, opening=True) from exc
        raise
    return opened


def _prepare_file(path: str) -> None:
    """Check the directory, create a missing file owner-only, warn about a shared one.
    A symlink is followed: its target is checked and created (SQLite opens the target)."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        via = f" (the symlink points to {real!r})" if real != path else ""
        raise StateStoreError(
            f"cannot open state store {path!r}: directory {directory!r} does not exist{via}; "
            "create it or choose another state_store path."
        )
    path = real
    if os.path.isdir(path):
        raise StateStoreError(f"state store {path!r} is a directory; give a file path.")
    if not os.path.exists(path):
        try:
            # Created here with 0600 (SQLite gives -wal/-shm the same mode as the file).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except PermissionError as exc:
            raise StateStoreReadOnly(
                f"cannot create state store {path!r}: directory {directory!r} is not "
                f"writable ({exc.strerror}); make it writable or choose another path."
            ) from exc
        return
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        store_log.current.warning(
            "state store {!r} is accessible by other users (mode {:o}); consider chmod 600",
            path,
            stat.S_IMODE(mode),
        )


def _set_up(
    conn: sqlite3.Connection, path: str, *, sync: bool, open_check: OpenCheck, owner: OwnerLock
) -> OpenedStore:
    """WAL and synchronous mode, the page check, the migrations, then the in-memory reads."""
    journal = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    if journal.lower() != "wal":
        raise StateStoreError(
            f"state store {path!r} cannot use WAL journaling (got {journal!r}); "
            "put it on a local file system."
        )
    conn.execute(f"PRAGMA synchronous = {'FULL' if sync else 'NORMAL'}")
    check_pages(conn, path, open_check)
    found = _migrate(conn, path)
    try:
        cache: dict[str, Entry] = {
            row[0]: (row[1], row[2], row[3])
            for row in conn.execute(
                f"SELECT path, minion_class, state_json, updated_at FROM {SNAPSHOT_TABLE}"
            )
        }
    except sqlite3.OperationalError as exc:
        if not is_not_utf8_error(exc):
            raise
        cache = read_snapshots_setting_aside(conn, path)
    running = "WHERE status = 'running'"
    try:
        wf_live = {row[0]: wf_record(row) for row in conn.execute(f"{WF_SELECT} {running}")}
    except sqlite3.OperationalError as exc:
        if is_not_utf8_error(exc):
            refuse_not_utf8_workflow(conn, path, running)
        raise
    return OpenedStore(owner=owner, db=conn, cache=cache, wf_live=wf_live, schema_found=found)
