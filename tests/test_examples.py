"""The programs in examples/ run to completion and print what their docstrings promise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], timeout=60, capture_output=True, text=True,
        cwd=cwd,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_quickstart(tmp_path: Path) -> None:
    out = run("quickstart.py", tmp_path).splitlines()
    assert out == [
        "ask('get') -> 15",
        "proxy().add(1) -> 16",
        "system.get('counter') is the same minion: True",
        "clean shutdown: True",
    ]
    assert list(tmp_path.iterdir()) == []  # no state store, no log files


def test_supervision_tree(tmp_path: Path) -> None:
    out = run("supervision_tree.py", tmp_path).splitlines()
    assert out == [
        "before: {'pool/w1': 2, 'pool/w2': 3, 'pool/w3': 4}",
        "after the crash, w2 did 1 job (fresh state + queued job)",
        "event: pool/w2 crashed in message: w2 cannot do 'bad job'",
        "event: pool/w2 restarting (ValueError: w2 cannot do 'bad job')",
        "same ref after restart: True True",
        "after: {'pool/w1': 2, 'pool/w2': 1, 'pool/w3': 4}",
        "starts: {'w1': 1, 'w2': 2, 'w3': 1}",
        "ask raised: w3 cannot do 'bad job'",
        "w3 after its restart did 0 jobs; w1 still did 2",
        "exit code: 0",
    ]


def test_strategies(tmp_path: Path) -> None:
    out = [line.strip() for line in run("strategies.py", tmp_path).splitlines()]
    assert out == [
        "OneForOne: crash b, start b",
        "restarted: b",
        "OneForAll: crash b, stop c, stop a, start a, start b, start c",
        "restarted: a, b, c",
        "RestForOne: crash b, stop c, start b, start c",
        "restarted: b, c",
        "exit code: 0",
    ]


@pytest.mark.parametrize("name", ["quickstart.py", "supervision_tree.py", "strategies.py"])
def test_examples_say_what_they_are(name: str) -> None:
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    assert source.startswith('"""'), f"{name} should open with a docstring saying what it shows"
    assert "system.shutdown()" in source


def test_from_pykka(tmp_path: Path) -> None:
    out = run("from_pykka.py", tmp_path).splitlines()
    assert out == [
        "pages to crawl: 3",
        "a pykka ActorRef: True",
        "pages crawled: 3",
        "on_stop: crawled ['a', 'b', 'c']",
        "exit code: 0",
    ]


def test_placement_child(tmp_path: Path) -> None:
    out = run("placement_child.py", tmp_path).splitlines()
    assert out == [
        "served in another process: True",
        "ask raised ChildProcessCrashed, killed by SIGSEGV: True",
        "restarted in a fresh process: True",
        "state after restart: 3",
        "clean shutdown: True",
    ]


@pytest.mark.ray
@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed: pip install -e '.[ray]'")
def test_placement_ray(tmp_path: Path) -> None:
    out = run("placement_ray.py", tmp_path).splitlines()
    assert out == [
        "total: 5050",
        "the actor died: RayActorLost, the minion is restarted",
        "total after the restart: 5050",
        "a new actor: True",
        "clean shutdown: True",
    ]


def test_many_minions(tmp_path: Path) -> None:
    assert run("many_minions.py", tmp_path).splitlines() == [
        "20,000 devices, threads added: 0",
        "sum of the last readings: 399980000",
        "the reader runs on: Reader (minion:reader)",
        "clean shutdown: True",
    ]


def test_resources_pipeline(tmp_path: Path) -> None:
    out = run("resources_pipeline.py", tmp_path).splitlines()
    assert out == [
        "banana: a fruit",
        "gru: the boss",
        "minion: a helper",
        "dictionary while its users run: open",
        "tail position (bytes): 18",
        'minions_resource_calls_total{method="define",resource="dictionary"} 3.0',
        'minions_pipeline_events_total{pipeline="tail"} 2.0',
        "dictionary: closed",
        "dictionary after shutdown: closed",
        "exit code: 0",
    ]
    assert list(tmp_path.iterdir()) == []  # everything in a temporary directory


