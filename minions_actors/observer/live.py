"""What the observer page shows of a running system, read on request from its cells,
workflow store, resources and pool (nothing is computed while nobody asks)."""

from __future__ import annotations

import itertools
from typing import Any

from minions_actors.errors import MinionNotFound
from minions_actors.hosting.registry import find_cell
from minions_actors.observer.actions import RestartRequest
from minions_actors.observer.events import EventRecorder
from minions_actors.pipelines.base import Pipeline
from minions_actors.records import WORKFLOW_STATUSES, WorkflowInfo
from minions_actors.runtime.asyncness import is_async

#: The most rows one request returns (a page of children, search results, workflows).
MAX_ROWS = 500


def mode_of(cell: Any) -> str:
    """Where a minion's turns run: async, placed, pooled or dedicated."""
    if is_async(cell.cls):
        return "async"
    if cell.placement is not None:
        return "placed"
    return "pooled" if cell.pooled else "dedicated"


#: A live minion's states, the one list (docs/observer.md describes each; the page's CSS
#: colours each as ``state-<name>``, spaces as dashes): no instance built yet, one built
#: (from ``on_start`` on), crashed or restarting (until the next one is built), a restart
#: waiting for its backoff, told to stop or halted by a shutdown, stopped for good.
MINION_STATES = ("starting", "running", "restarting", "backing off", "stopping", "stopped")


def state_of(cell: Any) -> str:
    """One of :data:`MINION_STATES`, read from the cell's fields (no lock: a snapshot)."""
    if cell.terminated:
        return "stopped"
    if cell.instance is not None:
        return "stopping" if cell.stopping else "running"
    if cell._parked is not None:
        return "backing off"
    # no instance: none was ever built (a crash in the first __init__ is still starting
    # until its supervisor restarts it), or one crashed or was stopped for a restart
    return "restarting" if cell._built or cell.restarts else "starting"


def workflow_row(info: WorkflowInfo) -> dict[str, Any]:
    """A workflow without its context (the context is the application's data)."""
    return {"id": info.workflow_id, "name": info.name, "minion": info.minion,
            "cls": info.minion_class, "status": info.status, "step": info.step,
            "step_index": info.step_index, "attempts": info.attempts, "error": info.error,
            "created_at": info.created_at, "updated_at": info.updated_at,
            "finished_at": info.finished_at}


def workflows_page(infos: list[WorkflowInfo], status: str | None,
                   limit: int) -> dict[str, Any]:
    """The counts by status, and the ``limit`` most recently updated of ``status``."""
    counts = dict.fromkeys(WORKFLOW_STATUSES, 0)
    for info in infos:
        counts[info.status] = counts.get(info.status, 0) + 1
    chosen = [i for i in infos if status in (None, "", i.status)]
    chosen.sort(key=lambda i: i.updated_at, reverse=True)
    return {"counts": counts, "total": len(chosen),
            "rows": [workflow_row(i) for i in chosen[:limit]]}


