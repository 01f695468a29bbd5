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
import socket
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from minions_actors.errors import MetricsPortInUse
from minions_actors.observability.hooks import CRASH_PHASES, Hooks, MinionView
from minions_actors.observability.resource_metrics import EXTENSION_FAMILIES, ResourceMetrics

__all__ = [
    "CRASH_PHASES",
    "METRIC_FAMILIES",
    "MetricsHooks",
    "MinionsCollector",
]


#: ``lifecycle_error`` phases that are failures of a runtime resource (closing the store).
_RESOURCE_PHASES = {"store-close": "state_store"}

#: Every family this module exports: name (as exposed, without sample suffixes) -> type.
METRIC_FAMILIES: dict[str, str] = {
    "minions_messages_handled_total": "counter",
    "minions_messages_failed_total": "counter",
    "minions_message_handling_seconds": "summary",
    "minions_mailbox_depth": "gauge",
    "minions_live_minions": "gauge",
    "minions_restarts_total": "counter",
    "minions_crashes_total": "counter",
    "minions_escalations_total": "counter",
    "minions_dead_letters_total": "counter",
    "minions_snapshot_errors_total": "counter",
    "minions_snapshots_quarantined_total": "counter",
    "minions_snapshot_writes_total": "counter",
    "minions_workflow_checkpoints_total": "counter",
    "minions_snapshot_write_seconds": "summary",
    "minions_snapshot_queue_depth": "gauge",
    "minions_resource_errors_total": "counter",
    "minions_workflow_starts_total": "counter",
    "minions_workflow_completions_total": "counter",
    "minions_workflow_failures_total": "counter",
    "minions_workflows_in_flight": "gauge",
    "minions_workflow_step_seconds": "histogram",
    **EXTENSION_FAMILIES,  # user resources and pipelines (resource_metrics.py)
}


