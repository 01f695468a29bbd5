"""``python -m minions_actors inspect minions.db``: a table of what a state store holds.

``render_inspect`` and ``render_workflows`` open the file read-only (``mode=ro``; without a
running owner ``immutable``, so no ``-wal``/``-shm`` file is left behind), so inspecting a
store that a running system is writing is safe; nothing is changed and nothing but JSON
metadata is read. ``retry_workflow_in_file`` and ``discard_workflow_in_file`` change
one workflow record directly in the file (the application may be stopped); they wait up to
``busy_timeout`` seconds for the running application's writer to release its lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from minions_actors.ops.inspect_schedules import read_schedules, schedule_lines
from minions_actors.ops.workflow_edit import (
    WAITS_SCHEMA as _WAITS_SCHEMA,
)
from minions_actors.ops.workflow_edit import (
    discard_workflow_in_file,
    retry_workflow_in_file,
)
from minions_actors.ops.workflow_edit import (
    wf_select as _wf_select,
)
from minions_actors.persistence.records import _status_set
from minions_actors.persistence.sqlite_common import (
    SNAPSHOT_TABLE,
    WORKFLOW_TABLE,
)
from minions_actors.persistence.store_file import open_existing_store
from minions_actors.records import WORKFLOW_COLUMNS, WORKFLOW_STATUSES, WorkflowRecord
from minions_actors.support.text import not_utf8_columns, printable

__all__ = [
    "discard_workflow_in_file",
    "format_inspect",
    "format_workflows",
    "printable",
    "read_minions",
    "read_workflows",
    "render_inspect",
    "render_workflow",
    "render_workflows",
    "retry_workflow_in_file",
    "workflow_json",
]

#: Longest error text shown in the workflows table.
_ERROR_WIDTH = 60


class MinionsListing(NamedTuple):
    """What ``inspect`` reads: the store's path and schema version, one dict per stored
    minion (path, class, size_bytes, updated_at) and the workflow counts (None: no table)."""

    path: str
    version: int
    minions: list[dict[str, Any]]
    workflow_counts: str | None
    not_utf8: list[str]  # a warning per row that is not valid UTF-8
    schedules: list[dict[str, Any]] = []  # durable schedules (the default is never mutated)


class WorkflowsListing(NamedTuple):
    """What ``workflows list`` reads: the records and the counts by status."""

    path: str
    version: int
    has_table: bool
    records: list[WorkflowRecord]
    counts: str
    matched: int  # how many records match the filters (more than shown with a limit)
    not_utf8: list[str]  # a warning per record that is not valid UTF-8


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
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _workflow_counts(conn: sqlite3.Connection, version: int) -> str:
    """'2 running (1 sleeping), 10 completed' (statuses in their usual order; 'none' when
    empty); the running ones that sleep or wait for a signal are counted in brackets."""
    counts = dict(
        conn.execute(f"SELECT status, count(*) FROM {WORKFLOW_TABLE} GROUP BY status").fetchall()
    )
    if not counts:
        return "none"
    order = [*WORKFLOW_STATUSES, *sorted(set(counts) - set(WORKFLOW_STATUSES))]
    text = [f"{counts[s]} {s}" for s in order if s in counts]
    if version >= _WAITS_SCHEMA and "running" in counts:
        sleeping, waiting, first = conn.execute(
            f"SELECT sum(waiting_for IS NULL AND wake_at IS NOT NULL), "
            f"sum(waiting_for IS NOT NULL), min(wake_at) FROM {WORKFLOW_TABLE} "
            "WHERE status = 'running'"
        ).fetchone()
        waits = [f"{n} {what}" for n, what in ((sleeping, "sleeping"),
                                                 (waiting, "waiting for a signal")) if n]
        if first is not None:
            waits.append(f"next deadline {_when(first)}")
        if waits:
            text[0] += f" ({', '.join(waits)})"
    return ", ".join(text)



def _table(rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Align ``rows`` (the first is the header) into lines with a dashed rule below it;
    cells are escaped with :func:`printable`."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines: list[str] = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def read_minions(db_path: str | os.PathLike[str]) -> MinionsListing:
    """Read the stored minions of ``db_path`` (read-only): what ``inspect`` shows.

    Raises :class:`StateStoreError` (a :class:`StateStoreCorrupt` for a file that is not a
    store) with a message ready to print when the file is missing or unreadable.
    """
    path, conn, version, has_workflows = open_existing_store(db_path, write=False, timeout=5.0)
    try:
        rows = conn.execute(
            f"SELECT path, minion_class, size_bytes, updated_at FROM {SNAPSHOT_TABLE} ORDER BY path"
        ).fetchall()
        counts = _workflow_counts(conn, version) if has_workflows else None
        schedules = read_schedules(conn)
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    minions = [
        {"path": str(r[0]), "class": str(r[1]), "size_bytes": int(r[2]),
         "updated_at": float(r[3])}
        for r in rows
    ]
    bad = [_not_utf8("minion", r[0], cols) for r in rows
           if (cols := not_utf8_columns(("path", "minion_class"), r))]
    return MinionsListing(path, version, minions, counts, bad, schedules)


def render_inspect(db_path: str | os.PathLike[str]) -> str:
    """Render the minions stored in ``db_path`` as a text table (path, class, size, update).

    When the file has the workflows table, a last line counts workflows by status. Stored
    strings are escaped (:func:`printable`). Raises like :func:`read_minions`.
    """
    return format_inspect(read_minions(db_path))


def format_inspect(listing: MinionsListing) -> str:
    """The table of :func:`render_inspect` for a listing."""
    rows = listing.minions
    total = sum(m["size_bytes"] for m in rows)
    header = (
        f"{printable(listing.path)}: {len(rows)} stored minion{'s' if len(rows) != 1 else ''}, "
        f"{_human_size(total)} of snapshots, schema version {listing.version}"
    )
    lines = [header]
    if not rows:
        lines.append("(no snapshots stored)")
    else:
        table = [("PATH", "CLASS", "SIZE", "LAST UPDATE")] + [
            (m["path"], m["class"], _human_size(m["size_bytes"]), _when(m["updated_at"]))
            for m in rows
        ]
        lines += ["", *_table(table, right={2})]
    if listing.schedules:
        table = [("PATH", "SCHEDULE", "WHEN", "MISSED", "NEXT DUE")]
        lines += ["", f"durable schedules: {len(listing.schedules)}", "",
                  *_table(table + schedule_lines(listing.schedules), right=set())]
    if listing.workflow_counts is not None:
        lines += ["", f"workflows: {listing.workflow_counts}"]
    return "\n".join(lines)


def _short(text: str | None, width: int = _ERROR_WIDTH) -> str:
    """One line of at most ``width`` characters ('' for None)."""
    if not text:
        return ""
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 3] + "..."


def _step(rec: WorkflowRecord) -> str:
    if rec.step_name is None:
        return f"{rec.next_step} (done)" if rec.status == "completed" else str(rec.next_step)
    return f"{rec.next_step} {rec.step_name}{_waiting(rec)}"


def _waiting(rec: WorkflowRecord) -> str:
    """' (sleeping until <time>)' or ' (waiting for signal ...)' for a running workflow."""
    if rec.status != "running" or (rec.wake_at is None and rec.waiting_for is None):
        return ""
    until = "" if rec.wake_at is None else f" until {_when(rec.wake_at)}"
    if rec.waiting_for is None:
        return f" (sleeping{until})"
    return f" (waiting for signal {rec.waiting_for!r}{until})"


def _not_utf8(kind: str, name: object, columns: list[str]) -> str:
    """The warning for one row whose text is not valid UTF-8."""
    return (f"{kind} {printable(str(name))!r}: not valid UTF-8 in column "
            f"{', '.join(columns)} (each invalid byte is shown as a \\xNN escape)")


def _workflow_filter(
    status: str | None, workflow_id: str | None, since: float | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (or '') and its parameters for :func:`read_workflows`."""
    statuses = _status_set(status)
    where: list[str] = []
    params: list[Any] = []
    if statuses is not None:
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += sorted(statuses)
    if workflow_id is not None:
        where.append("workflow_id = ?")
        params.append(workflow_id)
    if since is not None:
        where.append("updated_at >= ?")
        params.append(since)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def read_workflows(
    db_path: str | os.PathLike[str], status: str | None = None, workflow_id: str | None = None,
    *, since: float | None = None, limit: int | None = None,
) -> WorkflowsListing:
    """Read the workflow records of ``db_path`` (read-only), optionally of one status, one
    id, or updated at or after ``since`` (unix time); with ``limit``, the ``limit`` newest
    (by creation). Ordered by creation time. Raises like :func:`read_minions`."""
    where, params = _workflow_filter(status, workflow_id, since)
    path, conn, version, has_workflows = open_existing_store(db_path, write=False, timeout=5.0)
    try:
        if not has_workflows:
            return WorkflowsListing(path, version, False, [], "none", 0, [])
        newest = " ORDER BY created_at DESC, workflow_id DESC"
        rows = conn.execute(_wf_select(version) + where + newest + (" LIMIT ?" if limit else ""),
                            [*params, limit] if limit else params).fetchall()
        rows.reverse()
        matched = len(rows) if not limit or len(rows) < limit else int(conn.execute(
            f"SELECT count(*) FROM {WORKFLOW_TABLE}{where}", params).fetchone()[0])
        counts = _workflow_counts(conn, version)
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    bad = [_not_utf8("workflow", row[0], cols) for row in rows
           if (cols := not_utf8_columns(WORKFLOW_COLUMNS, row))]
    records = [WorkflowRecord(*row) for row in rows]
    return WorkflowsListing(path, version, True, records, counts, matched, bad)


