"""Minion classes shared by the tests: they report their lifecycle to a Recorder."""

from __future__ import annotations

import threading
from typing import Any

from minions_actors import Minion, OneForAll, OneForOne, RestForOne, Terminated

from .conftest import Gate


class Worker(Minion):
    """Records start/stop, crashes on "crash", exits normally on "exit", answers "ping",
    waits on an Event or a Gate it receives."""

    def __init__(self, rec: Any, tag: str) -> None:
        super().__init__()
        self.rec = rec
        self.tag = tag
        self.seen: list[Any] = []

    def on_start(self) -> None:
        self.rec.add(("start", self.tag))

    def on_stop(self) -> None:
        self.rec.add(("stop", self.tag))

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.tag} crashed on purpose")
        if message == "exit":
            self.stop()
            return None
        if message == "ping":
            return "pong"
        if message == "seen":
            return list(self.seen)
        if isinstance(message, threading.Event):
            message.wait(10)
            return None
        if isinstance(message, Gate):
            message.hold()
            return None
        self.seen.append(message)
        return None


class Sup(Minion):
    """A supervisor that spawns Worker children named by ``tags`` in ``on_start``."""

    strategy = OneForOne(max_restarts=3, within=5.0)

    def __init__(self, rec: Any, tag: str, tags: list[str], restart: str = "permanent") -> None:
        super().__init__()
        self.rec = rec
        self.tag = tag
        self.tags = tags
        self.child_restart = restart

    def on_start(self) -> None:
        self.rec.add(("start", self.tag))
        for t in self.tags:
            self.spawn(Worker, self.rec, t, name=t, restart=self.child_restart)

    def on_stop(self) -> None:
        self.rec.add(("stop", self.tag))

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("supervisor crashed on purpose")
        return None


class AllSup(Sup):
    strategy = OneForAll(max_restarts=3, within=5.0)


class RestSup(Sup):
    strategy = RestForOne(max_restarts=3, within=5.0)


class TightSup(Sup):
    """Gives up after one restart in 10 s."""

    strategy = OneForOne(max_restarts=1, within=10.0)


class Watcher(Minion):
    def __init__(self, rec: Any) -> None:
        super().__init__()
        self.rec = rec

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "watch":
            self.watch(message[1])
            return "watching"
        if isinstance(message, Terminated):
            self.rec.add(("terminated", message.path, message.reason))
        return None
