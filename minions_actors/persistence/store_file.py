"""A store file's ownership and health: the one-owner lock, the page check at open, and the
connections that inspection tools use (read-only, or read-write for one change).

Ownership is an ``flock`` on a sidecar file ``<store>.lock`` that holds the owner's pid. The
kernel drops an ``flock`` when its process dies, ``kill -9`` included, so a crashed owner never
leaves a stale lock that would block its restart. SQLite's own ``locking_mode=EXCLUSIVE`` would
also die with its owner, but in WAL mode it keeps every other connection out, read-only tools
included, and it is only taken at the first write; hence a separate lock file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from minions_actors.errors import (
    StateStoreCorrupt,
    StateStoreError,
    StateStoreLocked,
    StateStoreReadOnly,
)
from minions_actors.persistence.sqlite_common import SNAPSHOT_TABLE, WORKFLOW_TABLE, connect
from minions_actors.support.text import tolerant_text

__all__ = [
    "OPEN_CHECKS",
    "OpenCheck",
    "OwnerLock",
    "check_pages",
    "lock_path",
    "no_owner",
    "open_existing_store",
    "read_only_connection",
]

#: What :class:`~minions_actors.SQLiteStateStore` checks at open: ``"quick"`` runs
#: ``PRAGMA quick_check`` (reads every page once), ``"none"`` skips it.
OpenCheck = Literal["quick", "none"]
OPEN_CHECKS = ("quick", "none")
#: How often a waiting owner retries the lock (a read-only tool holds it shared for a moment).
_LOCK_POLL = 0.02
#: Lock fds this process holds: closed in a forked child, which must not keep the store owned
#: after its parent died (closing a copy in the child leaves the parent's lock in place).
_held: set[int] = set()


def _close_in_child() -> None:
    for fd in list(_held):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


def lock_path(db_path: str) -> str:
    """The sidecar lock file of a store file (of its real path: two symlinks to one store
    share one lock)."""
    return os.path.realpath(db_path) + ".lock"


def _recorded_pid(fd: int) -> str:
    """The pid the current owner wrote into the lock file ("unknown" if unreadable)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


