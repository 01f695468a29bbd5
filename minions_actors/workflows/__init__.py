"""Durable workflows: ordered steps over a JSON context that survive crashes and restarts.

A minion declares a workflow as a class attribute, ``fulfil = Workflow("reserve", "charge",
"ship")``, whose steps are its own methods taking the context dict. Starting a workflow with
an id (an idempotency key) checkpoints it; each step runs as a message on the minion's thread
only after the checkpoint before it is durable, so after a crash or a ``kill -9`` the workflow
resumes at the step that was interrupted (steps run at least once). Step failures follow the
step's :class:`Retry` policy; they never crash the minion.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import TYPE_CHECKING, Any

# defined in errors.py (every exception lives there), importable from here as documented
from minions_actors.errors import AbortWorkflow as AbortWorkflow
from minions_actors.errors import WorkflowError as WorkflowError
from minions_actors.errors import WorkflowTimeout as WorkflowTimeout
from minions_actors.observability.hooks import Hooks
from minions_actors.runtime.extensions import Extensions
from minions_actors.runtime.messages import RunStep as RunStep
from minions_actors.runtime.messages import StartWorkflow as StartWorkflow
from minions_actors.runtime.supervision import Backoff

if TYPE_CHECKING:
    from minions_actors.persistence import WorkflowRecord
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

STATUSES = ("running", "completed", "aborted", "failed")
_tokens = itertools.count(1)


@dataclass(frozen=True)
class Retry:
    """How often a failing step is tried, how long to wait between tries, and for which
    exceptions. ``attempts`` counts every try (1 = no retry)."""

    attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.1, maximum=30.0))
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"Retry attempts must be an int >= 1, got {self.attempts!r}")
        if not isinstance(self.on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in self.on
        ):
            raise TypeError(f"Retry on= takes a tuple of exception classes, got {self.on!r}")

    def retries(self, exc: BaseException, attempts_so_far: int) -> bool:
        return isinstance(exc, self.on) and attempts_so_far < self.attempts


class Workflow:
    """Declare a workflow on a :class:`~minions_actors.Minion` class.

    ``steps`` are names of the minion's methods, run in order; each takes the context dict
    and may change it in place or return a new dict. ``retry`` applies to every step unless
    ``step_retry`` names a different policy for a step.
    """

    def __init__(
        self, *steps: str, retry: Retry | None = None,
        step_retry: Mapping[str, Retry] | None = None,
    ) -> None:
        if not steps or not all(isinstance(s, str) and s for s in steps):
            raise ValueError("a Workflow needs one or more step names (method names as str)")
        self.steps: tuple[str, ...] = steps
        self.retry = retry or Retry()
        self.step_retry = dict(step_retry or {})
        unknown = set(self.step_retry) - set(steps)
        if unknown:
            raise ValueError(f"step_retry names steps that are not in the workflow: {unknown}")
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def check(self, owner: type) -> None:
        """Raise TypeError when a step is not a method of ``owner`` (at class creation)."""
        missing = [s for s in self.steps if not callable(getattr(owner, s, None))]
        if missing:
            raise TypeError(
                f"workflow {owner.__name__}.{self.name} names steps that are not methods of "
                f"{owner.__name__}: {', '.join(missing)}"
            )

    def retry_for(self, step: str) -> Retry:
        return self.step_retry.get(step, self.retry)

    def __repr__(self) -> str:
        return f"Workflow({', '.join(map(repr, self.steps))})"


@dataclass(frozen=True)
class WorkflowInfo:
    """A read-only view of one workflow: where it is, its context, how it ended."""

    workflow_id: str
    name: str
    minion: str
    minion_class: str
    status: str
    step: str | None
    step_index: int
    context: dict[str, Any]
    attempts: int
    error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def of(cls, rec: WorkflowRecord) -> WorkflowInfo:
        return cls(
            workflow_id=rec.workflow_id, name=rec.workflow_name, minion=rec.minion_path,
            minion_class=rec.minion_class, status=rec.status, step=rec.step_name,
            step_index=rec.next_step, context=json.loads(rec.context_json),
            attempts=rec.attempts, error=rec.error, created_at=rec.created_at,
            updated_at=rec.updated_at, finished_at=rec.finished_at,
        )


class WorkflowWaiters(Hooks):
    """Wakes ``system.wait_workflow`` callers when their workflow finishes (a hook: no
    polling) or when the system begins to shut down."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: collections.Counter[str] = collections.Counter()
        self._finished: dict[str, WorkflowInfo] = {}
        self._stopping = False

    def workflow_finished(self, cell: Any, info: WorkflowInfo, exc: BaseException | None) -> None:
        if not self._waiting:  # nobody waits (the usual case): no lock. A waiter that
            return  # registers after this reads the final record, saved before this hook
        with self._cond:
            if self._waiting[info.workflow_id]:
                self._finished[info.workflow_id] = info
                self._cond.notify_all()

    def system_stopping(self, system: Any, failure: BaseException | None) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def wait(self, read: Callable[[], WorkflowInfo | None], workflow_id: str,
             timeout: float | None) -> WorkflowInfo:
        """Block until ``workflow_id`` is no longer running; ``read`` gets its current info
        (called once registered, so a finish in between is not missed)."""
        from minions_actors.errors import SystemNotRunning

        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiting[workflow_id] += 1
        try:
            info = read()
            if info is None:
                raise WorkflowError(f"no workflow with id {workflow_id!r}")
            with self._cond:
                while info.status == "running":
                    info = self._finished.get(workflow_id, info)
                    if info.status != "running":
                        break
                    if self._stopping:
                        raise SystemNotRunning(
                            f"the system is shutting down; workflow {workflow_id!r} is still "
                            f"at step {info.step!r} and resumes there at the next start"
                        )
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        now = read() or info
                        raise WorkflowTimeout(
                            f"workflow {workflow_id!r} did not finish within {timeout} s; "
                            f"it is at step {now.step!r} (attempts {now.attempts})"
                        )
                    self._cond.wait(left)
            return info
        finally:
            with self._cond:
                self._waiting[workflow_id] -= 1
                if not self._waiting[workflow_id]:
                    del self._waiting[workflow_id]
                    self._finished.pop(workflow_id, None)


