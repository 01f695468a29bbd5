"""Async workflow steps: an ``async def`` step is awaited on the event loop as one of the
async minion's handlers; checkpoints, retries, aborts, a restart mid-step and resumption
after ``kill -9`` behave exactly as for sync steps. Real SQLite files, real processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    AbortWorkflow,
    ActorSystem,
    Backoff,
    Minion,
    Retry,
    StartWorkflow,
    Workflow,
)
from tests.conftest import QUIET, Recorder, wait_until

FAST = Backoff(initial=0.01, maximum=0.05, jitter=0)
ROOT = Path(__file__).resolve().parents[2]


class Orders(Minion):
    """reserve (async) -> charge (async, flaky by context) -> ship (sync)."""

    fulfil = Workflow("reserve", "charge", "ship",
                      retry=Retry(attempts=3, backoff=FAST, on=(ConnectionError,)))

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    async def reserve(self, ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.rec.add(("reserve", threading.current_thread().name))
        ctx["reserved"] = True  # changed in place, as a sync step may

    async def charge(self, ctx: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.rec.add(("charge", ctx["order"]))
        if self.rec.count(("charge", ctx["order"])) <= ctx.get("fail_charge", 0):
            raise ConnectionError("payment gateway down")
        if ctx.get("bug"):
            raise KeyError("not retryable")
        if ctx.get("abort"):
            raise AbortWorkflow("customer cancelled")
        if ctx.get("hang"):
            self.rec.add(("hanging", ctx["order"]))
            await asyncio.Event().wait()
        return {**ctx, "charged": 100}

    def ship(self, ctx: dict[str, Any]) -> None:
        self.rec.add(("ship", ctx["order"]))
        ctx["shipped"] = True

    async def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("unrelated bug")
        return message


def done(system: ActorSystem, wid: str, status: str = "completed") -> Any:
    return wait_until(lambda: (i := system.workflow(wid)) is not None and i.status == status
                      and i, 15, f"workflow {wid} {status} (now {system.workflow(wid)})")


@pytest.fixture
def system(tmp_path: Path) -> Any:
    sys_ = ActorSystem.start(**{**QUIET, "state_store": str(tmp_path / "wf.db")})
    yield sys_
    sys_.shutdown(timeout=15)


def test_async_steps_run_on_the_loop_with_their_context(system: ActorSystem,
                                                         rec: Recorder) -> None:
    ref = system.spawn(Orders, rec, name="orders")
    ref.ask(StartWorkflow("fulfil", "o-1", {"order": 1}), timeout=10)
    final = done(system, "o-1")
    assert final.context == {"order": 1, "reserved": True, "charged": 100, "shipped": True}
    assert ("reserve", "minions-loop") in rec.events
    assert ref.ask("still here", timeout=10) == "still here"


def test_an_async_step_is_retried_by_its_policy_then_fails_or_aborts(
        system: ActorSystem, rec: Recorder) -> None:
    ref = system.spawn(Orders, rec, name="orders")
    ref.tell(StartWorkflow("fulfil", "flaky", {"order": 2, "fail_charge": 2}))
    assert done(system, "flaky").context["charged"] == 100
    assert rec.count(("charge", 2)) == 3  # two failures, retried, then success
    ref.tell(StartWorkflow("fulfil", "down", {"order": 3, "fail_charge": 5}))
    failed = done(system, "down", "failed")
    assert failed.error == "ConnectionError: payment gateway down" and failed.attempts == 3
    ref.tell(StartWorkflow("fulfil", "bug", {"order": 4, "bug": True}))
    assert done(system, "bug", "failed").attempts == 1  # not retryable: no retry
    ref.tell(StartWorkflow("fulfil", "abort", {"order": 5, "abort": True}))
    assert done(system, "abort", "aborted").error == "customer cancelled"
    assert ("ship", 3) not in rec.events and ("ship", 5) not in rec.events
    assert ref.ask("alive", timeout=10) == "alive"  # a failing step is no crash


def test_a_restart_mid_step_runs_the_step_again(system: ActorSystem, rec: Recorder) -> None:
    class Once(Orders):
        async def charge(self, ctx: dict[str, Any]) -> dict[str, Any]:
            if self.rec.count(("hanging", ctx["order"])) == 0:  # the first try hangs
                self.rec.add(("hanging", ctx["order"]))
                self.create_task(self._bug())  # and a bug elsewhere restarts the minion
                await asyncio.Event().wait()
            return await super().charge(ctx)

        async def _bug(self) -> None:
            raise RuntimeError("unrelated bug")

    ref = system.spawn(Once, rec, name="orders")
    ref.tell(StartWorkflow("fulfil", "o-6", {"order": 6}))
    final = done(system, "o-6")  # the restart cancelled the step; the next incarnation ran it
    assert rec.count(("hanging", 6)) == 1 and rec.count(("charge", 6)) == 1
    assert final.context == {"order": 6, "reserved": True, "charged": 100, "shipped": True}


def test_with_max_concurrency_messages_run_beside_an_awaiting_step(
        system: ActorSystem, rec: Recorder) -> None:
    class Wide(Orders):
        max_concurrency = 2  # a message may run while a step awaits (one crashes it)

        async def charge(self, ctx: dict[str, Any]) -> dict[str, Any]:
            if self.rec.count(("hanging", ctx["order"])) == 0:
                self.rec.add(("hanging", ctx["order"]))
                await asyncio.Event().wait()
            return await super().charge(ctx)

    ref = system.spawn(Wide, rec, name="orders")
    ref.tell(StartWorkflow("fulfil", "o-8", {"order": 8}))
    rec.wait_for(lambda evs: ("hanging", 8) in evs, timeout=10)
    assert ref.ask("beside", timeout=10) == "beside"  # not queued behind the step
    ref.tell("crash")  # the restart cancels the step; the new incarnation runs it again
    final = done(system, "o-8")
    assert final.context["charged"] == 100 and rec.count(("charge", 8)) == 1


def test_a_private_async_step_of_a_sync_minion_is_refused() -> None:
    with pytest.raises(TypeError, match="'_step' is 'async def' but Sync is not an async"):
        class Sync(Minion):
            job = Workflow("_step")

            async def _step(self, ctx: dict[str, Any]) -> None:
                pass


CHILD = """
import asyncio, os, sys
from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow
db, ledger, epoch = sys.argv[1], sys.argv[2], sys.argv[3]

