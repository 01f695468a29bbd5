"""Crash-test child for durable schedules.

Usage:
  python -m tests.apps.schedule_child arm DB LEDGER DELAY
      starts the durable single timer "wake" (DELAY s), flushes, prints ARMED, then idles
      (the test kills it with SIGKILL).
  python -m tests.apps.schedule_child wait DB LEDGER SECONDS
      spawns the same minion; each fire appends "wake LATE" to LEDGER; after the first
      fire (or SECONDS) waits SECONDS more, prints "KEYS k1,k2 ROWS n", shuts down.
  python -m tests.apps.schedule_child cron DB LEDGER
      a minion whose on_start schedules the workflow "report" every second (catch_up);
      each step appends "EPOCH-less workflow id" to LEDGER; prints READY and runs until
      killed, or with a 4th argument N, until N workflows completed, then shuts down.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from minions_actors import ActorSystem, Minion, Workflow

MODE, DB, LEDGER = sys.argv[1], sys.argv[2], sys.argv[3]
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
fired = threading.Event()


def append(line: str) -> None:
    os.write(_fd, (line + "\n").encode())  # one write per line: a kill never tears one


class Keeper(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.fires = 0

    def snapshot(self) -> Any:
        return {"fires": self.fires}

    def restore(self, state: Any) -> None:
        self.fires = state["fires"]

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, list) and message[0] == "arm":
            self.schedules.start_single("wake", "wake", message[1])
            return self.schedules.keys()
        if message == "wake":
            self.fires += 1
            firing = self.schedules.firing
            append(f"wake {firing.late if firing else -1:.3f}")
            fired.set()
        if message == "keys":
            return self.schedules.keys()
        return None


class Reporter(Minion):
    report = Workflow("run")

    def snapshot(self) -> Any:
        return {}

    def restore(self, state: Any) -> None:
        pass

    def on_start(self) -> None:
        self.schedules.start_workflow_cron("rep", "report", "* * * * * *", missed="catch_up",
                                           max_catch_up=1000)

    def run(self, ctx: dict[str, Any]) -> None:
        append(f"{ctx['schedule']['slot']}")


def main() -> None:
    system = ActorSystem.start(state_store=DB, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    if MODE == "arm":
        ref = system.spawn(Keeper, name="keeper")
        ref.ask(["arm", float(sys.argv[4])], timeout=30)
        assert system.store is not None and system.store.flush(timeout=30)
        print("ARMED", flush=True)
        threading.Event().wait(600)
    elif MODE == "wait":
        seconds = float(sys.argv[4])
        ref = system.spawn(Keeper, name="keeper")
        fired.wait(seconds)
        threading.Event().wait(seconds)  # a second fire would come in this time
        keys = ref.ask("keys", timeout=30)
        rows = system.store.schedule_rows_written()  # type: ignore[union-attr]
        print(f"KEYS {','.join(keys)} ROWS {rows}", flush=True)
    else:
        system.spawn(Reporter, name="reporter")
        print("READY", flush=True)
        want = int(sys.argv[4]) if len(sys.argv) > 4 else 0
        done = threading.Event()
        while not done.wait(0.05):
            if want and len(system.workflows(status="completed")) >= want \
                    and not system.workflows(status="running"):
                done.set()
    system.shutdown()


if __name__ == "__main__":
    main()
