"""End to end: a real supervisord runs examples/service.py; kill -9; it resumes its state."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPERVISORD = shutil.which("supervisord", path=str(Path(sys.executable).parent)) or shutil.which(
    "supervisord"
)


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(90)
def test_supervisord_restarts_a_killed_service_and_state_resumes(tmp_path: Path) -> None:
    assert SUPERVISORD, "supervisord not found: it comes with the dev extra (pip install -e .[dev])"
    log = tmp_path / "service.log"
    conf = tmp_path / "supervisord.conf"
    # The shipped program section, with only the machine-specific settings replaced: what
    # restarts the app, how it is stopped and which exit codes count are the shipped ones.
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read(ROOT / "deploy" / "supervisord" / "minions.conf")
    program = dict(shipped["program:minions"])
    program.pop("user", None)  # the test runs as whoever runs it
    program.update(
        command=f"{sys.executable} -m minions_actors run service:main",
        directory=str(tmp_path),
        environment=f'MINIONS_DB="{tmp_path}/minions.db",MINIONS_METRICS_PORT="0",'
                    f'PYTHONPATH="{ROOT}/examples:{ROOT}",PYTHONUNBUFFERED="1"',
        stdout_logfile=str(log),
        startsecs="0",  # the shipped 5 s would only slow the test down
    )
    assert program["autorestart"] == "unexpected" and program["exitcodes"] == "0"
    assert program["stopsignal"] == "TERM"
    body = "\n".join(f"{key}={value}" for key, value in program.items())
    conf.write_text(f"""
[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
childlogdir={tmp_path}

[unix_http_server]
file={tmp_path}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{tmp_path}/supervisor.sock

[program:minions]
{body}
""")
    sup = subprocess.Popen([SUPERVISORD, "-c", str(conf)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    def boots() -> list[int]:
        text = log.read_text() if log.exists() else ""
        return [int(n) for n in re.findall(r"service up: boot #(\d+)", text)]

    def program_pid() -> int:
        out = subprocess.run(
            [str(Path(SUPERVISORD).with_name("supervisorctl")), "-c", str(conf), "pid", "minions"],
            capture_output=True, text=True, timeout=10,
        )
        return int(out.stdout.strip()) if out.stdout.strip().isdigit() else 0

    try:
        wait_for(lambda: boots() == [1], 30, "the first boot")
        first_pid = wait_for(program_pid, 10, "the program's pid")
        os.kill(first_pid, signal.SIGKILL)
        wait_for(lambda: boots() == [1, 2], 30, "supervisord to restart the service")
        assert wait_for(program_pid, 10, "the new pid") != first_pid
    finally:
        sup.send_signal(signal.SIGTERM)  # stops the program with SIGTERM: graceful shutdown
        sup.wait(timeout=30)
    assert boots() == [1, 2]
    assert "the system failed" not in log.read_text()
    assert (tmp_path / "logs" / "minions.log").exists()  # file logs in the working directory
