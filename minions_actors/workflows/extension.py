"""How workflows attach to a cell (:mod:`minions_actors.runtime.extensions`): a class that
declares workflows gets a :class:`~minions_actors.workflows.runner.WorkflowRunner` at its
first incarnation, which resumes the unfinished ones, and the workflow messages
(``StartWorkflow`` told or asked, ``RunStep``) are handled here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import StateStoreError, WorkflowError
from minions_actors.runtime import messages as m
from minions_actors.runtime.asyncness import is_async
from minions_actors.runtime.extensions import WORKFLOWS, Handler
from minions_actors.runtime.special import answer_ask, fail_ask, phase_of
from minions_actors.workflows.async_steps import check_steps
from minions_actors.workflows.declare import unknown_workflow, workflows_of
from minions_actors.workflows.intake import DEFAULT_MAX_IN_FLIGHT, check_limit
from minions_actors.workflows.runner import WorkflowRunner
from minions_actors.workflows.waits import CancelWorkflow, SignalArrived

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

# A StartWorkflow ask that fails with these is refused (the asker gets the error); the
# minion did nothing wrong and does not crash.
REFUSED_START = (WorkflowError, StateStoreError)


def start_workflow(cell: Cell, request: m.StartWorkflow,
                   answer: Callable[[Any], None] | None = None) -> Any:
    runner: WorkflowRunner | None = cell.parts.get(WORKFLOWS)
    if runner is None:
        raise unknown_workflow(cell.describe(), cell.cls, request.name)
    return runner.start(request.name, request.workflow_id, request.context, answer)


def _run_step(cell: Cell, inst: Minion, msg: m.RunStep) -> bool:
    cell.parts[WORKFLOWS].run_step(inst, msg)
    return cell.run_after(inst)


def _start_told(cell: Cell, inst: Minion, msg: m.StartWorkflow) -> bool:
    """Told, not asked: report a failed request, do not crash."""
    try:
        start_workflow(cell, msg)
    except Exception as exc:
        cell.hooks.lifecycle_error(cell, exc, "start_workflow")
    return True


def _start_asked(cell: Cell, inst: Minion, msg: m.Ask) -> bool:
    # a start is answered by the runner once its record is durable
    handler = functools.partial(start_workflow, cell,
                                answer=functools.partial(answer_ask, msg.future))
    try:
        ok, value = cell.invoke(inst, handler, msg.message, passthrough=REFUSED_START)
    except REFUSED_START:  # a bad request or a start the store refused: no crash
        msg.future.set_exception()
        return True
    if not ok:
        fail_ask(msg, value)  # a start may be answered already
        cell.crash(value, phase_of(value))
        return False
    return True


def _signal_arrived(cell: Cell, inst: Minion, msg: SignalArrived) -> bool:
    runner: WorkflowRunner | None = cell.parts.get(WORKFLOWS)
    if runner is not None:
        runner.signal_arrived(msg.workflow_id)
    return True


def _cancel_told(cell: Cell, inst: Minion, msg: CancelWorkflow) -> bool:
    """A cancel request from the store's inbox: one for a workflow that ended meanwhile
    (or one applied already) is stale, not an error."""
    runner: WorkflowRunner | None = cell.parts.get(WORKFLOWS)
    if runner is not None and msg.workflow_id in runner.running:
        runner.cancel(inst, msg.workflow_id, msg.by)
    return cell.run_after(inst)  # on_workflow_cancelled may have changed the minion


def _cancel_asked(cell: Cell, inst: Minion, msg: m.Ask) -> bool:
    """``system.cancel_workflow``: the asker gets the final info, or why nothing changed."""
    request: CancelWorkflow = msg.message
    runner: WorkflowRunner | None = cell.parts.get(WORKFLOWS)
    try:
        if runner is None:
            raise WorkflowError(f"{cell.describe()} runs no workflows; nothing was cancelled")
        answer_ask(msg.future, runner.cancel(inst, request.workflow_id, request.by))
    except WorkflowError as exc:
        fail_ask(msg, exc)
        return True
    return cell.run_after(inst)


class WorkflowExtension:
    """The workflows extension (registered by :mod:`minions_actors.workflows`)."""

    key = WORKFLOWS
    told: dict[type, Handler] = {m.RunStep: _run_step, m.StartWorkflow: _start_told,
                                 SignalArrived: _signal_arrived, CancelWorkflow: _cancel_told}
    asked: dict[type, Handler] = {m.StartWorkflow: _start_asked, CancelWorkflow: _cancel_asked}

    @staticmethod
    def used_by(cls: type) -> bool:
        return bool(workflows_of(cls))

    @staticmethod
    def check_class(cls: type) -> None:
        check_limit(cls.__name__, getattr(cls, "max_workflows_in_flight", DEFAULT_MAX_IN_FLIGHT))
        for workflow in workflows_of(cls).values():
            workflow.check(cls)
            check_steps(cls, workflow.steps, is_async(cls), f"{cls.__name__}.{workflow.name}")

    @staticmethod
    def attach(cell: Cell) -> WorkflowRunner:
        runner = WorkflowRunner(cell)
        runner.resume()
        return runner

    start = staticmethod(start_workflow)
