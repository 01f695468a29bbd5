"""A child process with workflows that wait, for kill -9 and CLI tests.

Usage: python -m tests.apps.waiting_child DB LEDGER EPOCH MODE
MODE "sleep": workflow nap-1 ("before", Sleep(8), "after"); prints "SPAWNING <time>" just
before it spawns the minion (which resumes the workflow), then "SLEEPING <wake_at>"
once the sleep's start is durable (or "SLEEPING None" when it is over already), then
"DONE <time>" when it completed.
MODE "approve": workflows ap-1 and ap-2 ("ask", WaitSignal("approval", timeout=120),
"after"); prints "WAITING" once both wait (durably), then "END <id> <status> <info json>"
for each when it ends. Steps append "EPOCH ID STEP" to LEDGER.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from typing import Any

from minions_actors import ActorSystem, Minion, Sleep, StartWorkflow, WaitSignal, Workflow

DB, LEDGER, EPOCH, MODE = sys.argv[1:5]
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


class Waiter(Minion):
    nap = Workflow("before", Sleep(8), "after")
    approve = Workflow("before", WaitSignal("approval", timeout=120), "after")

    def before(self, ctx: dict[str, Any]) -> None:
        os.write(_fd, f"{EPOCH} {ctx['id']} before\n".encode())

    def after(self, ctx: dict[str, Any]) -> None:
        os.write(_fd, f"{EPOCH} {ctx['id']} after {time.time()!r}\n".encode())


def until(predicate: Any) -> None:
    """The child may poll: it reports a state the test then acts on."""
    while not predicate():
        threading.Event().wait(0.01)


def main() -> None:
    system = ActorSystem.start(state_store=DB, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    if MODE == "sleep":
        print("SPAWNING", repr(time.time()), flush=True)
    ref = system.spawn(Waiter, name="waiter")
    ids = ["nap-1"] if MODE == "sleep" else ["ap-1", "ap-2"]
    for wid in ids:
        ref.ask(StartWorkflow("nap" if MODE == "sleep" else "approve", wid, {"id": wid}),
                timeout=10)
    until(lambda: all(getattr(system.workflow(w), "wake_at", None) is not None
                      or getattr(system.workflow(w), "status", "") != "running" for w in ids))
    assert system.flush(timeout=10)
    if MODE == "sleep":
        print("SLEEPING", repr(system.workflow("nap-1").wake_at), flush=True)  # type: ignore[union-attr]
    else:
        print("WAITING", flush=True)
    for wid in ids:
        info = system.wait_workflow(wid, timeout=60)
        if MODE == "sleep":
            print("DONE", repr(time.time()), flush=True)
        else:
            print("END", wid, info.status, json.dumps(dataclasses.asdict(info)), flush=True)
    system.shutdown()


if __name__ == "__main__":
    main()
