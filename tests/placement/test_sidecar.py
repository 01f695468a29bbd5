"""Sidecar minions: calls in a child process, crashes (real segfaults) and timeouts that
restart only the sidecar, clean shutdown without child processes or threads, clear errors."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Hooks, Minion, MinionStopped
from minions_actors.sidecar import Sidecar, SidecarCrashed, SidecarError, check_target

from ..apps import sidecar_funcs
from ..conftest import QUIET, Recorder, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

FUNCS = "tests.apps.sidecar_funcs:handle"
ROOT = Path(__file__).resolve().parents[2]


class Events(Hooks):
    """Records crashes, restarts and starts as (event, path, detail) tuples."""

    def __init__(self) -> None:
        self.rec = Recorder()

    def minion_started(self, cell: Any, restored: bool) -> None:
        self.rec.add(("started", cell.path))

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add(("crashed", cell.path, phase, exc))

    def minion_restarting(self, cell: Any, delay: float, cause: str) -> None:
        self.rec.add(("restarting", cell.path))

    def crashes(self, path: str) -> list[tuple[str, BaseException]]:
        return [(e[2], e[3]) for e in self.rec.only(lambda e: e[:2] == ("crashed", path))]

    def wait_crashes(self, path: str, n: int = 1) -> list[tuple[str, BaseException]]:
        self.rec.wait_for(lambda evs: sum(e[:2] == ("crashed", path) for e in evs) >= n)
        return self.crashes(path)


class Bystander(Minion):
    """An unrelated minion that must not notice a sidecar's crash."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.count
        self.count += message
        return None


def child_pids() -> set[int]:
    """Live and zombie children of this process, from /proc (no psutil)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.add(int(entry))
    return found


def tracker_pid() -> int | None:
    """multiprocessing's shared resource tracker: one per process, it exits with it."""
    return resource_tracker._resource_tracker._pid  # type: ignore[attr-defined,no-any-return]


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def system(events: Events) -> Iterator[ActorSystem]:
    """A quiet system that records lifecycle events; no child process may survive it."""
    before = child_pids()
    sys_ = ActorSystem.start(hooks=[events], **QUIET)
    try:
        yield sys_
    finally:
        assert sys_.shutdown(timeout=10)
    assert multiprocessing.active_children() == []
    left = child_pids() - before - {tracker_pid()}
    assert not left, f"child processes left behind: {left}"


def test_ask_returns_the_result_computed_in_a_child_process(system: ActorSystem) -> None:
    ref = system.spawn(Sidecar, FUNCS, name="calc", call_timeout=10.0)
    assert ref.ask(("echo", {"a": [1, 2.5, "x"], "b": b"\x00"}), timeout=10) == {
        "a": [1, 2.5, "x"], "b": b"\x00",
    }
    pid = ref.ask(("pid",), timeout=10)
    assert pid != os.getpid() and pid == ref.proxy().pid.get(timeout=5)
    ref.tell(("echo", None))  # a tell is a call whose result is dropped
    assert ref.ask(("echo", None), timeout=10) is None
    assert ref.proxy().call(("echo", 7)).get(timeout=10) == 7
    assert ref.proxy().start_seconds.get(timeout=5) > 0


def test_init_runs_once_in_the_child_not_in_the_parent(system: ActorSystem) -> None:
    ref = system.spawn(Sidecar, FUNCS, init="tests.apps.sidecar_funcs:setup", name="init")
    pid = ref.ask(("pid",), timeout=10)
    assert ref.ask(("setup",), timeout=10) == [f"setup in {pid}"]
    assert sidecar_funcs.SETUP_DONE == []


