"""A persistent async minion, shared by the snapshot tests and their subprocess."""

from __future__ import annotations

import asyncio
from typing import Any

from minions_actors import Minion


class Tally(Minion):
    """Adds the numbers it is sent; "get" answers the total, "crash" crashes it."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def snapshot(self) -> Any:
        return {"total": self.total}

    def restore(self, state: Any) -> None:
        self.total = state["total"]

    async def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.total
        if message == "crash":
            await asyncio.sleep(0)
            raise RuntimeError("crash on purpose")
        await asyncio.sleep(0)  # the snapshot is taken once the coroutine has ended
        self.total += message
        return self.total
