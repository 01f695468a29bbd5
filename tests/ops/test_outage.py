"""A dependency outage (a top-level minion failing in on_start: "the database is down") is
ridden out by Gru's default strategy together with the shipped systemd unit and supervisord
program: the arithmetic of docs/deployment.md on the real objects and files, and real runs
whose dependency (a unix socket) comes back."""

from __future__ import annotations

import math
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from minions_actors.hosting.options import StartOptions
from minions_actors.supervision import time_to_give_up

from .recipes import DOC, ROOT, Supervisord, shipped, wait_for

UNIT = shipped("systemd/minions.service")
PROGRAM = shipped("supervisord/minions.conf")["program:minions"]
APP = "tests.apps.dependency_app:main"


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def unit_fails_after(lifetime: float) -> float:
    """When the shipped unit is left failed if every process lives ``lifetime`` seconds (the
    last process's exit; ``math.inf``: never). systemd's start limit is a window that opens
    at a start and lasts StartLimitIntervalSec; a start beyond StartLimitBurst inside it is
    refused (ratelimit_below() in systemd's src/basic/ratelimit.c)."""
    restart = seconds(UNIT["Service"]["RestartSec"])
    burst = int(UNIT["Unit"]["StartLimitBurst"])
    interval = seconds(UNIT["Unit"]["StartLimitIntervalSec"])
    begin, starts, now = -math.inf, 0, 0.0
    for _ in range(1000):
        if now - begin > interval:
            begin, starts = now, 1
        else:
            starts += 1
            if starts > burst:
                return now - restart
        now += lifetime + restart
    return math.inf


def test_gru_and_the_shipped_unit_ride_out_a_minute_the_arithmetic() -> None:
    gru = StartOptions().strategy
    assert gru is not None
    shortest, longest = time_to_give_up(gru)  # from the first failure, over the jitter
    assert shortest > 0, f"Gru's default {gru} gives up at once: no backoff"
    # Each process of an outage lives at least `shortest` (start-up comes on top).
    for lifetime in (shortest, longest, longest + 10):
        ridden = unit_fails_after(lifetime)
        assert ridden >= 60, (
            f"with Gru's default {gru} (gives up {shortest:.1f}-{longest:.1f} s after the first "
            f"failure) the shipped unit is left failed {ridden:.1f} s into an outage")
    # ...while a process that cannot start at all still ends in a failed unit
    assert unit_fails_after(1.0) < 60
    # supervisord: a give-up at Gru must come after startsecs (an exit from RUNNING, restarted
    # without limit), not count as one of the startretries failed starts
    assert seconds(PROGRAM["startsecs"]) < shortest
    doc = DOC.read_text(encoding="utf-8")
    for promise in (f"between **{shortest:.1f} and {longest:.1f} s**",
                    f"`RestartSec={UNIT['Service']['RestartSec']}`",
                    f"`StartLimitIntervalSec={UNIT['Unit']['StartLimitIntervalSec']}`",
                    f"`StartLimitBurst={UNIT['Unit']['StartLimitBurst']}`",
                    f"`startsecs={PROGRAM['startsecs']}`"):
        assert promise in doc, f"docs/deployment.md does not say {promise} (the shipped numbers)"


class Service:
    """``python -m minions_actors run`` of the dependency app, its stdout lines in a queue."""

    def __init__(self, dependency: Path) -> None:
        self.stderr = dependency.with_suffix(".stderr")  # a file: a pipe could fill and block
        with self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "minions_actors", "run", APP], cwd=ROOT, text=True,
                stdout=subprocess.PIPE, stderr=err,
                env={**os.environ, "APP_DEPENDENCY": str(dependency)})
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("EOF")

    def next_line(self, timeout: float) -> str:
        line = self.lines.get(timeout=timeout)
        if line == "EOF":
            self.proc.wait(timeout=30)
            err = self.stderr.read_text()[-2000:]
            raise AssertionError(f"the service exited ({self.proc.returncode}): {err}")
        return line

    def failures_until_up(self, timeout: float) -> list[float]:
        downs: list[float] = []
        while (line := self.next_line(timeout)) != "database up":
            downs.append(float(re.findall(r"down at ([\d.]+)", line)[0]))
        return downs


def listen(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    return server


@pytest.mark.timeout(120)
def test_a_dependency_that_comes_back_after_a_few_restarts(tmp_path: Path) -> None:
    dependency = tmp_path / "db.sock"
    service = Service(dependency)
    backoff = StartOptions().strategy.backoff  # type: ignore[union-attr]
    assert backoff is not None, "Gru's default strategy has no backoff"
    try:
        downs = []
        for n in range(4):  # the old default (3 restarts within 5 s) gave up at the 4th
            line = service.next_line(30)
            assert "database down" in line, f"failure {n + 1}: {line}"
            downs.append(float(re.findall(r"down at ([\d.]+)", line)[0]))
        for n in range(1, 4):  # restart n waited its backoff (start-up time only adds)
            assert downs[n] - downs[n - 1] >= backoff.bounds(n)[0], downs
        server = listen(dependency)
        service.failures_until_up(30)  # the next attempt, after a backoff, gets through
        assert service.proc.poll() is None
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=30) == 0, service.stderr.read_text()[-2000:]
        server.close()
    finally:
        if service.proc.poll() is None:
            service.proc.kill()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_gru_gives_up_in_the_documented_window(tmp_path: Path) -> None:
    shortest, longest = time_to_give_up(StartOptions().strategy)  # type: ignore[arg-type]
    service = Service(tmp_path / "never.sock")
    downs = []
    with pytest.raises(AssertionError, match=r"exited \(1\)"):
        while True:
            downs.append(float(re.findall(r"down at ([\d.]+)", service.next_line(60))[0]))
    gru = StartOptions().strategy
    assert gru is not None and len(downs) == gru.max_restarts + 1
    # on_start's own time and a loaded machine only add: generous above, exact below
    assert shortest <= downs[-1] - downs[0] <= longest + 15, (downs, shortest, longest)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_supervisord_rides_out_a_70_s_outage(tmp_path: Path) -> None:
    """The shipped program (startsecs=5 and all), a dependency down for 70 s."""
    dependency = tmp_path / "db.sock"
    sup = Supervisord(tmp_path)
    log = tmp_path / "stdout.log"
    body = "\n".join(f"{key}={value}" for key, value in PROGRAM.items()
                     if key not in ("user", "command", "directory", "stdout_logfile",
                                    "environment"))
    (tmp_path / "etc" / "supervisor" / "conf.d" / "minions.conf").write_text(f"""
[program:minions]
{body}
command={sys.executable} -m minions_actors run {APP}
directory={ROOT}
stdout_logfile={log}
environment=APP_DEPENDENCY="{dependency}",PYTHONUNBUFFERED="1"
""")
    try:
        sup.run_line("supervisorctl reread && supervisorctl update")
        started = time.monotonic()
        states = set()
        while time.monotonic() - started < 70:
            states.add(sup.state("minions"))
            time.sleep(0.5)
        server = listen(dependency)
        wait_for(lambda: "database up" in log.read_text(), 60, "the service to connect")
        wait_for(lambda: sup.state("minions") == "RUNNING", 30, "RUNNING")
        text = log.read_text()
        assert text.count("gave up") >= 2, text[-3000:]  # Gru gave up, supervisord restarted
        assert "FATAL" not in states and "BACKOFF" not in states
        server.close()
    finally:
        sup.close()
