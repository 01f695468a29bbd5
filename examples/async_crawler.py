"""An async crawler tree: a supervisor minion, fetcher minions with retries, a persisted frontier.

- The site is a small HTTP/1.1 server on 127.0.0.1 (``asyncio.start_server``, started here on
  a thread of its own). It fails some requests on purpose: the first request for each page in
  ``FLAKY`` gets a 503, and ``/broken`` always gets a 500.
- ``Crawler`` is an async minion and the supervisor of two ``Fetcher`` children. It keeps the
  frontier (the pages still to fetch), hands each idle fetcher the next page, and adds the
  links each fetched page returns. Its snapshot is the frontier and what it fetched, saved to
  a SQLite file after every message.
- ``Fetcher`` is an async minion too: it fetches with ``asyncio.open_connection`` (no HTTP
  library), retries a failed request with a short backoff (``asyncio.sleep``, which lets the
  other minions on the event loop run), and tells the crawler the result.

The first run fetches a budget of 4 pages and stops; the second run, a new system on the same
state file, restores the frontier and crawls the rest. The minions run on the event loop the
runtime owns (``ActorSystem.start`` is called from plain, synchronous code).

Run: python examples/async_crawler.py
"""

import asyncio
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from minions_actors import ActorSystem, Minion, MinionRef

SITE = {
    "/": ["/a", "/b", "/c"],
    "/a": ["/b", "/d"],
    "/b": ["/e", "/broken"],
    "/c": ["/f", "/a"],
    "/d": ["/"],
    "/e": ["/g"],
    "/f": [],
    "/g": ["/c"],
}
FLAKY = {"/b", "/e", "/g"}  # their first request fails with a 503
ATTEMPTS = 3


# -- the site: a minimal HTTP/1.1 server on asyncio streams ------------------------------


async def serve_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     failed: set[str]) -> None:
    request = await reader.readuntil(b"\r\n\r\n")  # request line and headers; no body
    path = request.split(b" ", 2)[1].decode()
    if path in FLAKY and path not in failed:
        failed.add(path)
        status, body = "503 Service Unavailable", "try again"
    elif path == "/broken" or path not in SITE:
        status, body = "500 Internal Server Error", "broken"
    else:
        status = "200 OK"
        body = "".join(f'<a href="{link}">{link}</a>\n' for link in SITE[path])
    data = body.encode()
    writer.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(data)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + data)
    await writer.drain()
    writer.close()


