"""A million minions in a fresh interpreter: spawn, one message each, stop all.

``python -m bench.millionchild N [SYSTEM]`` (SYSTEM: ``minions``, the default, or ``floor``,
the bare pooled scheduler of ``bench/systems/floor.py``) prints one JSON line with the
seconds of each phase and the peak RSS of the process (``ru_maxrss``), so earlier
scenarios cannot inflate it.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

from bench.common import WAIT, Latch

ROOT = Path(__file__).resolve().parent.parent


def measure(n: int, key: str = "minions") -> dict[str, float]:
    """Run the child with ``n`` actors of system ``key`` and return its metrics."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.millionchild", str(n), key],
        cwd=ROOT, capture_output=True, text=True, timeout=max(WAIT, n / 1000), check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"million child failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def floor(n: int) -> dict[str, float]:
    """The same run on the floor (no ActorSystem)."""
    from bench.systems.floor import FloorActor, FloorSystem

    class Once(FloorActor):
        def __init__(self, done: Latch) -> None:
            self.done = done

        def on_receive(self, message: Any) -> None:
            self.done.count_down()

    system = FloorSystem()
    with system.running():
        done = Latch(n)
        t0 = perf_counter()
        refs = [system.spawn(Once, done) for _ in range(n)]
        t1 = perf_counter()
        for ref in refs:
            ref.tell(1)
        done.wait(max(WAIT, n / 1000))
        t2 = perf_counter()
        system.stop_all(refs)
        t3 = perf_counter()
    return {"total": t3 - t0, "spawn": t1 - t0, "tell": t2 - t1, "stop": t3 - t2}


def _time_collections() -> list[float]:
    """Seconds the cyclic GC spends collecting, and its full (generation 2) collections,
    accumulated from now into the returned list."""
    spent = [0.0, 0]
    began = [0.0]

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = perf_counter()
            return
        spent[0] += perf_counter() - began[0]
        spent[1] += info["generation"] == 2

    gc.callbacks.append(note)
    return spent


def main(argv: list[str]) -> int:
    """Entry point of the child process."""
    n = int(argv[0])
    if "--gc-off" in argv:
        gc.disable()
    for arg in argv:
        if arg.startswith("--gc-threshold="):  # e.g. --gc-threshold=100000,50,100
            gc.set_threshold(*(int(x) for x in arg.split("=", 1)[1].split(",")))
    spent = _time_collections()
    cpu = process_time()
    times = floor(n) if "floor" in argv[1:] else minions(n, "--gc-freeze" in argv)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    # the CPU seconds of every thread: on a loaded machine, steadier than the wall clock
    print(json.dumps({**times, "peak_mib": peak, "cpu": process_time() - cpu,
                      "gc_s": spent[0], "gc_full": spent[1]}))
    return 0


def minions(n: int, freeze: bool = False) -> dict[str, float]:
    """Spawn ``n`` pooled minions under Gru, one message each, stop them all (``freeze``:
    ``gc.freeze()`` once they are spawned, the advice of docs/benchmarks.md)."""
    from loguru import logger

    from minions_actors import ActorSystem, Minion

    class Once(Minion):
        """Counts its one message down on a shared latch."""

        def __init__(self, done: Latch) -> None:
            super().__init__()
            self.done = done

        def on_receive(self, message: Any) -> None:
            self.done.count_down()

    logger.remove()
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    try:
        done = Latch(n)
        t0 = perf_counter()
        refs = [system.spawn(Once, done) for _ in range(n)]
        if freeze:
            gc.freeze()
        t1 = perf_counter()
        for ref in refs:
            ref.tell(1)
        done.wait(max(WAIT, n / 1000))
        t2 = perf_counter()
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            if not ref.actor_stopped.wait(WAIT):
                raise TimeoutError(f"{ref!r} did not stop")
        t3 = perf_counter()
    finally:
        system.shutdown(timeout=WAIT)
    return {"total": t3 - t0, "spawn": t1 - t0, "tell": t2 - t1, "stop": t3 - t2}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
