"""An app for `python -m minions_actors run` tests: prints READY, then waits for signals."""

from __future__ import annotations

import os
import sys
from typing import Any

from minions_actors import ActorSystem, Minion, OneForOne


class Keeper(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.total
        if message == "boom":
            raise RuntimeError("boom")
        self.total += message
        return None

    def on_stop(self) -> None:
        print(f"on_stop total={self.total}", flush=True)

    def snapshot(self) -> dict[str, int]:
        return {"total": self.total}

    def restore(self, state: dict[str, int]) -> None:
        self.total = state["total"]


def main() -> ActorSystem:
    system = ActorSystem.start(
        state_store=os.environ.get("APP_DB", "minions.db"), metrics_port=None,
        file_logs=False, strategy=OneForOne(max_restarts=0, within=5),
    )
    ref = system.spawn(Keeper, name="keeper")
    for _ in range(int(os.environ.get("APP_ADD", "1"))):
        ref.tell(1)
    print(f"READY total={ref.ask('get', timeout=5)}", flush=True)
    if os.environ.get("APP_CRASH"):
        ref.tell("boom")  # max_restarts=0: Gru gives up -> failure exit code
    return system


def fails() -> ActorSystem:
    raise RuntimeError("cannot reach the database")


def returns_nothing() -> None:
    print("oops", file=sys.stderr)
