"""The Grafana dashboard against a real scrape: a running system's /metrics endpoint (on
127.0.0.1, a free port) with its worker pool busy and starved; every query names only families
that scrape exposes, and every metric an alert rule fires on has a panel."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from .recipes import ROOT, wait_for

DEPLOY = ROOT / "deploy"
NAME = re.compile(r"\b((?:minions|process|python)_[a-zA-Z0-9_]+)")
SUFFIXES = {"counter": ("_total", "_created"), "summary": ("_count", "_sum", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"), "info": ("_info",)}
POOL = ("minions_pool_workers", "minions_pool_busy_workers", "minions_pool_run_queue",
        "minions_pool_starvation_events_total")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_queries() -> dict[str, list[str]]:
    """Each panel's title and its queries."""
    dash = json.loads((DEPLOY / "grafana" / "minions-dashboard.json").read_text())
    return {p["title"]: [t["expr"] for t in p.get("targets", [])]
            for p in panels(dash["panels"])}


class Blocker(Minion):
    def on_receive(self, message: threading.Event) -> None:
        message.wait(30)  # holds its pool worker beyond the starvation threshold


def scrape(system: ActorSystem) -> str:
    assert system.metrics is not None and system.metrics.url is not None
    with urllib.request.urlopen(system.metrics.url, timeout=5) as response:
        return str(response.read().decode())


def sample(page: str, name: str) -> float:
    found = re.findall(rf"(?m)^{name}(?:{{[^}}]*}})? (\S+)$", page)
    return sum(float(v) for v in found) if found else -1.0


@pytest.fixture
def page() -> Iterator[str]:
    """A scrape taken while a handler holds a pool worker past the starvation threshold."""
    system = ActorSystem.start(state_store=None, metrics_port=0, file_logs=False,
                               handle_signals=False, execution="pooled",
                               starvation_threshold=0.2)
    gate = threading.Event()

    def starved() -> str | None:
        text = scrape(system)
        busy = sample(text, "minions_pool_busy_workers") >= 1
        return text if busy and sample(text, "minions_pool_starvation_events_total") >= 1 else None

    try:
        system.spawn(Blocker, name="blocker").tell(gate)
        yield wait_for(starved, 30, "a starved pool worker in the scrape")
    finally:
        gate.set()
        system.shutdown()


def test_every_dashboard_query_names_families_of_a_real_scrape(page: str) -> None:
    exposed: set[str] = set()
    for name, kind in re.findall(r"(?m)^# TYPE (\S+) (\S+)$", page):
        exposed.add(name)
        exposed.update(name + suffix for suffix in SUFFIXES.get(kind, ()))
    for title, exprs in dashboard_queries().items():
        for expr in exprs:
            names = NAME.findall(expr)
            assert names, f"panel {title!r}: query names no metric: {expr}"
            unknown = [n for n in names if n not in exposed]
            assert not unknown, f"panel {title!r}: {unknown} not in a real scrape"


def test_the_worker_pool_has_panels_and_the_scrape_has_their_values(page: str) -> None:
    charted = {n for exprs in dashboard_queries().values() for e in exprs for n in NAME.findall(e)}
    missing = [name for name in POOL if name not in charted]
    assert not missing, f"no dashboard panel shows {missing}"
    assert sample(page, "minions_pool_workers") >= 1
    assert sample(page, "minions_pool_run_queue") >= 0


def test_every_metric_an_alert_fires_on_has_a_panel() -> None:
    charted = {n for exprs in dashboard_queries().values() for e in exprs for n in NAME.findall(e)}
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for line in rules.splitlines():
        if line.strip().startswith("expr:"):
            missing = [n for n in NAME.findall(line) if n not in charted]
            assert not missing, f"the alert `{line.strip()}` uses {missing}: no panel shows it"


def test_panels_do_not_overlap() -> None:
    dash = json.loads((DEPLOY / "grafana" / "minions-dashboard.json").read_text())
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dash["panels"]):
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in panels(dash["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"

