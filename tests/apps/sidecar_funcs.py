"""Functions that tests/placement/test_sidecar.py runs in sidecar processes (importable by name).

``handle`` takes ``(command, *args)`` tuples so one target covers every behaviour: answer,
report the pid, raise, segfault, hang, exit.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path
from typing import Any

SETUP_DONE: list[str] = []


class Unrebuildable(Exception):
    """Pickles, but cannot be rebuilt from its args: travels as a SidecarError."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def setup() -> None:
    """An ``init`` target: runs once in the child before it serves."""
    SETUP_DONE.append(f"setup in {os.getpid()}")


def failing_setup() -> None:
    raise RuntimeError("the native library cannot be loaded")


def handle(message: Any) -> Any:
    command, *args = message
    if command == "echo":
        return args[0]
    if command == "pid":
        return os.getpid()
    if command == "setup":
        return list(SETUP_DONE)
    if command == "raise":
        raise ValueError(args[0])
    if command == "unrebuildable":
        raise Unrebuildable("a", "b")
    if command == "segfault":
        return ctypes.string_at(0)  # reads address 0: SIGSEGV, a real native crash
    if command == "hang":  # ("hang", seconds[, marker]): the marker file says it started
        if len(args) > 1:
            Path(args[1]).touch()
        time.sleep(args[0])
        return "woke up"
    if command == "exit":
        os._exit(args[0])
    if command == "unpicklable":
        return threading.Lock()
    raise KeyError(command)