def test_exception_reaches_the_asker_and_the_sidecar_restarts_with_a_fresh_process(
    system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Sidecar, FUNCS, name="fragile")
    pid1 = ref.ask(("pid",), timeout=10)
    with pytest.raises(ValueError, match="bad input") as info:
        ref.ask(("raise", "bad input"), timeout=10)
    assert "sidecar_funcs.py" in str(info.value.__cause__)  # the child's traceback
    pid2 = ref.ask(("pid",), timeout=10)
    assert pid2 != pid1 and gone(pid1)
    # an exception that cannot be rebuilt here still reaches the asker, as SidecarError
    with pytest.raises(SidecarError, match=r"Unrebuildable: a/b .*cannot be pickled"):
        ref.ask(("unrebuildable",), timeout=10)
    assert ref.ask(("echo", "still serving"), timeout=10) == "still serving"
    assert [phase for phase, _ in events.crashes("fragile")] == ["message", "message"]


def test_a_real_segfault_crashes_only_the_sidecar_which_is_restarted(
    system: ActorSystem, events: Events,
) -> None:
    bystander = system.spawn(Bystander, name="bystander")
    ref = system.spawn(Sidecar, FUNCS, name="native")
    bystander.tell(2)
    pid1 = ref.ask(("pid",), timeout=10)
    with pytest.raises(SidecarCrashed, match=rf"process {pid1} killed by SIGSEGV") as info:
        ref.ask(("segfault",), timeout=10)
    assert info.value.exitcode == -signal.SIGSEGV and info.value.pid == pid1
    assert "'native'" in str(info.value) and FUNCS in str(info.value)
    assert gone(pid1)  # reaped, not a zombie
    pid2 = ref.ask(("pid",), timeout=10)  # served by the restarted sidecar
    assert pid2 != pid1
    bystander.tell(3)
    assert bystander.ask("get", timeout=5) == 5
    assert [phase for phase, _ in events.crashes("native")] == ["message"]
    assert events.crashes("bystander") == []
    assert events.rec.count(("started", "bystander")) == 1
    assert events.rec.count(("restarting", "native")) == 1


def test_a_child_that_exits_is_a_crash_naming_the_exit_code(system: ActorSystem) -> None:
    ref = system.spawn(Sidecar, FUNCS, name="quitter")
    with pytest.raises(SidecarCrashed, match="exited with code 3"):
        ref.ask(("exit", 3), timeout=10)
    assert ref.ask(("echo", 1), timeout=10) == 1


def test_call_timeout_kills_the_hung_child(system: ActorSystem) -> None:
    ref = system.spawn(Sidecar, FUNCS, name="slow", call_timeout=0.3)
    pid1 = ref.ask(("pid",), timeout=10)
    t0 = time.monotonic()
    with pytest.raises(SidecarCrashed, match=rf"process {pid1} did not answer within 0.3s"):
        ref.ask(("hang", 30), timeout=10)
    assert time.monotonic() - t0 < 10  # not the 30 s of the hung call
    assert gone(pid1)
    assert ref.ask(("pid",), timeout=10) != pid1


