"""``python -m minions_actors workflows signal|cancel``: a signal or a cancel for one workflow,
written into a store file whether its application runs or not.

A signal is always appended to the store's workflow inbox (the running application reads it
within half a second; a stopped one when the workflow resumes). A cancel is applied to the
record at once when no application owns the store; while one does (it keeps the running
workflow in memory and would write it back), it is appended to the inbox instead and
applied by that application; the CLI waits a few seconds to report it applied.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable

from minions_actors.errors import (
    StateStoreError,
    StateStoreLocked,
    WorkflowRecordNotFound,
    WorkflowStatusConflict,
)
from minions_actors.persistence.sqlite_common import (
    WF_SELECT,
    WORKFLOW_INBOX_TABLE,
    WORKFLOW_TABLE,
    classify_sqlite_error,
    immediate_transaction,
)
from minions_actors.persistence.sqlite_inbox import insert_request
from minions_actors.persistence.store_file import no_owner, open_existing_store
from minions_actors.records import WorkflowRecord

Change = Callable[[sqlite3.Connection, WorkflowRecord], None]


def _in_file(db_path: str, workflow_id: str, doing: str, change: Change,
             busy_timeout: float) -> WorkflowRecord:
    """Run ``change`` on a running workflow's record in one write transaction."""
    path, conn, version, _has = open_existing_store(db_path, write=True, timeout=busy_timeout)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if WORKFLOW_INBOX_TABLE not in tables:
            raise StateStoreError(
                f"cannot {doing} in {path!r}: its schema (version {version}) predates "
                "signals and cancels; start the application once with this minions_actors "
                "to upgrade it")
        try:
            with immediate_transaction(conn):  # waits up to busy_timeout for the app's writer
                row = conn.execute(f"{WF_SELECT} WHERE workflow_id = ?",
                                   (workflow_id,)).fetchone()
                if row is None:
                    raise WorkflowRecordNotFound(f"no workflow {workflow_id!r} in {path!r}")
                rec = WorkflowRecord(*row)
                if rec.finished:
                    raise WorkflowStatusConflict(
                        f"cannot {doing}: workflow {workflow_id!r} in {path!r} is {rec.status}, "
                        "not running (nothing was changed)")
                change(conn, rec)
        except sqlite3.Error as exc:
            raise classify_sqlite_error(exc, path) from exc
        return rec
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


def signal_workflow_in_file(db_path: str | os.PathLike[str], workflow_id: str, name: str,
                            payload_json: str = "null", *, sent_by: str = "cli",
                            busy_timeout: float = 5.0) -> WorkflowRecord:
    """Append the signal ``name`` (JSON ``payload_json``) for a running workflow to the
    inbox; raises :class:`WorkflowRecordNotFound` / :class:`WorkflowStatusConflict` (nothing
    written) for an unknown or finished workflow, ValueError for a payload that is not JSON."""
    if not name:
        raise ValueError("a signal name is a non-empty string")
    json.loads(payload_json)  # a payload that is not JSON is refused before any write
    return _in_file(os.fspath(db_path), workflow_id, f"signal {name!r}",
                    lambda conn, rec: _post(conn, rec, "signal", name, payload_json, sent_by),
                    busy_timeout)


def cancel_workflow_in_file(db_path: str | os.PathLike[str], workflow_id: str, *,
                            by: str = "cli", busy_timeout: float = 5.0
                            ) -> tuple[WorkflowRecord, bool]:
    """Cancel a running workflow: (its record, True) when applied to the file at once (no
    application owns it), (its record, False) when requested from the owning application
    through the inbox."""
    path = os.path.abspath(os.fspath(db_path))
    try:
        with no_owner(path, f"cancel workflow {workflow_id!r}"):
            return _in_file(path, workflow_id, "cancel", lambda c, r: _cancel_row(c, r, by),
                            busy_timeout), True
    except StateStoreLocked:  # the owner applies it (and writes the record)
        return _in_file(path, workflow_id, "cancel",
                        lambda c, r: _post(c, r, "cancel", "", "null", by), busy_timeout), False


def wait_cancelled(db_path: str | os.PathLike[str], workflow_id: str, timeout: float) -> bool:
    """Whether the owning application applied a cancel request within ``timeout`` seconds
    (read-only polls of the record)."""
    deadline = time.monotonic() + timeout
    while True:
        _path, conn, _v, _h = open_existing_store(db_path, write=False, timeout=5.0)
        try:
            row = conn.execute(f"SELECT status FROM {WORKFLOW_TABLE} WHERE workflow_id = ?",
                               (workflow_id,)).fetchone()
        finally:
            conn.close()
        if row is not None and row[0] == "cancelled":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)  # another process's commit has no event to wait on


def _post(conn: sqlite3.Connection, rec: WorkflowRecord, kind: str, name: str,
          payload_json: str, sent_by: str) -> None:
    insert_request(conn, rec.workflow_id, kind, name, payload_json, sent_by)


def _cancel_row(conn: sqlite3.Connection, rec: WorkflowRecord, by: str) -> None:
    now = time.time()
    rec.status, rec.error, rec.cancelled_by = "cancelled", f"cancelled by {by}", by
    rec.finished_at = rec.updated_at = now
    rec.wake_at = rec.waiting_for = None
    conn.execute(
        f"UPDATE {WORKFLOW_TABLE} SET status = 'cancelled', error = ?, cancelled_by = ?, "
        "finished_at = ?, updated_at = ?, wake_at = NULL, waiting_for = NULL "
        "WHERE workflow_id = ?", (rec.error, by, now, now, rec.workflow_id))
