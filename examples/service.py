"""A long-running service for process supervisors (systemd, supervisord, containers).

Run it with the CLI, which waits until SIGTERM/SIGINT and exits 0 after a clean shutdown
(non-zero after an escalation, so the supervisor restarts it):

    python -m minions_actors run service:main        # from this directory

Each start increments a persisted boot counter, so a restart (by the supervisor after a
crash or a ``kill -9``) visibly continues from the stored state. Configuration comes from
the environment: MINIONS_DB (default minions.db), MINIONS_METRICS_PORT (default 8081).
"""

from __future__ import annotations

import os
from typing import Any

from minions_actors import ActorSystem, Minion


class BootCounter(Minion):
    """Counts the starts of the service; persistent, so the count survives restarts."""

    def __init__(self) -> None:
        super().__init__()
        self.boots = 0

    def on_receive(self, message: Any) -> Any:
        if message == "boot":
            self.boots += 1
        return self.boots

    def snapshot(self) -> dict[str, int]:
        return {"boots": self.boots}

    def restore(self, state: dict[str, int]) -> None:
        self.boots = state["boots"]


def main() -> ActorSystem:
    """Start the service's system (called by ``python -m minions_actors run service:main``)."""
    system = ActorSystem.start(
        state_store=os.environ.get("MINIONS_DB", "minions.db"),
        metrics_port=int(os.environ.get("MINIONS_METRICS_PORT", "8081")),
    )
    boots = system.spawn(BootCounter, name="boots").ask("boot", timeout=5)
    system.flush(timeout=5)  # make this boot durable before announcing it
    print(f"service up: boot #{boots}", flush=True)
    return system
