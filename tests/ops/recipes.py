"""The deployment recipes of docs/deployment.md, run for real under a temporary root.

`console_lines` reads a section's ``console`` block; `Supervisord` is a real supervisord
(from PyPI, the dev extra) on a unix socket in a temporary directory, laid out like Debian's
package (``<root>/etc/supervisor/conf.d/*.conf`` included), so the documented lines run
against it with only their absolute paths moved under the temporary root.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deployment.md"
BIN = Path(sys.executable).parent
SUPERVISORD = shutil.which("supervisord", path=str(BIN)) or shutil.which("supervisord")
SUPERVISORCTL = shutil.which("supervisorctl", path=str(BIN)) or shutil.which("supervisorctl")

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def console_lines(section: str) -> list[str]:
    """The commands (``$ `` lines) of the first console block under ``## <section>``."""
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = body.split("```console\n", 1)[1].split("```", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def shipped(rel: str) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",),
                                    strict=False)  # repeated systemd keys: the last wins
    ini.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are cased
    ini.read(ROOT / "deploy" / rel, encoding="utf-8")
    return ini


def useradds(lines: list[str]) -> set[str]:
    """The users the lines create (the last argument of each ``useradd``)."""
    return {shlex.split(line)[-1] for line in lines if "useradd " in line}


def rooted(line: str, root: Path) -> str:
    """``line`` with ``sudo`` dropped and its absolute paths (``/etc/...``, ``/var/...``,
    ``/usr/...``) moved under ``root``."""
    line = re.sub(r"\bsudo ", "", line)
    return re.sub(r"(?<![\w./])/(etc|var|usr)/", lambda m: f"{root}/{m.group(1)}/", line)


class Supervisord:
    """A real supervisord under ``root``, including ``root/etc/supervisor/conf.d/*.conf``."""

    def __init__(self, root: Path) -> None:
        assert SUPERVISORD and SUPERVISORCTL, (
            "supervisord not found: it comes with the dev extra (pip install -e .[dev])")
        self.root = root
        self.conf = root / "etc" / "supervisor" / "supervisord.conf"
        self.log = root / "supervisord.log"
        (root / "etc" / "supervisor" / "conf.d").mkdir(parents=True)
        self.conf.write_text(f"""
[supervisord]
nodaemon=true
logfile={self.log}
pidfile={root}/supervisord.pid
childlogdir={root}

[unix_http_server]
file={root}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{root}/supervisor.sock

[include]
files = {root}/etc/supervisor/conf.d/*.conf
""")
        self.proc = subprocess.Popen([SUPERVISORD, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 30, "supervisord to answer")

    @property
    def rpc(self) -> Any:
        """supervisord's XML-RPC on its socket, what supervisorctl uses: polling through it
        costs no Python start-up per poll (a fresh connection each time: a failed request
        leaves the transport unusable)."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.root}/supervisor.sock")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def _answers(self) -> bool:
        try:
            return self.rpc.getState()["statename"] == "RUNNING"  # type: ignore[no-any-return]
        except OSError:
            return False

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert SUPERVISORCTL
        return subprocess.run([SUPERVISORCTL, "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30)

    def run_line(self, line: str) -> None:
        """Run a documented line; ``supervisorctl`` talks to this supervisord."""
        for part in line.split("&&"):
            words = shlex.split(rooted(part, self.root))
            if words[0] == "supervisorctl":
                out = self.ctl(*words[1:])
            else:
                out = subprocess.run(words, cwd=ROOT, capture_output=True, text=True,
                                     timeout=30)
            assert out.returncode == 0 and "ERROR" not in out.stdout, (
                f"the documented line {line!r} failed: {out.stdout}{out.stderr}")

    def info(self, program: str) -> dict[str, Any]:
        """supervisord's view of the program: statename, pid, exitstatus..."""
        return self.rpc.getProcessInfo(program)  # type: ignore[no-any-return]

    def state(self, program: str) -> str:
        return str(self.info(program)["statename"])

    def pid(self, program: str) -> int:
        return int(self.info(program)["pid"])

    def close(self) -> None:
        self.proc.terminate()  # stops the programs with their stopsignal
        self.proc.wait(timeout=60)
