"""Lifecycle hooks: the named points where logging, metrics and persistence attach.

The core runtime never logs or counts by itself; it calls these hooks at clearly named
moments of a minion's life (in the spirit of dramatiq's middleware). Every hook runs off the
per-message fast path: nothing here is called for a message that was handled successfully.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.system import ActorSystem
    from minions_actors.workflows import WorkflowInfo


class Hooks:
    """Base class for lifecycle observers; override the methods you need.

    All methods must be quick and must not raise: an exception in a hook is swallowed by
    the dispatcher so that observability can never take the runtime down.
    """

    def system_started(self, system: ActorSystem) -> None:
        """The system is up: Gru is running and the store, metrics and logs are ready."""

    def system_stopping(self, system: ActorSystem, failure: BaseException | None) -> None:
        """Shutdown began; ``failure`` is set when it was caused by an escalation at Gru."""

    def system_stopped(self, system: ActorSystem, failure: BaseException | None) -> None:
        """Shutdown finished: all minions stopped and the store is flushed and closed."""

    def minion_started(self, cell: Cell, restored: bool) -> None:
        """A new incarnation ran ``on_start`` successfully (``restored``: state came back)."""

    def minion_crashed(self, cell: Cell, exc: BaseException, phase: str) -> None:
        """The minion crashed; ``phase`` is one of init, restore, on_start, message."""

    def minion_restarting(self, cell: Cell, delay: float, cause: str) -> None:
        """Its supervisor decided to restart it after ``delay`` seconds."""

    def minion_stopped(self, cell: Cell, reason: str) -> None:
        """The minion stopped for good (``reason``: stop, exit, shutdown, escalation...)."""

    def lifecycle_error(self, cell: Cell, exc: BaseException, phase: str) -> None:
        """A user callback that must not crash anything raised (``on_stop``, ``on_failure``)."""

    def escalated(self, cell: Cell, exc: BaseException) -> None:
        """``cell`` exceeded its restart intensity and gave up, failing upward."""

    def dead_letter(self, cell: Cell, message: Any, first: bool) -> None:
        """A message reached a stopped minion; ``first`` is True once per minion."""

    def messages_dropped(self, cell: Cell, count: int) -> None:
        """The minion stopped for good with ``count`` user messages still queued: they are
        dead letters, reported in one call (not one ``dead_letter`` call each)."""

    def snapshot_error(self, cell: Cell, exc: BaseException, first: bool) -> None:
        """``snapshot()`` raised or returned something that is not JSON-serialisable."""

    def snapshot_quarantined(self, cell: Cell, exc: BaseException) -> None:
        """``restore()`` raised for the stored snapshot, which was moved to the quarantine
        (the class chose ``restore_failure = "quarantine"``); the minion starts fresh."""

    def workflow_started(self, cell: Cell, info: WorkflowInfo, resumed: bool) -> None:
        """A workflow started, or resumed (after a restart, or by ``retry``)."""

    def workflow_step(self, cell: Cell, workflow: str, step: str, seconds: float,
                      ok: bool) -> None:
        """One step ran (``ok``: it returned normally). The only per-step hook: keep it cheap."""

    def workflow_retrying(self, cell: Cell, info: WorkflowInfo, step: str, exc: BaseException,
                          delay: float) -> None:
        """A step failed and will be tried again after ``delay`` seconds."""

    def workflow_finished(self, cell: Cell, info: WorkflowInfo,
                          exc: BaseException | None) -> None:
        """The workflow ended: ``info.status`` is completed, aborted or failed."""


class HookDispatcher(Hooks):
    """Fans each hook out to a list of observers, isolating their failures."""

    def __init__(self, hooks: list[Hooks] | None = None) -> None:
        self.hooks: list[Hooks] = list(hooks or [])

    def add(self, hook: Hooks) -> None:
        self.hooks.append(hook)

    def _call(self, name: str, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, name)(*args)
            except Exception:
                pass

    def system_started(self, system: ActorSystem) -> None:
        self._call("system_started", system)

    def system_stopping(self, system: ActorSystem, failure: BaseException | None) -> None:
        self._call("system_stopping", system, failure)

    def system_stopped(self, system: ActorSystem, failure: BaseException | None) -> None:
        self._call("system_stopped", system, failure)

    def minion_started(self, cell: Cell, restored: bool) -> None:
        self._call("minion_started", cell, restored)

    def minion_crashed(self, cell: Cell, exc: BaseException, phase: str) -> None:
        self._call("minion_crashed", cell, exc, phase)

    def minion_restarting(self, cell: Cell, delay: float, cause: str) -> None:
        self._call("minion_restarting", cell, delay, cause)

    def minion_stopped(self, cell: Cell, reason: str) -> None:
        self._call("minion_stopped", cell, reason)

    def lifecycle_error(self, cell: Cell, exc: BaseException, phase: str) -> None:
        self._call("lifecycle_error", cell, exc, phase)

    def escalated(self, cell: Cell, exc: BaseException) -> None:
        self._call("escalated", cell, exc)

    def dead_letter(self, cell: Cell, message: Any, first: bool) -> None:
        self._call("dead_letter", cell, message, first)

    def messages_dropped(self, cell: Cell, count: int) -> None:
        self._call("messages_dropped", cell, count)

    def snapshot_error(self, cell: Cell, exc: BaseException, first: bool) -> None:
        self._call("snapshot_error", cell, exc, first)

    def snapshot_quarantined(self, cell: Cell, exc: BaseException) -> None:
        self._call("snapshot_quarantined", cell, exc)

    def workflow_started(self, cell: Cell, info: WorkflowInfo, resumed: bool) -> None:
        self._call("workflow_started", cell, info, resumed)

    def workflow_step(self, cell: Cell, workflow: str, step: str, seconds: float,
                      ok: bool) -> None:
        self._call("workflow_step", cell, workflow, step, seconds, ok)

    def workflow_retrying(self, cell: Cell, info: WorkflowInfo, step: str, exc: BaseException,
                          delay: float) -> None:
        self._call("workflow_retrying", cell, info, step, exc, delay)

    def workflow_finished(self, cell: Cell, info: WorkflowInfo,
                          exc: BaseException | None) -> None:
        self._call("workflow_finished", cell, info, exc)
