"""``inspect``'s view of the durable schedules a store holds (``self.schedules`` of
persistent minions): read from the open read-only connection, shown per minion."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from minions_actors.persistence.sqlite_common import SCHEDULE_TABLE, SELECT_SCHEDULES


def read_schedules(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One dict per stored schedule (path, key, class, kind, what it is, next due), or none
    when the file predates the table (schema version < 3)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (SCHEDULE_TABLE,)).fetchone()
    if not exists:
        return []
    return [_schedule(row) for row in conn.execute(SELECT_SCHEDULES).fetchall()]


def _schedule(row: tuple[Any, ...]) -> dict[str, Any]:
    path, key, cls, spec_json, next_due, updated_at = row
    try:
        spec = json.loads(spec_json)
    except (ValueError, TypeError):
        spec = {}
    kind = str(spec.get("kind", "?"))
    if kind == "cron":
        every = f"cron {spec.get('cron')!s} ({spec.get('tz')!s})"
    elif kind == "periodic":
        every = f"every {spec.get('seconds')}s"
    else:
        every = "once"
    return {
        "path": str(path), "key": str(key), "class": str(cls), "kind": kind, "every": every,
        "workflow": spec.get("workflow"), "missed": spec.get("missed"),
        "next_due": float(next_due), "updated_at": float(updated_at),
    }


def schedule_lines(schedules: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The rows of inspect's schedules table (after its header)."""
    return [
        (s["path"], s["key"], s["every"] + (f" -> workflow {s['workflow']}"
                                            if s["workflow"] else ""),
         str(s["missed"]), _when(s["next_due"]))
        for s in schedules
    ]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def with_schedules(minions: list[dict[str, Any]], schedules: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """``inspect --json``'s lines: each stored minion with a ``schedules`` list (its durable
    schedules, maybe empty), then a line per path that has schedules but no snapshot."""
    by_path: dict[str, list[dict[str, Any]]] = {}
    for s in schedules:
        by_path.setdefault(s["path"], []).append(
            {k: v for k, v in s.items() if k not in ("path", "class")})
    lines = [{**m, "schedules": by_path.pop(m["path"], [])} for m in minions]
    lines += [{"path": p, "class": next(s["class"] for s in schedules if s["path"] == p),
               "size_bytes": None, "updated_at": None, "schedules": rows}
              for p, rows in by_path.items()]
    return lines
