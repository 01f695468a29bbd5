"""Unit tests of the metrics module against stand-in cells and a stand-in system."""

from __future__ import annotations

import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from minions_actors.errors import MetricsPortInUse
from minions_actors.metrics import METRIC_FAMILIES, MetricsHooks
from minions_actors.runtime.dispatch import WorkerPool
from minions_actors.runtime.loophost import LoopHost


@dataclass
class FakeCell:
    path: str
    cls_name: str
    handled: int = 0
    failed: int = 0
    busy_seconds: float = 0.0
    restarts: int = 0
    depth: int = 0

    def mailbox_depth(self) -> int:
        return self.depth


@dataclass
class FakeStats:
    rows_written: int = 0
    batches: int = 0
    batch_seconds_sum: float = 0.0
    write_errors: int = 0
    pending: int = 0
    last_error: str | None = None


@dataclass
class FakeStore:
    stats_value: FakeStats = field(default_factory=FakeStats)

    def stats(self) -> FakeStats:
        return self.stats_value


@dataclass
class FakeSystem:
    live: list[FakeCell] = field(default_factory=list)
    store: FakeStore | None = None
    worker_pool: WorkerPool = field(default_factory=WorkerPool)  # not started: no threads
    loop_host: LoopHost = field(default_factory=LoopHost)  # not started: no loop, no threads

    def cells(self) -> list[FakeCell]:
        return list(self.live)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def scrape_text(metrics: MetricsHooks) -> str:
    assert metrics.url is not None
    assert metrics.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(metrics.url, timeout=5) as resp:
        assert resp.status == 200
        body: bytes = resp.read()
    return body.decode("utf-8")


def scrape(metrics: MetricsHooks) -> Samples:
    return parse(scrape_text(metrics))[0]


def local(metrics: MetricsHooks) -> Samples:
    """Collect without HTTP (same exposition code path)."""
    from prometheus_client import generate_latest

    return parse(generate_latest(metrics.registry).decode())[0]


def cls(name: str) -> tuple[tuple[str, str], ...]:
    return (("minion_class", name),)


