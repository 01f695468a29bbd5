"""An app for `minions-actors run` tests, asyncio end to end: an async resource (the source),
an async pipeline that streams from it, an async subscriber that writes each event to a
ledger. Env: APP_DB (state store), APP_LEDGER (a file), APP_EPOCH (this run's number).
Ledger lines: "EPOCH n" per event handled, "EPOCH stream-from P" when the stream starts,
"EPOCH closed" when the resource closed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from typing import Any

from minions_actors import ActorSystem, AsyncPipeline, Batch, Minion, Resource, uses

EPOCH = os.environ.get("APP_EPOCH", "1")
_fd = os.open(os.environ.get("APP_LEDGER", "ledger"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
              0o600)


def note(line: str) -> None:
    os.write(_fd, f"{EPOCH} {line}\n".encode())  # one write per line: never torn


class Source(Resource):
    """Numbers 0, 1, 2 ... as an async API would serve them."""

    name = "source"

    async def open(self) -> None:
        self.lock = asyncio.Lock()  # of the loop it is used on

    async def fetch(self, start: int, count: int) -> list[int]:
        async with self.lock:
            await asyncio.sleep(0.002)  # the network
            return list(range(start, start + count))

    async def close(self) -> None:
        await asyncio.sleep(0)
        note("closed")


class Feed(AsyncPipeline):
    source = uses(Source)
    subscribers = ["sink"]

    async def stream(self, position: Any) -> AsyncGenerator[Batch, None]:
        start = position or 0
        note(f"stream-from {start}")
        while True:
            events = await self.source.fetch(start, 5)
            start += len(events)
            yield Batch(events, start)


class Sink(Minion):
    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(0)
        note(str(message))


def main() -> ActorSystem:
    system = ActorSystem.start(state_store=os.environ.get("APP_DB", "minions.db"),
                               metrics_port=None, file_logs=False, resources=[Source()])
    system.spawn(Sink, name="sink")
    system.spawn(Feed, name="feed")
    print("READY", flush=True)
    return system
