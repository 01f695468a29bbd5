"""The SQLite store's workflow inbox: signals and cancel requests that any process may append
(this application's ``signal_workflow``, the CLI while the application runs), committed at
once on the caller's thread, read on the read connection, removed once applied."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from minions_actors.persistence.sqlite_common import (
    WORKFLOW_INBOX_TABLE,
    classify_sqlite_error,
    immediate_transaction,
)
from minions_actors.persistence.sqlite_workflows import WorkflowTable
from minions_actors.records import REQUEST_COLUMNS, REQUEST_KINDS, WorkflowRequest

#: the inbox SELECT, every column in :class:`WorkflowRequest` order
INBOX_SELECT = f"SELECT {', '.join(REQUEST_COLUMNS)} FROM {WORKFLOW_INBOX_TABLE}"


def insert_request(conn: sqlite3.Connection, workflow_id: str, kind: str, name: str,
                   payload_json: str, sent_by: str) -> int:
    """Append one request (the caller holds a write transaction); returns its ``seq``."""
    if kind not in REQUEST_KINDS:
        raise ValueError(f"a workflow request is one of {REQUEST_KINDS}, got {kind!r}")
    cur = conn.execute(
        f"INSERT INTO {WORKFLOW_INBOX_TABLE} (workflow_id, kind, name, payload_json, sent_by, "
        "sent_at) VALUES (?, ?, ?, ?, ?, ?)",
        (workflow_id, kind, name, payload_json, sent_by, time.time()))
    return int(cur.lastrowid or 0)


class InboxTable(WorkflowTable):
    """The inbox part of the SQLite store (``post_workflow_request`` and friends)."""

    def post_workflow_request(self, workflow_id: str, kind: str, name: str,
                              payload_json: str, sent_by: str) -> int:
        """Append a request, durable when this returns (its own transaction); its ``seq``."""
        with self._conn_lock:  # the writer is between commits while we hold this
            self._check_open(workflow_id, f"post a workflow {kind}")
            try:
                with immediate_transaction(self._db):
                    return insert_request(self._db, workflow_id, kind, name,
                                          payload_json, sent_by)
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc

    def workflow_requests(self, workflow_id: str | None = None,
                          after: int = 0) -> list[WorkflowRequest]:
        """The requests with ``seq > after`` (of one workflow, or all), oldest first."""
        where, params = "seq > ?", [after]
        params_t: list[Any] = params
        if workflow_id is not None:
            where, params_t = where + " AND workflow_id = ?", [after, workflow_id]
        rows = self._read(f"{INBOX_SELECT} WHERE {where} ORDER BY seq", params_t)
        return [WorkflowRequest(*r) for r in rows]

    def delete_workflow_requests(self, seqs: Iterable[int]) -> int:
        """Remove applied or stale requests; how many there were."""
        wanted = [(int(s),) for s in seqs]
        if not wanted:
            return 0
        with self._conn_lock:
            try:
                with immediate_transaction(self._db):
                    before = self._db.total_changes
                    self._db.executemany(
                        f"DELETE FROM {WORKFLOW_INBOX_TABLE} WHERE seq = ?", wanted)
                    return int(self._db.total_changes - before)
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, self.path) from exc
