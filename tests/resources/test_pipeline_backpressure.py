"""Pipelines behind slow subscribers: every second spent waiting for room is counted (read
from the live metrics endpoint), and a stop or a shutdown is handled within its bound
however slow the subscriber, without losing what was handed over."""

from __future__ import annotations

import threading
import time
from typing import Any

from minions_actors import ActorSystem, Minion
from tests.conftest import QUIET, Recorder
from tests.observability.test_observability import scrape
from tests.resources.test_pipelines import Numbers, got


class Slow(Minion):
    """Takes ``seconds`` per event."""

    def __init__(self, seconds: float, rec: Recorder) -> None:
        super().__init__()
        self.seconds, self.rec = seconds, rec

    def on_receive(self, message: Any) -> Any:
        threading.Event().wait(self.seconds)
        self.rec.add((self.name, message))


def _backpressure(system: ActorSystem, pipeline: str) -> float:
    assert system.metrics is not None and system.metrics.url is not None
    samples = scrape(system.metrics.url)
    return samples[("minions_pipeline_backpressure_seconds_total", (("pipeline", pipeline),))]


def test_every_second_spent_waiting_for_room_is_counted(rec: Recorder) -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        system.spawn(Slow, 0.2, rec, name="slow", mailbox_size=1)
        t0 = time.monotonic()
        system.spawn(Numbers, 1000, 50, ["slow"], rec, name="numbers")
        rec.wait_for(lambda _: len(got(rec, "slow")) >= 15, timeout=30)  # 3 s at least
        waited = _backpressure(system, "numbers")
        elapsed = time.monotonic() - t0
        # blocked nearly all the time (the alert's threshold is half); never more than it ran
        assert 0.5 * elapsed <= waited <= elapsed, (waited, elapsed)
    finally:
        system.shutdown()


def _contiguous(rec: Recorder, name: str) -> list[Any]:
    seen = [e for e in got(rec, name) if isinstance(e, int)]
    assert seen == list(range(len(seen))), seen  # in order, none skipped
    return seen


def test_a_back_pressured_pipeline_stops_within_the_bound(rec: Recorder) -> None:
    system = ActorSystem.start(**{**QUIET, "stop_timeout": 3.0})
    try:
        sink = system.spawn(Slow, 0.1, rec, name="sink", mailbox_size=2)
        system.spawn(Numbers, 1000, 50, ["sink"], rec, name="src")
        rec.wait_for(lambda _: len(got(rec, "sink")) >= 3, timeout=10)
        t0 = time.monotonic()
        assert system.stop("src")  # within stop_timeout (3 s), however slow the sink
        assert time.monotonic() - t0 < 2.0
        closes = [e for e in rec.events if e[0] == "close"]
        assert closes == [("close", None)]  # on_stop ran; no batch was handled in full
        handed = _contiguous(rec, "sink")
        sink.ask("sync", timeout=5)  # what was handed over before the stop is handled
        assert _contiguous(rec, "sink")[:len(handed)] == handed
        assert len(got(rec, "sink")) < 50
    finally:
        system.shutdown()


def test_a_shutdown_while_back_pressured_is_clean(rec: Recorder) -> None:
    records: list[Any] = []
    system = ActorSystem.start(**{**QUIET, "stop_timeout": 3.0,
                                  "log_sinks": [(records.append, {"level": "WARNING"})]})
    system.spawn(Slow, 0.1, rec, name="sink", mailbox_size=2)
    system.spawn(Numbers, 1000, 50, ["sink"], rec, name="src")
    rec.wait_for(lambda _: len(got(rec, "sink")) >= 3, timeout=10)
    t0 = time.monotonic()
    assert system.shutdown()
    assert time.monotonic() - t0 < 5.0  # the pipeline stopped in time, then the sink
    assert [e for e in rec.events if e[0] == "close"] == [("close", None)]  # on_stop ran
    errors = [str(r) for r in records if r.record["level"].no >= 40]
    assert errors == []
    _contiguous(rec, "sink")
