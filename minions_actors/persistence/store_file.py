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
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from minions_actors.errors import (
    StateStoreCorrupt,
    StateStoreError,
    StateStoreFull,
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


# never follow a link planted at the lock path; O_NONBLOCK: a FIFO planted there cannot hang us
_LOCK_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _open_lock_file(path: str, db_path: str, *, create: bool) -> int | None:
    """An fd on the lock file, a regular file with no other name (a symlink, hard link, FIFO
    or device planted at the path is refused: we write to the file we open); None when it
    does not exist and ``create`` is false."""
    try:
        fd = os.open(path, (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | _LOCK_FLAGS,
                     0o600)
    except FileNotFoundError:
        if create:
            raise _open_error(db_path, path, "its directory is gone") from None
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateStoreError(_planted(db_path, path, "a symbolic link")) from None
        raise _open_error(db_path, path, exc.strerror or str(exc), exc) from exc
    st = os.fstat(fd)
    problem = ("not a regular file" if not stat.S_ISREG(st.st_mode) else
               f"a hard link with {st.st_nlink} names" if st.st_nlink > 1 else None)
    if problem is not None:
        os.close(fd)
        raise StateStoreError(_planted(db_path, path, problem))
    if create and st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.fchmod(fd, 0o600)
    return fd


def _planted(db_path: str, path: str, what: str) -> str:
    return (f"cannot open state store {db_path!r}: its lock file {path!r} is {what}; the "
            "runtime writes its pid into that file, so it must be a plain file of its own: "
            "remove it (the runtime creates it again) and find out who put it there.")


def _open_error(db_path: str, path: str, why: str, exc: OSError | None = None) -> StateStoreError:
    errno_ = exc.errno if exc is not None else None
    kind: type[StateStoreError] = (
        StateStoreReadOnly if isinstance(exc, PermissionError) or errno_ == errno.EROFS
        else StateStoreFull if errno_ in _FULL else StateStoreError)
    fix = "free disk space" if kind is StateStoreFull else "make the directory writable by " \
        "this user"
    return kind(f"cannot open state store {db_path!r}: cannot create its lock file {path!r} "
                f"({why}); {fix}.")


def _is_current(fd: int, path: str) -> bool:
    """True while ``fd`` is the file named ``path``: an owner that stops removes the lock
    file, so a lock taken on a file that was removed meanwhile protects nothing."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    here = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _remove_if_ours(fd: int, path: str) -> None:
    """Remove the lock file while ``fd`` holds it exclusively (safe: whoever opened it
    meanwhile sees, once it gets the lock, that it is no longer the current file)."""
    with contextlib.suppress(OSError):
        if _is_current(fd, path):
            os.unlink(path)


class OwnerLock:
    """This process's ownership of one store file; released by :meth:`release` or by death.

    The protocol: open the lock file, ``flock`` it, then check it is still the file at the
    path (else retry); the owner removes it, still locked, when it releases it cleanly.
    """

    def __init__(self, db_path: str, timeout: float) -> None:
        self.path = lock_path(db_path)
        deadline = time.monotonic() + timeout
        while True:
            fd = _open_lock_file(self.path, db_path, create=True)
            assert fd is not None
            try:
                taken = self._try_lock(fd, db_path)
                if taken and _is_current(fd, self.path):
                    self._write_pid(fd, db_path)
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            if not taken:  # read-only tools hold it shared for a moment
                if time.monotonic() >= deadline:
                    raise StateStoreLocked(
                        f"cannot open state store {db_path!r}: read-only tools kept its lock "
                        f"file {self.path!r} for longer than open_timeout ({timeout}s); "
                        "try again when they are done."
                    )
                time.sleep(_LOCK_POLL)
        self._fd: int | None = fd
        _held.add(fd)

    def _write_pid(self, fd: int, db_path: str) -> None:
        """Record our pid for the error another process gets; a full disk fails the open."""
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as exc:
            kind = StateStoreFull if exc.errno in _FULL else StateStoreError
            fix = ("the process's file size limit (RLIMIT_FSIZE, `ulimit -f`) is reached: "
                   "raise it (systemd: LimitFSIZE=)" if exc.errno == errno.EFBIG else
                   "free disk space and start again")
            raise kind(
                f"cannot open state store {db_path!r}: cannot write its lock file "
                f"{self.path!r} ({exc.strerror}); {fix}."
            ) from exc

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
        """Give up ownership (idempotent), removing the lock file first so a clean stop
        leaves nothing next to the store (a crash leaves it; the next owner reuses it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _held.discard(fd)
            _remove_if_ours(fd, self.path)
            os.close(fd)


@contextlib.contextmanager
def no_owner(db_path: str, doing: str) -> Iterator[None]:
    """Hold the store's lock file shared while ``doing`` (a change a running owner would
    overwrite from memory); an owner is a :class:`StateStoreLocked` naming its pid, and an
    owner that starts meanwhile waits (``open_timeout``) until the block ends."""
    # never created here (a lock file made by root, under sudo, would lock the app out);
    # a link, FIFO or device planted at the path is refused as at any open
    fd = _open_lock_file(lock_path(db_path), db_path, create=False)
    if fd is None:  # no lock file: nothing owns the store now
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
    lock_file: str = ""

    def close(self) -> None:
        try:
            super().close()
        finally:
            fd, self.lock_fd = self.lock_fd, None
            if fd is not None:
                _drop_shared(fd, self.lock_file)


def _reader_fd(path: str) -> int | None:
    """A reader's fd on the lock file, made if missing (None: it cannot be opened or made)."""
    try:
        fd = _open_lock_file(path, path, create=False)
        if fd is not None:
            return fd
        fd = _open_lock_file(path, path, create=True)
    except StateStoreError:
        return None
    assert fd is not None
    with contextlib.suppress(OSError):  # made by root's inspect: the store's owner can still
        st = os.stat(path.removesuffix(".lock"))  # use it if a crash leaves it
        os.fchown(fd, st.st_uid, st.st_gid)
    return fd


def _shared_lock(path: str) -> tuple[int | None, bool]:
    """(an fd holding a shared lock on the current lock file, or None; whether an owner
    holds it). No fd and no owner: the directory cannot be written, so no owner can run
    either."""
    while True:
        fd = _reader_fd(path)
        if fd is None:
            return None, False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None, True
        if _is_current(fd, path):
            return fd, False
        os.close(fd)


def _drop_shared(fd: int, path: str) -> None:
    """Close a reader's lock; the last reader of a store with no owner removes the file."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _remove_if_ours(fd, path)
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
        lock_fd, owned = _shared_lock(lock_path(db_path))
        immutable = not owned and not os.path.exists(db_path + "-wal")
        if not immutable and lock_fd is not None:
            _drop_shared(lock_fd, lock_path(db_path))
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
            _drop_shared(lock_fd, lock_path(db_path))
        raise
    conn.lock_fd = lock_fd
    conn.lock_file = lock_path(db_path)
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
