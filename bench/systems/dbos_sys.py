"""DBOS Transact with SQLite: the peer for checkpointed workflow steps.

DBOS keeps a process-global registry and launch state, so each repetition runs in a fresh
interpreter (``python -m bench.systems.dbos_sys WORKFLOWS STEPS DIR``) that prints one JSON
line. Optional: without ``dbos`` installed the scenario skips with a note.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

from bench.common import WAIT, Skip
from bench.systems.base import Metrics, System

ROOT = Path(__file__).resolve().parent.parent.parent


class DbosSystem(System):
    """DBOS workflows whose steps are checkpointed in a SQLite system database."""

    key = "dbos"
    label = "dbos (sqlite)"

    def check(self) -> None:
        if importlib.util.find_spec("dbos") is None:
            raise Skip("dbos is not installed (pip install dbos); DBOS peer skipped")

    def workflow(self, workflows: int, steps: int, tmp: Path) -> Metrics:
        self.check()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.systems.dbos_sys", str(workflows), str(steps),
             str(tmp)],
            cwd=ROOT, capture_output=True, text=True, timeout=WAIT, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"DBOS child failed: {proc.stderr.strip()[-800:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _child(workflows: int, steps: int, directory: Path) -> Metrics:
    """Run ``workflows`` concurrent workflows of ``steps`` steps each; steps per second."""
    from dbos import DBOS

    db = directory / f"dbos-{perf_counter()}.sqlite"
    DBOS(config={
        "name": "minions-bench",
        "system_database_url": f"sqlite:///{db}",
        "run_admin_server": False,
        "log_level": "ERROR",
    })

    @DBOS.step()
    def step(ctx: dict[str, Any]) -> dict[str, Any]:
        return {**ctx, "n": ctx["n"] + 1}

    @DBOS.workflow()
    def flow(ctx: dict[str, Any]) -> dict[str, Any]:
        for _ in range(steps):
            ctx = step(ctx)
        return ctx

    DBOS.launch()
    try:
        flow({"n": 0})  # warm-up
        t0 = perf_counter()
        handles = [DBOS.start_workflow(flow, {"n": 0}) for _ in range(workflows)]
        for handle in handles:
            assert handle.get_result()["n"] == steps
        elapsed = perf_counter() - t0
    finally:
        DBOS.destroy()
    return {"rate": workflows * steps / elapsed}


if __name__ == "__main__":
    print(json.dumps(_child(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))))
