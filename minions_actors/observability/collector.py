"""The collector that computes the message-path and state-store families at scrape time,
so that a handled message costs nothing in metrics."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from minions_actors.observability.hooks import MinionView, SystemView
from minions_actors.support.timer import LATENESS_BUCKETS


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
            yield from self._pool_families(getattr(self._system, "worker_pool", None))
            yield from self._loop_families(getattr(self._system, "loop_host", None))
            yield from _timer_families(getattr(getattr(self._system, "timer", None),
                                               "stats", None))
            yield _waiting_family(live)

    def _pool_families(self, pool: Any) -> Iterator[Any]:
        """The shared worker pool: its size, busy workers, run queue, starvation events."""
        if pool is None:
            return
        gauges = (("minions_pool_workers", "Worker threads in the shared pool.", pool.workers),
                  ("minions_pool_busy_workers", "Pool workers running a minion's turn now.",
                   pool.busy),
                  ("minions_pool_run_queue", "Minions with mail waiting for a pool worker.",
                   pool.queued))
        for name, text, read in gauges:
            family = GaugeMetricFamily(name, text)
            family.add_metric([], read())
            yield family
        starved = CounterMetricFamily(
            "minions_pool_starvation_events",
            "Handlers that held a pool worker beyond the starvation threshold.")
        starved.add_metric([], self._monotonic("starved", (), pool.starvation_events))
        yield starved

    def _loop_families(self, host: Any) -> Iterator[Any]:
        """The async minions' event loop: how often and how long a coroutine blocked it."""
        if host is None:
            return
        blocked = CounterMetricFamily(
            "minions_loop_blocked_events",
            "Times the async minions' event loop was blocked beyond the lag threshold.")
        blocked.add_metric([], self._monotonic("loop_blocked", (), host.blocked_events))
        yield blocked
        lag = GaugeMetricFamily("minions_loop_max_lag_seconds",
                                "The longest the async minions' event loop was blocked.")
        lag.add_metric([], host.max_lag)
        yield lag

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
        per_class, depth, count = self._class_totals(live)
        yield from self._message_families(per_class, depth, count)
        resources = dict(self._resource_errors)
        yield from self._store_families(store_stats, resources)
        yield self._resource_family(resources)

    def _class_totals(
        self, live: list[Any]
    ) -> tuple[dict[str, _ClassTotals], dict[str, int], dict[str, int]]:
        """Per class: the totals (retired plus live), the mailbox depth and the live count."""
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
        return per_class, depth, count

    def _message_families(self, per_class: dict[str, _ClassTotals], depth: dict[str, int],
                          count: dict[str, int]) -> Iterator[Any]:
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

    def _store_families(self, store_stats: Any, resources: dict[str, int]) -> Iterator[Any]:
        """The state store's families; its write errors are added to ``resources``."""
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

    def _resource_family(self, resources: dict[str, int]) -> Any:
        errors = CounterMetricFamily(
            "minions_resource_errors",
            "Errors of resources (state_store, metrics, user resources by name), by resource.",
            labels=["resource"],
        )
        for resource in sorted(resources):
            value = self._monotonic("resource", (resource,), resources[resource])
            errors.add_metric([resource], value)
        return errors


class WithoutCreated(Collector):
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


def _waiting_family(live: list[Any]) -> Any:
    """Workflows in a Sleep step, and waiting for a signal, read from the live cells'
    workflow runners (``waiting_counts``) at scrape time."""
    sleeping = signals = 0
    for cell in live:
        part = getattr(cell, "parts", {}).get("workflows")
        counts = getattr(part, "waiting_counts", None)
        if counts is not None:
            try:
                s, w = counts()
            except RuntimeError:  # its dict changed during the read: counted next scrape
                continue
            sleeping, signals = sleeping + s, signals + w
    family = GaugeMetricFamily("minions_workflows_waiting",
                               "Running workflows in a Sleep step (kind=sleep) or waiting "
                               "for a signal (kind=signal).", labels=["kind"])
    family.add_metric(["sleep"], sleeping)
    family.add_metric(["signal"], signals)
    return family


def _timer_families(stats: Any) -> Iterator[Any]:
    """Minions' timers: how many are active, how late they fired (``support.timer``)."""
    active = GaugeMetricFamily("minions_timers_active",
                               "Timers started by minions and not yet ended or cancelled.")
    active.add_metric([], stats.active if stats is not None else 0)
    yield active
    durable = GaugeMetricFamily("minions_schedules_active",
                                "Durable schedules of persistent minions armed in this process.")
    durable.add_metric([], stats.schedules if stats is not None else 0)
    yield durable
    late = HistogramMetricFamily(
        "minions_timer_lateness_seconds",
        "How late minions' timer messages reached their handler after they were due.")
    buckets: list[tuple[str, float]] = []
    total = 0
    if stats is not None:
        for bound, count in zip(LATENESS_BUCKETS, stats.counts, strict=False):
            total += count
            buckets.append((repr(bound), total))
        total += stats.counts[-1]
    buckets.append(("+Inf", total))
    late.add_metric([], buckets, stats.total_seconds if stats is not None else 0.0)
    yield late
