"""Free-threaded CPython beside GIL CPython, in one run: ``python -m bench.interpreters``.

Each interpreter runs the same scenarios in a child process of its own (``--child``), through
the public API only, and the parent prints them side by side with two ratios: the free-threaded
figure over the GIL one, and for the pool-size scenarios, 2 workers over 1. Interpreters are
given with ``--python PATH`` (twice or more); by default the parent makes (once) a virtualenv
with this checkout for pyenv's CPython 3.13 and for the 3.13t that ``.ci/python313t.sh`` builds.

Targets (issue 21): CPU-heavy handlers scale >= 1.6x from 1 to 2 workers on 3.13t; message
passing on 3.13t >= 0.7x of GIL 3.13. The same work on bare threads (no runtime) is measured
in the same child, so what the machine gave at that moment stands beside the pool's scaling;
``--repeat N`` runs each interpreter N times in turn and keeps each scenario's best.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

from bench.common import WAIT, Latch, rss_bytes

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minions-bench"

# name -> (unit, higher is better, message passing?)
SCENARIOS: dict[str, tuple[str, bool, bool]] = {
    "tell 1->1": ("msg/s", True, True),
    "ping-pong": ("round trips/s", True, True),
    "fan-out 10,000 minions, 1 worker": ("msg/s", True, True),
    "fan-out 10,000 minions, 2 workers": ("msg/s", True, True),
    "CPU-heavy handlers, 1 worker": ("msg/s", True, False),
    "CPU-heavy handlers, 2 workers": ("msg/s", True, False),
    "spawn 10,000": ("s", False, True),
    "memory per idle minion": ("KiB", False, False),
    # CPU time (every thread of the process) per message: what the other load on a shared
    # machine changes least, so the interpreters' own costs compare best here
    "tell 1->1, CPU per message": ("us", False, False),
    "ping-pong, CPU per round trip": ("us", False, False),
    # the floor the CPU-heavy rows are judged by: the same work on bare threads, no runtime
    "bare threads, same work, 1 thread": ("msg/s", True, False),
    "bare threads, same work, 2 threads": ("msg/s", True, False),
}
# The interpreter-only reference of each message-passing row: the same bodies on the floor
# (bench/systems/floor.py, a bare pooled scheduler in pure Python: deques, one run queue,
# worker threads). Its free/GIL ratio is what the interpreter alone loses on that work, so
# ours divided by it is the runtime's share (1.00: the runtime loses nothing more).
FLOOR = "floor: "
SHARED = ["tell 1->1", "ping-pong", "fan-out 10,000 minions, 1 worker",
          "fan-out 10,000 minions, 2 workers", "spawn 10,000", "tell 1->1, CPU per message",
          "ping-pong, CPU per round trip"]
SCENARIOS.update({FLOOR + name: (*SCENARIOS[name][:2], False) for name in SHARED})
CPU_WORK = 20_000  # _burn's loop count per CPU-heavy message (about 1-2 ms of Python)


# ---- the child: one interpreter's figures ------------------------------------------------

def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


class _SinkLogic:
    """Counts down a latch per message, after ``work`` loops of pure Python."""

    def __init__(self, latch: Latch | None = None, work: int = 0) -> None:
        super().__init__()
        self.latch, self.work = latch, work

    def on_receive(self, message: Any) -> Any:
        if self.work:
            _burn(self.work)
        if self.latch is not None:
            self.latch.count_down()
        return message


class _PongLogic:
    """Tells its peer the next number until ``rounds``; a ``("peer", ref)`` ask sets it."""

    def __init__(self, latch: Latch, rounds: int) -> None:
        super().__init__()
        self.latch, self.rounds = latch, rounds
        self.peer: Any = None

    def on_receive(self, message: Any) -> None:
        if isinstance(message, tuple):
            self.peer = message[1]
            return
        if message >= self.rounds:
            self.latch.count_down()
        else:
            self.peer.tell(message + 1)


def _scenarios(out: dict[str, float], prefix: str, scale: int, sink: Any,
               pong: Any) -> dict[str, Any]:
    """The message-passing bodies, each given a started system (ours or the floor's) whose
    ``spawn(cls, *args)`` returns a ref with ``tell`` and ``ask``; CPU rows go to ``out``."""

    def tell(system: Any) -> float:
        n = 50_000 * scale
        latch = Latch(n)
        ref = system.spawn(sink, latch)
        t0, c0 = perf_counter(), process_time()
        for i in range(n):
            ref.tell(i)
        latch.wait()
        out[prefix + "tell 1->1, CPU per message"] = (process_time() - c0) / n * 1e6
        return n / (perf_counter() - t0)

    def pingpong(system: Any) -> float:
        rounds = 10_000 * scale
        latch = Latch(1)
        a, b = system.spawn(pong, latch, rounds), system.spawn(pong, latch, rounds)
        a.ask(("peer", b), timeout=WAIT)
        b.ask(("peer", a), timeout=WAIT)
        t0, c0 = perf_counter(), process_time()
        a.tell(0)
        latch.wait()
        out[prefix + "ping-pong, CPU per round trip"] = \
            (process_time() - c0) / rounds * 2 * 1e6
        return rounds / 2 / (perf_counter() - t0)

    def flood(system: Any, minions: int, each: int, work: int = 0) -> float:
        """``each`` tells to each of ``minions`` minions doing ``work`` per message: msg/s."""
        latch = Latch(minions * each)
        refs = [system.spawn(sink, latch, work) for _ in range(minions)]
        t0 = perf_counter()
        for _ in range(each):
            for ref in refs:
                ref.tell(0)
        latch.wait()
        return minions * each / (perf_counter() - t0)

    def spawn(system: Any) -> float:
        t0 = perf_counter()
        refs = [system.spawn(sink) for _ in range(10_000)]
        took = perf_counter() - t0
        refs[-1].ask("ready", timeout=WAIT)
        return took

    return {"tell": tell, "pingpong": pingpong, "spawn": spawn,
            "fanout": lambda system: flood(system, 10_000, 5 * scale),
            "cpu": lambda system: flood(system, 8, 25 * scale, work=CPU_WORK)}


def _figures(quick: bool) -> dict[str, float]:
    from loguru import logger

    from bench.systems.floor import FloorActor, FloorSystem
    from minions_actors import ActorSystem, Minion

    logger.remove()
    quiet: dict[str, Any] = dict(state_store=None, metrics_port=None, file_logs=False,
                                 stderr_logs=False, handle_signals=False)
    scale = 1 if quick else 4

    class Sink(_SinkLogic, Minion):
        pass

    class Pong(_PongLogic, Minion):
        pass

    class FloorSink(_SinkLogic, FloorActor):
        pass

    class FloorPong(_PongLogic, FloorActor):
        pass

    out: dict[str, float] = {}
    ours = _scenarios(out, "", scale, Sink, Pong)
    floor = _scenarios(out, FLOOR, scale, FloorSink, FloorPong)

    def timed(pool_size: int | None, body: Any) -> float:
        system = ActorSystem.start(**quiet, pool_size=pool_size)
        try:
            return float(body(system))
        finally:
            system.shutdown(timeout=WAIT)

    def on_floor(workers: int | None, body: Any) -> float:
        system = FloorSystem(workers)
        with system.running():
            return float(body(system))

    def bare(threads: int) -> float:
        """The CPU-heavy rows' messages as plain calls split over ``threads`` threads."""
        n = 8 * 25 * scale
        pool = [threading.Thread(target=lambda: [_burn(CPU_WORK) for _ in range(n // threads)])
                for _ in range(threads)]
        t0 = perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return n / (perf_counter() - t0)

    def memory(system: Any) -> float:
        n = 5_000 * scale
        gc.collect()
        before = rss_bytes()
        refs = [system.spawn(Sink) for _ in range(n)]
        refs[-1].ask("ready", timeout=WAIT)
        gc.collect()
        return (rss_bytes() - before) / n / 1024

    out["memory per idle minion"] = timed(None, memory)  # first: a fresh heap
    for prefix, run, scenarios in (("", timed, ours), (FLOOR, on_floor, floor)):
        out[prefix + "tell 1->1"] = run(None, scenarios["tell"])
        out[prefix + "ping-pong"] = run(None, scenarios["pingpong"])
        out[prefix + "fan-out 10,000 minions, 1 worker"] = run(1, scenarios["fanout"])
        out[prefix + "fan-out 10,000 minions, 2 workers"] = run(2, scenarios["fanout"])
        out[prefix + "spawn 10,000"] = run(None, scenarios["spawn"])
    out["CPU-heavy handlers, 1 worker"] = timed(1, ours["cpu"])
    out["CPU-heavy handlers, 2 workers"] = timed(2, ours["cpu"])
    out["bare threads, same work, 1 thread"] = bare(1)
    out["bare threads, same work, 2 threads"] = bare(2)
    return out


def child(quick: bool) -> int:
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    figures = _figures(quick)
    label = f"{sys.version.split()[0]}{'' if gil else 't (no GIL)'}"
    print(json.dumps({"label": label, "gil": gil, "figures": figures,
                      "threads_left": threading.active_count()}))
    return 0


# ---- the parent: interpreters side by side -----------------------------------------------

def default_interpreters() -> list[str]:
    """Virtualenvs (made once, under ~/.cache/minions-bench) for pyenv's 3.13 and the 3.13t
    that .ci/python313t.sh builds (or finds in its cache)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    gil = sorted(root.glob("3.13.*/bin/python3.13"))
    if not gil:
        raise SystemExit(f"no CPython 3.13 under {root}: pass --python PATH twice")
    built = subprocess.run(["bash", str(ROOT / ".ci" / "python313t.sh")], check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return [_venv("3.13", str(gil[-1])), _venv("3.13t", built)]


def _venv(tag: str, base: str) -> str:
    venv = CACHE / f"venv-{tag}"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True)
    return str(py)


def run_child(python: str, quick: bool) -> dict[str, Any]:
    proc = subprocess.run([python, "-m", "bench.interpreters", "--child"]
                          + (["--quick"] if quick else []),
                          cwd=ROOT, capture_output=True, text=True, timeout=20 * WAIT,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def report(results: list[dict[str, Any]]) -> str:
    def fmt(value: float, unit: str) -> str:
        if unit in ("s", "KiB", "us"):
            return f"{value:.2f} {unit}"
        if value < 1000:
            return f"{value:.0f}"
        return f"{value / 1000:.1f}k" if value < 1e6 else f"{value / 1e6:.2f}M"

    base = next((r for r in results if r["gil"]), results[0])
    free = next((r for r in results if not r["gil"]), None)
    width = max(len(f"{name} ({unit})") for name, (unit, _, _) in SCENARIOS.items())
    lines = [f"{'scenario':{width}} " + " ".join(f"{r['label']:>18}" for r in results)
             + ("   free/GIL" if free else "")]
    for name, (unit, higher, _) in SCENARIOS.items():
        row = f"{name + ' (' + unit + ')':{width}} " + " ".join(
            f"{fmt(r['figures'][name], unit):>18}" for r in results)
        if free:
            ratio = free["figures"][name] / base["figures"][name]
            row += f"   {ratio if higher else 1 / ratio:.2f}x"
        lines.append(row)
    lines.append("")
    for r in results:
        f = r["figures"]
        cpu = f["CPU-heavy handlers, 2 workers"] / f["CPU-heavy handlers, 1 worker"]
        fan = f["fan-out 10,000 minions, 2 workers"] / f["fan-out 10,000 minions, 1 worker"]
        floor = (f["bare threads, same work, 2 threads"]
                 / f["bare threads, same work, 1 thread"])
        lines.append(f"{r['label']}: 2 workers / 1 worker: CPU-heavy {cpu:.2f}x, "
                     f"fan-out {fan:.2f}x (bare threads, same work: {floor:.2f}x)")
    if free:
        f = free["figures"]
        scale = f["CPU-heavy handlers, 2 workers"] / f["CPU-heavy handlers, 1 worker"]
        worst = min(
            (f[n] / base["figures"][n]) if SCENARIOS[n][1] else (base["figures"][n] / f[n])
            for n in SCENARIOS if SCENARIOS[n][2])
        lines.append(f"target: CPU-heavy handlers scale >= 1.6x on {free['label']}: "
                     f"{scale:.2f}x {'met' if scale >= 1.6 else 'MISSED'}")
        lines.append(f"target: message passing >= 0.7x of {base['label']}: worst "
                     f"{worst:.2f}x {'met' if worst >= 0.7 else 'MISSED'}")
        lines += runtime_share(base, free)
    return "\n".join(lines)


def runtime_share(base: dict[str, Any], free: dict[str, Any]) -> list[str]:
    """Per message-passing row: our free/GIL ratio over the floor's on the same work. 1.00:
    the runtime loses nothing beyond what the interpreter loses; below: its own cost."""

    def ratio(name: str) -> float:
        f, b = free["figures"][name], base["figures"][name]
        return f / b if SCENARIOS[name][1] else b / f

    lines = ["", f"the runtime's share ({free['label']} / {base['label']} of ours, over the "
             "same ratio of the floor: 1.00 = the runtime loses nothing beyond the interpreter)"]
    for name in SHARED:
        ours, floor = ratio(name), ratio(FLOOR + name)
        lines.append(f"  {name:36} ours {ours:.2f}x  floor {floor:.2f}x  share "
                     f"{ours / floor:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.interpreters", description=__doc__)
    p.add_argument("--python", action="append", help="an interpreter with minions_actors "
                   "importable (twice or more; default: 3.13 and 3.13t virtualenvs)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each interpreter, taken in "
                   "turn; each scenario shows its best (default 1)")
    p.add_argument("--median", action="store_true", help="with --repeat: each scenario shows "
                   "its median, not its best (a bimodal row is then not decided by one run)")
    p.add_argument("--json", help="also write every run's figures here (JSON)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.quick)
    pythons = args.python or default_interpreters()
    rounds = [[run_child(py, args.quick) for py in pythons] for _ in range(args.repeat)]
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=1))
    keep = median if args.median else best
    print(report([keep(list(runs)) for runs in zip(*rounds, strict=True)]))
    return 0


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One interpreter's best figure per scenario over repetitions: on a shared machine the
    other load only ever slows a run down, so the best is the least disturbed."""
    figures = {name: (max if SCENARIOS[name][1] else min)(r["figures"][name] for r in runs)
               for name in SCENARIOS}
    return {**runs[0], "figures": figures}


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One interpreter's median figure per scenario over repetitions (``--median``)."""
    figures = {name: statistics.median(r["figures"][name] for r in runs) for name in SCENARIOS}
    return {**runs[0], "figures": figures}


if __name__ == "__main__":
    sys.exit(main())
