"""End to end: a real system's Prometheus endpoint over HTTP, and its log records."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from minions_actors import ActorSystem, Minion

from ..conftest import runtime_threads, wait_until


class Echo(Minion):
    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.gate = gate

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        if message == "block" and self.gate is not None:
            self.gate.wait(10)
        return message

    def snapshot(self) -> dict[str, int]:
        return {"v": 1}

    def restore(self, state: dict[str, int]) -> None:
        pass


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_live_endpoint_reports_the_runtime(tmp_path: Path) -> None:
    records: list[Any] = []
    gate = threading.Event()
    system = ActorSystem.start(state_store=tmp_path / "m.db", metrics_port=0,
                               file_logs=False, stderr_logs=False, handle_signals=False,
                               log_sinks=[(records.append, {"level": "DEBUG"})])
    try:
        assert system.metrics is not None and system.metrics.url is not None
        assert system.metrics.url.startswith("http://127.0.0.1:")
        echo = system.spawn(Echo, name="echo")
        for i in range(100):
            echo.tell(i)
        echo.ask("sync", timeout=5)
        try:
            echo.ask("crash", timeout=5)
        except RuntimeError:
            pass
        echo.ask("sync", timeout=5)
        blocked = system.spawn(Echo, gate, name="blocked")
        blocked.tell("block")
        for i in range(7):
            blocked.tell(i)
        gone = system.spawn(Echo, name="gone")
        gone.stop(timeout=5)
        gone.tell("lost")
        system.flush(5)
        cls = (("minion_class", "Echo"),)
        m = wait_until(lambda: (s := scrape(system.metrics.url))  # type: ignore[union-attr]
                       and s.get(("minions_mailbox_depth", cls), 0) >= 7 and s, 5)
        assert m[("minions_messages_handled_total", cls)] >= 102
        assert m[("minions_messages_failed_total", cls)] == 1
        assert m[("minions_restarts_total", cls)] == 1
        assert m[("minions_crashes_total", (("minion_class", "Echo"), ("phase", "message")))] == 1
        assert m[("minions_dead_letters_total", cls)] == 1
        assert m[("minions_live_minions", cls)] == 2
        assert m[("minions_message_handling_seconds_count", cls)] >= 102
        assert m[("minions_snapshot_writes_total", ())] >= 1
        assert ("process_resident_memory_bytes", ()) in m
        assert ("process_cpu_seconds_total", ()) in m
        gate.set()
    finally:
        gate.set()
        system.shutdown()
    crash = [r for r in records if r.record["level"].name == "ERROR"]
    assert len(crash) == 1 and crash[0].record["extra"]["minion"] == "echo"
    assert crash[0].record["exception"] is not None
    assert crash[0].record["extra"]["minion_class"] == "Echo"
    warnings = [r.record["message"] for r in records if r.record["level"].name == "WARNING"]
    assert any("restarting" in w for w in warnings)
    assert sum("gone" in w for w in warnings) == 1  # the dead letter, once
    assert not any(r.record["level"].no >= 20 and "message" in r.record["extra"]
                   for r in records)
    assert runtime_threads() == []


def test_metrics_disabled_opens_no_port() -> None:
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    assert system.metrics is None
    system.shutdown()


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = shutil.which("minions-actors", path=str(Path(sys.executable).parent)) or \
        shutil.which("minions-actors")
    assert script, "pip install -e . installs the minions-actors console script"
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30,
                         cwd=tmp_path)
    assert out.returncode == 0 and "minions_actors" in out.stdout


def test_store_records_go_through_the_injected_logger(tmp_path: Path) -> None:
    import os
    import sqlite3

    from loguru import logger

    db = tmp_path / "shared.db"
    sqlite3.connect(db).close()
    os.chmod(db, 0o644)  # readable by others: the store warns about it
    seen: list[dict[str, Any]] = []
    sink = logger.add(lambda m: seen.append(m.record["extra"]), level="WARNING")
    try:
        system = ActorSystem.start(logger=logger.bind(app="shop"), state_store=db,
                                   metrics_port=None, file_logs=False, stderr_logs=False,
                                   handle_signals=False)
        system.shutdown()
    finally:
        logger.remove(sink)
    store = [e for e in seen if e.get("component") == "state_store"]
    assert store and store[0]["app"] == "shop" and store[0]["minion"] == "gru"