def test_shutdown_leaves_no_child_process_and_no_thread(events: Events, tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    children_before = child_pids()
    system = ActorSystem.start(hooks=[events], **QUIET)
    idle = system.spawn(Sidecar, FUNCS, name="idle")
    busy = system.spawn(Sidecar, FUNCS, name="busy", call_timeout=None)
    pids = [idle.ask(("pid",), timeout=10), busy.ask(("pid",), timeout=10)]
    marker = tmp_path / "hanging"
    stuck = busy.ask(("hang", 60, str(marker)), block=False)
    wait_until(marker.exists, timeout=10, what="the call to be in flight")
    t0 = time.monotonic()
    assert system.shutdown(timeout=10)
    assert time.monotonic() - t0 < 10  # did not wait for the hung call (60 s)
    with pytest.raises(SidecarCrashed, match="stopping"):
        stuck.get(timeout=5)
    assert all(gone(pid) for pid in pids)
    assert multiprocessing.active_children() == []
    assert child_pids() - children_before - {tracker_pid()} == set()
    assert set(threading.enumerate()) == threads_before


def test_bad_targets_are_clear_errors(system: ActorSystem, events: Events) -> None:
    with pytest.raises(ValueError, match=r"'pkg\.module:function'"):
        check_target("nocolon")
    # malformed targets, or a top-level package that does not exist: refused by spawn()
    for target in ("nocolon", "no_such_module_xyz:f"):
        with pytest.raises((ValueError, ModuleNotFoundError)) as info:
            system.spawn(Sidecar, target, name="refused", restart="temporary")
        assert "pkg.module:function" in str(info.value) or "no_such_module_xyz" in str(
            info.value).lower()
    assert system.find("refused") is None
    # a function missing from an existing module is only known to the child: a crash
    cases = {
        "json:no_such_function": (AttributeError, "'json' has no attribute", "on_start"),
    }
    for target, (kind, text, phase) in cases.items():
        name = target.replace(":", "-")
        ref = system.spawn(Sidecar, target, name=name, restart="temporary")
        [(got_phase, exc)] = events.wait_crashes(name)
        assert (got_phase, type(exc)) == (phase, kind)
        assert text in str(exc)
        with pytest.raises(MinionStopped):
            ref.ask(("pid",), timeout=5)


def test_failing_init_and_bad_options_are_clear_errors(
    system: ActorSystem, events: Events,
) -> None:
    system.spawn(Sidecar, FUNCS, init="tests.apps.sidecar_funcs:failing_setup",
                 name="noinit", restart="temporary")
    system.spawn(Sidecar, FUNCS, start_method="teleport", name="nomethod",
                 restart="temporary")
    [(phase, exc)] = events.wait_crashes("noinit")
    assert phase == "on_start" and isinstance(exc, RuntimeError)
    assert "cannot be loaded" in str(exc) and "failing_setup" in str(exc.__cause__)
    [(phase, exc)] = events.wait_crashes("nomethod")
    assert phase == "init" and "start_method" in str(exc)


def test_unpicklable_messages_and_results_are_clear_errors(system: ActorSystem) -> None:
    ref = system.spawn(Sidecar, FUNCS, name="pickles")
    lock = threading.Lock()
    with pytest.raises(SidecarError, match="cannot send a lock message: it cannot be pickled"):
        ref.ask(lock, timeout=10)
    with pytest.raises(SidecarError, match="returned a lock that cannot be pickled"):
        ref.ask(("unpicklable",), timeout=10)
    assert ref.ask(("echo", "ok"), timeout=10) == "ok"


def test_segfault_example_prints_what_happens(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sidecar_segfault.py")], timeout=30,
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "call 1: strlen(b'hello') = 5, computed in another process: True",
        "call 2: strlen(b'bad') reads address 0 ...",
        "crash detected: SidecarCrashed, killed by SIGSEGV",
        "supervisor restarted 'native' 1 time(s)",
        "call 3: strlen(b'minions!') = 8, in a fresh process: True",
        "bystander undisturbed: count=3, started once: True",
        "clean shutdown: True, child processes left: 0",
    ]
    assert "Segmentation fault" in proc.stderr  # faulthandler's report from the child


UNGUARDED = '''
from minions_actors import ActorSystem, Hooks
from minions_actors.sidecar import Sidecar

class Crashes(Hooks):
    def minion_crashed(self, cell, exc, phase):
        print("crash:", type(exc).__name__, "__name__ == '__main__'" in str(exc), flush=True)

where = "parent" if __name__ == "__main__" else "child"  # the copy runs as __mp_main__
system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                           stderr_logs=False, handle_signals=False, hooks=[Crashes()])
ref = system.spawn(Sidecar, "operator:neg", name="neg", restart="temporary")
try:
    print(where, "got", ref.ask(1, timeout=30), flush=True)
except Exception as exc:
    print(where, "got", type(exc).__name__, flush=True)
system.shutdown()
'''


def test_a_main_script_without_the_guard_gets_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], timeout=30, capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the sidecar's process ran the script again: its copy could not start a sidecar
    assert sorted(proc.stdout.splitlines()) == [
        "child got MinionStopped", "crash: SidecarError True", "parent got -1",
    ]


def test_a_malformed_target_fails_at_spawn_time() -> None:
    from minions_actors import ActorSystem, Sidecar

    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    try:
        with pytest.raises(ValueError, match=r"pkg\.module:function"):
            system.spawn(Sidecar, "nocolon")
        assert system.cells() == []
    finally:
        system.shutdown()
