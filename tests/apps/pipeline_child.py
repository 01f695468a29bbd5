"""kill -9 child: a FileTail pipeline feeds a sink that appends each line to a ledger.

Usage: python -m tests.apps.pipeline_child DB INPUT LEDGER EPOCH LAST
Prints "OPEN <offset>" when the pipeline opens (the committed offset it resumes at),
then "DONE" once the sink has handled the line LAST, then shuts down. Ledger lines are
"EPOCH LINE", one os.write each (O_APPEND: a kill -9 never tears a line).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from minions_actors import ActorSystem, FileTail, Minion

DB, INPUT, LEDGER, EPOCH, LAST = sys.argv[1:6]
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
done = threading.Event()


class Sink(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.handled = 0

    def on_receive(self, message: Any) -> Any:
        threading.Event().wait(0.0005)  # the "work"
        os.write(_fd, f"{EPOCH} {message}\n".encode())
        self.handled += 1
        if message == LAST:
            done.set()

    def snapshot(self) -> Any:
        return {"handled": self.handled}

    def restore(self, state: Any) -> None:
        self.handled = state["handled"]


class Tail(FileTail):
    batch_size = 20

    def open(self, position: Any) -> None:
        print("OPEN", position["offset"] if position else 0, flush=True)
        super().open(position)


def main() -> None:
    system = ActorSystem.start(state_store=DB, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    system.spawn(Sink, name="sink", mailbox_size=50)
    system.spawn(Tail, INPUT, ["sink"], name="tail")
    if done.wait(60):
        print("DONE", flush=True)
    sys.exit(0 if system.shutdown() and done.is_set() else 1)


if __name__ == "__main__":
    main()
