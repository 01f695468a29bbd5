"""Reading the store's workflow inbox in a running application: signals and cancel requests
that another process (the CLI) appended reach the owning minion within ``INBOX_POLL`` seconds,
and requests that are applied or stale are removed.

One indexed read per poll on the timer thread (``seq > last seen``); nothing else runs.
"""

from __future__ import annotations

from typing import Any

from minions_actors.records import WorkflowRequest
from minions_actors.workflows.waits import CancelWorkflow, SignalArrived

#: seconds between two reads of the inbox (the delay of a CLI signal or cancel)
INBOX_POLL = 0.5
#: every this many polls, applied and stale requests are removed
_SWEEP_EVERY = 20


class InboxPoller:
    """Delivers new inbox rows to their minions (a tell each); runs on the system's timer."""

    def __init__(self, system: Any) -> None:  # the ActorSystem (a layer above)
        self.system = system
        self.seen = 0  # the newest seq delivered
        self.polls = 0

    def start(self) -> None:
        if hasattr(self.system.workflow_store, "workflow_requests"):
            self.system.timer.call_later(INBOX_POLL, self._tick)

    def _tick(self) -> None:
        if not self.system.running:
            return
        try:
            self.poll()
        except Exception as exc:  # a store fault: reported; the next poll tries again
            gru = self.system._gru
            if gru is not None:
                self.system.hooks.lifecycle_error(gru, exc, "workflow-inbox")
        self.system.timer.call_later(INBOX_POLL, self._tick)

    def poll(self) -> None:
        store = self.system.workflow_store
        self.polls += 1
        sweep = self.polls % _SWEEP_EVERY == 0
        for req in store.workflow_requests(after=0 if sweep else self.seen):
            if req.seq > self.seen:
                self.deliver(req)
                self.seen = req.seq
        if sweep:
            self.sweep(store)

    def deliver(self, req: WorkflowRequest) -> None:
        """Tell the owning minion, when it runs here (else it finds the request when its
        workflows resume)."""
        rec = self.system.workflow_store.get_workflow(req.workflow_id)
        if rec is None or rec.finished:
            return
        owner = self.system.find(rec.minion_path)
        if owner is None:
            return
        message: Any = SignalArrived(req.workflow_id) if req.kind == "signal" else \
            CancelWorkflow(req.workflow_id, req.sent_by)
        owner.tell(message)

    @staticmethod
    def sweep(store: Any) -> None:
        """Remove the requests nobody needs: for a finished or unknown workflow, and signals
        older than the newest one its workflow consumed."""
        stale = []
        for req in store.workflow_requests():
            rec = store.get_workflow(req.workflow_id)
            if rec is None or rec.finished or (req.kind == "signal" and req.seq <= rec.signal_seq):
                stale.append(req.seq)
        store.delete_workflow_requests(stale)
