"""The hardened unit does not break the service: a real app (SQLite state, file logs, the
metrics endpoint scraped over 127.0.0.1, a ChildProcess minion, a sidecar) runs under the
unit's system-call filter, address families and no-new-privileges, loaded with libseccomp
by tests/ops/sandbox.py since systemd cannot run as PID 1 here, and stops cleanly on SIGTERM.

The mount-namespace settings (ProtectSystem=, PrivateTmp=, PrivateDevices=...) are not
reproduced: the app writes only in its working directory (StateDirectory=) and /tmp."""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .recipes import ROOT

UNIT = ROOT / "deploy" / "systemd" / "minions.service"
MISSING = [what for what, there in (("systemd-analyze", shutil.which("systemd-analyze")),
                                    ("libseccomp", ctypes.util.find_library("seccomp")))
           if not there]
# .ci/run sets MINIONS_REQUIRE_SANDBOX=1 once deploy/check.sh has installed systemd
pytestmark = pytest.mark.skipif(
    bool(MISSING) and os.environ.get("MINIONS_REQUIRE_SANDBOX") != "1",
    reason=f"needs {' and '.join(MISSING)} (apt-get install systemd)")


@pytest.mark.timeout(180)
def test_the_app_runs_under_the_units_syscall_filter(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "ops" / "sandbox.py"), str(UNIT), "--",
         sys.executable, "-m", "minions_actors", "run", "tests.apps.sandboxed_app:main"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("w"), text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready"), (line, (tmp_path / "stderr").read_text()[-3000:])
        assert "child=5 sidecar=3628800" in line
        assert "packet=EAFNOSUPPORT" in line  # the filter is really on
        url = re.findall(r"url=(\S+)", line)[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        assert "minions_live_minions" in page and "minions_pool_workers" in page
        assert "process_resident_memory_bytes" in page  # /proc/self is readable
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "minions.db").exists() and (tmp_path / "logs" / "minions.log").exists()
