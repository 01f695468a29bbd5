"""Metrics on and nobody scraping: a stopped minion is not kept alive by the metrics."""

from __future__ import annotations

import gc
import urllib.request
import weakref
from typing import Any, ClassVar

from prometheus_client.parser import text_string_to_metric_families

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET, wait_until

CYCLES = 200
MESSAGES = 3


class Shortlived(Minion):
    alive: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()

    def on_start(self) -> None:
        Shortlived.alive.add(self)

    def on_receive(self, message: Any) -> Any:
        return message


def handled_total(url: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "minions_messages_handled_total"
                    and sample.labels.get("minion_class") == "Shortlived"):
                return float(sample.value)
    raise AssertionError("no minions_messages_handled_total for Shortlived")


def test_stopped_minions_are_freed_before_any_scrape_and_still_counted() -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        for i in range(CYCLES):
            ref = system.spawn(Shortlived, name=f"s{i}")
            for n in range(MESSAGES):
                assert ref.ask(n, timeout=5) == n
            assert ref.stop(timeout=5)
        del ref
        gc.collect()
        # nobody scraped: the metrics must not hold the stopped minions (thread, mailbox,
        # last instance) until they do
        assert len(Shortlived.alive) == 0
        assert system.metrics is not None and system.metrics.url is not None
        assert system.metrics.url.startswith("http://127.0.0.1:")
        # and their counts were folded into the totals when they stopped
        assert handled_total(system.metrics.url) == CYCLES * MESSAGES
    finally:
        system.shutdown(timeout=10)


def test_no_stopped_cell_stays_alive_with_metrics_on(execution: str) -> None:
    # the collector folds a stopping cell's counts into per-class totals and remembers it
    # (so a live-cell snapshot listing it is not counted twice): weakly, or a million
    # stopped minions would stay in memory with their mailboxes
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        refs = [system.spawn(Shortlived) for _ in range(300)]
        for ref in refs:
            ref.tell("hello")
        cells = [weakref.ref(ref._cell) for ref in refs]  # type: ignore[attr-defined]
        assert all(ref.stop(timeout=10) for ref in refs)
        del ref, refs
        assert system.metrics is not None and system.metrics.url is not None
        assert handled_total(system.metrics.url) == 300  # retired, counted once
        wait_until(lambda: gc.collect() >= 0 and not any(c() is not None for c in cells),
                   what="every stopped cell freed")
        assert handled_total(system.metrics.url) == 300  # the totals outlive the cells
    finally:
        system.shutdown(timeout=10)
