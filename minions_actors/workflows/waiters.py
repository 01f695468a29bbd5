"""Waiting for a workflow to finish: ``system.wait_workflow`` is woken by a hook, not by
polling."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from minions_actors.errors import SystemNotRunning, WorkflowError, WorkflowTimeout
from minions_actors.observability.hooks import Hooks
from minions_actors.records import WorkflowInfo


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
