"""A durable workflow survives ``kill -9``: run this script and watch it resume.

The script runs itself twice as a child process. The first child starts workflow
``order-1001`` (reserve -> charge -> ship); while ``charge`` is running the parent kills it
with SIGKILL. The second child spawns the same minion again: the workflow resumes at
``charge`` (the interrupted step runs again: steps run at least once) and completes.
``reserve`` is not repeated: its completion was checkpointed before ``charge`` began.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow


class Orders(Minion):
    fulfil = Workflow("reserve", "charge", "ship")

    def reserve(self, ctx: dict[str, Any]) -> None:
        ctx["reserved"] = True
        print("  step reserve: done", flush=True)

    def charge(self, ctx: dict[str, Any]) -> None:
        print("  step charge: calling the payment provider...", flush=True)
        if os.environ["RUN"] == "1":
            threading.Event().wait(60)  # a slow call: the process gets killed right here
        # idempotent: the provider dedupes on this key, so a re-run cannot charge twice
        ctx["payment_id"] = f"pay-{ctx['order']}"
        print("  step charge: done", flush=True)

    def ship(self, ctx: dict[str, Any]) -> None:
        ctx["shipped"] = True
        print("  step ship: done", flush=True)


def child(db: str) -> None:
    system = ActorSystem.start(state_store=db, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    orders = system.spawn(Orders, name="orders")  # same path as before: resumes its work
    info = orders.ask(StartWorkflow("fulfil", "order-1001", {"order": 1001}), timeout=5)
    print(f"  workflow {info.workflow_id}: {info.status} at step {info.step!r}", flush=True)
    info = system.wait_workflow("order-1001", timeout=30)
    print(f"  workflow order-1001 {info.status}: {info.context}", flush=True)
    system.shutdown()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "minions.db")
        for run in ("1", "2"):
            print(f"run {run}:", flush=True)
            proc = subprocess.Popen([sys.executable, __file__, "--child", db],
                                    stdout=subprocess.PIPE, text=True,
                                    env={**os.environ, "RUN": run})
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
                if run == "1" and "calling the payment provider" in line:
                    os.kill(proc.pid, signal.SIGKILL)
                    print("  -- killed with SIGKILL --", flush=True)
                    break
            proc.wait(timeout=30)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
