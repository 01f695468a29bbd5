"""Child-process placement: the same minion class, run in a child process, supervised and
persisted at home. Real processes, a real segfault, a real SQLite store."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    ChildProcess,
    ChildProcessCrashed,
    Minion,
    PlacementError,
    SidecarCrashed,
    SpawnError,
    StartWorkflow,
)

from ..apps.placed_minions import Fickle, Ledger, Steps, Stopper
from ..conftest import QUIET
from .test_sidecar import Events, child_pids, tracker_pid

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

HERE = ChildProcess(call_timeout=20.0)


@pytest.fixture
def events() -> Events:
    return Events()


def _start(events: Events, **options: Any) -> ActorSystem:
    return ActorSystem.start(hooks=[events], **{**QUIET, **options})


@pytest.fixture
def system(events: Events) -> Iterator[ActorSystem]:
    """A quiet system; no child process may survive its shutdown."""
    before = child_pids()
    sys_ = _start(events)
    try:
        yield sys_
    finally:
        assert sys_.shutdown(timeout=10)
    assert multiprocessing.active_children() == []
    left = child_pids() - before - {tracker_pid()}
    assert not left, f"child processes left behind: {left}"


def test_the_same_class_runs_in_a_child_process_with_tells_asks_and_proxies(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Ledger, 5, name="ledger", placement=HERE)
    pid = ref.ask("pid", timeout=20)
    assert pid != os.getpid()
    assert ref.ask(1, timeout=5) == 6
    proxy = ref.proxy()
    assert proxy.add(10).get(timeout=5) == 16
    assert proxy.total.get(timeout=5) == 16  # an attribute set in __init__, read there
    proxy.total = 20  # set there
    assert ref.ask("total", timeout=5) == 20
    assert proxy.where().get(timeout=5) == "ledger"  # the path is known where it runs
    assert system.get("ledger") is ref


def test_ten_thousand_tells_arrive_in_order(system: ActorSystem) -> None:
    ref = system.spawn(Ledger, name="ordered", placement=HERE)
    for i in range(10_000):
        ref.tell(i)
    assert ref.ask("seen", timeout=60) == list(range(10_000))


def test_a_segfault_is_a_crash_restarted_in_a_fresh_process_with_the_last_state(
    system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Ledger, name="native", placement=HERE)
    assert ref.ask(7, timeout=20) == 7
    pid1 = ref.ask("pid", timeout=5)
    with pytest.raises(ChildProcessCrashed, match=rf"process {pid1} killed by SIGSEGV") as info:
        ref.ask("segfault", timeout=20)
    assert isinstance(info.value, SidecarCrashed) and info.value.exitcode == -11
    [(phase, exc)] = events.wait_crashes("native")
    assert phase == "message" and isinstance(exc, ChildProcessCrashed)
    pid2 = ref.ask("pid", timeout=20)  # the restarted minion, in a new process
    assert pid2 != pid1 and not Path(f"/proc/{pid1}").exists()
    assert ref.ask("total", timeout=5) == 7


def test_an_exception_reaches_the_asker_and_the_state_rolls_back(
    system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Ledger, name="rollback", placement=HERE)
    ref.tell(3)
    pid1 = ref.ask("pid", timeout=20)
    with pytest.raises(ValueError, match="boom in the child") as info:
        ref.ask("boom", timeout=5)
    assert "placed_minions.py" in str(info.value.__cause__)  # the child's traceback
    events.wait_crashes("rollback")
    assert ref.ask("total", timeout=20) == 3  # not -1000: the last good snapshot
    assert ref.ask("pid", timeout=5) != pid1  # a process is never reused after a crash


def test_snapshots_are_stored_at_home_and_restore_in_a_new_system(
    tmp_path: Path, events: Events,
) -> None:
    db = tmp_path / "minions.db"
    first = _start(events, state_store=str(db))
    try:
        ref = first.spawn(Ledger, name="kept", placement=HERE)
        for n in (1, 2, 3):
            ref.tell(n)
        assert ref.ask("total", timeout=20) == 6
    finally:
        assert first.shutdown(timeout=10)
    second = _start(events, state_store=str(db))
    try:
        again = second.spawn(Ledger, name="kept", placement=HERE)
        assert again.ask("seen", timeout=20) == [1, 2, 3]
        local = second.spawn(Ledger, name="kept-local")  # the same state shape, in process
        assert local.ask("pid", timeout=5) == os.getpid()
    finally:
        assert second.shutdown(timeout=10)


def test_shutdown_runs_on_stop_in_the_child_and_leaves_no_process(
    tmp_path: Path, events: Events,
) -> None:
    marker = tmp_path / "stopped"
    before = child_pids()
    system = _start(events)
    ref = system.spawn(Stopper, str(marker), name="stopper", placement=HERE)
    pid = ref.ask("pid", timeout=20)
    assert system.shutdown(timeout=10)
    assert marker.read_text() == f"stopped in {pid}"
    assert child_pids() - before - {tracker_pid()} == set()


def test_what_stays_home_is_a_clear_error_in_placed_code(system: ActorSystem) -> None:
    ref = system.spawn(Stopper, "unused", name="homeless", placement=HERE)
    with pytest.raises(PlacementError, match=r"self\.spawn"):
        ref.ask("spawn", timeout=20)


def test_workflow_steps_run_in_the_child(system: ActorSystem) -> None:
    ref = system.spawn(Steps, name="steps", placement=HERE)
    ref.ask(StartWorkflow("chores", "wf-1", {}), timeout=20)
    info = system.wait_workflow("wf-1", timeout=20)
    assert info.status == "completed"
    assert info.context["first"] == info.context["second"] != os.getpid()


def test_bad_placements_are_clear_errors_at_spawn(system: ActorSystem) -> None:
    class Inner(Minion):
        pass

    with pytest.raises(SpawnError, match="define the class at module level"):
        system.spawn(Inner, placement=HERE)
    with pytest.raises(PlacementError, match="start_method"):
        ChildProcess(start_method="teleport")
    with pytest.raises(PlacementError, match="call_timeout"):
        ChildProcess(call_timeout=0)


def test_a_crash_inside_a_batch_of_tells_drops_only_the_crashing_message(
    system: ActorSystem, events: Events,
) -> None:
    # told before the child is up: they wait in the mailbox and travel as one batch
    ref = system.spawn(Ledger, name="batched", placement=HERE)
    for message in (1, 2, "boom", 3, 4):
        ref.tell(message)
    assert ref.ask("seen", timeout=20) == [1, 2, 3, 4]  # boom rolled back, 3 and 4 kept
    assert ref.ask("total", timeout=5) == 10
    assert len(events.crashes("batched")) == 1


def test_a_segfault_inside_a_batch_loses_no_other_message(
    system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Ledger, name="batched-native", placement=HERE)
    for message in (1, 2, "segfault", 3):
        ref.tell(message)
    assert ref.ask("seen", timeout=30) == [1, 2, 3]
    crashes = events.crashes("batched-native")
    assert len(crashes) == 2  # in the batch, then alone when the batch is handled again
    assert all(isinstance(exc, ChildProcessCrashed) for _, exc in crashes)


def test_ray_placement_without_ray_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if ray were not installed\n"
        "import minions_actors\n"
        "try:\n"
        "    minions_actors.Ray(num_cpus=1)\n"
        "except minions_actors.PlacementError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert "pip install 'minions-actors[ray]'" in out.stdout, out.stderr


class SnapshotErrors(Events):
    def snapshot_error(self, cell: Any, exc: BaseException, first: bool) -> None:
        self.rec.add(("snapshot_error", cell.path, str(exc)))


def test_a_failing_snapshot_in_the_child_is_reported_and_the_minion_runs_on() -> None:
    events = SnapshotErrors()
    system = _start(events)
    try:
        ref = system.spawn(Fickle, name="fickle", placement=HERE)
        assert ref.ask(2, timeout=20) == 2  # snapshot() raises there: reported, no crash
        assert ref.ask(1, timeout=20) == 3
        [(_, path, text)] = events.rec.only(lambda e: e[0] == "snapshot_error")
        assert path == "fickle" and "cannot snapshot two" in text
        assert events.crashes("fickle") == []
    finally:
        assert system.shutdown(timeout=10)


@pytest.mark.parametrize("how", ["abort", "sigkill"])
def test_abort_and_an_oom_kill_are_crashes_like_a_segfault(
    system: ActorSystem, events: Events, how: str,
) -> None:
    ref = system.spawn(Ledger, name=how, placement=HERE)
    assert ref.ask(2, timeout=20) == 2
    pid = ref.ask("pid", timeout=5)
    if how == "abort":
        with pytest.raises(ChildProcessCrashed, match="killed by SIGABRT"):
            ref.ask("abort", timeout=20)
    else:  # what the OOM killer does, here to an idle child: noticed without a message
        os.kill(pid, signal.SIGKILL)
    [(_, exc)] = events.wait_crashes(how)
    assert isinstance(exc, ChildProcessCrashed)
    if how == "sigkill":
        assert "killed by SIGKILL (out of memory?" in str(exc)
    assert ref.ask("total", timeout=20) == 2
    assert ref.ask("pid", timeout=5) != pid


def test_the_crash_error_keeps_its_class_when_pickled() -> None:
    exc = ChildProcessCrashed("gone", target="m:C", pid=7, exitcode=-9)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is ChildProcessCrashed
    assert (str(back), back.target, back.pid, back.exitcode) == ("gone", "m:C", 7, -9)


class Dropped(Events):
    def messages_dropped(self, cell: Any, count: int) -> None:
        self.rec.add(("dropped", cell.path, count))

    def dead_letter(self, cell: Any, message: Any, first: bool) -> None:
        self.rec.add(("dropped", cell.path, 1))


def test_the_rest_of_a_crashed_batch_of_a_temporary_minion_are_dead_letters() -> None:
    events = Dropped()
    system = _start(events)
    try:
        ref = system.spawn(Ledger, name="once", restart="temporary", placement=HERE)
        for message in (1, "boom", 2, 3):
            ref.tell(message)
        events.rec.wait_for(
            lambda evs: sum(e[2] for e in evs if e[:2] == ("dropped", "once")) == 2,
            timeout=20)
    finally:
        assert system.shutdown(timeout=10)
