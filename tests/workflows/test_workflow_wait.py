"""Waiting for a workflow to finish (``system.wait_workflow``), and the error for a workflow
hidden by a method of the same name."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Minion,
    Retry,
    StartWorkflow,
    SystemNotRunning,
    Workflow,
    WorkflowError,
    WorkflowTimeout,
)

from ..conftest import QUIET

pytestmark = pytest.mark.usefixtures("execution")  # both execution modes


class Gated(Minion):
    """``run``'s second step waits for ``gate``; ``fail`` fails at once."""

    run = Workflow("first", "second")
    fail = Workflow("broken", retry=Retry(attempts=1))

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def first(self, ctx: dict[str, Any]) -> None:
        ctx["first"] = True

    def second(self, ctx: dict[str, Any]) -> None:
        assert self.gate.wait(10)
        ctx["second"] = True

    def broken(self, ctx: dict[str, Any]) -> None:
        raise ValueError("card declined")

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):  # hold the minion until the test is ready
            assert message.wait(10)
        if message == "wait-own":
            return self.system.wait_workflow("own", timeout=1)
        return None


@pytest.fixture
def system(tmp_path: Path) -> Any:
    system = ActorSystem.start(**{**QUIET, "state_store": tmp_path / "wf.db"})
    yield system
    system.shutdown()


def test_wait_returns_the_final_info(system: ActorSystem) -> None:
    gate = threading.Event()
    ref = system.spawn(Gated, gate, name="gated")
    ref.ask(StartWorkflow("run", "job-1", {"n": 1}), timeout=5)
    with pytest.raises(WorkflowTimeout, match=r"job-1.*step 'second'"):
        system.wait_workflow("job-1", timeout=0.2)
    gate.set()
    info = system.wait_workflow("job-1", timeout=10)
    assert info.status == "completed"
    assert info.context == {"n": 1, "first": True, "second": True}
    assert system.wait_workflow("job-1", timeout=0).status == "completed"  # already done

    ref.ask(StartWorkflow("fail", "job-2"), timeout=5)
    failed = system.wait_workflow("job-2", timeout=10)
    assert failed.status == "failed" and "card declined" in (failed.error or "")


def test_wait_errors(system: ActorSystem) -> None:
    gate = threading.Event()
    ref = system.spawn(Gated, gate, name="gated")
    with pytest.raises(WorkflowError, match="no workflow with id 'nope'"):
        system.wait_workflow("nope", timeout=1)
    # wait-own must be queued before the workflow's first step (queued once the start is
    # durable), or the blocking second step could come first: hold the minion meanwhile
    hold = threading.Event()
    ref.tell(hold)
    started = ref.ask(StartWorkflow("run", "own"), block=False)
    waiting = ref.ask("wait-own", block=False)
    hold.set()
    started.get(timeout=5)
    with pytest.raises(WorkflowError, match="cannot wait for its own workflow 'own'"):
        waiting.get(timeout=5)
    gate.set()


def test_shutdown_wakes_a_waiter(tmp_path: Path) -> None:
    system = ActorSystem.start(**{**QUIET, "state_store": tmp_path / "wf.db"})
    gate = threading.Event()
    outcome: list[BaseException] = []
    try:
        ref = system.spawn(Gated, gate, name="gated")
        ref.ask(StartWorkflow("run", "job-1"), timeout=5)

        def wait() -> None:
            try:
                system.wait_workflow("job-1")
            except BaseException as exc:
                outcome.append(exc)
            finally:
                gate.set()  # only now can the step, and so the shutdown, end

        waiter = threading.Thread(target=wait, name="test-waiter")
        waiter.start()
        system.shutdown()
        waiter.join(10)
        assert not waiter.is_alive()
    finally:
        gate.set()
        system.shutdown()
    assert len(outcome) == 1 and isinstance(outcome[0], SystemNotRunning), outcome
    assert "resumes there at the next start" in str(outcome[0])


def test_workflow_hidden_by_a_method_of_the_same_name(system: ActorSystem) -> None:
    class Shop(Minion):
        charge = Workflow("reserve", "charge")

        def reserve(self, ctx: dict[str, Any]) -> None: ...

        def charge(self, ctx: dict[str, Any]) -> None: ...  # type: ignore[no-redef]  # noqa: F811

    ref = system.spawn(Shop, name="shop")
    with pytest.raises(WorkflowError, match=r"Shop\.charge is a method: .*`charge = Workflow"):
        ref.ask(StartWorkflow("charge", "order-1"), timeout=5)
