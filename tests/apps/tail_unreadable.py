"""FileTail on a file it may not read, as a user other than root (root reads any file): it
waits and tries again, warning once, and reads the file once it may. Prints one JSON line.

Run: python -m tests.apps.tail_unreadable
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from typing import Any

from minions_actors import ActorSystem, FileTail, Hooks, Minion

NOBODY = 65534
polls = threading.Semaphore(0)


class CountingTail(FileTail):
    def produce(self) -> Any:
        polls.release()
        return super().produce()


class Sink(Minion):
    def __init__(self, lines: list[str], done: threading.Event) -> None:
        super().__init__()
        self.lines, self.done = lines, done

    def on_receive(self, line: str) -> None:
        self.lines.append(line)
        if line == "b":
            self.done.set()


class Crashes(Hooks):
    def __init__(self) -> None:
        self.crashes: list[str] = []

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.crashes.append(repr(exc))


def main() -> None:
    warnings: list[str] = []
    crashes, lines, done = Crashes(), [], threading.Event()
    system = ActorSystem.start(
        state_store=None, metrics_port=None, file_logs=False, stderr_logs=False,
        handle_signals=False, hooks=[crashes],
        log_sinks=[(lambda m: warnings.append(m.record["message"]), {"level": "WARNING"})])
    if os.geteuid() == 0:  # CI runs as root, whom no permission denies (after the start:
        os.setgid(NOBODY)  # the interpreter's own files may be readable by root only)
        os.setuid(NOBODY)
    path = os.path.join(tempfile.mkdtemp(), "x.log")
    with open(path, "w") as file:
        file.write("a\nb\n")
    os.chmod(path, 0)
    try:
        system.spawn(Sink, lines, done, name="sink")
        tail = system.spawn(CountingTail, path, ["sink"], name="tail")
        retried = all(polls.acquire(timeout=10) for _ in range(5))  # 5 polls, 0.2 s apart
        os.chmod(path, 0o644)
        done.wait(10)
        alive = tail.is_alive()
    finally:
        system.shutdown()
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    print(json.dumps({"path": path, "retried": retried, "alive": alive, "lines": lines,
                      "warnings": warnings, "crashes": crashes.crashes}))


if __name__ == "__main__":
    main()