class OwnerLock:
    """This process's ownership of one store file; released by :meth:`release` or by death."""

    def __init__(self, db_path: str, timeout: float) -> None:
        self.path = lock_path(db_path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            kind = StateStoreReadOnly if isinstance(exc, PermissionError) or \
                exc.errno == errno.EROFS else StateStoreError
            raise kind(
                f"cannot open state store {db_path!r}: cannot create its lock file "
                f"{self.path!r} ({exc.strerror}); make the directory writable by this user."
            ) from exc
        deadline = time.monotonic() + timeout
        try:
            while not self._try_lock(fd, db_path):
                if time.monotonic() >= deadline:
                    raise StateStoreLocked(
                        f"cannot open state store {db_path!r}: read-only tools kept its lock "
                        f"file {self.path!r} for longer than open_timeout ({timeout}s); "
                        "try again when they are done."
                    )
                time.sleep(_LOCK_POLL)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd: int | None = fd
        _held.add(fd)

    def _try_lock(self, fd: int, db_path: str) -> bool:
        """Take the lock: True when taken, False while read-only tools hold it shared;
        another owner is an immediate :class:`StateStoreLocked` naming its pid."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateStoreError(
                    f"cannot open state store {db_path!r}: cannot lock {self.path!r} "
                    f"({exc.strerror})."
                ) from exc
        try:  # a shared lock is granted when only readers hold it: then wait for them
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise StateStoreLocked(
                f"cannot open state store {db_path!r}: it is owned by another process "
                f"(pid {_recorded_pid(fd)}, lock file {self.path!r}). One process owns a store "
                "file: stop that process or give this one another state_store path "
                "(read-only tools such as `python -m minions_actors inspect` work while it "
                "runs)."
            ) from None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        """Give up ownership (idempotent). The lock file stays: deleting it would race with a
        process that has it open and is about to lock it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _held.discard(fd)
            os.close(fd)


@contextlib.contextmanager
def no_owner(db_path: str, doing: str) -> Iterator[None]:
    """Hold the store's lock file shared while ``doing`` (a change a running owner would
    overwrite from memory); an owner is a :class:`StateStoreLocked` naming its pid, and an
    owner that starts meanwhile waits (``open_timeout``) until the block ends."""
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:  # never created here: a lock file made by root (sudo) would lock the app out
        fd = os.open(lock_path(db_path), flags)
    except OSError:  # no lock file: nothing owns the store now
        fd = -1
    if fd < 0:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise StateStoreLocked(
                f"cannot {doing}: the store {db_path!r} is owned by a running process (pid "
                f"{_recorded_pid(fd)}), which keeps its unfinished workflows in memory and "
                "would write the change back; stop it first, then try again (or make the "
                "change in that application, e.g. system.discard_workflow(id))."
            ) from None
        yield
    finally:
        os.close(fd)


class _ReadOnlyConnection(sqlite3.Connection):
    """A connection that also drops the shared lock it was opened under when closed."""

    lock_fd: int | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            fd, self.lock_fd = self.lock_fd, None
            if fd is not None:
                os.close(fd)


def read_only_connection(db_path: str, timeout: float) -> sqlite3.Connection:
    """A connection that cannot change the store and leaves no files behind; close it.

    With an owner running (or a ``-wal`` left by a crash) it is a plain ``mode=ro``
    connection, which sees the owner's commits and uses the ``-wal``/``-shm`` files that
    already exist. Without one, a ``mode=ro`` connection would create ``-wal``/``-shm`` and
    leave them, so the file is opened ``immutable`` under a shared lock that keeps an owner
    from starting until the connection is closed (an owner waits ``open_timeout`` for it).
    """
    lock_fd: int | None = None
    immutable = False
    if not os.path.exists(db_path + "-wal"):
        with contextlib.suppress(OSError):  # no lock file, unwritable directory: no owner
            lock_fd = os.open(lock_path(db_path), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            immutable = not os.path.exists(db_path + "-wal")
        except OSError:  # an owner holds it: read alongside it
            pass
        if not immutable and lock_fd is not None:
            os.close(lock_fd)
            lock_fd = None
    try:
        conn = sqlite3.connect(
            f"{Path(db_path).as_uri()}?mode=ro{'&immutable=1' if immutable else ''}",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            factory=_ReadOnlyConnection,
        )
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    conn.lock_fd = lock_fd
    return conn


def check_pages(conn: sqlite3.Connection, db_path: str, check: OpenCheck) -> None:
    """Run the open-time page check; a damaged file is a :class:`StateStoreCorrupt` that
    names the file and what to do."""
    if check == "none":
        return
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    else:
        # one row may hold many lines, under a "*** in database main ***" heading
        problems = [line for r in rows if r[0] != "ok" for line in str(r[0]).splitlines()
                    if line.strip() and not line.startswith("***")]
    if problems:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)"
                                           if len(problems) > 3 else "")
        raise StateStoreCorrupt(
            f"cannot open state store {db_path!r}: its pages are damaged ({shown}). Stop, "
            "keep a copy of the file, then restore it from a backup, or salvage it with "
            "`sqlite3 FILE .recover | sqlite3 NEW` and point state_store at NEW, or move it "
            "away to start with an empty store."
        )


def open_existing_store(db_path: str | os.PathLike[str], *, write: bool, timeout: float) -> tuple[
    str, sqlite3.Connection, int, bool
]:
    """Open an existing store file: (absolute path, connection, schema version, has workflows).

    Never creates a file. Runs the runtime's page check (:func:`check_pages`, ``"quick"``),
    and reads text that is not valid UTF-8 as :class:`~minions_actors.support.text.NotUtf8`
    instead of failing. Raises :class:`StateStoreError` with a printable message when the
    file is missing, is not a SQLite database, is damaged or is not a minions_actors store.
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
        conn = connect(path, timeout) if write else read_only_connection(path, timeout)
    except sqlite3.Error as exc:
        how = "read-write" if write else "read-only"
        raise StateStoreError(f"cannot open state store {path!r} {how}: {exc}") from exc
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {
                str(r[0])
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise StateStoreCorrupt(
                f"{path!r} is not a SQLite database or is damaged ({exc})."
            ) from exc
        if SNAPSHOT_TABLE not in tables:
            raise StateStoreCorrupt(
                f"{path!r} is a SQLite database but not a minions_actors state store "
                f"(no {SNAPSHOT_TABLE} table)."
            )
        check_pages(conn, path, "quick")
        conn.text_factory = tolerant_text
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        raise
    return path, conn, version, WORKFLOW_TABLE in tables
