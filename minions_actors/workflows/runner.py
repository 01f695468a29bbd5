"""Running one minion's workflows: checkpoint, then a step as a message on the minion's
thread, then the next checkpoint; retries by the step's policy; resumption at an incarnation."""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
import time
from asyncio import _get_running_loop
from collections.abc import Callable, Mapping
from dataclasses import replace
from time import perf_counter
from typing import TYPE_CHECKING, Any

from minions_actors.errors import AbortWorkflow, WorkflowError
from minions_actors.records import WorkflowInfo, WorkflowRecord
from minions_actors.runtime.messages import RunStep
from minions_actors.runtime.snapshots import from_json, to_json
from minions_actors.workflows.async_steps import await_step
from minions_actors.workflows.declare import Workflow, unknown_workflow, workflows_of
from minions_actors.workflows.intake import DEFAULT_MAX_IN_FLIGHT, Intake
from minions_actors.workflows.wait_steps import WaitingRunner

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

_tokens = itertools.count(1)


def _encode_context(cell: Cell, context: Any) -> str:
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


class WorkflowRunner(WaitingRunner):
    """Runs one minion's workflows on its thread; lives as long as the minion's cell."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.store = cell.system.workflow_store
        # a store that can commit a checkpoint on the minion's thread (no hand-off to its
        # writer thread and back when nothing else is waiting to be batched with it)
        self._save_here = getattr(self.store, "save_workflow_here", None)
        self.definitions = workflows_of(cell.cls)
        self.running: dict[str, WorkflowRecord] = {}
        self.tokens: dict[str, int] = {}
        self.intake = Intake(getattr(cell.cls, "max_workflows_in_flight", DEFAULT_MAX_IN_FLIGHT))
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
        save = self.store.save_workflow
        if deliver is not None and self._save_here is not None and \
                self.cell.inbox.qsize() == 0 and _get_running_loop() is None:
            save = self._save_here  # nothing queued to batch it with: commit it now, here
            # (never on an event loop's thread: a commit there would block the loop)
        try:
            save(rec, on_durable=deliver)
        except Exception:
            if refuse:
                self.running.pop(rec.workflow_id, None)
                self.tokens.pop(rec.workflow_id, None)
                self._release(rec.workflow_id)
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

    # the part of a cell (runtime.extensions.CellPart): nothing runs after a message, nor
    # at an incarnation (the unfinished workflows are resumed once, when it is attached)
    after = None

    def incarnation(self, inst: Minion) -> bool:
        return False

    def resume(self) -> None:
        """Pick up this minion's unfinished workflows (after a process restart)."""
        resumed = False
        for rec in self.store.workflows(minion_path=self.cell.path, status="running"):
            if rec.workflow_id in self.running:
                continue
            self.running[rec.workflow_id] = rec
            self.cell.hooks.workflow_started(self.cell, WorkflowInfo.of(rec), True)
            if self.intake.admit(rec.workflow_id):
                self._schedule(rec.workflow_id)()
            resumed = True
        if resumed:
            self._cancel_requested()

    # ------------------------------------------------------------ user requests
    def start(self, name: str, workflow_id: str, context: Mapping[str, Any] | None,
              answer: Callable[[WorkflowInfo], None] | None = None) -> WorkflowInfo:
        """Start (or find) a workflow. ``answer`` (an ask) gets its info once the start
        record is durable (at once for an id that exists and is durable); such a start that
        cannot be saved raises instead (a StateStoreError) and starts nothing, so the asker
        can retry. Without ``answer`` (a tell) a failed save is retried in the background."""
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
        run = self.intake.admit(workflow_id)  # parked: saved now, its steps wait for a slot
        if answer is None:
            self._save(rec, run_next=run, starting=True)
        else:
            self._checkpoint(rec, run_next=run, starting=True, refuse=True)
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
        self._save(rec, run_next=self.intake.admit(workflow_id))
        return WorkflowInfo.of(rec)

    def discard(self, workflow_id: str) -> bool:
        rec = self.running.pop(workflow_id, None)
        self.tokens.pop(workflow_id, None)
        self._release(workflow_id)
        if rec is not None:
            rec.status, rec.error = "aborted", "discarded"
            self.cell.hooks.workflow_finished(self.cell, WorkflowInfo.of(rec), None)
        return bool(self.store.delete_workflow(workflow_id))

    def _release(self, workflow_id: str) -> None:
        """A workflow left the running set: the parked ones its slot admits take their turn."""
        for admitted in self.intake.release(workflow_id):
            self._schedule(admitted)()

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
        wait = definition.waits.get(rec.next_step)
        if wait is not None:
            self._run_wait(rec, definition, wait)
            return
        step = definition.steps[rec.next_step]
        context = from_json(rec.context_json)
        t0 = perf_counter()
        try:
            result = getattr(inst, step)(context)
        except BaseException as exc:
            self._step_ended(rec, definition, (step, t0, context), (False, exc))
            return
        # an async def step: its end comes in a later turn (a None or a dict, what sync
        # steps return, skips isawaitable's ABC check)
        if result is not None and result.__class__ is not dict and inspect.isawaitable(result):
            await_step(self.cell, result, functools.partial(
                self._async_step_ended, msg, rec, definition, (step, t0, context)))
            return
        self._step_ended(rec, definition, (step, t0, context), (True, result))

    def _async_step_ended(self, msg: RunStep, rec: WorkflowRecord, definition: Workflow,
                          ran: tuple[str, float, Any], outcome: tuple[bool, Any] | None
                          ) -> None:
        """In the turn after an async step's coroutine ended (None: it was cancelled, by a
        restart or a stop: the step runs again, in the next incarnation or the next run)."""
        if self.running.get(msg.workflow_id) is not rec or \
                self.tokens.get(msg.workflow_id) != msg.token:
            return  # discarded meanwhile
        if outcome is None:
            self._schedule(rec.workflow_id)()
            return
        self._step_ended(rec, definition, ran, outcome)

    def _step_ended(self, rec: WorkflowRecord, definition: Workflow,
                    ran: tuple[str, float, Any], outcome: tuple[bool, Any]) -> None:
        """Step ``ran`` (its name, start, context) returned ``(True, result)`` or raised
        ``(False, exc)``: the checkpoint, or a retry by its policy, or the workflow's end;
        the same for sync and async steps."""
        (step, t0, context), (ok, result) = ran, outcome
        context_json = ""
        if ok:
            try:
                context = context if result is None else result
                context_json = _encode_context(self.cell, context)
            except BaseException as exc:
                ok, result = False, exc
        if not ok:
            self._step_done(rec, step, t0, ok=False)
            if isinstance(result, AbortWorkflow):
                self._finish(rec, "aborted", str(result) or "aborted")
            else:
                self._step_failed(rec, definition, step, result)
            return
        self._step_done(rec, step, t0, ok=True)
        self._advance(rec, definition, context_json)

    def _advance(self, rec: WorkflowRecord, definition: Workflow, context_json: str) -> None:
        """The step at ``rec.next_step`` is done: checkpoint before the next, or the end."""
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

    def _step_failed(self, rec: WorkflowRecord, definition: Workflow, step: str,
                     exc: BaseException) -> None:
        """Retry the step later by its policy, or fail the workflow."""
        rec.attempts += 1
        error = f"{type(exc).__name__}: {exc}"
        policy = definition.retry_for(step)
        if not policy.retries(exc, rec.attempts):
            self._finish(rec, "failed", error, exc)
            return
        delay = policy.backoff.delay(rec.attempts)
        rec.error = error
        self.cell.hooks.workflow_retrying(self.cell, WorkflowInfo.of(rec), step, exc, delay)
        self._save(rec, run_next=False)
        self.cell.system.timer.call_later(delay, self._schedule(rec.workflow_id))

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
        self._release(rec.workflow_id)
        self.cell.hooks.workflow_finished(self.cell, WorkflowInfo.of(rec), exc)