def workflows_of(cls: type) -> dict[str, Workflow]:
    """The workflows a minion class declares, by name."""
    found: dict[str, Workflow] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Workflow):
                found[name] = value
    return found


def unknown_workflow(describe: str, cls: type, name: str) -> WorkflowError:
    """The error for starting a workflow ``cls`` does not declare, saying why when a method
    of the same name hides it (``charge = Workflow(...)`` then ``def charge``)."""
    known = ", ".join(sorted(workflows_of(cls))) or "none"
    text = f"{describe} has no workflow {name!r} (it declares: {known})"
    if callable(getattr(cls, name, None)):
        text += (
            f"; {cls.__name__}.{name} is a method: if the class body declares "
            f"`{name} = Workflow(...)`, a method named {name!r} defined after it (a step?) "
            f"replaced it. Give the workflow a name that no method uses"
        )
    return WorkflowError(text)


def _encode_context(cell: Cell, context: Any) -> str:
    from minions_actors.runtime.snapshots import to_json

    if not isinstance(context, dict):
        raise WorkflowError(
            f"{cell.describe()}: a workflow context must be a dict, got {type(context).__name__}"
        )
    text, problem = to_json(context)
    if problem is not None:
        where, kind = problem
        raise WorkflowError(
            f"{cell.describe()}: the workflow context cannot be stored as JSON unchanged at "
            f"{where!r}: {kind}; keep contexts to dicts with str keys, lists, str, numbers, "
            "bool and None, without cycles"
        )
    return text  # type: ignore[return-value]  # set when there is no problem


