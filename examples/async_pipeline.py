"""asyncio end to end: pipeline -> minion -> workflow steps -> resource, all awaiting.

An async resource (``Prices``: its ``open``/``close`` and its method are coroutines), an
async pipeline (``OrderFeed``: an async generator reading orders from a TCP feed on
127.0.0.1), a minion that starts a durable workflow per order, and the workflow's
``async def`` steps, which await the resource. The system runs on this program's own event
loop (``ActorSystem.start_async``); a second run on the same state store resumes the feed at
its committed position.

Run: python examples/async_pipeline.py
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from minions_actors import (
    ActorSystem,
    AsyncPipeline,
    Batch,
    Minion,
    Resource,
    Workflow,
    uses,
)

ORDERS = [("o1", "ACME", 3), ("o2", "INIT", 1), ("o3", "ACME", 2)]


async def serve_orders(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The feed: a client sends the position it wants, gets the orders from there."""
    start = int(await reader.readline())
    for n, (oid, symbol, qty) in enumerate(ORDERS[start:], start + 1):
        writer.write(f"{n} {oid} {symbol} {qty}\n".encode())
    await writer.drain()
    writer.close()


class Prices(Resource):
    name = "prices"

    async def open(self) -> None:
        self.table = {"ACME": 12, "INIT": 40}  # (a real one: an HTTP session)
        print("prices opened")

    async def quote(self, symbol: str) -> int:
        await asyncio.sleep(0)
        return self.table[symbol]

    async def close(self) -> None:
        print("prices closed")


class OrderFeed(AsyncPipeline):
    subscribers = ["desk"]

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def stream(self, position: Any) -> AsyncGenerator[Batch, None]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(f"{position or 0}\n".encode())
            while line := await reader.readline():
                n, oid, symbol, qty = line.decode().split()
                yield Batch([{"id": oid, "symbol": symbol, "qty": int(qty)}], int(n))
        finally:
            writer.close()


class Desk(Minion):
    prices = uses(Prices)
    settle = Workflow("price", "book")

    def on_receive(self, order: dict[str, Any]) -> None:
        self.start_workflow("settle", order["id"], order)  # durable before it runs

    async def price(self, ctx: dict[str, Any]) -> None:
        ctx["price"] = await self.prices.quote(ctx["symbol"])

    async def book(self, ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # (a real one: an async database call)
        ctx["total"] = ctx["price"] * ctx["qty"]


async def main(folder: Path) -> None:
    server = await asyncio.start_server(serve_orders, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options: dict[str, Any] = dict(
        state_store=folder / "minions.db", metrics_port=None,
        file_logs=False, stderr_logs=False, handle_signals=False, resources=[Prices()])
    async with ActorSystem.start_async(**options) as system:
        system.spawn(Desk, name="desk")
        system.spawn(OrderFeed, port, name="feed")
        for oid, _, _ in ORDERS:
            while system.workflow(oid) is None:  # the feed has not reached it yet
                await asyncio.sleep(0.01)
            info = await asyncio.to_thread(system.wait_workflow, oid, 10)
            c = info.context
            print(f"{oid}: {c['qty']} x {c['symbol']} at {c['price']} = {c['total']}")
    async with ActorSystem.start_async(**options) as system:  # the next run
        system.spawn(Desk, name="desk")
        feed = system.spawn(OrderFeed, port, name="feed")
        print("resumed at:", await feed.proxy().position)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
