"""Run the minions_actors benchmark suite and print medians, ranges and ratios to peers.

Usage (from the repository root)::

    python -m bench                  # full run (5 repetitions, under 15 minutes)
    python -m bench --quick          # about a minute
    python -m bench --smoke          # a few seconds (tests)
    python bench/run.py --json out.json --plot docs/_static/bench_scaling.png

Every scenario runs each system in turn within each repetition (the order rotates between
repetitions), so slow drift of the machine affects all systems alike. Results go to
``bench/results.json`` (``--json PATH``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.async_scenarios import async_targets, build_async
from bench.common import MODES, Sizes, Skip
from bench.report import (
    RESULT_HEADER,
    TARGET_HEADER,
    Row,
    evaluate,
    fmt,
    render,
    result_rows,
    table_rows,
)
from bench.scenarios import Scenario, build, targets
from bench.systems import SYSTEM_KEYS, make_system
from bench.systems.base import System

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "results.json"


# ------------------------------------------------------------------------ runner
@contextlib.contextmanager
def one_cpu(wanted: bool) -> Iterator[None]:
    """Pin this thread (and so every thread and process started meanwhile) to the first CPU
    it may run on, when ``wanted`` and the platform allows; restore the CPU set after."""
    getter = getattr(os, "sched_getaffinity", None)
    if not wanted or getter is None:
        yield
        return
    cpus = getter(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)



class Runner:
    """Runs the scenarios, alternating systems within each repetition."""

    def __init__(self, sizes: Sizes, systems: list[str], verbose: bool) -> None:
        self.sizes = sizes
        self.verbose = verbose
        self.adapters: dict[str, System] = {}
        self.enabled = systems
        self.rows: dict[tuple[str, str, str], Row] = {}
        self.notes: list[dict[str, str]] = []
        self.seconds: dict[str, float] = {}

    def adapter(self, key: str) -> System:
        if key not in self.adapters:
            self.adapters[key] = make_system(key)
        return self.adapters[key]

    def note(self, scenario: str, system: str, text: str) -> None:
        self.notes.append({"scenario": scenario, "system": system, "note": text})
        print(f"  note [{scenario} / {system}]: {text}", flush=True)

    def run(self, scenarios: list[Scenario], tmp: Path) -> None:
        for scen in scenarios:
            print(f"== {scen.title}", flush=True)
            t_scen = time.perf_counter()
            systems = [k for k in scen.systems if k in self.enabled]
            dead: set[str] = set()
            for key in systems:
                try:
                    self.adapter(key).check()
                except Skip as exc:
                    self.note(scen.key, key, str(exc))
                    dead.add(key)
            for rep in range(scen.reps or self.sizes.reps):
                shift = rep % max(1, len(systems))
                for key in systems[shift:] + systems[:shift]:
                    if key in dead:
                        continue
                    try:
                        with one_cpu(scen.one_cpu):
                            got = scen.run(self.adapter(key), self.sizes, tmp)
                    except Skip as exc:
                        self.note(scen.key, key, str(exc))
                        dead.add(key)
                        continue
                    except Exception as exc:
                        if self.verbose:
                            traceback.print_exc()
                        self.note(scen.key, key, f"error: {type(exc).__name__}: {exc}")
                        dead.add(key)
                        continue
                    self._record(scen, key, got)
                    if self.verbose:
                        shown = ", ".join(f"{m.key}={fmt(got[m.key], m.unit)}"
                                          for m in scen.metrics)
                        print(f"  rep {rep + 1} {key}: {shown}", flush=True)
            for key in systems:
                if key in dead:
                    continue
                shown = ", ".join(
                    f"{m.label} {fmt(self.rows[(scen.key, m.key, key)].median, m.unit)}"
                    for m in scen.metrics if (scen.key, m.key, key) in self.rows
                )
                print(f"  {key:<16} {shown}", flush=True)
            self.seconds[scen.key] = time.perf_counter() - t_scen
            if self.verbose:
                print(f"  ({self.seconds[scen.key]:.1f} s)", flush=True)

    def _record(self, scen: Scenario, key: str, got: dict[str, float]) -> None:
        for m in scen.metrics:
            row = self.rows.get((scen.key, m.key, key))
            if row is None:
                row = Row(scen.key, scen.title, m.key, m.label, m.unit, m.higher_is_better,
                          key, self.adapter(key).label)
                self.rows[(scen.key, m.key, key)] = row
            row.values.append(float(got[m.key]))

    def close(self) -> None:
        for adapter in self.adapters.values():
            try:
                adapter.close()
            except Exception as exc:
                print(f"warning: closing {adapter.key} failed: {exc}", file=sys.stderr)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("minions_actors", "pykka", "thespian", "ray", "dbos", "sqlite-utils",
                 "xoscar"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu, "python": platform.python_version(),
        "platform": platform.platform(), "versions": versions,
    }


def plot(runner: Runner, sizes: Sizes, path: Path) -> str | None:
    """Save the scaling plot (msg/s vs active actors); returns a note when impossible."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib); no plot"
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key in ("minions", "minions-dedicated", "pykka", "thespian-simple", "thespian-mp", "ray"):
        xs, ys, lo, hi = [], [], [], []
        for actors in sizes.scaling_actors:
            row = runner.rows.get((f"scaling_{actors}", "rate", key))
            if row is None:
                continue
            xs.append(actors)
            ys.append(row.median)
            lo.append(row.median - min(row.values))
            hi.append(max(row.values) - row.median)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3,
                        label=runner.adapter(key).label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("active actors (tells round-robin from one sender)")
    ax.set_ylabel("messages / s (median, min-max)")
    ax.set_title(f"Throughput vs number of active actors ({os.cpu_count()} cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None


def leftovers() -> list[str]:
    """Threads and child processes still alive after the run (should be none)."""
    threads = [t.name for t in threading.enumerate()
               if t is not threading.main_thread() and t.is_alive()]
    children = [p.name for p in multiprocessing.active_children()]
    return threads + children


# ------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about a minute (3 repetitions)")
    mode.add_argument("--smoke", action="store_true", help="a few seconds (tests)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file (JSON)")
    p.add_argument("--reps", type=int, help="repetitions (default per mode)")
    p.add_argument("--only", help="comma-separated scenario key prefixes (e.g. tell,ask)")
    p.add_argument("--systems", help=f"comma-separated systems ({', '.join(SYSTEM_KEYS)})")
    p.add_argument("--plot", type=Path, help="save the scaling plot (matplotlib) here")
    p.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    p.add_argument("-v", "--verbose", action="store_true", help="print every repetition")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; returns the process exit code (0 also when targets are missed)."""
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = MODES[mode]
    if args.reps:
        sizes = Sizes(**{**asdict(sizes), "reps": args.reps})
    systems = [k for k in SYSTEM_KEYS if k not in sizes.peers]
    if args.systems:
        wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = set(wanted) - set(SYSTEM_KEYS)
        if unknown:
            print(f"unknown systems: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        systems = [k for k in SYSTEM_KEYS if k in wanted]
    scenarios = build(sizes) + build_async(sizes)
    if args.only:
        prefixes = [p.strip() for p in args.only.split(",") if p.strip()]
        scenarios = [s for s in scenarios if any(s.key.startswith(p) for p in prefixes)]

    from loguru import logger

    logger.remove()  # the runtime's records go to a /dev/null sink (see systems/minions_sys)
    info = machine()
    print(f"minions_actors benchmarks, mode {mode}, {sizes.reps} repetitions; "
          f"{info['nproc']} cores, {info['cpu_model']}, Python {info['python']}", flush=True)
    runner = Runner(sizes, systems, args.verbose)
    if sizes.peers:
        runner.note("*", ",".join(sizes.peers), f"left out in {mode} mode")
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="minions-bench-") as tmp:
            runner.run(scenarios, Path(tmp))
    finally:
        runner.close()
    elapsed = time.perf_counter() - started

    rows = table_rows(runner, scenarios)
    chosen = {s.key for s in scenarios}
    goals = evaluate(runner, [g for g in targets(sizes) + async_targets(sizes)
                              if g.scenario in chosen], scenarios)
    goal_rows = [[g["target"], g.get("shown", "not measured"), g["status"]] for g in goals]
    print()
    print(render(RESULT_HEADER, rows, markdown=False))
    print()
    print(render(TARGET_HEADER, goal_rows, markdown=False))
    print(f"\nwall time {elapsed:.0f} s")

    plot_note = plot(runner, sizes, args.plot) if args.plot else None
    if plot_note:
        print(f"note: {plot_note}")
    left = leftovers()
    if left:
        print(f"warning: still alive after the run: {', '.join(left)}", file=sys.stderr)

    result = {
        "meta": {**info, "mode": mode, "sizes": asdict(sizes), "wall_seconds": elapsed,
                 "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "systems": systems,
                 "leftovers": left, "scenario_seconds": runner.seconds},
        "results": result_rows(runner, scenarios),
        "notes": runner.notes,
        "targets": goals,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {args.json}")
    if args.markdown:
        args.markdown.write_text(
            render(RESULT_HEADER, rows, markdown=True) + "\n\n"
            + render(TARGET_HEADER, goal_rows, markdown=True) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
