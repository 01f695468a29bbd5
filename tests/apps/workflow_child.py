"""Crash-campaign child: runs workflows whose steps append to an external ledger.

Usage: python -m tests.apps.workflow_child DB LEDGER EPOCH N_MINIONS N_WORKFLOWS
Each step appends "EPOCH WORKFLOW_ID STEP" to LEDGER (O_APPEND, one write per line, so a
kill -9 never tears a line). Prints READY once every workflow was (re)submitted (told),
then ALL-DONE when none is running, then shuts down.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from typing import Any

from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow

DB, LEDGER, EPOCH = sys.argv[1], sys.argv[2], sys.argv[3]
N_MINIONS, N_WORKFLOWS = int(sys.argv[4]), int(sys.argv[5])
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def append(line: str) -> None:
    os.write(_fd, (line + "\n").encode())


class Runner(Minion):
    job = Workflow("s1", "s2", "s3", "s4")

    def _step(self, ctx: dict[str, Any], name: str) -> None:
        threading.Event().wait(random.uniform(0.002, 0.012))  # the step's "work"
        append(f"{EPOCH} {ctx['id']} {name}")
        ctx.setdefault("done", []).append(name)

    def on_receive(self, message: Any) -> Any:
        return message

    def s1(self, ctx: dict[str, Any]) -> None:
        self._step(ctx, "s1")

    def s2(self, ctx: dict[str, Any]) -> None:
        self._step(ctx, "s2")

    def s3(self, ctx: dict[str, Any]) -> None:
        self._step(ctx, "s3")

    def s4(self, ctx: dict[str, Any]) -> None:
        self._step(ctx, "s4")


def main() -> None:
    system = ActorSystem.start(state_store=DB, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    runners = [system.spawn(Runner, name=f"runner-{i}") for i in range(N_MINIONS)]
    for n in range(N_WORKFLOWS):
        wid = f"w{n:03d}"
        runners[n % N_MINIONS].tell(StartWorkflow("job", wid, {"id": wid}))
    print("READY", flush=True)
    for runner in runners:  # a barrier: every StartWorkflow told above is handled
        runner.ask("barrier", timeout=60)
    done = threading.Event()
    while not done.wait(0.02):
        if not system.workflows(status="running"):
            done.set()
    print("ALL-DONE", flush=True)
    system.shutdown()


if __name__ == "__main__":
    main()