def test_from_minions(tmp_path: Path) -> None:
    run_lines = [f"  [heartbeat-worker] heartbeat {n}" for n in range(1, 6)]
    out = run("from_minions.py", tmp_path).splitlines()
    assert out == [
        "run 1:",
        *run_lines[:3],
        "  saved by the store in this run: [1, 2, 3]",
        "  workflows completed in the file: 3",
        "  heartbeat store: closed",
        "  clean shutdown: True",
        "run 2 (the same state file, two more heartbeats):",
        *run_lines,
        "  saved by the store in this run: [4, 5]",  # 1-3 were not run again
        "  workflows completed in the file: 5",
        "  heartbeat store: closed",
        "  clean shutdown: True",
    ]
    assert list(tmp_path.iterdir()) == []  # the state file in a temporary directory


def test_async_crawler(tmp_path: Path) -> None:
    out = run("async_crawler.py", tmp_path).splitlines()
    assert out == [
        "run 1 (budget: 4 pages):",
        "  frontier at start: ['/']",
        "  fetched: ['/', '/a', '/b', '/c']",
        "  frontier left: ['/broken', '/d', '/e', '/f']",
        "run 2 (the rest):",
        "  frontier at start: ['/broken', '/d', '/e', '/f']",  # restored from the file
        "  fetched: ['/', '/a', '/b', '/c', '/d', '/e', '/f', '/g']",
        "  failed after 3 attempts: ['/broken']",
        "  retries: 5",  # /b, /e, /g once each; /broken twice
        "exit code: 0",
    ]
    assert list(tmp_path.iterdir()) == []


def test_async_app(tmp_path: Path) -> None:
    out = run("async_app.py", tmp_path).splitlines()
    assert out == [
        '200 {"quote": "Bello!", "served": 1}',
        '200 {"quote": "Poopaye!", "served": 2}',
        '404 {"error": "no such page: /missing"}',
        "three at once: ['200', '200', '200']",
        "served in all: 5",
        "clean shutdown: True",
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["from_minions.py", "async_crawler.py", "async_app.py",
                                  "async_pipeline.py"])
def test_async_examples_say_what_they_are(name: str) -> None:
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    assert source.startswith('"""'), f"{name} should open with a docstring saying what it shows"
    assert f"Run: python examples/{name}" in source


def test_async_pipeline(tmp_path: Path) -> None:
    out = run("async_pipeline.py", tmp_path).splitlines()
    assert out[:5] == [
        "prices opened",
        "o1: 3 x ACME at 12 = 36",
        "o2: 1 x INIT at 40 = 40",
        "o3: 2 x ACME at 12 = 24",
        "prices closed",  # at the shutdown, after the minions that use it
    ]
    # the next run: the desk opens prices on its first use while the feed answers its
    # committed position, two minions at once (on 3.13t either line came first)
    assert sorted(out[5:7]) == ["prices opened", "resumed at: 3"] and out[7:] == ["prices closed"]
    assert list(tmp_path.iterdir()) == []  # the state file in a temporary directory


def test_timers_poller(tmp_path: Path) -> None:
    out = run("timers_poller.py", tmp_path).splitlines()
    assert out == [
        "poll 1: fetched 'v1'",
        "poll 2: fetch failed (source busy), retry in 0.05 s",
        "retry: fetched 'v3'",
        "poll 3: fetched 'v4'",
        "poll 4: fetched 'v5'",
        "4 values, polling stopped; timers left: []",
        "idle for 0.3 s: ReceiveTimeout()",
        "clean shutdown: True",
    ]


def test_scheduled_poller(tmp_path: Path) -> None:
    out = run("scheduled_poller.py", tmp_path).splitlines()
    assert out == [
        "first run: 2 polls",
        "stored schedules: ['digest', 'poll']",
        "next digest: 03:00 Europe/Paris",
        "second run: 4 polls (the count came back with the snapshot)",
        "the digest is still due at the same time: True",
    ]
    assert (tmp_path / "poller.db").exists()


def test_workflow_approval(tmp_path: Path) -> None:
    out = run("workflow_approval.py", tmp_path).splitlines()
    assert out == [
        "exp-1: submitted, waiting for approval",
        "exp-2: submitted, waiting for approval",
        "exp-3: submitted, waiting for approval",
        "exp-1: approved by manager",
        "exp-1: paid",
        "exp-3: cancelled by finance",
        "exp-1: completed",
        "exp-2: aborted (no approval before the deadline)",
        "exp-3: cancelled (cancelled by finance)",
    ]
