"""``python -m minions_actors workflows retry|discard``: change one workflow record directly
in a store file (the application may be stopped), in one write transaction that waits up to
``busy_timeout`` seconds for the running application's writer to release its lock."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time

from minions_actors.errors import WorkflowRecordNotFound, WorkflowStatusConflict
from minions_actors.persistence.sqlite_common import (
    WF_SELECT,
    WORKFLOW_TABLE,
    classify_sqlite_error,
    immediate_transaction,
)
from minions_actors.persistence.store_file import no_owner, open_existing_store
from minions_actors.records import WORKFLOW_COLUMNS, WorkflowRecord

#: the schema version that added the wait columns (older files are read without them)
WAITS_SCHEMA = 3
_OLD_SELECT = f"SELECT {', '.join(WORKFLOW_COLUMNS[:13])} FROM {WORKFLOW_TABLE}"


def wf_select(version: int) -> str:
    """The workflow SELECT for a file of schema ``version`` (its columns, in record order)."""
    return WF_SELECT if version >= WAITS_SCHEMA else _OLD_SELECT


def _change_in_file(
    db_path: str | os.PathLike[str],
    workflow_id: str,
    action: str,
    allowed: frozenset[str] | None,
    busy_timeout: float,
) -> tuple[str, WorkflowRecord]:
    """Run ``action`` ("retry" or "discard") on one record in one write transaction."""
    with _guard(db_path, workflow_id, action, allowed):
        path, conn, version, has_workflows = open_existing_store(
            db_path, write=True, timeout=busy_timeout)
        try:
            if not has_workflows:
                raise WorkflowRecordNotFound(
                    f"no workflow {workflow_id!r} in {path!r}: the store has no "
                    f"{WORKFLOW_TABLE} table (it was never opened by a minions_actors with "
                    "workflows)"
                )
            try:
                # waits up to busy_timeout for the app's writer
                with immediate_transaction(conn):
                    row = conn.execute(f"{wf_select(version)} WHERE workflow_id = ?",
                                       (workflow_id,)).fetchone()
                    if row is None:
                        raise WorkflowRecordNotFound(f"no workflow {workflow_id!r} in {path!r}")
                    rec = WorkflowRecord(*row)
                    _check_status(rec, path, action, allowed)
                    _apply(conn, rec, action)
            except sqlite3.Error as exc:
                raise classify_sqlite_error(exc, path) from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        return path, rec


def _guard(db_path: str | os.PathLike[str], workflow_id: str, action: str,
           allowed: frozenset[str] | None) -> contextlib.AbstractContextManager[None]:
    """A forced discard needs the application stopped: its owner keeps running workflows in
    memory and would write the record back (the other changes stick while it runs)."""
    if action != "discard" or allowed is not None:
        return contextlib.nullcontext()
    return no_owner(os.path.abspath(os.fspath(db_path)),
                    f"discard workflow {workflow_id!r} with --force (force=True)")


def _check_status(
    rec: WorkflowRecord, path: str, action: str, allowed: frozenset[str] | None
) -> None:
    """Refuse ``action`` on a record whose status does not allow it."""
    if allowed is None or rec.status in allowed:
        return
    raise WorkflowStatusConflict(
        f"workflow {rec.workflow_id!r} in {path!r} is {rec.status}: "
        + (
            "only failed or aborted workflows can be retried"
            if action == "retry"
            else "discarding a running workflow needs force=True (--force), "
            "and only while its application is stopped, or the application "
            "writes it back at its next checkpoint"
        )
    )


def _apply(conn: sqlite3.Connection, rec: WorkflowRecord, action: str) -> None:
    """Retry (mark running again, attempts 0) or discard (delete) the record in the file."""
    if action == "retry":
        rec.status, rec.attempts, rec.error, rec.finished_at = "running", 0, None, None
        rec.updated_at = time.time()
        conn.execute(
            f"UPDATE {WORKFLOW_TABLE} SET status = 'running', attempts = 0, "
            "error = NULL, finished_at = NULL, updated_at = ? WHERE workflow_id = ?",
            (rec.updated_at, rec.workflow_id),
        )
    else:
        conn.execute(f"DELETE FROM {WORKFLOW_TABLE} WHERE workflow_id = ?", (rec.workflow_id,))


def retry_workflow_in_file(
    db_path: str | os.PathLike[str], workflow_id: str, *, busy_timeout: float = 5.0
) -> WorkflowRecord:
    """Mark a failed or aborted workflow to run again; returns the updated record.

    Sets status ``running``, ``attempts`` 0, clears ``error`` and ``finished_at``; the step
    to run (``next_step``) and the context are kept, so the workflow resumes at the step that
    failed the next time its minion starts. Raises :class:`WorkflowRecordNotFound` (a
    ``KeyError``) for an unknown id and :class:`WorkflowStatusConflict` (a ``ValueError``)
    for a running or completed workflow.
    """
    return _change_in_file(
        db_path, workflow_id, "retry", frozenset({"failed", "aborted"}), busy_timeout
    )[1]


def discard_workflow_in_file(
    db_path: str | os.PathLike[str],
    workflow_id: str,
    *,
    force: bool = False,
    busy_timeout: float = 5.0,
) -> WorkflowRecord:
    """Delete one workflow record from the file; returns the record as it was.

    A running workflow is refused (:class:`WorkflowStatusConflict`) unless ``force=True``,
    and ``force=True`` is refused (:class:`StateStoreLocked`, naming the owner's pid) while
    an application owns the store: it would write the workflow back. Unknown ids raise
    :class:`WorkflowRecordNotFound`.
    """
    allowed = None if force else frozenset({"completed", "failed", "aborted"})
    return _change_in_file(db_path, workflow_id, "discard", allowed, busy_timeout)[1]
