"""Minions and helpers the observer tests share (HTTP and browser)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from minions_actors import (
    Backoff,
    Batch,
    Minion,
    Pipeline,
    Resource,
    Retry,
    WaitSignal,
    Workflow,
    uses,
)

SECRET = "s3cr3t-p4ssw0rd"
TOKEN = "t0ken-for-the-observer-tests"
FAST = Backoff(initial=0.01, maximum=0.05, jitter=0)


class Worker(Minion):
    """Crashes on "boom" (the message names no secret); holds a secret in its snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.password = SECRET

    def snapshot(self) -> Any:
        return {"password": self.password}

    def restore(self, state: Any) -> None:
        self.password = state["password"]

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("injected crash")
        return message


class Gated(Minion):
    """Each incarnation's ``__init__`` sets ``entered`` and waits for ``gate`` (held by the
    test): the minion is not built until the test lets it; crashes on "boom"."""

    def __init__(self, entered: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        entered.set()
        gate.wait(30)

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("injected crash")
        return message


class Busy(Minion):
    """Supervises a Worker "w"; on "hold" its handler sets ``held`` and waits for
    ``release`` (held by the test), so a crash of "w" waits for its decision meanwhile."""

    def __init__(self, held: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.held, self.release = held, release

    def on_start(self) -> None:
        self.spawn(Worker, name="w")

    def on_receive(self, message: Any) -> Any:
        self.held.set()
        self.release.wait(30)


class Shown(Worker):
    """The same, but its class opts in: its stored snapshot is shown."""

    observer_state = True


class Team(Minion):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def on_start(self) -> None:
        for i in range(self.size):
            self.spawn(Worker, name=f"w{i}")


class Orders(Minion):
    """A workflow whose charge step fails until ``ok`` is set on the class."""

    ok = False
    fulfil = Workflow("charge", retry=Retry(attempts=1, backoff=FAST))

    def charge(self, ctx: dict[str, Any]) -> None:
        if not Orders.ok:
            raise ConnectionError("payment gateway down")
        ctx["charged"] = True


class Approver(Minion):
    """A workflow that waits for an approval that never comes (to be cancelled)."""

    approve = Workflow(WaitSignal("approval", timeout=600), "pay")

    def pay(self, ctx: dict[str, Any]) -> None:
        ctx["paid"] = True


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=30) as r:
        body = r.read()
    return json.loads(body) if r.headers.get_content_type() == "application/json" else body


def post(base: str, action: str, body: dict[str, str],
         token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Observer-Token"] = token
    req = urllib.request.Request(f"{base}/api/action/{action}", json.dumps(body).encode(),
                                 headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Store(Resource):
    """A resource with one measured method."""

    name = "kv"

    def fetch(self) -> str:
        return "data"


class UsesStore(Minion):
    kv = uses(Store)

    def on_receive(self, message: Any) -> Any:
        return self.kv.fetch()


class Ticks(Pipeline):
    """Produces ``total`` numbers; the position is an int."""

    poll_interval = 0.02

    def __init__(self, total: int, subscribers: list[str]) -> None:
        super().__init__()
        self.total, self.subscribers = total, subscribers

    def open(self, position: Any) -> None:
        self.next = position or 0

    def produce(self) -> Batch | None:
        if self.next >= self.total:
            return None
        events, self.next = list(range(self.next, self.total)), self.total
        return Batch(events, self.total)


class ShownTicks(Ticks):
    observer_state = True
