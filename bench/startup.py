"""Start-up: ``import minions_actors``, ``ActorSystem.start()`` with a store, shutdown, in a
fresh interpreter, against the interpreter's own start (``python -c pass``); also whether
numpy or pandas got imported (sqlite-utils, which the store used before, imported both).

``python -X importtime -c 'import minions_actors'`` shows where the import time goes.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from bench.common import Skip

_CHILD = """
import os, resource, sys, json
from minions_actors import ActorSystem
system = ActorSystem.start(state_store=os.path.join(sys.argv[1], "start.db"), metrics_port=None,
                           file_logs=False, stderr_logs=False, handle_signals=False)
system.shutdown()
print(json.dumps({"heavy": sorted(m for m in ("numpy", "pandas") if m in sys.modules),
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
RUNS = 5


def _wall(args: list[str]) -> tuple[float, str]:
    t0 = perf_counter()
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return perf_counter() - t0, out


def measure(runs: int = RUNS) -> dict[str, float]:
    """Medians of ``runs``: ``over`` (start-up minus the bare interpreter's, us) and
    ``rss_mib``; raises when numpy or pandas was imported."""
    if runs < 1:
        raise Skip("start-up is not timed in this mode (fresh interpreters take seconds)")
    bare, ours, heavy, rss = [], [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            bare.append(_wall(["-c", "pass"])[0])
            where = Path(tmp) / str(i)
            where.mkdir()
            wall, out = _wall(["-c", _CHILD, str(where)])
            ours.append(wall)
            got = json.loads(out.strip().splitlines()[-1])
            heavy += got["heavy"]
            rss = max(rss, got["rss_kib"] / 1024)
    if heavy:
        raise RuntimeError(f"start-up imported {sorted(set(heavy))}")
    return {"over": (statistics.median(ours) - statistics.median(bare)) * 1e6,
            "rss_mib": rss}


if __name__ == "__main__":
    print(measure())
