"""The benchmark suite runs end to end in smoke mode and writes valid JSON."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the smoke run takes 10-25 s alone and over 45 s beside other test runs on 2 cores
pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class SmokeRun:
    proc: subprocess.CompletedProcess[str]
    elapsed: float
    data: dict[str, Any]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One ``python -m bench --smoke`` run (all rows, the async ones included) that the tests
    below read: they only read its output, so a second run would measure nothing new."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time, not wall time: the size of smoke mode, whatever else runs on the machine
    elapsed = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return SmokeRun(proc, elapsed, json.loads(out.read_text()))


def test_bench_smoke_writes_json(smoke: SmokeRun) -> None:
    proc, elapsed, data = smoke.proc, smoke.elapsed, smoke.data
    assert elapsed < 40, f"smoke mode took {elapsed:.1f} s of CPU"
    assert data["meta"]["mode"] == "smoke"
    assert data["meta"]["leftovers"] == []
    measured = {(r["scenario"], r["system"]) for r in data["results"]}
    for scenario in ("tell_1to1", "tell_4to1", "ask", "ask_free", "pingpong", "restart",
                     "scaling_10"):
        assert (scenario, "minions") in measured, (scenario, proc.stdout[-2000:])
    assert ("tell_1to1", "pykka") in measured
    for row in data["results"]:
        # an RSS delta over 1,000 actors (smoke size) can come out below zero when the
        # allocator hands pages back meanwhile (seen on 3.13t): a figure, not a positive one
        positive = not row["scenario"].endswith("memory")
        assert row["values"] and all(v > 0 or not positive for v in row["values"]), row
        assert row["min"] <= row["median"] <= row["max"]
    assert {t["status"] for t in data["targets"]} <= {"met", "MISSED", "n/a"}
    assert "minions advantage" in proc.stdout


ASYNC_ROWS = {
    "async-sleep": ("minions-async", "asyncio-gather", "asyncio-queue"),
    "async-pingpong": ("minions-async", "minions-async-loop", "minions", "asyncio-queue"),
    "async-fanout": ("minions-async", "minions-async-loop", "minions", "asyncio-queue"),
    "async-ask": ("minions-async", "minions", "asyncio-queue"),
    "async-memory": ("minions-async", "asyncio-queue"),
}


def test_bench_smoke_async_rows_measure_async_minions_beside_the_asyncio_baselines(
    smoke: SmokeRun,
) -> None:
    proc, data = smoke.proc, smoke.data
    rows = [r for r in data["results"] if r["scenario"].startswith("async")]
    measured = {(r["scenario"], r["system"]) for r in rows}
    assert {r["scenario"] for r in rows} == set(ASYNC_ROWS)
    for scenario, systems in ASYNC_ROWS.items():
        for system in systems:
            assert (scenario, system) in measured, (scenario, system, proc.stdout[-3000:])
    for row in rows:
        # an RSS delta over 1,000 actors (smoke size) can come out below zero when the
        # allocator hands pages back meanwhile (seen on 3.13t): a figure, not a positive one
        positive = not row["scenario"].endswith("memory")
        assert row["values"] and all(v > 0 or not positive for v in row["values"]), row
        if row["system"] != "minions-async":  # compared with async minions, not sync ones
            assert row["advantage"] is not None, row
    from bench.async_scenarios import async_targets
    from bench.common import SMOKE

    names = {t.label for t in async_targets(SMOKE)}
    statuses = {t["target"]: t["status"] for t in data["targets"] if t["target"] in names}
    assert len(statuses) == 9, statuses  # the async targets; xoscar/Ray are left out
    peers_left_out = [t for t in statuses if "xoscar" in t or "Ray" in t]
    assert all(statuses[t] == "n/a" for t in peers_left_out), statuses
    assert all(statuses[t] in ("met", "MISSED") for t in statuses if t not in peers_left_out)


def test_only_and_systems_choose_the_rows(tmp_path: Path) -> None:
    out = tmp_path / "some.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", "async-ping,tell_1",
         "--systems", "minions,floor", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["meta"]["leftovers"] == []
    assert {r["scenario"] for r in data["results"]} == {"async-pingpong", "tell_1to1"}
    assert {r["system"] for r in data["results"] if r["scenario"] == "tell_1to1"} == {
        "minions", "floor"}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_one_cpu_pins_the_threads_started_meanwhile_and_restores_the_set() -> None:
    from bench.run import one_cpu

    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    with one_cpu(True):
        thread = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        thread.start()
        thread.join()
    assert seen == [{min(before)}]  # the ask scenario's actor threads share its CPU
    assert os.sched_getaffinity(0) == before
    with one_cpu(False):
        assert os.sched_getaffinity(0) == before
