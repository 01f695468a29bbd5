"""An app for `python -m minions_actors run` tests: its store fills up (a size cap stands in
for a full disk), then it shuts itself down, which must report the lost snapshot."""

from __future__ import annotations

import os
import threading
from typing import Any

from minions_actors import ActorSystem, Minion
from minions_actors.persistence import SQLiteStateStore


class Big(Minion):
    """A persistent minion whose snapshot grows by the size each message asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = ""

    def on_receive(self, message: Any) -> Any:
        self.pad += "x" * int(message)
        return len(self.pad)

    def snapshot(self) -> dict[str, str]:
        return {"pad": self.pad}

    def restore(self, state: dict[str, str]) -> None:
        self.pad = state["pad"]


def fill(system: ActorSystem) -> None:
    """Store one small snapshot, cap the file at its size, then accept a big one."""
    store = system.store
    assert isinstance(store, SQLiteStateStore)
    ref = system.spawn(Big, name="big")
    ref.ask(10, timeout=10)
    assert system.flush(timeout=10)
    store.max_size_bytes = os.path.getsize(store.path) + 4096  # about one spare page
    ref.ask(300_000, timeout=10)  # accepted; its write now fails with "full" and is retried


def main() -> ActorSystem:
    store = SQLiteStateStore(os.environ["APP_DB"], retry_max=0.05)
    system = ActorSystem.start(state_store=store, metrics_port=None, file_logs=False,
                               handle_signals=False, shutdown_timeout=1.0)
    fill(system)
    threading.Thread(target=system.shutdown, name="app-shutdown").start()
    return system
