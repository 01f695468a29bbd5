"""Running the steps that wait (:class:`~minions_actors.workflows.waits.Sleep`,
:class:`~minions_actors.workflows.waits.WaitSignal`) and cancelling a workflow: the part of
:class:`~minions_actors.workflows.runner.WorkflowRunner` that holds no thread while waiting.

A wait costs two row writes: one when it begins (its deadline, ``wake_at``, and the signal
awaited) and one when it ends (the next step, with the outcome in the context). Between them
only a timer entry exists; a restart re-arms it for the time left, without writing.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from minions_actors.errors import WorkflowCancelled, WorkflowError
from minions_actors.records import WorkflowInfo, WorkflowRecord, WorkflowRequest
from minions_actors.workflows.waits import WaitSignal, WaitStep

if TYPE_CHECKING:
    from collections.abc import Callable

    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion
    from minions_actors.workflows.declare import Workflow
    from minions_actors.workflows.intake import Intake


def waiting(rec: WorkflowRecord) -> bool:
    """True when a wait step of ``rec`` has begun (its start was saved)."""
    return rec.wake_at is not None or rec.waiting_for is not None


class WaitingRunner:
    """Mixed into the runner, which defines the attributes and methods named here."""

    cell: Cell
    store: Any
    running: dict[str, WorkflowRecord]
    intake: Intake
    if TYPE_CHECKING:
        def _schedule(self, workflow_id: str) -> Callable[[], None]: ...
        def _save(self, rec: WorkflowRecord, run_next: bool) -> None: ...
        def _advance(self, rec: WorkflowRecord, definition: Workflow,
                     context_json: str) -> None: ...
        def _finish(self, rec: WorkflowRecord, status: str, error: str | None,
                    exc: BaseException | None = None) -> None: ...
        def _release(self, workflow_id: str) -> None: ...

    def _run_wait(self, rec: WorkflowRecord, definition: Workflow, wait: WaitStep) -> None:
        """Begin, continue or end the wait at ``rec.next_step`` (on the minion's thread)."""
        context = json.loads(rec.context_json)
        if isinstance(wait, WaitSignal):
            got = self._take_signal(rec, wait.signal)
            if got is not None:
                if not self.intake.reenter(rec.workflow_id):
                    return  # parked: a freed slot runs this again
                context[wait.into] = {"payload": json.loads(got.payload_json),
                                      "timed_out": False, "sent_by": got.sent_by}
                rec.signal_seq = got.seq
                self._wait_ended(rec, definition, context)
                return
        if not waiting(rec) and not self._begin_wait(rec, wait, context):
            return
        if rec.wake_at is None:  # a signal without timeout: SignalArrived runs this again
            self._release(rec.workflow_id)  # a waiting workflow holds no intake slot
            return
        left = rec.wake_at - time.time()
        if left > 0:  # the timer's entry is the only thing held while waiting
            self.cell.system.timer.call_later(left, self._schedule(rec.workflow_id))
            self._release(rec.workflow_id)
            return
        if not self.intake.reenter(rec.workflow_id):
            return  # parked: a freed slot runs this again
        if isinstance(wait, WaitSignal):
            context[wait.into] = {"payload": None, "timed_out": True, "sent_by": None}
        self._wait_ended(rec, definition, context)

    def _begin_wait(self, rec: WorkflowRecord, wait: WaitStep, context: dict[str, Any]) -> bool:
        """Save the wait's deadline (its one write at the start); False: the workflow failed."""
        try:
            seconds = wait.timeout if isinstance(wait, WaitSignal) else wait.duration(context)
        except WorkflowError as exc:
            self._finish(rec, "failed", str(exc), exc)
            return False
        rec.wake_at = None if seconds is None else time.time() + seconds
        rec.waiting_for = wait.signal if isinstance(wait, WaitSignal) else None
        self._save(rec, run_next=False)
        return True

    def _wait_ended(self, rec: WorkflowRecord, definition: Workflow,
                    context: dict[str, Any]) -> None:
        rec.wake_at = rec.waiting_for = None
        self._advance(rec, definition, json.dumps(context))

    def _take_signal(self, rec: WorkflowRecord, name: str) -> WorkflowRequest | None:
        """The oldest unconsumed signal ``name`` for ``rec`` in the store's inbox, or None."""
        read = getattr(self.store, "workflow_requests", None)
        if read is None:
            return None
        for req in read(workflow_id=rec.workflow_id, after=rec.signal_seq):
            if req.kind == "signal" and req.name == name:
                return req  # type: ignore[no-any-return]
        return None

    def signal_arrived(self, workflow_id: str) -> None:
        """A signal for ``workflow_id`` is in the inbox: a begun wait looks at it now (a wait
        not begun yet finds it when it begins)."""
        rec = self.running.get(workflow_id)
        if rec is not None and rec.waiting_for is not None:
            self._schedule(workflow_id)()

    def cancel(self, inst: Minion | None, workflow_id: str, by: str) -> WorkflowInfo:
        """End a running workflow as ``cancelled`` by ``by`` (one write); the minion's
        ``on_workflow_cancelled(info)``, when it defines one, is called after."""
        rec = self.running.get(workflow_id)
        if rec is None:
            stored = self.store.get_workflow(workflow_id)
            raise WorkflowError(
                f"no workflow with id {workflow_id!r}" if stored is None else
                f"workflow {workflow_id!r} is {stored.status}; only a running workflow can "
                "be cancelled (nothing was changed)")
        rec.cancelled_by = by
        rec.wake_at = rec.waiting_for = None
        self._finish(rec, "cancelled", f"cancelled by {by}",
                     WorkflowCancelled(f"workflow {workflow_id!r} cancelled by {by}"))
        info = WorkflowInfo.of(rec)
        hook = getattr(inst, "on_workflow_cancelled", None)
        if hook is not None:
            try:
                hook(info)
            except Exception as exc:  # the minion's own cleanup failed: reported, no crash
                self.cell.hooks.lifecycle_error(self.cell, exc, "on_workflow_cancelled")
        return info

    def _cancel_requested(self) -> None:
        """At a resume: apply the cancel requests stored while this minion was not running."""
        read = getattr(self.store, "workflow_requests", None)
        if read is None:
            return
        for req in read():
            if req.kind == "cancel" and req.workflow_id in self.running:
                self.cancel(None, req.workflow_id, req.sent_by)

    def waiting_counts(self) -> tuple[int, int]:
        """(sleeping, waiting for a signal) among this minion's workflows (for metrics)."""
        sleeping = signals = 0
        for rec in list(self.running.values()):
            if rec.waiting_for is not None:
                signals += 1
            elif rec.wake_at is not None:
                sleeping += 1
        return sleeping, signals
