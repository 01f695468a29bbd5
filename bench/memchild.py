"""Memory per actor, measured in a fresh interpreter so earlier runs cannot hide growth.

``python -m bench.memchild SYSTEM N`` starts system SYSTEM, spawns N idle actors and prints
one JSON line: ``{"kib": KiB of RSS growth per actor}`` (thread stacks included).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.common import WAIT

ROOT = Path(__file__).resolve().parent.parent


def measure(key: str, n: int) -> dict[str, float]:
    """Run the child for system ``key`` with ``n`` actors and return its metrics."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memchild", key, str(n)],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {key} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    """Entry point of the child process."""
    from loguru import logger

    from bench.systems import make_system

    logger.remove()
    key, n = argv[0], int(argv[1])
    system = make_system(key)
    try:
        result = system.memory_inproc(n)  # type: ignore[attr-defined]
    finally:
        system.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