class LiveSource:
    """The running system's side of the observer (see :mod:`minions_actors.observer.app`)."""

    live = True

    def __init__(self, system: Any, recorder: EventRecorder) -> None:
        self.system = system
        self.recorder = recorder

    # -- minions -------------------------------------------------------------------------
    def row(self, cell: Any) -> dict[str, Any]:
        crash = self.recorder.last_crash(cell.path, with_traceback=False)
        return {"path": cell.path, "name": cell.name, "cls": cell.cls_name,
                "mode": mode_of(cell), "state": state_of(cell), "mailbox": cell.mailbox_depth(),
                "handled": cell.handled, "failed": cell.failed, "restarts": cell.restarts,
                "children": len(cell.children),
                "crash": None if crash is None else
                {k: crash[k] for k in ("type", "message", "phase", "at")}}

    def _cell(self, path: str) -> Any:
        root = self.system._gru  # Gru: the tree's root, never listed itself
        if root is None:
            raise MinionNotFound("the system is not running")
        return root if not path.strip("/") else find_cell(root, path)

    def _find(self, path: str) -> Any:
        try:
            return self._cell(path)
        except MinionNotFound:
            return None

    def children(self, path: str, offset: int, limit: int) -> dict[str, Any]:
        """One page of a minion's children, in start order (``path`` "": the top level)."""
        cell = self._cell(path)
        with cell.children_lock:
            total = len(cell.children)
            page = list(itertools.islice(cell.children.values(), offset, offset + limit))
        return {"path": path, "total": total, "offset": offset,
                "rows": [self.row(c) for c in page]}

    def search(self, query: str, limit: int) -> dict[str, Any]:
        """Minions whose path or class contains ``query`` (case-insensitive)."""
        q = query.lower()
        found = [c for c in self.system.cells()
                 if q in c.path.lower() or q in c.cls_name.lower()]
        return {"query": query, "total": len(found),
                "rows": [self.row(c) for c in found[:limit]]}

    def minion(self, path: str) -> dict[str, Any]:
        """One minion with its last crash's traceback and, when its class opts in
        (``observer_state = True``), its stored snapshot."""
        cell = self._cell(path)
        row = self.row(cell)
        row["crash"] = self.recorder.last_crash(cell.path)
        row["dead_letters"] = cell.dead_letters
        row["state_shown"] = bool(getattr(cell.cls, "observer_state", False))
        store = self.system.store
        if row["state_shown"] and store is not None:
            row["snapshot"] = store.load(cell.path)
        return row

    def events(self, since: int) -> list[dict[str, Any]]:
        return self.recorder.since(since)

    # -- workflows, resources, pipelines, pool -------------------------------------------
    def workflows(self, status: str | None, limit: int) -> dict[str, Any]:
        return workflows_page(self.system.workflows(), status, limit)

    def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        """One workflow, with its declared steps when its minion runs (``steps``)."""
        info = self.system.workflow(workflow_id)
        if info is None:
            return None
        row = workflow_row(info)
        cell = self._find(info.minion)
        declared = getattr(cell.cls, info.name, None) if cell is not None else None
        row["steps"] = list(getattr(declared, "steps", ())) or None
        return row

    def overview(self) -> dict[str, Any]:
        system = self.system
        pool = system.worker_pool
        return {"live": True, "minions": len(system._registry),
                "pool": {"workers": pool.workers(), "busy": pool.busy(),
                         "run_queue": pool.queued(), "starvation_events":
                         pool.starvation_events},
                "last_event": self.recorder.last_seq}

    def parts(self) -> dict[str, Any]:
        """Resources and pipelines (asked only while their tab is open)."""
        return {"resources": self._resources(), "pipelines": self._pipelines()}

    def _counts(self, label: str) -> dict[tuple[str, str], float]:
        """The resource and pipeline counters, by (label value, sample name)."""
        metrics = self.system.metrics
        out: dict[tuple[str, str], float] = {}
        for metric in [] if metrics is None else metrics.extensions.metrics():
            for family in metric.collect():
                for s in family.samples:
                    if label in s.labels and s.name.endswith("_total"):
                        key = (s.labels[label], s.name)
                        out[key] = out.get(key, 0.0) + s.value
        return out

    def _resources(self) -> list[dict[str, Any]]:
        registry = self.system.resources
        counts = self._counts("resource")
        rows = []
        for name in registry.names():
            rows.append({"name": name, "state": registry.state(name),
                         "calls": counts.get((name, "minions_resource_calls_total"), 0),
                         "errors": counts.get((name, "minions_resource_call_errors_total"), 0)})
        return rows

    def _pipelines(self) -> list[dict[str, Any]]:
        counts = self._counts("pipeline")
        rows = []
        # the pipelines are the paths their metric series name: no walk over every cell
        for path in sorted({p for p, _ in counts}):
            cell = self._find(path)
            if cell is not None and issubclass(cell.cls, Pipeline):
                inst = cell.instance
                shown = getattr(cell.cls, "observer_state", False) and inst is not None
                rows.append({"path": cell.path, "state": state_of(cell),
                             "position": repr(inst.position)[:200] if shown else None,
                             "events": counts.get((cell.path, "minions_pipeline_events_total"), 0),
                             "backpressure_seconds": counts.get(
                                 (cell.path, "minions_pipeline_backpressure_seconds_total"), 0)})
        return rows

    # -- actions (the app checks the token first) ----------------------------------------
    def stop(self, path: str) -> dict[str, Any]:
        return {"stopped": bool(self.system.stop(path))}

    def restart(self, path: str) -> dict[str, Any]:
        self.system.get(path).tell(RestartRequest())
        return {"requested": True}

    def retry(self, workflow_id: str) -> dict[str, Any]:
        return workflow_row(self.system.retry_workflow(workflow_id))

    def discard(self, workflow_id: str) -> dict[str, Any]:
        return {"discarded": bool(self.system.discard_workflow(workflow_id))}

    def cancel(self, workflow_id: str) -> dict[str, Any]:
        return workflow_row(self.system.cancel_workflow(workflow_id, by="observer"))
