"""An app for the shutdown-under-load test: persistent minions flooded by two threads.

``python -m minions_actors run tests.apps.flood_app:main`` prints READY once the flood has
built a backlog; the test then sends SIGTERM and times the exit.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from minions_actors import ActorSystem, Minion, MinionRef

MINIONS = 50


class Tally(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def on_receive(self, message: Any) -> None:
        self.n += 1

    def snapshot(self) -> dict[str, int]:
        return {"n": self.n}

    def restore(self, state: dict[str, int]) -> None:
        self.n = state["n"]


def _flood(refs: list[MinionRef[Any]], sent: list[int], k: int) -> None:
    i = 0
    while True:  # a daemon thread: it ends with the process
        refs[i % len(refs)].tell(i)
        i += 1
        sent[k] = i


def main() -> ActorSystem:
    system = ActorSystem.start(
        state_store=os.environ["APP_DB"], metrics_port=None, file_logs=False,
        stop_timeout=float(os.environ.get("APP_STOP_TIMEOUT", "0.5")),
        shutdown_timeout=float(os.environ.get("APP_SHUTDOWN_TIMEOUT", "3")),
    )
    refs = [system.spawn(Tally, name=f"tally-{i}") for i in range(MINIONS)]
    sent = [0, 0]
    for k in range(2):
        threading.Thread(target=_flood, args=(refs, sent, k), name=f"flood-{k}",
                         daemon=True).start()
    backlog = int(os.environ.get("APP_BACKLOG", "200000"))
    while sum(sent) < backlog:
        time.sleep(0.01)
    print(f"READY sent={sum(sent)}", flush=True)
    return system
