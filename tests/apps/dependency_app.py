"""An app for outage tests: its top-level minion needs a dependency in ``on_start`` (a unix
socket at $APP_DEPENDENCY, "the database"), and it runs under Gru's default strategy."""

from __future__ import annotations

import os
import socket
import time

from minions_actors import ActorSystem, Minion


class NeedsDatabase(Minion):
    def on_start(self) -> None:
        with socket.socket(socket.AF_UNIX) as conn:
            try:
                conn.connect(os.environ["APP_DEPENDENCY"])
            except OSError as exc:
                print(f"database down at {time.monotonic():.3f}: {exc}", flush=True)
                raise
        print("database up", flush=True)


def main() -> ActorSystem:
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False)
    system.spawn(NeedsDatabase, name="db-user")
    return system
