"""A step runs only once the checkpoint before it is on disk, whether the minion's own
thread committed it (nothing else queued to batch it with) or the store's writer did (a
backlog of steps): each step reads the file with a connection of its own."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow
from minions_actors.persistence import SQLiteStateStore

from ..conftest import wait_until
from ..persistence.test_persistence import QUIET

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes

STEPS = ("a", "b", "c", "d")


def on_disk(db: Path, workflow_id: str) -> tuple[int, str] | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT next_step, context_json FROM workflows "
                           "WHERE workflow_id = ?", (workflow_id,)).fetchone()
    finally:
        conn.close()
    return None if row is None else (int(row[0]), str(row[1]))


def flow_class(db: Path, seen: list[tuple[str, int, Any]], lock: threading.Lock) -> type:
    def step(index: int) -> Any:
        def run(self: Minion, context: dict[str, Any]) -> dict[str, Any]:
            wid = context["id"]
            with lock:
                seen.append((wid, index, on_disk(db, wid)))
            return {**context, "done": index + 1}

        return run

    attrs: dict[str, Any] = {name: step(i) for i, name in enumerate(STEPS)}
    attrs["flow"] = Workflow(*STEPS)
    return type("Checkpointed", (Minion,), attrs)


@pytest.mark.parametrize("how", ["asked one by one", "told all at once"])
def test_every_step_finds_its_checkpoint_on_disk(tmp_path: Path, how: str) -> None:
    db = tmp_path / "m.db"
    seen: list[tuple[str, int, Any]] = []
    system = ActorSystem.start(state_store=SQLiteStateStore(db, batch_interval=30.0), **QUIET)
    try:
        ref = system.spawn(flow_class(db, seen, threading.Lock()), name="flows")
        ids = [f"w{i}" for i in range(30)]
        for wid in ids:
            start = StartWorkflow("flow", wid, {"id": wid})
            if how == "asked one by one":
                ref.ask(start, timeout=30)
                assert on_disk(db, wid) is not None  # answered once durable
            else:
                ref.tell(start)
        wait_until(lambda: all((info := system.workflow(w)) is not None
                               and info.status == "completed" for w in ids),
                   timeout=60, what="every workflow completed")
    finally:
        system.shutdown()
    assert len(seen) == len(ids) * len(STEPS)
    for wid, index, row in seen:
        assert row is not None, f"{wid} step {index} ran before its start was on disk"
        next_step, context = row
        assert next_step == index, f"{wid} step {index} ran with checkpoint {next_step} on disk"
        assert (index == 0) == ('"done"' not in context)  # the context of that checkpoint
    for wid in ids:
        assert on_disk(db, wid) == (len(STEPS), f'{{"id":"{wid}","done":{len(STEPS)}}}')
