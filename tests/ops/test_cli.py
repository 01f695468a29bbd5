"""The command line and signal handling, through real subprocesses and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minions_actors", *args], cwd=cwd, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap_apps() -> Iterator[None]:
    """Kill any app process a test started and left running (a failing test included)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
    proc: subprocess.Popen[str] = subprocess.Popen(*args, **kwargs)
    _STARTED.append(proc)
    return proc


def start_app(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    proc = popen(
        [sys.executable, "-m", "minions_actors", "run", "tests.apps.signal_app:main"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "APP_DB": str(tmp_path / "app.db"), **env},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line + proc.stderr.read()
    return proc


def test_version_and_help(tmp_path: Path) -> None:
    out = run_cli("--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("minions_actors ")
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("run", "demo", "inspect"):
        assert command in out.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_gracefully_and_state_survives(tmp_path: Path, signum: int) -> None:
    proc = start_app(tmp_path, APP_ADD="3")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "on_stop total=3" in out
    again = start_app(tmp_path, APP_ADD="2")  # a new process continues from the snapshot
    assert again.stdout is not None
    again.terminate()
    out, err = again.communicate(timeout=30)
    assert again.returncode == 0, err
    assert "on_stop total=5" in out


def test_escalation_gives_a_failure_exit_code(tmp_path: Path) -> None:
    proc = start_app(tmp_path, APP_CRASH="1")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "the system failed" in err and "gave up" in err


def test_failed_start_and_bad_targets(tmp_path: Path) -> None:
    out = run_cli("run", "tests.apps.signal_app:fails", cwd=ROOT)
    assert out.returncode == 3
    assert "failed to start" in out.stderr and "cannot reach the database" in out.stderr
    out = run_cli("run", "tests.apps.signal_app:returns_nothing", cwd=ROOT)
    assert out.returncode == 3 and "must start one and return it" in out.stderr
    out = run_cli("run", "no.such.module:main", cwd=tmp_path)
    assert out.returncode == 2 and "cannot load" in out.stderr
    out = run_cli("run", "nocolon", cwd=tmp_path)
    assert out.returncode == 2 and "pkg.module:function" in out.stderr


def test_second_signal_forces_a_fast_exit(tmp_path: Path) -> None:
    app = tmp_path / "stuck_app.py"
    app.write_text(
        "import threading\n"
        "from minions_actors import ActorSystem, Minion\n"
        "class Stuck(Minion):\n"
        "    def on_receive(self, message):\n"
        "        print('BUSY', flush=True)\n"
        "        threading.Event().wait(60)\n"
        "def main():\n"
        "    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,\n"
        "                               shutdown_timeout=60)\n"
        "    system.spawn(Stuck, name='stuck').tell('go')\n"
        "    return system\n"
    )
    proc = popen(
        [sys.executable, "-m", "minions_actors", "run", "stuck_app:main"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "BUSY"
    proc.send_signal(signal.SIGTERM)  # graceful: waits for the stuck handler
    # Two identical signals pending at once are delivered to Python as one, so wait until
    # the first was handled (the runtime logs the shutdown) before sending the second.
    assert proc.stderr is not None
    for line in proc.stderr:
        if "shutting down" in line:
            break
    assert proc.poll() is None  # still waiting for the stuck handler
    proc.send_signal(signal.SIGTERM)  # second signal: fast exit
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM


def test_inspect_and_demo(tmp_path: Path) -> None:
    out = run_cli("demo", "--metrics-port", "0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "rolled back to its last good message" in out.stdout
    assert "one-for-all restarted a, b, c" in out.stdout
    assert "scraped minions_restarts_total" in out.stdout
    assert (tmp_path / "logs" / "minions.log").exists()
    again = run_cli("demo", "--metrics-port", "0", cwd=tmp_path)
    assert "total=60 entries=3" in again.stdout  # state survived the process
    out = run_cli("inspect", cwd=tmp_path)
    assert out.returncode == 0 and "ledger" in out.stdout and "Ledger" in out.stdout
    out = run_cli("inspect", str(tmp_path / "missing.db"), cwd=tmp_path)
    assert out.returncode == 2 and "missing.db" in out.stderr


def test_forgotten_shutdown_does_not_hang_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(
        "from minions_actors import ActorSystem, Minion\n"
        "class M(Minion):\n"
        "    def on_stop(self):\n"
        "        print('stopped', flush=True)\n"
        "system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False)\n"
        "system.spawn(M, name='m')\n"
        "print('main done', flush=True)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0
    assert out.stdout.splitlines() == ["main done", "stopped"]


def test_signal_handlers_are_restored_after_shutdown() -> None:
    import threading

    from minions_actors import ActorSystem

    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM)
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    assert signal.getsignal(signal.SIGTERM) != before
    system.shutdown()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_signal_delivered_to_another_thread_still_shuts_down(tmp_path: Path) -> None:
    # The main thread blocks SIGTERM, so the kernel must deliver it to the app's own thread;
    # Python still runs the handler on the main thread, which wait() wakes up to do.
    app = tmp_path / "other_thread_app.py"
    app.write_text(
        "import signal, threading\n"
        "from minions_actors import ActorSystem\n"
        "def main():\n"
        "    system = ActorSystem.start(state_store=None, metrics_port=None,\n"
        "                               file_logs=False)\n"
        "    threading.Thread(target=threading.Event().wait, args=(30,), name='app',\n"
        "                     daemon=True).start()\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
        "    print('READY', flush=True)\n"
        "    return system\n"
    )
    proc = popen(
        [sys.executable, "-m", "minions_actors", "run", "other_thread_app:main"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "shutting down" in err


@pytest.mark.parametrize("handler", ["runtime", "users-gru-shutdown"])
def test_a_signal_inside_the_runtimes_own_locks_does_not_deadlock(
    tmp_path: Path, handler: str
) -> None:
    # The signal is raised while the main thread holds a runtime lock, the worst moment.
    script = tmp_path / "reentrant.py"
    script.write_text(
        "import signal, sys\n"
        "from minions_actors import ActorSystem, Gru\n"
        "from minions_actors.testing import runtime_lock\n"
        "mine = sys.argv[1] == 'runtime'\n"
        "s = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,\n"
        "                      stderr_logs=False, handle_signals=mine)\n"
        "if not mine:  # the deployment guide's pattern\n"
        "    signal.signal(signal.SIGTERM, lambda *a: Gru.shutdown())\n"
        "with runtime_lock(s, 'shutdown' if mine else 'registry'):\n"
        "    signal.raise_signal(signal.SIGTERM)\n"
        "print('handled', flush=True)\n"
        "print('stopped', s.wait(10), flush=True)\n"
    )
    out = subprocess.run([sys.executable, str(script), handler], capture_output=True,
                         text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["handled", "stopped", "True"]
