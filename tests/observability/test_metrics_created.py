"""``_created`` samples: none in any ``minions_*`` family, over a real scrape, while the
application's own metrics (prometheus_client's global registry) keep theirs."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, Counter, generate_latest

from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow


class Shop(Minion):
    fulfil = Workflow("charge")

    def charge(self, ctx: dict[str, Any]) -> None:
        ctx["paid"] = True

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        return message


def scrape(url: str, accept: str | None = None) -> list[str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode().splitlines()


def test_no_created_samples_in_minions_families(tmp_path: Path) -> None:
    app_counter = Counter("test_app_orders", "An application's own counter.")
    system = ActorSystem.start(state_store=tmp_path / "m.db", metrics_port=0, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    try:
        shop = system.spawn(Shop, name="shop")
        try:
            shop.ask("crash", timeout=5)  # crashes and restarts: counters get children
        except RuntimeError:
            pass
        shop.ask(StartWorkflow("fulfil", "order-1"), timeout=5)
        assert system.wait_workflow("order-1", timeout=5).status == "completed"
        assert system.metrics is not None and system.metrics.url is not None
        for accept in (None, "application/openmetrics-text; version=1.0.0"):
            lines = [line for line in scrape(system.metrics.url, accept)
                     if line.startswith("minions_")]
            names = {line.split("{")[0].split(" ")[0] for line in lines}
            assert "minions_restarts_total" in names and "minions_crashes_total" in names
            assert "minions_workflow_step_seconds_bucket" in names
            assert not [n for n in names if n.endswith("_created")], accept
    finally:
        system.shutdown()
        app_counter.inc()
        app_text = generate_latest(REGISTRY).decode()
        REGISTRY.unregister(app_counter)
    assert "test_app_orders_created" in app_text  # the application's metrics are untouched
