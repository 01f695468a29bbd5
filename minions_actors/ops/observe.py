"""``minions-actors observe --db minions.db``: the observer page, read-only, over the store
of a stopped app (what ``inspect`` and ``workflows`` read, browsable)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from minions_actors.errors import MinionNotFound
from minions_actors.observability.metrics_http import serve_app
from minions_actors.observer.app import PREFIX, ObserverApp
from minions_actors.observer.live import workflow_row, workflows_page
from minions_actors.ops.inspect import read_minions, read_workflows
from minions_actors.records import WorkflowInfo
from minions_actors.support.text import printable


class StoreSource:
    """The observer's reads over a store file; re-read when the file changes (a
    ``workflows retry`` in another shell shows up on the next poll)."""

    live = False

    def __init__(self, db: str | os.PathLike[str]) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._stored: dict[str, dict[str, Any]] = {}
        self._kids: dict[str, list[str]] = {}
        read_minions(db)  # fails now, with the store's message, when the file is not one

    def _load(self) -> None:
        stat = os.stat(self.db)
        with self._lock:
            if self._stamp == (stat.st_mtime, stat.st_size):
                return
            listing = read_minions(self.db)
            stored = {m["path"]: m for m in listing.minions}
            kids: dict[str, dict[str, None]] = {}
            for path in stored:  # every prefix is a node (a parent may store nothing)
                parts = path.split("/")
                for i in range(len(parts)):
                    parent = "/".join(parts[:i])
                    kids.setdefault(parent, {})["/".join(parts[: i + 1])] = None
            self._stored, self._kids = stored, {p: list(k) for p, k in kids.items()}
            self._stamp = (stat.st_mtime, stat.st_size)

    def _row(self, path: str) -> dict[str, Any]:
        m = self._stored.get(path)
        return {"path": path, "name": path.rsplit("/", 1)[-1], "cls": m["class"] if m else "",
                "mode": "", "state": "stored" if m else "not stored", "mailbox": None,
                "handled": None, "failed": None, "restarts": None, "crash": None,
                "children": len(self._kids.get(path, ()))}

    def overview(self) -> dict[str, Any]:
        self._load()
        return {"live": False, "minions": len(self._stored), "pool": None, "last_event": 0}

    def parts(self) -> dict[str, Any]:
        return {"resources": [], "pipelines": []}  # they live in the running app only

    def children(self, path: str, offset: int, limit: int) -> dict[str, Any]:
        self._load()
        path = path.strip("/")
        names = self._kids.get(path)
        if names is None and path:
            raise MinionNotFound(f"no stored minion at or under {printable(path)!r}")
        page = (names or [])[offset: offset + limit]
        return {"path": path, "total": len(names or []), "offset": offset,
                "rows": [self._row(p) for p in page]}

    def search(self, query: str, limit: int) -> dict[str, Any]:
        self._load()
        q = query.lower()
        found = [p for p, m in self._stored.items()
                 if q in p.lower() or q in m["class"].lower()]
        return {"query": query, "total": len(found), "rows": [self._row(p) for p in found[:limit]]}

    def minion(self, path: str) -> dict[str, Any]:
        self._load()
        path = path.strip("/")
        if path not in self._stored and path not in self._kids:
            raise MinionNotFound(f"no stored minion at {printable(path)!r}")
        row = self._row(path)
        stored = self._stored.get(path)
        row["state_shown"] = False  # the class's opt-in is unknown without the app
        if stored is not None:
            row.update(size_bytes=stored["size_bytes"], updated_at=stored["updated_at"])
        return row

    def events(self, since: int) -> list[dict[str, Any]]:
        return []  # events live in the running app's memory only

    def workflows(self, status: str | None, limit: int) -> dict[str, Any]:
        infos = [WorkflowInfo.of(r) for r in read_workflows(self.db).records]
        return workflows_page(infos, status, limit)

    def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        records = read_workflows(self.db, workflow_id=workflow_id).records
        return workflow_row(WorkflowInfo.of(records[0])) if records else None


def _not_here(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = f"the observer page is at {PREFIX}\n".encode()
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                     ("Content-Length", str(len(body)))])
    return [body]


def serve_store(db: str | os.PathLike[str], host: str, port: int) -> tuple[Any, Any]:
    """Serve the read-only page over ``db``; returns (server, thread)."""
    page = ObserverApp(StoreSource(db))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return page(environ, start_response)
        return _not_here(environ, start_response)

    return serve_app(app, host, port)


def cmd_observe(db: str, host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM; prints the page's address first."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the address: a SIGTERM sent as soon
        signal.signal(sig, lambda *_: done.set())  # as it shows must stop it cleanly
    server, thread = serve_store(db, host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"observing {printable(str(db))} (read-only) at "
          f"http://{shown}:{server.server_address[1]}{PREFIX}", flush=True)
    while not done.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    thread.join()
    return 0