def render_workflows(
    db_path: str | os.PathLike[str], status: str | None = None
) -> str:
    """Render the workflow records of ``db_path`` (optionally one status) as a text table.

    Columns: id, minion, workflow, status, step (index and name of the next step), attempts,
    last update and the error (shortened to one line); stored strings are escaped
    (:func:`printable`). Opens the file read-only; raises like :func:`read_minions`.
    """
    return format_workflows(read_workflows(db_path, status), status)


def format_workflows(
    listing: WorkflowsListing, status: str | None = None, since: float | None = None
) -> str:
    """The table of :func:`render_workflows` for a listing read with those filters."""
    path, records = printable(listing.path), listing.records
    if not listing.has_table:
        return (
            f"{path}: no workflows (schema version {listing.version} has no {WORKFLOW_TABLE} "
            "table; it is added when a newer minions_actors opens the store)"
        )
    which = (f" with status {status}" if status is not None else "") + (
        f" updated since {_when(since)}" if since is not None else "")
    n, matched = len(records), listing.matched
    shown = f"the newest {n} of {matched}" if matched > n else str(n)
    header = f"{path}: {shown} workflow{'s' if matched != 1 else ''}{which} ({listing.counts})"
    if matched > n:
        header += "; --limit N shows more, --limit 0 all"
    if not records:
        return header + "\n(no workflows" + which + ")"
    table = [("ID", "MINION", "WORKFLOW", "STATUS", "STEP", "ATTEMPTS", "UPDATED", "ERROR")]
    table += [
        (
            r.workflow_id,
            r.minion_path,
            r.workflow_name,
            r.status,
            _step(r),
            str(r.attempts),
            _when(r.updated_at),
            _short(r.error),
        )
        for r in records
    ]
    return "\n".join([header, "", *_table(table, right={5})])


def workflow_json(rec: WorkflowRecord, context: bool = False) -> dict[str, Any]:
    """One workflow as the JSON object the CLI prints: :class:`WorkflowInfo`'s fields
    (``context`` only when asked: it holds application data)."""
    from minions_actors.workflows import WorkflowInfo

    try:
        info = dataclasses.asdict(WorkflowInfo.of(rec))
    except ValueError:  # a context that is not JSON (not valid UTF-8, say): shown as text
        info = dataclasses.asdict(WorkflowInfo.of(dataclasses.replace(rec, context_json="null")))
        info["context"] = rec.context_json
    if not context:
        del info["context"]
    return info


def render_workflow(rec: WorkflowRecord) -> str:
    """One workflow, field by field, with its context as indented JSON (escaped)."""
    info = workflow_json(rec, context=True)
    ctx = info.pop("context")
    lines = [
        f"{key}: {_when(v) if key.endswith('_at') and v is not None else printable(str(v))}"
        for key, v in info.items()
    ]
    lines += ["context:", json.dumps(ctx, indent=2, ensure_ascii=True, sort_keys=True)]
    return "\n".join(lines)