class WorkflowRunner:
    """Runs one minion's workflows on its thread; lives as long as the minion's cell."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.store = cell.system.workflow_store
        self.definitions = workflows_of(cell.cls)
        self.running: dict[str, WorkflowRecord] = {}
        self.tokens: dict[str, int] = {}
        # Answers to StartWorkflow asks, given once the start record is durable; the writer
        # thread calls them, so the dict is guarded.
        self._answers: dict[str, list[Callable[[], None]]] = {}
        self._answers_lock = threading.Lock()

    # ------------------------------------------------------------ scheduling
    def _schedule(self, workflow_id: str) -> Callable[[], None]:
        """A callable that queues the next step; it invalidates earlier RunStep messages."""
        token = next(_tokens)
        self.tokens[workflow_id] = token
        cell = self.cell
        message = RunStep(workflow_id, token)

        def deliver() -> None:
            if not cell.terminated:
                cell.inbox.put(message)

        return deliver

    def _checkpoint(self, rec: WorkflowRecord, run_next: bool, starting: bool = False,
                    refuse: bool = False) -> None:
        """Save ``rec``; the next step is queued once the save is durable (after the answers
        to the StartWorkflow asks, for the first save: ``starting``). Raises what the store
        raises; with ``refuse`` the start is then taken back: nothing was started."""
        rec.updated_at = time.time()
        deliver = self._schedule(rec.workflow_id) if run_next else None
        if starting:
            deliver = self._answering(rec.workflow_id, deliver)
        try:
            self.store.save_workflow(rec, on_durable=deliver)
        except Exception:
            if refuse:
                self.running.pop(rec.workflow_id, None)
                self.tokens.pop(rec.workflow_id, None)
                with self._answers_lock:
                    self._answers.pop(rec.workflow_id, None)
            raise

    def _answering(self, workflow_id: str, then: Callable[[], None] | None
                   ) -> Callable[[], None]:
        """An ``on_durable`` that gives the waiting StartWorkflow answers, then ``then``."""

        def durable() -> None:
            with self._answers_lock:
                answers = self._answers.pop(workflow_id, [])
            for answer in answers:
                answer()
            if then is not None:
                then()

        return durable

    def _save(self, rec: WorkflowRecord, run_next: bool, attempt: int = 0,
              starting: bool = False) -> None:
        """:meth:`_checkpoint` for a workflow that is going ahead: a save that fails (a store
        fault, a sync commit failing) is retried with backoff, so the workflow is never left
        waiting for a checkpoint that will not come."""
        from minions_actors.errors import StateStoreClosed

        try:
            self._checkpoint(rec, run_next, starting)
        except StateStoreClosed:
            return  # shutting down: the last durable checkpoint resumes at the next start
        except Exception as exc:
            self.cell.hooks.lifecycle_error(self.cell, exc, "workflow-checkpoint")
            self.cell.system.timer.call_later(
                min(5.0, 0.05 * 2 ** attempt),
                lambda: self._save(rec, run_next, attempt + 1, starting),
            )

    def resume(self) -> None:
        """Pick up this minion's unfinished workflows (after a process restart)."""
        for rec in self.store.workflows(minion_path=self.cell.path, status="running"):
            if rec.workflow_id in self.running:
                continue
            self.running[rec.workflow_id] = rec
            self.cell.hooks.workflow_started(self.cell, WorkflowInfo.of(rec), True)
            self._schedule(rec.workflow_id)()

    # ------------------------------------------------------------ user requests
    def start(self, name: str, workflow_id: str, context: Mapping[str, Any] | None,
              answer: Callable[[WorkflowInfo], None] | None = None) -> WorkflowInfo:
        """Start (or find) a workflow. ``answer`` (an ask) gets its info once the start
        record is durable (at once for an id that exists and is durable); such a start that
        cannot be saved raises instead (a StateStoreError) and starts nothing, so the asker
        can retry. Without ``answer`` (a tell) a failed save is retried in the background."""
        from minions_actors.persistence import WorkflowRecord

        definition = self.definitions.get(name)
        if definition is None:
            raise unknown_workflow(self.cell.describe(), self.cell.cls, name)
        if not isinstance(workflow_id, str) or not workflow_id:
            raise WorkflowError(f"a workflow id is a non-empty str, got {workflow_id!r}")
        existing = self.running.get(workflow_id) or self.store.get_workflow(workflow_id)
        if existing is not None:
            info = WorkflowInfo.of(existing)
            if answer is not None:
                with self._answers_lock:
                    waiting = self._answers.get(workflow_id)  # its start is not durable yet
                    if waiting is not None:
                        waiting.append(functools.partial(answer, info))
                if waiting is None:
                    answer(info)
            return info
        now = time.time()
        rec = WorkflowRecord(
            workflow_id=workflow_id, minion_path=self.cell.path,
            minion_class=self.cell.cls_name, workflow_name=name, status="running",
            next_step=0, step_name=definition.steps[0],
            context_json=_encode_context(self.cell, dict(context or {})),
            attempts=0, error=None, created_at=now, updated_at=now, finished_at=None,
        )
        self.running[workflow_id] = rec
        info = WorkflowInfo.of(rec)
        with self._answers_lock:
            self._answers[workflow_id] = [] if answer is None else [
                functools.partial(answer, info)]
        if answer is None:
            self._save(rec, run_next=True, starting=True)
        else:
            self._checkpoint(rec, run_next=True, starting=True, refuse=True)
        self.cell.hooks.workflow_started(self.cell, info, False)
        return info

    def get(self, workflow_id: str) -> WorkflowInfo | None:
        rec = self.running.get(workflow_id) or self.store.get_workflow(workflow_id)
        return WorkflowInfo.of(rec) if rec is not None else None

    def retry(self, workflow_id: str) -> WorkflowInfo:
        rec = self.store.get_workflow(workflow_id)
        if rec is None:
            raise WorkflowError(f"no workflow with id {workflow_id!r}")
        if rec.status not in ("failed", "aborted"):
            raise WorkflowError(
                f"workflow {workflow_id!r} is {rec.status}; only failed or aborted ones retry"
            )
        if rec.minion_path != self.cell.path:
            raise WorkflowError(
                f"workflow {workflow_id!r} belongs to {rec.minion_path!r}, not {self.cell.path!r}"
            )
        rec = replace(rec, status="running", attempts=0, error=None, finished_at=None)
        self.running[workflow_id] = rec
        self.cell.hooks.workflow_started(self.cell, WorkflowInfo.of(rec), True)
        self._save(rec, run_next=True)
        return WorkflowInfo.of(rec)

    def discard(self, workflow_id: str) -> bool:
        rec = self.running.pop(workflow_id, None)
        self.tokens.pop(workflow_id, None)
        if rec is not None:
            rec.status, rec.error = "aborted", "discarded"
            self.cell.hooks.workflow_finished(self.cell, WorkflowInfo.of(rec), None)
        return bool(self.store.delete_workflow(workflow_id))

    # ------------------------------------------------------------ running steps
    def run_step(self, inst: Minion, msg: RunStep) -> None:
        """Run one step (called on the minion's thread for a RunStep message)."""
        rec = self.running.get(msg.workflow_id)
        if rec is None or self.tokens.get(msg.workflow_id) != msg.token:
            return  # finished, discarded, or a stale message from before a reschedule
        definition = self.definitions.get(rec.workflow_name)
        if definition is None:
            self._finish(rec, "failed", f"{self.cell.cls_name} no longer declares workflow "
                                        f"{rec.workflow_name!r}")
            return
        if not 0 <= rec.next_step < len(definition.steps):
            self._finish(rec, "failed", f"stored step index {rec.next_step} does not exist in "
                                        f"{definition!r} (was the workflow changed?)")
            return
        step = definition.steps[rec.next_step]
        context = json.loads(rec.context_json)
        t0 = perf_counter()
        try:
            result = getattr(inst, step)(context)
            if result is not None:
                context = result
            context_json = _encode_context(self.cell, context)
        except AbortWorkflow as exc:
            self._step_done(rec, step, t0, ok=False)
            self._finish(rec, "aborted", str(exc) or "aborted")
            return
        except BaseException as exc:
            self._step_done(rec, step, t0, ok=False)
            rec.attempts += 1
            error = f"{type(exc).__name__}: {exc}"
            policy = definition.retry_for(step)
            if policy.retries(exc, rec.attempts):
                delay = policy.backoff.delay(rec.attempts)
                rec.error = error
                self.cell.hooks.workflow_retrying(self.cell, WorkflowInfo.of(rec), step, exc,
                                                  delay)
                self._save(rec, run_next=False)
                self.cell.system.timer.call_later(delay, self._schedule(rec.workflow_id))
            else:
                self._finish(rec, "failed", error, exc)
            return
        self._step_done(rec, step, t0, ok=True)
        rec.next_step += 1
        rec.attempts = 0
        rec.error = None
        rec.context_json = context_json
        if rec.next_step >= len(definition.steps):
            rec.step_name = None
            self._finish(rec, "completed", None)
        else:
            rec.step_name = definition.steps[rec.next_step]
            self._save(rec, run_next=True)

    def _step_done(self, rec: WorkflowRecord, step: str, t0: float, ok: bool) -> None:
        self.cell.hooks.workflow_step(self.cell, rec.workflow_name, step, perf_counter() - t0, ok)

    def _finish(self, rec: WorkflowRecord, status: str, error: str | None,
                exc: BaseException | None = None) -> None:
        rec.status = status
        rec.error = error
        rec.finished_at = time.time()
        self.running.pop(rec.workflow_id, None)
        self.tokens.pop(rec.workflow_id, None)
        self._save(rec, run_next=False)
        self.cell.hooks.workflow_finished(self.cell, WorkflowInfo.of(rec), exc)


class _WorkflowSupport:
    """How the runtime reaches workflows without importing them (see runtime.extensions)."""

    @staticmethod
    def declared(cls: type) -> bool:
        return bool(workflows_of(cls))

    @staticmethod
    def check_class(cls: type) -> None:
        for workflow in workflows_of(cls).values():
            workflow.check(cls)

    @staticmethod
    def runner(cell: Cell) -> WorkflowRunner:
        return WorkflowRunner(cell)

    @staticmethod
    def unknown(describe: str, cls: type, name: str) -> WorkflowError:
        return unknown_workflow(describe, cls, name)


Extensions.workflows = _WorkflowSupport()
