"""An approval workflow that waits: for a manager's signal (with a deadline), then a durable
cooling-off sleep before paying; one expense is cancelled.

``exp-1`` is approved from another process, with the command line (``minions-actors
workflows signal``), while this application runs; ``exp-2`` (urgent: a one-second deadline)
gets no answer in time and the ``decide`` step rejects it; ``exp-3`` is cancelled while it
waits. While
they wait, no thread is held: each wait is one timer entry and one stored deadline, so a
``kill -9`` and a restart resume the waits with the time they have left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from minions_actors import (
    AbortWorkflow,
    ActorSystem,
    Minion,
    Sleep,
    StartWorkflow,
    WaitSignal,
    Workflow,
)


class Expenses(Minion):
    approve = Workflow(
        "submit",
        WaitSignal("approval", timeout=7 * 24 * 3600),  # ctx["approval"] gets the answer
        "decide",
        Sleep(0.2),                                      # cooling off (a real one: hours)
        "pay",
    )
    urgent = Workflow("submit", WaitSignal("approval", timeout=1.0), "decide", "pay")

    def submit(self, ctx: dict[str, Any]) -> None:
        ctx["submitted"] = True  # (a real one: e-mail the manager)

    def decide(self, ctx: dict[str, Any]) -> None:
        answer = ctx["approval"]
        if answer["timed_out"]:
            raise AbortWorkflow("no approval before the deadline")
        if not answer["payload"].get("ok"):
            raise AbortWorkflow(f"rejected by {answer['sent_by']}")
        print(f"{ctx['id']}: approved by {answer['sent_by']}", flush=True)

    def pay(self, ctx: dict[str, Any]) -> None:
        ctx["paid"] = True
        print(f"{ctx['id']}: paid", flush=True)

    def on_workflow_cancelled(self, info: Any) -> None:
        print(f"{info.workflow_id}: cancelled by {info.cancelled_by}", flush=True)


def cli(db: Path, *args: str) -> None:
    """``minions-actors workflows ... --db DB`` in another process."""
    subprocess.run([sys.executable, "-m", "minions_actors", "workflows", *args, "--db",
                    str(db)], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "minions.db"
    system = ActorSystem.start(state_store=db, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    expenses = system.spawn(Expenses, name="expenses")
    for wid, name in (("exp-1", "approve"), ("exp-2", "urgent"), ("exp-3", "approve")):
        expenses.ask(StartWorkflow(name, wid, {"id": wid}), timeout=10)
        print(f"{wid}: submitted, waiting for approval")
    cli(db, "signal", "exp-1", "approval", "--payload", '{"ok": true}', "--by", "manager")
    system.wait_workflow("exp-1", timeout=60)
    system.cancel_workflow("exp-3", by="finance")
    for wid in ("exp-1", "exp-2", "exp-3"):
        info = system.wait_workflow(wid, timeout=30)
        print(f"{wid}: {info.status}" + (f" ({info.error})" if info.error else ""))
    system.shutdown()


if __name__ == "__main__":
    main()