#: How often the serving loop checks for shutdown: bounds how long :meth:`MetricsHooks.close`
#: takes (prometheus_client's ``start_http_server`` uses 0.5 s, felt on every shutdown).
_POLL_INTERVAL = 0.05


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print an access-log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(registry: CollectorRegistry, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Start a ``/metrics`` server thread, like ``prometheus_client.start_http_server``."""
    # Pick IPv4 or IPv6 from the host, as prometheus_client does (127.0.0.1, ::1, 0.0.0.0...).
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    family, addr = info[0], str(info[4][0])

    class _Server(ThreadingWSGIServer):
        address_family = family

    server = make_server(addr, port, make_wsgi_app(registry), _Server, handler_class=_QuietHandler)
    def serve() -> None:
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()  # request threads inherit the mask
        server.serve_forever(poll_interval=_POLL_INTERVAL)

    thread = threading.Thread(
        target=serve,
        name=f"minions-metrics-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return server, thread


class SystemView(Protocol):
    """What the metrics read from the system: a snapshot list of live cells (Gru excluded).

    ``system.store`` (optional, may be None) is read with ``getattr`` so that stores without
    ``stats()`` (e.g. an in-memory test store) simply export no snapshot numbers.
    """

    def cells(self) -> Sequence[Any]: ...


@dataclass
class _ClassTotals:
    handled: int = 0
    failed: int = 0
    busy_seconds: float = 0.0


class MinionsCollector(Collector):
    """Custom collector: message-path and state-store numbers computed at scrape time.

    Counters stay monotonic when minions stop: :meth:`retire` folds a stopping cell's totals
    into per-class "retired" totals, cells already retired are skipped if a live-cell snapshot
    still lists them, and each exported counter is clamped to its previous high-water mark (a
    store replaced mid-run, or a cell briefly missing between registry removal and
    ``minion_stopped``, never makes a counter go backwards).
    """

    def __init__(self, system: SystemView) -> None:
        self._system = system
        self._lock = threading.Lock()
        self._retired: dict[str, _ClassTotals] = {}
        # id -> cell already folded into the totals, held weakly: a stopped cell (its
        # thread, mailbox and last instance) must not live on until the next scrape. A
        # cells() snapshot that still lists one holds it, so it is found here while that
        # matters; an entry goes with its cell, so a reused id never matches.
        self._retired_cells: weakref.WeakValueDictionary[int, Any] = (
            weakref.WeakValueDictionary()
        )
        self._known_classes: set[str] = set()
        self._resource_errors: dict[str, int] = {}
        self._high_water: dict[tuple[str, tuple[str, ...]], float] = {}

    def retire(self, cell: MinionView) -> None:
        """Fold a stopped cell's counts into its class's retired totals (once per cell)."""
        with self._lock:
            if self._retired_cells.get(id(cell)) is cell:
                return
            totals = self._retired.setdefault(cell.cls_name, _ClassTotals())
            totals.handled += int(cell.handled)
            totals.failed += int(cell.failed)
            totals.busy_seconds += float(cell.busy_seconds)
            self._retired_cells[id(cell)] = cell
            self._known_classes.add(cell.cls_name)

    def note_class(self, cls_name: str) -> None:
        """Remember a class so its gauges report 0 (not absent) once it has no live minion."""
        with self._lock:
            self._known_classes.add(cls_name)

    def resource_error(self, resource: str, n: int = 1) -> None:
        """Count an error of a named resource (``metrics``, ``sidecar``...; keep it bounded)."""
        with self._lock:
            self._resource_errors[resource] = self._resource_errors.get(resource, 0) + n

    def _monotonic(self, name: str, labels: tuple[str, ...], value: float) -> float:
        key = (name, labels)
        best = max(self._high_water.get(key, 0.0), value)
        self._high_water[key] = best
        return best

    def describe(self) -> Iterable[Any]:
        """Nothing to describe up front: keeps registration from running a scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """Build the families from the live cells, the retired totals and the store stats."""
        try:
            live = list(self._system.cells())
        except Exception:
            live = []
            self.resource_error("metrics")
        store_stats = self._store_stats()
        with self._lock:
            yield from self._families(live, store_stats)

    def _store_stats(self) -> Any:
        store = getattr(self._system, "store", None)
        stats = getattr(store, "stats", None)
        if stats is None:
            return None
        try:
            return stats()
        except Exception:
            self.resource_error("metrics")
            return None

    def _families(self, live: list[Any], store_stats: Any) -> Iterator[Any]:
        retired = self._retired_cells
        still_listed = {id(c) for c in live if retired.get(id(c)) is c}
        per_class: dict[str, _ClassTotals] = {
            cls: _ClassTotals(t.handled, t.failed, t.busy_seconds)
            for cls, t in self._retired.items()
        }
        depth: dict[str, int] = {}
        count: dict[str, int] = {}
        for cls in self._known_classes:
            per_class.setdefault(cls, _ClassTotals())
            depth[cls] = 0
            count[cls] = 0
        for cell in live:
            if id(cell) in still_listed:
                continue
            try:
                cls = str(cell.cls_name)
                ok, bad = int(cell.handled), int(cell.failed)
                busy, waiting = float(cell.busy_seconds), int(cell.mailbox_depth())
            except Exception:
                self._resource_errors["metrics"] = self._resource_errors.get("metrics", 0) + 1
                continue
            totals = per_class.setdefault(cls, _ClassTotals())
            totals.handled += ok
            totals.failed += bad
            totals.busy_seconds += busy
            depth[cls] = depth.get(cls, 0) + waiting
            count[cls] = count.get(cls, 0) + 1
            self._known_classes.add(cls)

        handled = CounterMetricFamily(
            "minions_messages_handled",
            "Messages handled successfully, by minion class.",
            labels=["minion_class"],
        )
        failed = CounterMetricFamily(
            "minions_messages_failed",
            "Messages whose handler raised (the minion crashed), by minion class.",
            labels=["minion_class"],
        )
        seconds = SummaryMetricFamily(
            "minions_message_handling_seconds",
            "Time spent handling messages (count: handled + failed), by minion class.",
            labels=["minion_class"],
        )
        mailbox = GaugeMetricFamily(
            "minions_mailbox_depth",
            "Messages waiting in mailboxes, summed over live minions of a class.",
            labels=["minion_class"],
        )
        alive = GaugeMetricFamily(
            "minions_live_minions", "Live minions, by minion class.", labels=["minion_class"]
        )
        for cls in sorted(per_class):
            t = per_class[cls]
            lab = (cls,)
            total = int(self._monotonic("count", lab, t.handled + t.failed))
            busy = self._monotonic("busy", lab, t.busy_seconds)
            handled.add_metric([cls], self._monotonic("handled", lab, t.handled))
            failed.add_metric([cls], self._monotonic("failed", lab, t.failed))
            seconds.add_metric([cls], count_value=total, sum_value=busy)
            mailbox.add_metric([cls], depth.get(cls, 0))
            alive.add_metric([cls], count.get(cls, 0))
        yield from (handled, failed, seconds, mailbox, alive)

        writes = CounterMetricFamily(
            "minions_snapshot_writes", "Snapshot rows written to the state store."
        )
        write_seconds = SummaryMetricFamily(
            "minions_snapshot_write_seconds",
            "Latency of state-store write batches (count: batches committed).",
        )
        queue = GaugeMetricFamily(
            "minions_snapshot_queue_depth", "Snapshots accepted but not yet written."
        )
        checkpoints = CounterMetricFamily(
            "minions_workflow_checkpoints",
            "Workflow checkpoint rows written to the state store.",
        )
        resources = dict(self._resource_errors)
        if store_stats is not None:
            writes.add_metric([], self._monotonic("rows", (), store_stats.rows_written))
            checkpoints.add_metric([], self._monotonic(
                "checkpoints", (), getattr(store_stats, "workflow_rows_written", 0)))
            write_seconds.add_metric(
                [],
                count_value=int(self._monotonic("batches", (), store_stats.batches)),
                sum_value=self._monotonic("batch_s", (), store_stats.batch_seconds_sum),
            )
            queue.add_metric([], store_stats.pending)
            resources["state_store"] = resources.get("state_store", 0) + store_stats.write_errors
        yield from (writes, write_seconds, queue, checkpoints)

        errors = CounterMetricFamily(
            "minions_resource_errors",
            "Errors of resources (state_store, metrics, user resources by name), by resource.",
            labels=["resource"],
        )
        for resource in sorted(resources):
            value = self._monotonic("resource", (resource,), resources[resource])
            errors.add_metric([resource], value)
        yield errors


class _WithoutCreated(Collector):
    """Exposes ``metrics`` without their ``_created`` samples.

    prometheus_client adds a ``_created`` sample to every counter and histogram child; the
    families computed at scrape time have none. Leaving them out here makes every
    ``minions_*`` family consistent without ``disable_created_metrics()``, which is
    process-wide and would change the application's own metrics too.
    """

    def __init__(self, metrics: Sequence[Any]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[Any]:
        for metric in self._metrics:
            for family in metric.collect():
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
                yield family


class MetricsHooks(Hooks):
    """Owns a system's Prometheus registry and HTTP endpoint and counts lifecycle events.

    Each instance has its own :class:`CollectorRegistry` (never the global one), so systems
    started one after another in a process never collide. ``port=None`` keeps the registry
    but serves nothing; ``port=0`` binds a free port (see :attr:`port` and :attr:`url`).
    """

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
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

        r = None  # not registered one by one: through _WithoutCreated below
        cls = ["minion_class"]
        wf = ["minion_class", "workflow"]
        self.restarts = Counter(
            "minions_restarts", "Restarts decided by supervisors.", cls, registry=r
        )
        self.crashes = Counter(
            "minions_crashes",
            "Crashes, by minion class and phase (init, restore, on_start, message).",
            [*cls, "phase"],
            registry=r,
        )
        self.escalations = Counter(
            "minions_escalations",
            "Supervisors that exceeded their restart intensity and failed upward.",
            cls,
            registry=r,
        )
        self.dead_letters = Counter(
            "minions_dead_letters", "Messages sent to stopped minions.", cls, registry=r
        )
        self.snapshot_errors = Counter(
            "minions_snapshot_errors",
            "snapshot() calls that raised or returned non-JSON state.",
            cls,
            registry=r,
        )
        self.snapshots_quarantined = Counter(
            "minions_snapshots_quarantined",
            "Stored snapshots that restore() could not load, moved to the quarantine.",
            cls,
            registry=r,
        )
        self.workflow_starts = Counter(
            "minions_workflow_starts", "Workflows started.", wf, registry=r
        )
        self.workflow_completions = Counter(
            "minions_workflow_completions", "Workflows completed.", wf, registry=r
        )
        self.workflow_failures = Counter(
            "minions_workflow_failures", "Workflows that failed.", wf, registry=r
        )
        self.workflows_in_flight = Gauge(
            "minions_workflows_in_flight",
            "Workflows started and not yet finished.",
            wf,
            registry=r,
        )
        self.workflow_step_seconds = Histogram(
            "minions_workflow_step_seconds", "Duration of workflow steps.", wf, registry=r
        )
        #: user resources' calls and pipelines' events (resources/, pipelines.py)
        self.extensions = ResourceMetrics()
        self.registry.register(_WithoutCreated([
            self.restarts, self.crashes, self.escalations, self.dead_letters,
            self.snapshot_errors, self.snapshots_quarantined, self.workflow_starts,
            self.workflow_completions,
            self.workflow_failures, self.workflows_in_flight, self.workflow_step_seconds,
            *self.extensions.metrics(),
        ]))
        self._bound: dict[tuple[str, str], tuple[Any, Any, Any, Any, Any]] = {}

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
                server, thread = _serve(self.registry, self.host, self.port)
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
        self.collector.note_class(cls_name)
        # Create the class's event series at 0 so rate()/increase() see the first event.
        self.restarts.labels(cls_name)
        self.escalations.labels(cls_name)
        self.dead_letters.labels(cls_name)
        self.snapshot_errors.labels(cls_name)
        self.snapshots_quarantined.labels(cls_name)
        for phase in CRASH_PHASES:
            self.crashes.labels(cls_name, phase)

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
