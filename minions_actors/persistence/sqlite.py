"""The default state store: one SQLite file, one writer thread, batched transactions.

The class is built in layers of concern: :mod:`.sqlite_core` (options, the write queue and
writer, sync waits, flush and close), :mod:`.sqlite_workflows` (workflow records), and here
the snapshot protocol and the quarantine; :mod:`.sqlite_open` opens the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from types import TracebackType

from minions_actors.errors import StateStoreClosed
from minions_actors.persistence.quarantine import (
    QUARANTINE_TABLE,
    SELECT_QUARANTINED,
    QuarantinedSnapshot,
    insert_quarantined,
    select_quarantined,
)
from minions_actors.persistence.records import StoredMinion, _check_text, _size, _utc
from minions_actors.persistence.sqlite_common import classify_sqlite_error, immediate_transaction
from minions_actors.persistence.sqlite_core import Durability as Durability
from minions_actors.persistence.sqlite_inbox import InboxTable
from minions_actors.persistence.sqlite_schedules import ScheduleTable


# ---------------------------------------------------------------------------- SQLite store
class SQLiteStateStore(ScheduleTable, InboxTable):
    """The default store: a SQLite file (WAL) written by one batching writer thread.

    ``durability="batched"`` (default): ``save`` returns at once; changes are committed at
    most ``batch_interval`` seconds (plus one commit) later, which is the window that
    ``kill -9`` can lose; ``flush()`` closes it. ``durability="sync"``: ``save`` returns only
    after the commit (``synchronous=FULL``), zero loss at a far lower rate.
    """

    # ------------------------------------------------------------------ protocol
    def load(self, path: str) -> str | None:
        """Newest snapshot of ``path`` (O(1): all rows were read once at open)."""
        entry = self._cache.get(path)
        return None if entry is None else entry[1]

    def load_many(self, paths: Iterable[str]) -> dict[str, str]:
        """Snapshots of the given paths that exist, as ``{path: state_json}``."""
        cache = self._cache
        found = ((p, cache.get(p)) for p in paths)
        return {p: e[1] for p, e in found if e is not None}

    def load_all(self) -> dict[str, str]:
        """Every stored snapshot as ``{path: state_json}``."""
        with self._q.cond:
            items = list(self._cache.items())
        return {p: e[1] for p, e in items}

    def save(self, path: str, minion_class: str, state_json: str) -> None:
        """Queue a snapshot; in sync mode also wait until it is committed."""
        _check_text(path, state_json)
        entry = (minion_class, state_json, time.time())
        q = self._q
        with q.lock:  # the condition's own lock: a C-level enter on the message path
            self._check_open(path, "save")
            if self._sync:
                self._sync_change(f"snapshot of {path!r}", "pending", path, entry,
                                  self._cache, entry)
                return
            q.pending[path] = entry
            self._cache[path] = entry
            self._accepted()

    def delete(self, path: str) -> None:
        """Queue the removal of ``path``'s snapshot (sync mode: wait for the commit)."""
        q = self._q
        with q.cond:
            self._check_open(path, "delete")
            if self._sync:
                self._sync_change(f"deletion of {path!r}", "pending", path, None,
                                  self._cache, None)
                return
            q.pending[path] = None
            self._cache.pop(path, None)
            self._accepted()

    def stored(self) -> list[StoredMinion]:
        """Metadata of every snapshot (including ones not yet committed), sorted by path."""
        with self._q.cond:
            items = sorted(self._cache.items())
        return [
            StoredMinion(path=p, minion_class=e[0], size_bytes=_size(e[1]), updated_at=_utc(e[2]))
            for p, e in items
        ]

    # ------------------------------------------------------------------ quarantine
    def quarantine(self, path: str, error: str) -> bool:
        """Move the snapshot of ``path`` to the quarantine table with ``error``; True if
        there was one. The copy is committed at once (on this thread); the removal from
        ``minion_snapshots`` goes through the writer like any delete."""
        with self._q.cond:
            entry = self._cache.get(path)
        if entry is None:
            return False
        minion_class, state_json, _ts = entry
        with self._conn_lock:
            if self._q.closed:
                raise StateStoreClosed(
                    f"state store {self.path!r} is closed; cannot quarantine {path!r}"
                )
            conn: sqlite3.Connection = self._db
            try:
                with immediate_transaction(conn):
                    insert_quarantined(conn, path, minion_class, state_json, error)
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc
        self.delete(path)
        return True

    def quarantined(self) -> list[QuarantinedSnapshot]:
        """Every quarantined snapshot, oldest first."""
        exists = self._read(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (QUARANTINE_TABLE,),
        )
        return select_quarantined(self._read(SELECT_QUARANTINED, ()) if exists else [])  # type: ignore[arg-type]

    def __enter__(self) -> SQLiteStateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SQLiteStateStore({self.path!r}, durability={self.durability!r}, "
            f"batch_interval={self.batch_interval})"
        )


