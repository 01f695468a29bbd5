"""An asyncio application that asks minions: the system runs on the application's own loop.

- ``ActorSystem.start_async(...)`` is entered with ``async with`` inside ``asyncio.run``: the
  async minions run on that loop (no loop thread of the runtime's), and leaving the block
  shuts the system down (``await system.shutdown_async()``).
- ``Quotes`` is an async minion (its ``on_receive`` is a coroutine); ``Tally`` is a plain,
  synchronous minion on the worker pool. The application awaits both the same way:
  ``await ref.ask_async(...)`` never blocks the loop, whichever kind answers.
- A tiny HTTP endpoint (``asyncio.start_server`` on 127.0.0.1, a free port) answers
  ``GET /quote/<n>`` by asking the minions, and a client on the same loop calls it.

Run: python examples/async_app.py
"""

import asyncio
import json

from minions_actors import ActorSystem, AskTimeout, Minion, MinionRef

QUOTES = ["Bello!", "Poopaye!", "Tank yu!"]


class Tally(Minion):
    """A synchronous minion: it runs on the worker pool, never on the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.served = 0

    def on_receive(self, message: str) -> int:
        if message == "served":
            self.served += 1
        return self.served


class Quotes(Minion):
    """An async minion: its handler awaits, and other work on the loop runs meanwhile."""

    def __init__(self, tally: MinionRef) -> None:
        super().__init__()
        self.tally = tally

    async def on_receive(self, n: int) -> dict:
        await asyncio.sleep(0.01)  # a database or an API call in real life
        served = await self.tally.ask_async("served", timeout=10)
        return {"quote": QUOTES[n % len(QUOTES)], "served": served}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 quotes: MinionRef) -> None:
    request_line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0].decode()
    path = request_line.split(" ")[1]
    status, body = "404 Not Found", {"error": f"no such page: {path}"}
    if path.startswith("/quote/") and path.removeprefix("/quote/").isdigit():
        try:
            status, body = "200 OK", await quotes.ask_async(int(path[7:]), timeout=10)
        except AskTimeout:
            status, body = "504 Gateway Timeout", {"error": "the minion did not answer"}
    data = json.dumps(body).encode()
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    await writer.drain()
    writer.close()


async def get(port: int, path: str) -> str:
    """The client: one HTTP/1.1 GET, the status line's code and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                 .encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.decode().partition("\r\n\r\n")
    return f"{head.split(' ')[1]} {body}"


async def main() -> None:
    async with ActorSystem.start_async(state_store=None, metrics_port=None, file_logs=False,
                                       stderr_logs=False, handle_signals=False) as system:
        tally = system.spawn(Tally, name="tally")
        quotes = system.spawn(Quotes, tally, name="quotes")
        server = await asyncio.start_server(lambda r, w: handle(r, w, quotes), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            print(await get(port, "/quote/0"))
            print(await get(port, "/quote/1"))
            print(await get(port, "/missing"))
            answers = await asyncio.gather(*(get(port, f"/quote/{n}") for n in range(3)))
            print("three at once:", sorted(a.split(" ")[0] for a in answers))
            print("served in all:", await tally.ask_async("count", timeout=10))
    print("clean shutdown:", system.exit_code == 0)


asyncio.run(main())
