"""Prometheus metrics for a minions system: its own registry, an HTTP endpoint, and hooks.

Message-path numbers (handled, failed, handling time, mailbox depth, live minions) are read
from the cells at scrape time by a custom collector, so a handled message costs nothing here.
Events (crashes, restarts, escalations, dead letters...) are counted by :class:`MetricsHooks`
from lifecycle hooks. Every family is prefixed ``minions_`` and labelled by minion class (a
bounded set), never by message content. Process CPU/memory come from prometheus_client's
``ProcessCollector`` and ``PlatformCollector`` (standard ``process_*``/``python_*`` names).
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from minions_actors.errors import MetricsPortInUse
from minions_actors.observability.collector import MinionsCollector, WithoutCreated
from minions_actors.observability.families import (
    CLASS_LABELS,
    Family,
    create_families,
    exposed_families,
    families_of,
)
from minions_actors.observability.hooks import CRASH_PHASES, Hooks, MinionView, SystemView
from minions_actors.observability.metrics_http import serve_metrics
from minions_actors.observability.resource_metrics import EXTENSION_FAMILIES, ResourceMetrics

__all__ = [
    "CRASH_PHASES",
    "METRIC_FAMILIES",
    "MetricsHooks",
    "MinionsCollector",
]


#: ``lifecycle_error`` phases that are failures of a runtime resource (closing the store).
_RESOURCE_PHASES = {"store-close": "state_store"}

#: The families the scrape-time collector exports (collector.py): name -> type.
_COLLECTED_FAMILIES: dict[str, str] = {
    "minions_messages_handled_total": "counter",
    "minions_messages_failed_total": "counter",
    "minions_message_handling_seconds": "summary",
    "minions_mailbox_depth": "gauge",
    "minions_live_minions": "gauge",
    "minions_snapshot_writes_total": "counter",
    "minions_workflow_checkpoints_total": "counter",
    "minions_snapshot_write_seconds": "summary",
    "minions_snapshot_queue_depth": "gauge",
    "minions_resource_errors_total": "counter",
    "minions_pool_workers": "gauge",
    "minions_pool_busy_workers": "gauge",
    "minions_pool_run_queue": "gauge",
    "minions_pool_starvation_events_total": "counter",
    "minions_loop_blocked_events_total": "counter",
    "minions_loop_max_lag_seconds": "gauge",
    "minions_timers_active": "gauge",
    "minions_schedules_active": "gauge",
    "minions_timer_lateness_seconds": "histogram",
    "minions_workflows_waiting": "gauge",
}

_WF = ("minion_class", "workflow")


class MetricsHooks(Hooks):
    """Owns a system's Prometheus registry and HTTP endpoint and counts lifecycle events.

    Each instance has its own :class:`CollectorRegistry` (never the global one), so systems
    started one after another in a process never collide. ``port=None`` keeps the registry
    but serves nothing; ``port=0`` binds a free port (see :attr:`port` and :attr:`url`).
    """

    # The event families, one line each; __init__ creates one metric per family.
    restarts = Family(Counter, "minions_restarts", "Restarts decided by supervisors.")
    crashes = Family(Counter, "minions_crashes", "Crashes, by minion class and phase "
                     "(init, restore, on_start, message).", (*CLASS_LABELS, "phase"))
    escalations = Family(Counter, "minions_escalations", "Supervisors that exceeded their "
                         "restart intensity and failed upward.")
    dead_letters = Family(Counter, "minions_dead_letters", "Messages sent to stopped minions.")
    snapshot_errors = Family(Counter, "minions_snapshot_errors",
                             "snapshot() calls that raised or returned non-JSON state.")
    snapshots_quarantined = Family(Counter, "minions_snapshots_quarantined", "Stored snapshots "
                                   "that restore() could not load, moved to the quarantine.")
    workflow_starts = Family(Counter, "minions_workflow_starts", "Workflows started.", _WF)
    workflow_completions = Family(Counter, "minions_workflow_completions",
                                  "Workflows completed.", _WF)
    workflow_failures = Family(Counter, "minions_workflow_failures", "Workflows that failed.",
                               _WF)
    workflows_in_flight = Family(Gauge, "minions_workflows_in_flight",
                                 "Workflows started and not yet finished.", _WF)
    workflow_step_seconds = Family(Histogram, "minions_workflow_step_seconds",
                                   "Duration of workflow steps.", _WF)

    def __init__(
        self, system: SystemView, *, host: str = "127.0.0.1", port: int | None = 8081
    ) -> None:
        self.host = host
        self.port: int | None = port
        self.registry = CollectorRegistry(auto_describe=True)
        self.collector = MinionsCollector(system)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._server: Any = None
        #: more WSGI apps served beside /metrics, by path prefix (set before start())
        self.routes: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._classes: set[str] = set()  # classes whose event series exist already
        events = create_families(self)
        #: user resources' calls and pipelines' events (resources/, pipelines.py)
        self.extensions = ResourceMetrics()
        # registered together, through WithoutCreated (no *_created series)
        self.registry.register(WithoutCreated([*events, *self.extensions.metrics()]))
        self._bound: dict[tuple[str, str], tuple[Any, Any, Any, Any, Any]] = {}
        self._per_class = [getattr(self, f.attr) for f in families_of(MetricsHooks)
                           if f.labels == CLASS_LABELS]

    # -- HTTP endpoint -------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """``http://host:port/metrics`` while serving, else None."""
        if self._server is None or self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        """Serve ``/metrics``; raises :class:`MetricsPortInUse` if the port is taken."""
        with self._lock:
            if self._server is not None or self.port is None:
                return
            try:
                server, thread = serve_metrics(self.registry, self.host, self.port,
                                               self.routes)
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    raise MetricsPortInUse(
                        f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror}. "
                        "Another process (or another system) holds the port: pass "
                        "metrics_port=<free port> (0 picks one) to ActorSystem.start(), "
                        "or metrics_port=None to disable the metrics endpoint."
                    ) from exc
                raise
            self._server, self._thread = server, thread
            self.port = int(server.server_address[1])

    def close(self) -> None:
        """Stop the endpoint: no listening socket and no serving thread remain. Idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    # -- lifecycle hooks -----------------------------------------------------------------

    def system_stopped(self, system: Any, failure: BaseException | None) -> None:
        self.close()

    def minion_started(self, cell: MinionView, restored: bool) -> None:
        cls_name = cell.cls_name
        if cls_name in self._classes:  # its series exist: this was ~13 us per start
            return
        self.collector.note_class(cls_name)
        # Create the class's event series at 0 so rate()/increase() see the first event.
        for family in self._per_class:
            family.labels(cls_name)
        for phase in CRASH_PHASES:
            self.crashes.labels(cls_name, phase)
        self._classes.add(cls_name)

    def minion_crashed(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        self.crashes.labels(cell.cls_name, phase).inc()

    def minion_restarting(self, cell: MinionView, delay: float, cause: str) -> None:
        self.restarts.labels(cell.cls_name).inc()

    def minion_stopped(self, cell: MinionView, reason: str) -> None:
        self.collector.retire(cell)

    def lifecycle_error(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        resource = _RESOURCE_PHASES.get(phase)
        if resource is not None:
            self.collector.resource_error(resource)

    def escalated(self, cell: MinionView, exc: BaseException) -> None:
        self.escalations.labels(cell.cls_name).inc()

    def dead_letter(self, cell: MinionView, message: Any, first: bool) -> None:
        self.dead_letters.labels(cell.cls_name).inc()

    def message_refused(self, cell: MinionView, message: Any, exc: BaseException) -> None:
        self.dead_letters.labels(cell.cls_name).inc()

    def messages_dropped(self, cell: MinionView, count: int) -> None:
        self.dead_letters.labels(cell.cls_name).inc(count)

    def snapshot_error(self, cell: MinionView, exc: BaseException, first: bool) -> None:
        self.snapshot_errors.labels(cell.cls_name).inc()

    def snapshot_quarantined(self, cell: MinionView, exc: BaseException) -> None:
        self.snapshots_quarantined.labels(cell.cls_name).inc()

    def workflow_started(self, cell: MinionView, info: Any, resumed: bool) -> None:
        self.count_workflow_started(cell.cls_name, info.name, count=not resumed)

    def workflow_step(self, cell: MinionView, workflow: str, step: str, seconds: float,
                      ok: bool) -> None:
        self.record_workflow_step(cell.cls_name, workflow, seconds)

    def workflow_finished(self, cell: MinionView, info: Any, exc: BaseException | None) -> None:
        if info.status == "completed":
            self.count_workflow_completed(cell.cls_name, info.name)
        elif info.status == "failed":
            self.count_workflow_failed(cell.cls_name, info.name)
        else:
            self.count_workflow_aborted(cell.cls_name, info.name)

    def resource_error(self, resource: str) -> None:
        """Count one error of a named runtime resource in ``minions_resource_errors_total``."""
        self.collector.resource_error(resource)

    # -- workflows -----------------------------------------------------------------------

    def _workflow(self, minion_class: str, workflow: str) -> tuple[Any, Any, Any, Any, Any]:
        """The five labelled children of a (class, workflow) pair, created (at 0) once."""
        key = (minion_class, workflow)
        bound = self._bound.get(key)
        if bound is None:
            bound = (
                self.workflow_starts.labels(minion_class, workflow),
                self.workflow_completions.labels(minion_class, workflow),
                self.workflow_failures.labels(minion_class, workflow),
                self.workflows_in_flight.labels(minion_class, workflow),
                self.workflow_step_seconds.labels(minion_class, workflow),
            )
            self._bound[key] = bound
        return bound

    def count_workflow_started(
        self, minion_class: str, workflow: str, count: bool = True
    ) -> None:
        """A workflow run began (``count``) or resumed after a restart (in flight only)."""
        starts, _, _, in_flight, _ = self._workflow(minion_class, workflow)
        if count:
            starts.inc()
        in_flight.inc()

    def count_workflow_completed(self, minion_class: str, workflow: str) -> None:
        """A workflow run finished all its steps."""
        _, completions, _, in_flight, _ = self._workflow(minion_class, workflow)
        completions.inc()
        in_flight.dec()

    def count_workflow_failed(self, minion_class: str, workflow: str) -> None:
        """A workflow run failed for good (counted in ``minions_workflow_failures_total``)."""
        _, _, failures, in_flight, _ = self._workflow(minion_class, workflow)
        failures.inc()
        in_flight.dec()

    def count_workflow_aborted(self, minion_class: str, workflow: str) -> None:
        """A workflow run was aborted on purpose: no longer in flight, not a failure."""
        self._workflow(minion_class, workflow)[3].dec()

    def record_workflow_step(self, minion_class: str, workflow: str, seconds: float) -> None:
        """A workflow step ran for ``seconds``."""
        self._workflow(minion_class, workflow)[4].observe(seconds)


#: Every family this module exports: name (as exposed, without sample suffixes) -> type.
METRIC_FAMILIES: dict[str, str] = {
    **_COLLECTED_FAMILIES,
    **exposed_families(MetricsHooks),
    **EXTENSION_FAMILIES,  # user resources and pipelines (resource_metrics.py)
}