def note(line):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, f"{epoch} {line}\\n".encode())
    os.close(fd)

class Job(Minion):
    flow = Workflow("fetch", "wait", "finish")

    async def fetch(self, ctx):
        await asyncio.sleep(0)
        note("fetch")
        ctx["fetched"] = epoch

    async def wait(self, ctx):
        note("wait")
        if epoch == "1":
            print("WAITING", flush=True)
            await asyncio.Event().wait()  # killed here

    async def finish(self, ctx):
        note("finish")

system = ActorSystem.start(state_store=db, metrics_port=None, file_logs=False,
                           stderr_logs=False)
ref = system.spawn(Job, name="job")
ref.ask(StartWorkflow("flow", "w1", {}), timeout=10)
while (info := system.workflow("w1")) is None or info.status != "completed":
    system.wait(0.01)
print("DONE", info.context, flush=True)
system.shutdown()
"""


def test_an_async_workflow_resumes_after_kill_9_at_its_checkpoint(tmp_path: Path) -> None:
    script, db, ledger = tmp_path / "child.py", tmp_path / "wf.db", tmp_path / "ledger"
    script.write_text(CHILD)

    def child(epoch: int) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), str(db), str(ledger),
                                 str(epoch)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    first = child(1)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "WAITING"
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        first.kill()
        first.communicate()
    second = child(2)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "DONE {'fetched': '1'}" in out
    # fetch's checkpoint was durable: it is not run again; the interrupted step is
    assert ledger.read_text().split("\n") == ["1 fetch", "1 wait", "2 wait", "2 finish", ""]
