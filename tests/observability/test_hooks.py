"""A hook that raises is reported with the hook's and the observer's names, and the other
observers still run (dramatiq's emit_before/emit_after do the same)."""

from __future__ import annotations

from typing import Any

from minions_actors import ActorSystem, Hooks, Minion
from minions_actors.observability.hooks import HookDispatcher, MinionView

from ..conftest import wait_until


class Echo(Minion):
    def on_receive(self, message: Any) -> Any:
        return message


class Broken(Hooks):
    def minion_started(self, cell: MinionView, restored: bool) -> None:
        raise RuntimeError("observer bug")


class Seen(Hooks):
    def __init__(self) -> None:
        self.started: list[str] = []

    def minion_started(self, cell: MinionView, restored: bool) -> None:
        self.started.append(cell.path)


def test_dispatcher_reports_a_failing_hook_and_runs_the_others() -> None:
    reports: list[tuple[str, str, str]] = []
    seen = Seen()
    hooks = HookDispatcher([Broken(), seen],
                           on_error=lambda name, obs, exc: reports.append(
                               (name, type(obs).__name__, str(exc))))
    view = type("View", (), {"path": "a/b"})()
    hooks.minion_started(view, False)
    assert reports == [("minion_started", "Broken", "observer bug")]
    assert seen.started == ["a/b"]


def test_system_logs_a_failing_hook_with_its_names() -> None:
    lines: list[str] = []
    seen = Seen()
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False,
                               log_sinks=[lines.append], hooks=[Broken(), seen])
    try:
        system.spawn(Echo, name="echo")
        wait_until(lambda: "echo" in seen.started, what="the second observer ran")
        wait_until(lambda: any("hook minion_started of observer Broken raised RuntimeError"
                               in line for line in lines), what="the failing hook was logged")
    finally:
        system.shutdown()