def start_site() -> tuple[int, asyncio.AbstractEventLoop]:
    """Serves SITE on a thread with its own event loop; returns the port and that loop."""
    loop = asyncio.new_event_loop()
    failed: set[str] = set()
    server = loop.run_until_complete(asyncio.start_server(
        lambda r, w: serve_page(r, w, failed), "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, name="site", daemon=True).start()
    return server.sockets[0].getsockname()[1], loop


# -- the client: one GET on asyncio streams ----------------------------------------------


class HttpError(Exception):
    pass


async def http_get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Connection: close\r\n\r\n".encode())
        await writer.drain()
        response = await reader.read()  # the server closes the connection after the body
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    if status != "200":
        raise HttpError(f"{path}: HTTP {status}")
    return body.decode()


# -- the minions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    path: str
    reply_to: MinionRef


@dataclass(frozen=True)
class Crawl:
    budget: int | None  # pages to start fetching; None: until the frontier is empty


@dataclass(frozen=True)
class Fetched:
    path: str
    links: list[str]
    retries: int
    error: str | None = None


class Fetcher(Minion):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def on_receive(self, message: Fetch) -> None:
        for attempt in range(ATTEMPTS):
            try:
                body = await asyncio.wait_for(http_get(self.port, message.path), timeout=5)
            except (TimeoutError, HttpError, OSError) as exc:
                if attempt + 1 == ATTEMPTS:
                    result = Fetched(message.path, [], attempt, error=str(exc))
                    break
                await asyncio.sleep(0.01 * 2**attempt)  # backoff; the loop serves others
            else:
                result = Fetched(message.path, re.findall(r'href="([^"]+)"', body), attempt)
                break
        await message.reply_to.tell_async(result)


class Crawler(Minion):
    """The supervisor of the fetchers (it restarts one that crashes); its frontier persists."""

    def __init__(self, port: int, fetchers: int, done: threading.Event) -> None:
        super().__init__()
        self.done = done
        self.fetchers = [self.spawn(Fetcher, port, name=f"fetcher-{i}")
                         for i in range(fetchers)]
        self.assigned: dict[str, MinionRef] = {}  # page in flight -> its fetcher
        self.budget: int | None = 0               # pages still to start (None: no limit)
        self.frontier = ["/"]                      # pages to fetch, those in flight included
        self.fetched: list[str] = []
        self.failed: list[str] = []
        self.retries = 0

    def snapshot(self) -> dict:                    # saved after every message
        return {"frontier": self.frontier, "fetched": self.fetched, "failed": self.failed,
                "retries": self.retries}

    def restore(self, state: dict) -> None:        # a page in flight is fetched again
        self.frontier = state["frontier"]
        self.fetched = state["fetched"]
        self.failed = state["failed"]
        self.retries = state["retries"]

    async def on_receive(self, message: object) -> object:
        if message == "status":
            return {"fetched": sorted(self.fetched), "frontier": sorted(self.frontier),
                    "failed": self.failed, "retries": self.retries}
        if isinstance(message, Fetched):
            self.finish(message)
        elif isinstance(message, Crawl):
            self.budget = message.budget
        await self.dispatch()
        return None

    def finish(self, result: Fetched) -> None:
        del self.assigned[result.path]
        self.frontier.remove(result.path)
        self.retries += result.retries
        if result.error:
            self.failed.append(result.path)
            return
        self.fetched.append(result.path)
        known = {*self.fetched, *self.failed, *self.frontier}
        self.frontier += [link for link in dict.fromkeys(result.links) if link not in known]

    async def dispatch(self) -> None:
        idle = [f for f in self.fetchers if f not in self.assigned.values()]
        waiting = [path for path in self.frontier if path not in self.assigned]
        while idle and waiting and self.budget != 0:
            path, fetcher = waiting.pop(0), idle.pop(0)
            self.assigned[path] = fetcher
            self.budget = None if self.budget is None else self.budget - 1
            await fetcher.tell_async(Fetch(path, self.actor_ref))
        if not self.assigned and (self.budget == 0 or not waiting):
            self.done.set()


def run(state_file: Path, port: int, budget: int | None) -> dict:
    """One process's life: start, crawl `budget` more pages, report, shut down."""
    done = threading.Event()
    system = ActorSystem.start(state_store=state_file, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    crawler = system.spawn(Crawler, port, 2, done, name="crawler")
    print("  frontier at start:", crawler.ask("status", timeout=5)["frontier"])
    crawler.tell(Crawl(budget))
    if not done.wait(30):
        raise SystemExit("the crawl did not end within 30 s")
    status = crawler.ask("status", timeout=5)
    system.shutdown()
    if system.exit_code != 0:
        raise SystemExit(f"the shutdown failed: exit code {system.exit_code}")
    return status


port, site_loop = start_site()
with tempfile.TemporaryDirectory() as tmp:
    state_file = Path(tmp) / "crawler.db"
    print("run 1 (budget: 4 pages):")
    status = run(state_file, port, 4)
    print("  fetched:", status["fetched"])
    print("  frontier left:", status["frontier"])
    print("run 2 (the rest):")
    status = run(state_file, port, None)
    print("  fetched:", status["fetched"])
    print("  failed after", ATTEMPTS, "attempts:", status["failed"])
    print("  retries:", status["retries"])
site_loop.call_soon_threadsafe(site_loop.stop)
print("exit code: 0")
