"""``python -m minions_actors demo``: a small supervised system that crashes and recovers.

It shows the product in one run: a persistent ``Ledger`` minion whose state lives in SQLite,
a crash that rolls the ledger back to its last good message, a one-for-all team restarted as
a unit, a real scrape of the Prometheus endpoint, and a state that carries over to the next
run of the demo.
"""

from __future__ import annotations

import sys
import threading
import urllib.request
from typing import Any

from minions_actors.runtime.minion import Minion
from minions_actors.runtime.ref import MinionRef
from minions_actors.runtime.supervision import OneForAll
from minions_actors.system import ActorSystem


class Ledger(Minion):
    """A persistent running total: a negative amount is a bug that crashes the minion."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.entries = 0

    def on_receive(self, message: Any) -> Any:
        if message == "report":
            return {"total": self.total, "entries": self.entries}
        if message < 0:
            raise ValueError(f"negative deposit {message}")
        self.total += message
        self.entries += 1
        return None

    def snapshot(self) -> dict[str, int]:
        return {"total": self.total, "entries": self.entries}

    def restore(self, state: dict[str, int]) -> None:
        self.total, self.entries = state["total"], state["entries"]


class Member(Minion):
    """A team member that reports each start to the demo."""

    def __init__(self, started: list[str], lock: threading.Lock) -> None:
        super().__init__()
        self.started, self.lock = started, lock

    def on_start(self) -> None:
        with self.lock:
            self.started.append(self.name)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} hit a bug")
        return "ok"


class Team(Minion):
    """Supervises three members one-for-all: one crash restarts the whole team."""

    strategy = OneForAll(max_restarts=5, within=10.0)

    def __init__(self, started: list[str], lock: threading.Lock) -> None:
        super().__init__()
        self.started, self.lock = started, lock

    def on_start(self) -> None:
        for name in ("a", "b", "c"):
            self.spawn(Member, self.started, self.lock, name=name)

    def on_receive(self, message: Any) -> Any:
        return "ready"  # answered only after on_start spawned the members


def quiet_stderr() -> None:
    """For the demo only (an application may do this, the runtime never does): show
    warnings and errors on stderr as one line each; the full records go to the log file."""
    from loguru import logger

    try:
        logger.remove(0)  # loguru's default DEBUG handler
    except ValueError:
        return  # the application already configured stderr itself
    logger.add(sys.stderr, level="WARNING",
               format=lambda r: "   [log] {level}: {message}\n")


def _scrape(url: str, prefixes: tuple[str, ...]) -> list[str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [line for line in text.splitlines() if line.startswith(prefixes)]


def run_demo(
    db: str = "minions.db", metrics_port: int | None = 8081, log_dir: str = "logs",
    forever: bool = False,
) -> int:
    """Run the demo and return the process exit code (3 when it cannot start)."""
    from minions_actors.errors import MetricsPortInUse, MinionsError
    from minions_actors.ops.cli import EXIT_START_FAILED
    from minions_actors.ops.cli_options import prog_name

    try:
        system = ActorSystem.start(state_store=db, metrics_port=metrics_port, log_dir=log_dir,
                                   stderr_logs=False)
    except MetricsPortInUse:
        print(f"{prog_name()} demo: cannot start: the metrics port {metrics_port} is in use "
              f"(another demo or exporter?). Run it with --metrics-port 0 (any free port) or "
              f"--metrics-port <another port>.", file=sys.stderr)
        return EXIT_START_FAILED
    except (MinionsError, OSError) as exc:
        print(f"{prog_name()} demo: cannot start: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    url = system.metrics.url if system.metrics is not None else None
    print(f"1. system started: state in {db}, metrics at {url}, logs in {log_dir}/")
    ledger, total = _show_ledger(system, db)
    _show_team(system)
    if url is not None:
        for line in _scrape(url, ("minions_restarts_total", "minions_live_minions")):
            print(f"6. scraped {line}")
    if forever:
        print("running until SIGTERM/SIGINT (Ctrl-C) ...", flush=True)
        while not system.wait(1.0):
            if system.running:
                ledger.tell(1)
    clean = system.shutdown()
    print(f"7. shutdown {'clean' if clean else 'NOT clean'}; snapshots flushed to {db}. "
          f"Run the demo again: the ledger continues from total={total}.")
    return system.exit_code


def _show_ledger(system: ActorSystem, db: str) -> tuple[MinionRef[Any], Any]:
    """Steps 2-4: the ledger's stored state, deposits, a crash and the rollback; returns the
    ledger and its total after the restart."""
    ledger = system.spawn(Ledger, name="ledger")
    before = ledger.ask("report", timeout=5)
    print(f"2. ledger state from {db}: total={before['total']} entries={before['entries']}"
          f"{'' if before['entries'] else ' (first run: nothing stored yet)'}")

    for amount in (10, 20, 30):
        ledger.tell(amount)
    after = ledger.ask("report", timeout=5)
    print(f"3. deposited 10+20+30: total={after['total']}")

    try:
        ledger.ask(-5, timeout=5)
    except ValueError as exc:
        print(f"4. a bad deposit crashed the ledger ({exc}); Gru restarted it")
    healed = ledger.ask("report", timeout=5)
    print(f"   ledger after the restart: total={healed['total']} "
          f"(rolled back to its last good message, same ref)")
    return ledger, healed["total"]


def _show_team(system: ActorSystem) -> None:
    """Step 5: a crash in a one-for-all team restarts the siblings in start order."""
    started: list[str] = []
    lock = threading.Lock()
    team = system.spawn(Team, started, lock, name="team")
    team.ask("ready?", timeout=5)
    for name in ("a", "b", "c"):
        system.get(f"team/{name}").ask("ping", timeout=5)
    with lock:
        started.clear()
    try:
        system.get("team/b").ask("crash", timeout=5)
    except RuntimeError:
        pass
    for name in ("a", "b", "c"):
        system.get(f"team/{name}").ask("ping", timeout=5)
    with lock:
        order = list(started)
    print(f"5. team/b crashed: one-for-all restarted {', '.join(order)} (in start order)")
