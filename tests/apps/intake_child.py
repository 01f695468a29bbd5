"""kill -9 child: a pipeline floods a minion whose workflows are bounded in flight; the last
step of each appends "EPOCH SEQ" to a ledger.

Usage: python -m tests.apps.intake_child DB LEDGER EPOCH TOTAL
Prints "DONE" once the store holds TOTAL completed workflows, then shuts down.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from minions_actors import ActorSystem, Batch, Minion, Pipeline, Workflow

DB, LEDGER, EPOCH, TOTAL = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


class Bounded(Minion):
    max_workflows_in_flight = 4
    flow = Workflow("work", "record")

    def on_receive(self, seq: int) -> None:
        self.start_workflow("flow", f"e{seq}", {"seq": seq})

    def work(self, ctx: dict[str, Any]) -> None:
        threading.Event().wait(0.0005)

    def record(self, ctx: dict[str, Any]) -> None:
        os.write(_fd, f"{EPOCH} {ctx['seq']}\n".encode())


class Flood(Pipeline):
    subscribers = ["bounded"]
    poll_interval = 0.05

    def open(self, position: Any) -> None:
        self.next = position or 0

    def produce(self) -> Batch | None:
        if self.next >= TOTAL:
            return None
        events = list(range(self.next, min(TOTAL, self.next + 200)))
        self.next = events[-1] + 1
        return Batch(events, self.next)


def main() -> None:
    system = ActorSystem.start(state_store=DB, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    system.spawn(Bounded, name="bounded")
    system.spawn(Flood, name="flood")
    deadline = time.monotonic() + 120
    while len(system.workflows(status="completed")) < TOTAL and time.monotonic() < deadline:
        time.sleep(0.05)
    done = len(system.workflows(status="completed")) == TOTAL
    if done:
        print("DONE", flush=True)
    sys.exit(0 if system.shutdown() and done else 1)


if __name__ == "__main__":
    main()
