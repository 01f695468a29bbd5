"""The workflow methods of :class:`~minions_actors.ActorSystem`: list, read, wait for,
retry, discard, signal and cancel the workflows in its workflow store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import MinionStopped
from minions_actors.records import WorkflowInfo
from minions_actors.runtime.context import current_cell
from minions_actors.workflows import WorkflowError, WorkflowWaiters
from minions_actors.workflows.waits import CancelWorkflow, SignalArrived

if TYPE_CHECKING:
    from minions_actors.runtime.ref import MinionRef


class SystemWorkflows:
    """Mixed into ``ActorSystem``, which sets these attributes and defines ``find``."""

    workflow_store: Any
    _workflow_waiters: WorkflowWaiters
    find: Callable[[str], MinionRef[Any] | None]

    def workflows(self, status: str | Iterable[str] | None = None,
                  minion: str | None = None) -> list[WorkflowInfo]:
        """Workflows in the store (``status``: running, completed, aborted, failed)."""
        return [WorkflowInfo.of(r)
                for r in self.workflow_store.workflows(minion_path=minion, status=status)]

    def workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """One workflow by id, or None."""
        rec = self.workflow_store.get_workflow(workflow_id)
        return WorkflowInfo.of(rec) if rec is not None else None

    def wait_workflow(self, workflow_id: str, timeout: float | None = None) -> WorkflowInfo:
        """Block until the workflow is no longer running and return its final info
        (``status`` completed, failed or aborted).

        Woken by the workflow's end, not by polling. Raises
        :class:`~minions_actors.WorkflowTimeout` (a ``TimeoutError``) when it is still
        running after ``timeout`` seconds, :class:`~minions_actors.WorkflowError` for an
        unknown id or when called by the minion that runs it (its steps need that thread),
        and :class:`~minions_actors.SystemNotRunning` when the system shuts down first.
        """
        caller = current_cell()

        def read() -> WorkflowInfo | None:
            info = self.workflow(workflow_id)
            if (info is not None and info.status == "running" and caller is not None
                    and info.minion == caller.path):
                raise WorkflowError(
                    f"{caller.describe()} cannot wait for its own workflow {workflow_id!r}: "
                    "its steps run on the thread that would be waiting"
                )
            return info

        return self._workflow_waiters.wait(read, workflow_id, timeout)

    def retry_workflow(self, workflow_id: str, timeout: float = 10.0) -> WorkflowInfo:
        """Run a failed or aborted workflow again from the step where it stopped.

        Its minion must be running (the retry runs on its thread)."""
        info: WorkflowInfo = (
            self._owner(workflow_id).proxy().retry_workflow(workflow_id).get(timeout=timeout)
        )
        return info

    def discard_workflow(self, workflow_id: str, timeout: float = 10.0) -> bool:
        """Forget a workflow; a running one is stopped first by its minion, if alive."""
        rec = self.workflow_store.get_workflow(workflow_id)
        if rec is None:
            return False
        owner = self.find(rec.minion_path)
        if owner is not None and owner.is_alive():
            return bool(owner.proxy().discard_workflow(workflow_id).get(timeout=timeout))
        return bool(self.workflow_store.delete_workflow(workflow_id))

    def signal_workflow(self, workflow_id: str, name: str, payload: Any = None) -> int:
        """Send the signal ``name`` with a JSON ``payload`` to a running workflow.

        The signal is stored (durable when this returns) and kept until a
        :class:`~minions_actors.workflows.WaitSignal` step for ``name`` takes it, so a
        signal sent before the workflow waits is not lost. Returns its sequence number.
        Raises :class:`~minions_actors.WorkflowError` (nothing stored) for an unknown or
        finished workflow, a bad name or a payload that is not JSON."""
        if not isinstance(name, str) or not name:
            raise WorkflowError(f"a signal name is a non-empty str, got {name!r}")
        try:
            payload_json = json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise WorkflowError(f"the payload of signal {name!r} is not JSON: {exc}") from None
        rec = self._running_record(workflow_id, f"signal {name!r}")
        post = getattr(self.workflow_store, "post_workflow_request", None)
        if post is None:
            raise WorkflowError(f"the state store {self.workflow_store!r} keeps no signals")
        seq: int = post(workflow_id, "signal", name, payload_json, "api")
        owner = self.find(rec.minion_path)
        if owner is not None:
            owner.tell(SignalArrived(workflow_id))
        return seq

    def cancel_workflow(self, workflow_id: str, by: str = "api",
                        timeout: float = 10.0) -> WorkflowInfo:
        """Cancel a running workflow: no further step runs, its record becomes
        ``cancelled`` with ``cancelled_by=by`` and ``finished_at``, and its minion's
        ``on_workflow_cancelled(info)`` is called. A step in progress finishes first (its
        result is kept, no step runs after it). Raises :class:`~minions_actors.WorkflowError`
        (nothing changed) for an unknown or finished workflow."""
        rec = self._running_record(workflow_id, "cancel")
        owner = self.find(rec.minion_path)
        if owner is not None:  # (a restarting one too: its runner keeps the record)
            try:
                info: WorkflowInfo = owner.ask(CancelWorkflow(workflow_id, str(by)),
                                               timeout=timeout)
                return info
            except MinionStopped:
                pass
        # its minion does not run here: nothing holds the record in memory
        now = time.time()
        rec.status, rec.error, rec.cancelled_by = "cancelled", f"cancelled by {by}", str(by)
        rec.finished_at = rec.updated_at = now
        rec.wake_at = rec.waiting_for = None
        self.workflow_store.save_workflow(rec)
        return WorkflowInfo.of(rec)

    def _running_record(self, workflow_id: str, doing: str) -> Any:
        rec = self.workflow_store.get_workflow(workflow_id)
        if rec is None:
            raise WorkflowError(f"cannot {doing}: no workflow with id {workflow_id!r} "
                                "(nothing was changed)")
        if rec.finished:
            raise WorkflowError(f"cannot {doing}: workflow {workflow_id!r} is {rec.status}, "
                                "not running (nothing was changed)")
        return rec

    def _owner(self, workflow_id: str) -> MinionRef[Any]:
        rec = self.workflow_store.get_workflow(workflow_id)
        if rec is None:
            raise WorkflowError(f"no workflow with id {workflow_id!r}")
        owner = self.find(rec.minion_path)
        if owner is None:
            raise WorkflowError(
                f"workflow {workflow_id!r} belongs to {rec.minion_path!r}, which is not "
                f"running: spawn it (the retry then runs there) or use the CLI on the file"
            )
        return owner
