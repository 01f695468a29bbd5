"""End to end: the supervisord recipe of docs/deployment.md, run line by line against a real
supervisord, installs examples/service.py; kill -9 restarts it and its state resumes; a clean
exit (SIGTERM) stays down; supervisorctl stop stops it with exit status 0."""

from __future__ import annotations

import grp
import os
import pwd
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from .recipes import ROOT, Supervisord, console_lines, rooted, shipped, useradds, wait_for

PROGRAM = "minions"


def test_the_recipe_creates_the_user_and_directories_the_program_names() -> None:
    lines = console_lines("supervisord")
    program = shipped("supervisord/minions.conf")[f"program:{PROGRAM}"]
    assert program["user"] in useradds(lines), (
        f"the supervisord recipe never creates the user {program['user']!r} its program runs as")
    created = " ".join(line for line in lines if "install -d" in line or "mkdir" in line)
    for path in (program["directory"], str(Path(program["stdout_logfile"]).parent)):
        assert path in created, f"the supervisord recipe never creates {path} (the program uses it)"


def _adjust(conf: Path, tmp: Path) -> None:
    """What the recipe says to adjust (command=), plus what a test run needs: its paths under
    the temporary root, the current user instead of `minions`, a free metrics port, a 1 s
    startsecs instead of 5 (only to be quicker: the exit codes, restart and stop settings are
    the shipped ones)."""
    text = re.sub(r"(?m)^(directory|stdout_logfile)=.*$", lambda m: rooted(m[0], tmp),
                  conf.read_text())
    text = re.sub(r"(?m)^command=.*$",
                  f"command={sys.executable} -m minions_actors run service:main", text)
    text = re.sub(r"(?m)^user=.*$", f"user={pwd.getpwuid(os.getuid()).pw_name}", text)
    text = re.sub(r"(?m)^startsecs=.*$", "startsecs=1", text)
    text = re.sub(r"(?m)^environment=.*$",
                  f'environment=MINIONS_METRICS_PORT="0",PYTHONPATH="{ROOT}/examples:{ROOT}",'
                  'PYTHONUNBUFFERED="1"', text)
    conf.write_text(text)


@pytest.mark.timeout(120)
def test_the_documented_recipe_runs_restarts_and_stops(tmp_path: Path) -> None:
    sup = Supervisord(tmp_path)
    me = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    user = shipped("supervisord/minions.conf")[f"program:{PROGRAM}"]["user"]
    state_dir = tmp_path / "var" / "lib" / "minions"
    log = tmp_path / "var" / "log" / "minions" / "stdout.log"

    def boots() -> list[int]:
        text = log.read_text() if log.exists() else ""
        return [int(n) for n in re.findall(r"service up: boot #(\d+)", text)]

    def running(n: int) -> int:
        """The pid once boot #n runs and supervisord counts it as started."""
        wait_for(lambda: boots()[-1:] == [n], 30, f"boot #{n}")
        wait_for(lambda: sup.state(PROGRAM) == "RUNNING", 30, f"boot #{n} to be RUNNING")
        return sup.pid(PROGRAM)

    try:
        for line in console_lines("supervisord"):
            if "useradd " in line:
                continue  # the test runs as whoever runs it (the user is checked above)
            if line.startswith("sudo supervisorctl reread"):
                _adjust(tmp_path / "etc" / "supervisor" / "conf.d" / "minions.conf", tmp_path)
            sup.run_line(line.replace(f"-o {user} -g {user}", f"-o {me} -g {group}"))

        first = running(1)
        os.kill(first, signal.SIGKILL)
        second = running(2)
        assert second != first
        os.kill(second, signal.SIGTERM)  # a clean shutdown: exit status 0, expected
        wait_for(lambda: sup.state(PROGRAM) == "EXITED", 30, "the clean exit")
        assert sup.info(PROGRAM)["exitstatus"] == 0
        time.sleep(1.0)  # a restart would start at once: a second of EXITED is staying down
        assert sup.state(PROGRAM) == "EXITED" and boots() == [1, 2]
        assert sup.ctl("start", PROGRAM).returncode == 0  # it stayed down until asked
        running(3)
        assert boots() == [1, 2, 3]
        out = sup.ctl("stop", PROGRAM)
        assert out.returncode == 0, out.stdout
        assert sup.state(PROGRAM) == "STOPPED" and sup.info(PROGRAM)["exitstatus"] == 0
    finally:
        sup.close()
    assert boots() == [1, 2, 3]
    text = log.read_text()
    assert "the system failed" not in text
    assert (state_dir / "minions.db").exists()  # the state lives in the created directory
    assert (state_dir / "logs" / "minions.log").exists()
    assert oct(state_dir.stat().st_mode & 0o777) == "0o700"
