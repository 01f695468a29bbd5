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


class LookupsSeen(Hooks):
    """Overrides one hook and records which hook names the dispatcher looks up on it."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []
        self.steps: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in ("looked_up", "steps"):
            object.__getattribute__(self, "looked_up").append(name)
        return object.__getattribute__(self, name)

    def workflow_started(self, cell: MinionView, info: Any, resumed: bool) -> None:
        self.steps.append("started")


class Duck:
    """An observer that is not a Hooks subclass: its missing hooks are reported as before."""

    def __init__(self) -> None:
        self.stepped = 0

    def workflow_step(self, *args: Any) -> None:
        self.stepped += 1


def test_a_hook_goes_only_to_the_observers_that_override_it() -> None:
    reports: list[tuple[str, str]] = []
    seen, duck = LookupsSeen(), Duck()
    hooks = HookDispatcher([seen, duck], on_error=lambda name, obs, exc: reports.append(
        (name, type(obs).__name__)))
    view = type("View", (), {"path": "a/b"})()
    hooks.workflow_step(view, "flow", "s1", 0.001, True)  # Hooks' empty method: skipped
    hooks.workflow_started(view, None, False)
    assert seen.looked_up == ["workflow_started"]
    assert seen.steps == ["started"]
    assert duck.stepped == 1
    assert reports == [("workflow_started", "Duck")]  # it has no such method


def test_observers_added_later_get_the_next_hooks_in_order() -> None:
    order: list[str] = []

    class Named(Hooks):
        def __init__(self, name: str) -> None:
            self.name = name

        def minion_started(self, cell: MinionView, restored: bool) -> None:
            order.append(self.name)

    hooks = HookDispatcher([Named("a")])
    view = type("View", (), {"path": "a/b"})()
    hooks.minion_started(view, False)
    hooks.add(Named("b"))
    hooks.add(Named("first"), first=True)
    instance_only = Hooks()
    instance_only.minion_started = lambda cell, restored: order.append("instance")  # type: ignore[method-assign]
    hooks.add(instance_only)
    hooks.minion_started(view, False)
    assert order == ["a", "first", "a", "b", "instance"]