def port_is_free(port: int) -> bool:
    """Whether a server (SO_REUSEADDR, like http.server) could listen on ``port`` now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_request_threads() -> None:
    """prometheus_client answers each scrape on a short-lived daemon thread; join them."""
    for t in threading.enumerate():
        if "process_request_thread" in t.name:
            t.join(timeout=10)


@pytest.fixture
def served() -> Any:
    system = FakeSystem(store=FakeStore())
    m = MetricsHooks(system, port=0)
    m.start()
    yield system, m
    m.close()


def test_message_metrics_read_from_cells_over_http(served: Any) -> None:
    system, m = served
    a = FakeCell("a", "Counter", handled=5, failed=1, busy_seconds=0.25, depth=3)
    b = FakeCell("b", "Counter", handled=2, busy_seconds=0.05, depth=1)
    c = FakeCell("p/c", "Worker", handled=7, busy_seconds=1.0)
    system.live += [a, b, c]
    for cell in system.live:
        m.minion_started(cell, False)
    samples = scrape(m)
    assert samples[("minions_messages_handled_total", cls("Counter"))] == 7
    assert samples[("minions_messages_failed_total", cls("Counter"))] == 1
    assert samples[("minions_message_handling_seconds_count", cls("Counter"))] == 8
    assert samples[("minions_message_handling_seconds_sum", cls("Counter"))] == pytest.approx(0.3)
    assert samples[("minions_mailbox_depth", cls("Counter"))] == 4
    assert samples[("minions_live_minions", cls("Counter"))] == 2
    assert samples[("minions_messages_handled_total", cls("Worker"))] == 7
    assert samples[("minions_live_minions", cls("Worker"))] == 1
    # No path label anywhere: labels are bounded.
    assert all("path" not in dict(labels) for _, labels in samples)


def test_every_declared_family_is_exported(served: Any) -> None:
    _, m = served
    _, types = parse(scrape_text(m))
    for name, kind in METRIC_FAMILIES.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        assert types.get(family) == kind, name
    assert "process_resident_memory_bytes" in scrape_text(m)
    assert "process_cpu_seconds" in types


def test_counters_stay_monotonic_when_minions_stop(served: Any) -> None:
    system, m = served
    a = FakeCell("a", "Counter", handled=10, failed=2, busy_seconds=1.0, depth=5)
    system.live.append(a)
    m.minion_started(a, False)
    assert scrape(m)[("minions_messages_handled_total", cls("Counter"))] == 10
    # minion_stopped before the cell leaves the registry: not counted twice.
    m.minion_stopped(a, "stop")
    samples = scrape(m)
    assert samples[("minions_messages_handled_total", cls("Counter"))] == 10
    assert samples[("minions_messages_failed_total", cls("Counter"))] == 2
    # ...then it is gone from the registry: still 10, gauges drop to 0 (not absent).
    system.live.clear()
    samples = scrape(m)
    assert samples[("minions_messages_handled_total", cls("Counter"))] == 10
    assert samples[("minions_message_handling_seconds_sum", cls("Counter"))] == 1.0
    assert samples[("minions_live_minions", cls("Counter"))] == 0
    assert samples[("minions_mailbox_depth", cls("Counter"))] == 0
    # A new minion of the same class adds on top.
    b = FakeCell("a", "Counter", handled=1)
    system.live.append(b)
    assert scrape(m)[("minions_messages_handled_total", cls("Counter"))] == 11


def test_removed_before_stopped_hook_never_goes_backwards(served: Any) -> None:
    system, m = served
    a = FakeCell("a", "Counter", handled=4)
    system.live.append(a)
    assert scrape(m)[("minions_messages_handled_total", cls("Counter"))] == 4
    system.live.clear()  # gone from the registry, hook not yet called
    assert scrape(m)[("minions_messages_handled_total", cls("Counter"))] == 4
    m.minion_stopped(a, "stop")
    m.minion_stopped(a, "stop")  # a second call folds nothing
    assert scrape(m)[("minions_messages_handled_total", cls("Counter"))] == 4


def test_event_counters(served: Any) -> None:
    _, m = served
    cell = FakeCell("a", "Flaky")
    m.minion_started(cell, False)
    before = scrape(m)
    assert before[("minions_restarts_total", cls("Flaky"))] == 0  # exists at 0
    assert before[("minions_crashes_total", (("minion_class", "Flaky"), ("phase", "init")))] == 0
    m.minion_crashed(cell, ValueError("x"), "message")
    m.minion_crashed(cell, ValueError("x"), "message")
    m.minion_crashed(cell, ValueError("x"), "on_start")
    m.minion_restarting(cell, 0.1, "crash")
    m.escalated(cell, RuntimeError("gave up"))
    m.dead_letter(cell, "x", True)
    m.dead_letter(cell, "y", False)
    m.snapshot_error(cell, TypeError("no json"), True)
    s = scrape(m)
    assert s[("minions_crashes_total", (("minion_class", "Flaky"), ("phase", "message")))] == 2
    assert s[("minions_crashes_total", (("minion_class", "Flaky"), ("phase", "on_start")))] == 1
    assert s[("minions_restarts_total", cls("Flaky"))] == 1
    assert s[("minions_escalations_total", cls("Flaky"))] == 1
    assert s[("minions_dead_letters_total", cls("Flaky"))] == 2
    assert s[("minions_snapshot_errors_total", cls("Flaky"))] == 1


def test_store_stats_and_resource_errors(served: Any) -> None:
    system, m = served
    system.store.stats_value = FakeStats(
        rows_written=120, batches=4, batch_seconds_sum=0.02, write_errors=2, pending=7
    )
    m.resource_error("sidecar")
    m.lifecycle_error(FakeCell("", "Gru"), OSError("disk full"), "store-close")
    m.lifecycle_error(FakeCell("a", "Worker"), RuntimeError("on_stop"), "on_stop")
    s = scrape(m)
    assert s[("minions_snapshot_writes_total", ())] == 120
    assert s[("minions_snapshot_write_seconds_count", ())] == 4
    assert s[("minions_snapshot_write_seconds_sum", ())] == pytest.approx(0.02)
    assert s[("minions_snapshot_queue_depth", ())] == 7
    assert s[("minions_resource_errors_total", (("resource", "state_store"),))] == 3
    assert s[("minions_resource_errors_total", (("resource", "sidecar"),))] == 1


def test_no_store_means_no_snapshot_samples() -> None:
    m = MetricsHooks(FakeSystem(store=None), port=None)
    m.start()  # port=None: nothing served
    assert m.url is None
    s = local(m)
    assert not [k for k in s if k[0].startswith("minions_snapshot_write")]
    m.close()


def test_broken_cells_count_as_metrics_errors() -> None:
    class Broken(FakeSystem):
        def cells(self) -> list[FakeCell]:
            raise RuntimeError("torn down")

    m = MetricsHooks(Broken(), port=None)
    assert local(m)[("minions_resource_errors_total", (("resource", "metrics"),))] == 1


def test_workflow_metrics(served: Any) -> None:
    _, m = served
    lab = (("minion_class", "Orders"), ("workflow", "checkout"))
    m.count_workflow_started("Orders", "checkout")
    s = scrape(m)
    assert s[("minions_workflow_failures_total", lab)] == 0  # pre-bound at 0
    assert s[("minions_workflows_in_flight", lab)] == 1
    m.count_workflow_started("Orders", "checkout")
    m.count_workflow_started("Orders", "checkout")
    m.record_workflow_step("Orders", "checkout", 0.3)
    m.count_workflow_completed("Orders", "checkout")
    m.count_workflow_failed("Orders", "checkout")
    m.count_workflow_aborted("Orders", "checkout")
    s = scrape(m)
    assert s[("minions_workflow_starts_total", lab)] == 3
    assert s[("minions_workflow_completions_total", lab)] == 1
    assert s[("minions_workflow_failures_total", lab)] == 1
    assert s[("minions_workflows_in_flight", lab)] == 0
    assert s[("minions_workflow_step_seconds_count", lab)] == 1
    assert s[("minions_workflow_step_seconds_bucket", tuple(sorted((*lab, ("le", "0.5")))))] == 1


def test_own_registry_not_global() -> None:
    m = MetricsHooks(FakeSystem(), port=None)
    assert m.registry is not REGISTRY
    assert REGISTRY.get_sample_value("minions_workflow_starts_total") is None
    # A second instance in the same process registers the same names without collision.
    MetricsHooks(FakeSystem(), port=None)


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        m = MetricsHooks(FakeSystem(), port=port)
        with pytest.raises(MetricsPortInUse) as info:
            m.start()
        text = str(info.value)
        assert f"127.0.0.1:{port}" in text
        assert "metrics_port=" in text
        assert "metrics_port=None" in text
        assert isinstance(info.value, OSError)
        m.close()


def test_close_leaves_no_thread_and_frees_port() -> None:
    m = MetricsHooks(FakeSystem(), port=0)
    m.start()
    port = m.port
    assert port
    scrape(m)
    serving = [t for t in threading.enumerate() if t.name == f"minions-metrics-{port}"]
    assert len(serving) == 1
    m.close()
    m.close()  # idempotent
    wait_request_threads()
    assert not serving[0].is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("minions-metrics-")]
    assert m.url is None
    assert port_is_free(port)


def test_two_systems_in_sequence_on_the_same_port() -> None:
    first = MetricsHooks(FakeSystem(), port=0)
    first.start()
    port = first.port
    assert port is not None
    scrape(first)
    first.close()
    wait_request_threads()
    second = MetricsHooks(FakeSystem([FakeCell("x", "Again", handled=3)]), port=port)
    second.start()
    try:
        assert second.port == port
        assert scrape(second)[("minions_messages_handled_total", cls("Again"))] == 3
    finally:
        second.close()


def test_system_stopped_closes_the_endpoint() -> None:
    m = MetricsHooks(FakeSystem(), port=0)
    m.start()
    port = m.port
    assert port is not None
    m.system_stopped(object(), None)
    assert m.url is None
    assert port_is_free(port)
