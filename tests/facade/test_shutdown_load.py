"""Shutdown under load: bounded by its timeout whatever the backlog (real process, real signal)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from minions_actors import ActorSystem, Hooks, Minion, MinionStopped, testing
from minions_actors.persistence import SNAPSHOT_TABLE

from ..conftest import QUIET, wait_until

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes

ROOT = Path(__file__).resolve().parents[2]
# The stop is sequential (OTP order; in dedicated mode a thread hand-off per minion) beside two
# flooding threads that, without the GIL, own both cores: 50 hand-offs took over 5 s on a loaded
# 2-core machine (3.13t), and that is what the test asserts is bounded, not how fast it is.
SHUTDOWN_TIMEOUT = 20.0


def test_sigterm_with_a_flooded_backlog_exits_within_the_timeout(tmp_path: Path) -> None:
    db = tmp_path / "flood.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "minions_actors", "run", "tests.apps.flood_app:main"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "APP_DB": str(db), "APP_STOP_TIMEOUT": "0.5",
             "APP_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + (proc.stderr.read() if proc.stderr else "")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # the process must be gone within its shutdown timeout (plus interpreter exit)
        _, err = proc.communicate(timeout=SHUTDOWN_TIMEOUT + 5)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err[-3000:]
    assert took < SHUTDOWN_TIMEOUT + 2, f"exit took {took:.1f}s"
    assert "did not stop" not in err
    # dropped messages are accounted in bulk: at most one line per minion, with a count
    dropped = re.findall(r"minion (tally-\d+) stopped with (\d+) queued messages", err)
    assert dropped, err[-3000:]
    assert len({name for name, _ in dropped}) == len(dropped)
    assert sum(int(n) for _, n in dropped) > 0
    # and the store was flushed and closed: every minion has its row
    with sqlite3.connect(db) as con:
        paths = {row[0] for row in con.execute(f"select path from {SNAPSHOT_TABLE}")}
    assert {f"tally-{i}" for i in range(50)} <= paths


class Held(Minion):
    def on_receive(self, message: Any) -> None:
        if isinstance(message, tuple):
            entered, gate = message
            entered.set()
            gate.wait(10)  # holds the minion while messages queue up behind


class Holder(Minion):
    def on_start(self) -> None:
        self.spawn(Held, name="held")


class Drops(Hooks):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.singles = 0

    def messages_dropped(self, cell: Any, count: int) -> None:
        self.calls.append((cell.path, count))

    def dead_letter(self, cell: Any, message: Any, first: bool) -> None:
        self.singles += 1


def test_queued_messages_are_dropped_in_bulk_and_counted(tmp_path: Path) -> None:
    drops = Drops()
    records: list[Any] = []
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, hooks=[drops],
                               log_sinks=[(records.append, {"level": "DEBUG"})])
    try:
        holder = system.spawn(Holder, name="holder")
        held = wait_until(lambda: system.find("holder/held"))
        entered, gate = threading.Event(), threading.Event()
        held.tell((entered, gate))
        for i in range(1000):
            held.tell(i)
        assert entered.wait(5)
        threading.Timer(0.2, gate.set).start()
        assert holder.stop(timeout=5)  # stops its child first: the 1000 are never handled
        assert drops.calls == [("holder/held", 1000)] and drops.singles == 0
        lines = [str(r) for r in records if "queued messages" in str(r)]
        assert len(lines) == 1 and "holder/held stopped with 1000 queued messages" in lines[0]
        assert system.metrics is not None and system.metrics.url is not None
        with urllib.request.urlopen(system.metrics.url, timeout=5) as response:
            text = response.read().decode()
        counted = {s.labels.get("minion_class"): s.value
                   for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "minions_dead_letters_total"}
        assert counted.get("Held") == 1000
    finally:
        system.shutdown(timeout=10)


class Older(Minion):
    def __init__(self, out: list[Any]) -> None:
        super().__init__()
        self.out, self.seen = out, []

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        return f"answered {message}"

    def on_stop(self) -> None:
        self.out.append(("older saw", list(self.seen)))


class Younger(Minion):
    def __init__(self, older: Any, out: list[Any]) -> None:
        super().__init__()
        self.older, self.out = older, out

    def on_receive(self, message: Any) -> Any:
        return "up"

    def on_stop(self) -> None:
        # stopped first (younger): the older sibling still serves its last exchanges (OTP)
        self.older.tell("flush")
        try:
            self.out.append(self.older.ask("still there?", timeout=5))
        except Exception as exc:
            self.out.append(type(exc).__name__)


def test_on_stop_can_still_talk_to_an_older_sibling_during_shutdown() -> None:
    out: list[Any] = []
    system = ActorSystem.start(**QUIET)
    older = system.spawn(Older, out, name="older")
    assert system.spawn(Younger, older, out, name="younger").ask("up?", timeout=5) == "up"
    assert older.ask("ping", timeout=5) == "answered ping"
    assert system.shutdown(timeout=10) is True
    assert out == ["answered still there?", ("older saw", ["ping", "flush", "still there?"])]


class Gate(Minion):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple):
            entered, gate = message
            entered.set()
            gate.wait(5)
        return message


def test_after_shutdown_begins_outside_senders_are_refused_and_the_backlog_dropped() -> None:
    drops = Drops()
    system = ActorSystem.start(**QUIET, hooks=[drops])
    ref = system.spawn(Gate, name="gate")
    entered, gate = threading.Event(), threading.Event()
    ref.tell((entered, gate))
    for i in range(500):
        ref.tell(i)
    assert entered.wait(5)
    stopping = threading.Thread(target=system.shutdown, args=(10,), name="test-shutdown")
    stopping.start()
    wait_until(lambda: testing.halted(ref), what="the halt")
    try:
        ref.ask("late", timeout=5)
        raise AssertionError("an ask from outside the runtime was accepted during shutdown")
    except MinionStopped:
        pass
    ref.tell("late too")  # a dead letter at once, never queued
    gate.set()
    stopping.join(10)
    assert not stopping.is_alive() and not system.running
    assert drops.calls == [("gate", 500)], drops.calls
    assert drops.singles == 1
