"""Lifecycle hooks: the named points where logging, metrics and persistence attach.

The core runtime never logs or counts by itself; it calls these hooks at clearly named
moments of a minion's life (in the spirit of dramatiq's middleware). Every hook runs off the
per-message fast path: nothing here is called for a message that was handled successfully.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from minions_actors.records import WorkflowInfo

# What hooks receive. They are protocols, so that this layer (below the runtime) names no
# runtime class: the runtime passes its cell as the ``MinionView`` and the system itself as
# the ``SystemView``; a workflow's ``info`` is a :class:`~minions_actors.WorkflowInfo`
# (plain data from :mod:`minions_actors.records`, below this layer).


class SystemView(Protocol):
    """The system as hooks receive it (one view for logs and metrics): a snapshot list of
    its live cells (Gru excluded).

    ``system.store`` (optional, may be None) is read with ``getattr`` so that stores without
    ``stats()`` (e.g. an in-memory test store) simply export no snapshot numbers.
    """

    def cells(self) -> Sequence[Any]: ...


# The ``phase`` of ``minion_crashed``: where the incarnation failed (docs/supervision.md
# lists them all; metrics label crashes with them).
PHASE_INIT = "init"  # the constructor raised, or a resource the class uses failed to open
PHASE_RESTORE = "restore"  # restore() raised for the stored snapshot
PHASE_ON_START = "on_start"
PHASE_MESSAGE = "message"  # a handler raised
PHASE_SNAPSHOT = "snapshot"  # a sync-mode store refused the snapshot after a message
PHASE_RUNTIME = "runtime"  # the runtime itself failed in the minion's thread (a bug)
PHASE_SUPERVISION = "supervision"  # the minion gave up supervising (intensity exceeded)
PHASE_PLACEMENT = "placement"  # a placed minion's process or actor ended between messages
CRASH_PHASES = (PHASE_INIT, PHASE_RESTORE, PHASE_ON_START, PHASE_MESSAGE, PHASE_SNAPSHOT,
                PHASE_RUNTIME, PHASE_SUPERVISION, PHASE_PLACEMENT)

# The ``phase`` of ``lifecycle_error``: a callback or runtime step that must not crash
# anything raised, and was logged and skipped.
LIFECYCLE_PHASES = (
    "on_stop", "on_failure", "start_workflow", "death-watch", "runtime", "stop", "shutdown",
    "store-close", "prune-workflows", "workflow-checkpoint", "on_workflow_cancelled",
    "workflow-inbox",
)


class MinionView(Protocol):
    """The one read-only view of a minion that every hook receives (cumulative across
    restarts: a restart keeps the same view)."""

    @property
    def path(self) -> str: ...

    @property
    def cls_name(self) -> str: ...

    @property
    def handled(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def busy_seconds(self) -> float: ...

    def mailbox_depth(self) -> int: ...


HookErrorHandler = Callable[[str, "Hooks", BaseException], None]


def report_to_stderr(hook_name: str, observer: Hooks, exc: BaseException) -> None:
    """The default report of a failing hook, used until the system sets its logger."""
    print(f"minions_actors: hook {hook_name} of {type(observer).__name__} raised "
          f"{type(exc).__name__}: {exc}", file=sys.stderr)


class Hooks:
    """Base class for lifecycle observers; override the methods you need.

    All methods must be quick and should not raise: an exception in a hook is reported (the
    hook's name, the observer's class and the exception go to the system's log) and the
    other observers still run, so that observability can never take the runtime down.
    """

    def system_started(self, system: SystemView) -> None:
        """The system is up: Gru is running and the store, metrics and logs are ready."""

    def system_stopping(self, system: SystemView, failure: BaseException | None) -> None:
        """Shutdown began; ``failure`` is set when it was caused by an escalation at Gru."""

    def system_stopped(self, system: SystemView, failure: BaseException | None) -> None:
        """Shutdown finished: all minions stopped and the store is flushed and closed."""

    def minion_started(self, cell: MinionView, restored: bool) -> None:
        """A new incarnation ran ``on_start`` successfully (``restored``: state came back)."""

    def minion_crashed(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        """The minion crashed; ``phase`` is one of :data:`CRASH_PHASES`."""

    def minion_restarting(self, cell: MinionView, delay: float, cause: str) -> None:
        """Its supervisor decided to restart it after ``delay`` seconds."""

    def minion_stopped(self, cell: MinionView, reason: str) -> None:
        """The minion stopped for good (``reason``: stop, exit, shutdown, escalation...)."""

    def lifecycle_error(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        """A callback that must not crash anything raised; ``phase`` is one of
        :data:`LIFECYCLE_PHASES`."""

    def escalated(self, cell: MinionView, exc: BaseException) -> None:
        """``cell`` exceeded its restart intensity and gave up, failing upward."""

    def dead_letter(self, cell: MinionView, message: Any, first: bool) -> None:
        """A message reached a stopped minion; ``first`` is True once per minion."""

    def message_refused(self, cell: MinionView, message: Any, exc: BaseException) -> None:
        """A told message was refused before any handler saw it, because of the message
        (``exc``: a :class:`~minions_actors.errors.MessageRefused`, e.g. it cannot be
        pickled for a placed minion): a dead letter, the sender's error; no crash."""

    def messages_dropped(self, cell: MinionView, count: int) -> None:
        """The minion stopped for good with ``count`` user messages still queued: they are
        dead letters, reported in one call (not one ``dead_letter`` call each)."""

    def worker_starved(self, cell: MinionView, seconds: float) -> None:
        """A pooled minion's handler has held its worker for ``seconds`` (beyond the
        starvation threshold); the pool adds a worker meanwhile. Once per stuck handler."""

    def loop_blocked(self, cell: MinionView | None, seconds: float, task: str | None) -> None:
        """The event loop of the async minions ran no other callback for ``seconds``: a
        coroutine blocks it (``time.sleep``, a sync call). ``cell`` is the minion whose
        task ran then (None: not a minion's), ``task`` that task's name. Once per episode."""

    def snapshot_error(self, cell: MinionView, exc: BaseException, first: bool) -> None:
        """``snapshot()`` raised or returned something that is not JSON-serialisable."""

    def snapshot_quarantined(self, cell: MinionView, exc: BaseException) -> None:
        """``restore()`` raised for the stored snapshot, which was moved to the quarantine
        (the class chose ``restore_failure = "quarantine"``); the minion starts fresh."""

    def workflow_started(self, cell: MinionView, info: WorkflowInfo, resumed: bool) -> None:
        """A workflow started, or resumed (after a restart, or by ``retry``)."""

    def workflow_step(self, cell: MinionView, workflow: str, step: str, seconds: float,
                      ok: bool) -> None:
        """One step ran (``ok``: it returned normally). The only per-step hook: keep it cheap."""

    def workflow_retrying(self, cell: MinionView, info: WorkflowInfo, step: str, exc: BaseException,
                          delay: float) -> None:
        """A step failed and will be tried again after ``delay`` seconds."""

    def workflow_finished(self, cell: MinionView, info: WorkflowInfo,
                          exc: BaseException | None) -> None:
        """The workflow ended: ``info.status`` is completed, aborted, failed or cancelled
        (``exc`` a :class:`~minions_actors.errors.WorkflowCancelled`)."""


#: The hook names (the public methods of :class:`Hooks`).
HOOK_NAMES = tuple(name for name, value in vars(Hooks).items()
                   if callable(value) and not name.startswith("_"))


def _observes(hook: object, name: str) -> bool:
    """False when ``hook`` would only run :class:`Hooks`' empty method for ``name``."""
    return name in getattr(hook, "__dict__", ()) or \
        getattr(type(hook), name, None) is not getattr(Hooks, name)


class HookDispatcher(Hooks):
    """Fans each hook out to a list of observers, isolating their failures. Each hook goes
    only to the observers that override it, so one nobody observes (a workflow's per-step
    hook without metrics) costs one empty loop."""

    def __init__(self, hooks: list[Hooks] | None = None,
                 on_error: HookErrorHandler = report_to_stderr) -> None:
        self.hooks: list[Hooks] = list(hooks or [])  # (change it through add only)
        self.on_error = on_error
        self._lock = threading.Lock()
        self._observers: dict[str, tuple[Hooks, ...]] = {}
        self._index()

    def add(self, hook: Hooks, first: bool = False) -> None:
        """Add an observer (``first``: before the others, e.g. metrics before logs)."""
        with self._lock:
            self.hooks.insert(0 if first else len(self.hooks), hook)
            self._index()

    def _index(self) -> None:
        # a new table replaces the old in one assignment: a hook being dispatched on
        # another thread meanwhile reads one table or the other, never a half-built one
        self._observers = {name: tuple(h for h in self.hooks if _observes(h, name))
                           for name in HOOK_NAMES}

    def _call(self, name: str, *args: Any) -> None:
        for hook in self._observers[name]:
            try:
                getattr(hook, name)(*args)
            except Exception as exc:
                try:
                    self.on_error(name, hook, exc)
                except Exception:
                    pass  # the report itself failed: nothing safer is left to do

    def system_started(self, system: SystemView) -> None:
        self._call("system_started", system)

    def system_stopping(self, system: SystemView, failure: BaseException | None) -> None:
        self._call("system_stopping", system, failure)

    def system_stopped(self, system: SystemView, failure: BaseException | None) -> None:
        self._call("system_stopped", system, failure)

    def minion_started(self, cell: MinionView, restored: bool) -> None:
        self._call("minion_started", cell, restored)

    def minion_crashed(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        self._call("minion_crashed", cell, exc, phase)

    def minion_restarting(self, cell: MinionView, delay: float, cause: str) -> None:
        self._call("minion_restarting", cell, delay, cause)

    def minion_stopped(self, cell: MinionView, reason: str) -> None:
        self._call("minion_stopped", cell, reason)

    def lifecycle_error(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        self._call("lifecycle_error", cell, exc, phase)

    def escalated(self, cell: MinionView, exc: BaseException) -> None:
        self._call("escalated", cell, exc)

    def dead_letter(self, cell: MinionView, message: Any, first: bool) -> None:
        self._call("dead_letter", cell, message, first)

    def message_refused(self, cell: MinionView, message: Any, exc: BaseException) -> None:
        self._call("message_refused", cell, message, exc)

    def messages_dropped(self, cell: MinionView, count: int) -> None:
        self._call("messages_dropped", cell, count)

    def worker_starved(self, cell: MinionView, seconds: float) -> None:
        self._call("worker_starved", cell, seconds)

    def loop_blocked(self, cell: MinionView | None, seconds: float, task: str | None) -> None:
        self._call("loop_blocked", cell, seconds, task)

    def snapshot_error(self, cell: MinionView, exc: BaseException, first: bool) -> None:
        self._call("snapshot_error", cell, exc, first)

    def snapshot_quarantined(self, cell: MinionView, exc: BaseException) -> None:
        self._call("snapshot_quarantined", cell, exc)

    def workflow_started(self, cell: MinionView, info: WorkflowInfo, resumed: bool) -> None:
        self._call("workflow_started", cell, info, resumed)

    def workflow_step(self, cell: MinionView, workflow: str, step: str, seconds: float,
                      ok: bool) -> None:
        self._call("workflow_step", cell, workflow, step, seconds, ok)

    def workflow_retrying(self, cell: MinionView, info: WorkflowInfo, step: str, exc: BaseException,
                          delay: float) -> None:
        self._call("workflow_retrying", cell, info, step, exc, delay)

    def workflow_finished(self, cell: MinionView, info: WorkflowInfo,
                          exc: BaseException | None) -> None:
        self._call("workflow_finished", cell, info, exc)
