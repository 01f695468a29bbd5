"""Minion classes that tests place in child processes (importable by name in the child).

They are ordinary minions: nothing in them knows where they run.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from minions_actors import Minion, Workflow


class Ledger(Minion):
    """Persistent: keeps every value it was told, in order; crashes on request."""

    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.total = start
        self.seen: list[int] = []

    def on_receive(self, message: Any) -> Any:
        if message == "pid":
            return os.getpid()
        if message == "total":
            return self.total
        if message == "seen":
            return self.seen
        if message == "segfault":
            return ctypes.string_at(0)  # reads address 0: SIGSEGV, a real native crash
        if message == "abort":
            os.abort()  # SIGABRT, as a failed assertion in C would
        if message == "lambda":
            return lambda: self.total  # a reply that cannot be pickled: the minion's bug
        if message == "boom":
            self.total = -1_000  # changed, then crashed: the rollback must undo it
            raise ValueError("boom in the child")
        self.total += message
        self.seen.append(message)
        return self.total

    def add(self, n: int) -> int:
        """Called through ref.proxy()."""
        self.total += n
        return self.total

    def where(self) -> str:
        return self.path

    def snapshot(self) -> Any:
        return {"total": self.total, "seen": self.seen}

    def restore(self, state: Any) -> None:
        self.total = state["total"]
        self.seen = state["seen"]


class Stopper(Minion):
    """Writes a marker file in on_stop (run in the child at shutdown)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def on_receive(self, message: Any) -> Any:
        if message == "spawn":
            return self.spawn(Ledger)  # stays home: a clear error
        return os.getpid()

    def on_stop(self) -> None:
        with open(self.marker, "w") as f:
            f.write(f"stopped in {os.getpid()}")


class Steps(Minion):
    """A workflow whose steps run in the child."""

    chores = Workflow("first", "second")

    def first(self, context: dict[str, Any]) -> dict[str, Any]:
        return {**context, "first": os.getpid()}

    def second(self, context: dict[str, Any]) -> dict[str, Any]:
        return {**context, "second": os.getpid()}


class Where(Minion):
    """Persistent counter that says where it runs (for Ray placement)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        import ray

        if message == "where":
            context = ray.get_runtime_context()
            return {"pid": os.getpid(), "actor": context.get_actor_id(),
                    "node": context.get_node_id()}
        if message == "count":
            return self.count
        if message == "boom":
            self.count = -1
            raise KeyError("boom on ray")
        self.count += message
        return self.count

    def snapshot(self) -> Any:
        return {"count": self.count}

    def restore(self, state: Any) -> None:
        self.count = state["count"]


class Account(Minion):
    """A per-key entity for keyed groups: persistent balance, says where it runs."""

    def __init__(self, currency: str) -> None:
        super().__init__()
        self.currency = currency
        self.balance = 0

    def on_receive(self, message: Any) -> Any:
        if message == "where":
            return os.getpid()
        if message == "balance":
            return f"{self.balance} {self.currency}"
        self.balance += message
        return None

    def snapshot(self) -> Any:
        return {"balance": self.balance}

    def restore(self, state: Any) -> None:
        self.balance = state["balance"]


class Fickle(Minion):
    """Its snapshot() raises while ``n`` is 2 (a bug in snapshot(), not in a handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def on_receive(self, message: Any) -> Any:
        self.n += message
        return self.n

    def snapshot(self) -> Any:
        if self.n == 2:
            raise RuntimeError("cannot snapshot two")
        return {"n": self.n}

    def restore(self, state: Any) -> None:
        self.n = state["n"]


class TimedPoller(Minion):
    """Ticks on a periodic timer, cancels it after three ticks, then a single probe and an
    idle timeout; writes each event to ``log`` (a file: the test reads it from home)."""

    def __init__(self, log: str) -> None:
        super().__init__()
        self.log = log
        self.ticks = 0
        self.timers.start_periodic("tick", "tick", 0.05)  # in __init__: sent with on_start's reply

    def on_start(self) -> None:
        self.set_receive_timeout(0.3)

    def _write(self, event: str) -> None:
        with open(self.log, "a") as out:
            out.write(f"{event} {os.getpid()}\n")

    def on_receive(self, message: Any) -> Any:
        from minions_actors import PlacementError, ReceiveTimeout

        if message == "tick":
            self.ticks += 1
            self._write("tick")
            if self.ticks == 3:
                self.timers.cancel("tick")
                self.timers.start_single("probe", "probe", 0.2)
        elif message == "probe":
            self._write(f"probe-after-{self.ticks}-ticks")
        elif isinstance(message, ReceiveTimeout):
            self._write("idle")
            self.set_receive_timeout(None)
            try:
                self.timers.keys()
            except PlacementError as exc:
                self._write("keys-home-only" if "not available there" in str(exc) else "?")
        return None
