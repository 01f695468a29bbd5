"""Snapshots of async minions: written to a real SQLite file after each handled message,
restored after a crash and after a process restart, under both ways of starting."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from minions_actors import ActorSystem

from .conftest import Events, Runner
from .persistent import Tally

pytestmark = pytest.mark.timeout(90)

CHILD = str(Path(__file__).with_name("_snapshot_child.py"))


def stored(db: Path, path: str) -> object:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT state_json FROM minion_snapshots WHERE path = ?",
                           (path,)).fetchone()
    return None if row is None else json.loads(row[0])


def test_an_async_minions_snapshot_is_stored_and_restored_after_a_crash(
        run: Runner, tmp_path: Path) -> None:
    db, events = tmp_path / "state.db", Events()

    async def body(system: ActorSystem) -> int:
        ref = system.spawn(Tally, name="tally")
        assert await ref.ask_async(5, timeout=10) == 5
        assert await ref.ask_async(7, timeout=10) == 12
        await ref.tell_async("crash")
        total = await ref.ask_async("get", timeout=10)  # the new incarnation's
        assert await asyncio.to_thread(system.flush, 10)  # (a blocking call: off the loop)
        assert stored(db, "tally") == {"total": 12}
        return int(total)

    assert run(body, state_store=db, hooks=[events]) == 12
    assert [e[1:] for e in events.of("started")] == [("tally", False), ("tally", True)]
    assert stored(db, "tally") == {"total": 12}


@pytest.mark.parametrize("how", ["owned", "caller"])
def test_an_async_minions_snapshot_survives_a_process_restart(how: str, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    restored = []
    for n in (3, 4, 5):
        done = subprocess.run([sys.executable, CHILD, how, str(db), str(n)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESTORED")]
        restored.append(int(line.split()[1]))
    assert restored == [0, 3, 7]
    assert stored(db, "tally") == {"total": 12}
