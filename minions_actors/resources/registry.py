"""The system's resource registry: opens resources for their users, closes them after the
last one, checks their health and reopens them (see :mod:`minions_actors.resources`).

It attaches to the runtime at three points only: before a cell builds an instance, the
system's ``prepare_incarnation`` calls :meth:`ResourceRegistry.acquire` (a failure is a crash
in phase ``init``); as a :class:`~minions_actors.Hooks` observer, ``minion_stopped`` releases
the minion's holds (the last one closes the resource) and ``system_stopped`` closes whatever
is still open (a minion stuck past the deadline).

Locks: one per resource, taken in dependency order (a resource before those it uses), so
opening and closing chains cannot deadlock; a cycle is refused with a clear error.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from minions_actors.errors import StillRunning
from minions_actors.observability.hooks import Hooks
from minions_actors.resources import (
    Handle,
    Resource,
    ResourceError,
    ResourceUnavailable,
    check_open_timeout,
    declared,
    declares_any,
    default_name,
    public_methods,
)
from minions_actors.resources.aio import call_bounded, is_coroutine_method, run_on_loop
from minions_actors.resources.health import HealthWatch, describe
from minions_actors.resources.threads import HealthChecks, run_bounded

if TYPE_CHECKING:
    from loguru import Logger

_MISSING = object()
_NO_SERIES = (None, None, None)
_UNAVAILABLE_LOG_EVERY = 10.0  # seconds between two warnings of calls refused (per resource)


class Entry:
    """One registered resource: its state, its users and its measured methods."""

    def __init__(self, registry: ResourceRegistry, name: str, resource: Resource) -> None:
        self.registry = registry
        self.name = name
        self.resource = resource
        cls: type = type(resource)
        self.methods = public_methods(cls)
        self.deps = declared(cls)
        self.lock = threading.RLock()
        self.users: dict[object, None] = {}  # cells and entries holding it open
        self.state = "closed"  # opening, open, unhealthy (reopening), closing, closed
        self.reason = ""
        self.attempts = 0
        self.next_try = 0.0
        self.refused: tuple[float, int] = (0.0, 0)  # (last warned, refused calls since)
        self.late_open: threading.Thread | None = None  # an open() left past open_timeout
        self._series: dict[str, tuple[Any, Any, Any]] = {}

    def series(self, method: str) -> tuple[Any, Any, Any]:
        series = self._series.get(method)
        if series is None:
            metrics = self.registry.system.metrics
            series = _NO_SERIES if metrics is None else metrics.extensions.method(
                self.name, method)
            self._series[method] = series
        return series

    def check_available(self) -> None:
        state = self.state
        if state == "open":
            return
        if state == "unhealthy":
            wait = max(0.0, self.next_try - time.monotonic())
            raise ResourceUnavailable(
                f"resource {self.name!r} is unavailable: {self.reason}; it is being reopened "
                f"(attempt {self.attempts + 1} in {wait:.1f}s). Retry later, or let the "
                "caller crash and its supervisor retry with backoff"
            )
        raise ResourceUnavailable(
            f"resource {self.name!r} is {state}: its last user stopped or the system is "
            "shutting down; declare it with uses() on the minion that calls it"
        )

    def call_failed(self, method: str, user: str, exc: Exception) -> None:
        """Count and log a failed call: resource, method, caller and the exception's type
        (not its text, which may echo the arguments). Calls refused while the resource is
        unavailable (counted once, when it became so) are warned about once per
        ``_UNAVAILABLE_LOG_EVERY`` seconds, with how many were refused meanwhile."""
        more = ""
        if isinstance(exc, ResourceUnavailable):
            now, (last, since) = time.monotonic(), self.refused
            if now - last < _UNAVAILABLE_LOG_EVERY:
                self.refused = (last, since + 1)  # racing callers may lose a count: a hint
                return
            self.refused = (now, 0)
            if since:
                more = f" ({since} more refused calls since the last warning)"
        else:
            self.registry.count_error(self.name)
        self.registry.log(self.name, user).warning(
            "resource {}.{}() called by {} raised {}{}", self.name, method, user,
            type(exc).__name__, more)

    def __repr__(self) -> str:
        return f"<resource {self.name!r} {self.state}, {len(self.users)} users>"


def registry_of_user(inst: object) -> tuple[ResourceRegistry, str]:
    """The registry and the user's description for an object with ``uses`` attributes."""
    if isinstance(inst, Resource):
        entry = inst.__dict__.get("_minions_entry")
        if entry is None:
            raise ResourceError(f"{type(inst).__name__} is not registered with a system: "
                                "system.resources.add(resource) first")
        return entry.registry, f"resource {entry.name}"
    cell = inst.__dict__.get("_minion_cell")
    if cell is None:
        raise ResourceError(f"uses() works on Minion and Resource subclasses, not on "
                            f"{type(inst).__name__}")
    return cell.system.resources, cell.path


class ResourceRegistry(HealthWatch, Hooks):
    """``system.resources``: register resources with :meth:`add`; inspect with
    :meth:`get` and :meth:`state`."""

    def __init__(self, system: Any) -> None:
        self.system = system  # the ActorSystem (its metrics, log and stop_timeout)
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._open: list[Entry] = []  # in the order they opened
        self._handles: dict[tuple[str, str], Handle] = {}
        self._health: HealthChecks | None = None
        self._closed = False  # the system stopped: no health thread is started again

    # ------------------------------------------------------------------ public
    def add(self, resource: Resource, name: str | None = None) -> str:
        """Register ``resource`` under ``name`` (default: its class's ``name``, else the
        class name in lower case) and return the name. It opens when a user starts."""
        if not isinstance(resource, Resource):
            raise TypeError(f"system.resources.add() takes a Resource instance, got "
                            f"{resource!r}")
        check_open_timeout(type(resource))
        name = default_name(type(resource)) if name is None else name
        if not isinstance(name, str) or not name or not name.isprintable() or "/" in name:
            raise ValueError(f"a resource name is a non-empty printable str without '/', "
                             f"got {name!r}")
        with self._lock:
            if name in self._entries:
                raise ValueError(f"a resource named {name!r} is already registered")
            if "_minions_entry" in resource.__dict__:
                raise ValueError(f"{resource!r} is already registered (as "
                                 f"{resource.__dict__['_minions_entry'].name!r})")
            entry = Entry(self, name, resource)
            resource.__dict__["_minions_entry"] = entry
            self._entries[name] = entry
        for method in sorted(entry.methods):  # every series exists at 0 from the start
            entry.series(method)
        return name

    def get(self, name: str) -> Resource:
        """The registered resource object (unmeasured: minions use their handle)."""
        return self._entry(name, "system.resources.get()").resource

    def state(self, name: str) -> str:
        """closed, opening, open, unhealthy (being reopened) or closing."""
        return self._entry(name, "system.resources.state()").state

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def handle(self, name: str, user: str) -> Handle:
        key = (name, user)
        handle = self._handles.get(key)
        if handle is None:
            handle = self._handles[key] = Handle(self._entry(name, user), user)
        return handle

    # ------------------------------------------------------------------ lifecycle
    def acquire(self, cell: Any) -> None:
        """Before ``cell`` builds an instance: open (once) every resource its class
        declares, dependencies first; holds stay across its restarts."""
        if not declares_any(cell.cls):  # (most classes: no walk of the MRO per start)
            return
        names = declared(cell.cls)
        if names and getattr(cell, "placement", None) is not None:
            raise ResourceError(
                f"{cell.describe()} uses resources ({', '.join(names)}) but runs placed "
                "outside this process, where they are not available; spawn it without "
                "placement, or give it a resource of its own in the child"
            )
        for name in names:
            self._hold(self._entry(name, cell.describe()), cell, (), cell.describe())

    def release(self, user: object) -> None:
        """``user`` stopped for good: let go of its resources (the last user closes)."""
        if not self._entries:  # no resource registered: every stop comes here
            return
        for entry in reversed(self._snapshot()):
            # looked at without its lock, which an open() in progress holds: a minion
            # that does not hold the resource never waits for it
            if user in entry.users:
                self._let_go(entry, user)

    def close_all(self) -> None:
        """Close what is still open, newest first (end of a shutdown)."""
        with self._lock:
            self._closed = True
            health, self._health = self._health, None
        if health is not None:
            health.close()
        with self._lock:
            still_open = list(self._open)
        for entry in reversed(still_open):
            with entry.lock:
                entry.users.clear()
                if entry.state != "closed":
                    self._close(entry)
        for entry in self._snapshot():  # the objects may be registered with a later system
            entry.resource.__dict__.pop("_minions_entry", None)

    def minion_stopped(self, cell: Any, reason: str) -> None:
        self.release(cell)

    def system_stopped(self, system: Any, failure: BaseException | None) -> None:
        self.close_all()

    # ------------------------------------------------------------------ internals
    def _snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def _entry(self, name: str, who: str) -> Entry:
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise ResourceError(
                f"{who} uses resource {name!r}, which is not registered (registered: "
                f"{known}); pass it to ActorSystem.start(resources=[...]) or call "
                "system.resources.add(...) before spawning its users"
            )
        return entry

    def _hold(self, entry: Entry, user: object, chain: tuple[Entry, ...], who: str) -> None:
        if entry in chain:
            cycle = " -> ".join(e.name for e in (*chain, entry))
            raise ResourceError(f"resources use each other in a cycle: {cycle}")
        with entry.lock:
            if user in entry.users:
                return
            if entry.state == "closed":
                self._open_entry(entry, (*chain, entry), who)
            entry.users[user] = None

    def _open_entry(self, entry: Entry, chain: tuple[Entry, ...], who: str) -> None:
        held: list[Entry] = []
        entry.state = "opening"
        try:
            for dep in entry.deps:
                dep_entry = self._entry(dep, f"resource {entry.name!r}")
                self._hold(dep_entry, entry, chain, who)
                held.append(dep_entry)
            self._run_open(entry)
        except Exception as exc:
            entry.state = "closed"
            for dep_entry in reversed(held):
                self._let_go(dep_entry, entry)
            if isinstance(exc, ResourceError):
                raise
            self.count_error(entry.name)
            self.log(entry.name, who).error("resource {} failed to open for {}: {}",
                                            entry.name, who, describe(exc))
            raise ResourceError(  # the cause is not chained: its text would be logged
                f"resource {entry.name!r} failed to open, so {who} cannot start: "
                f"{describe(exc)}. Its supervisor retries with backoff; check what the "
                "resource connects to and its configuration"
            ) from None
        entry.state, entry.reason, entry.attempts = "open", "", 0
        with self._lock:
            self._open.append(entry)
        self.log(entry.name, who).info("resource {} opened (first user: {})", entry.name, who)
        interval = type(entry.resource).health_interval
        if interval:
            self._schedule(entry, time.monotonic() + interval)

    def _run_open(self, entry: Entry) -> None:
        """``open()`` on a thread of its own, bounded by the class's ``open_timeout``. One
        past it is left running; until it returns no other ``open()`` of the resource starts
        beside it, and when it does, what it opened is closed (nobody uses it)."""
        late = entry.late_open
        if late is not None and late.is_alive():
            raise ResourceError(
                f"resource {entry.name!r}: its previous open() is still running past its "
                "open_timeout, on thread " + repr(late.name) + "; a new one starts only "
                "after it returns (then closed: the runtime gave up on it)")
        resource, lock = entry.resource, threading.Lock()
        if is_coroutine_method(resource.open):  # on the loop; cancelled past its bound
            exc, _ = run_on_loop(self.system.loop_host, resource.open,
                                 type(resource).open_timeout,
                                 f"minions-resource-{entry.name}", "open_timeout")
            if exc is not None:
                raise exc
            return
        given_up = [False, False]  # [the runtime gave up on this call, the call returned]

        def open_() -> None:
            resource.open()
            with lock:
                given_up[1] = True
                close_it = given_up[0]
            if close_it:
                resource.close()

        exc = run_bounded(open_, type(resource).open_timeout,
                          f"minions-resource-{entry.name}", "open_timeout")
        if isinstance(exc, StillRunning):
            with lock:
                if given_up[1]:  # it returned just now: not late after all
                    return
                given_up[0] = True
            entry.late_open = exc.thread
        if exc is not None:
            raise exc

    def _let_go(self, entry: Entry, user: object) -> None:
        with entry.lock:
            if entry.users.pop(user, _MISSING) is _MISSING or entry.users:
                return
            if entry.state != "closed":
                self._close(entry)
        for dep in reversed(entry.deps):
            dep_entry = self._entries.get(dep)
            if dep_entry is not None:
                self._let_go(dep_entry, entry)

    def _close(self, entry: Entry) -> None:
        entry.state = "closing"
        exc = self._run_close(entry)
        entry.state = "closed"
        with self._lock:
            if entry in self._open:
                self._open.remove(entry)
        if exc is None:
            self.log(entry.name, "").info("resource {} closed", entry.name)
        else:
            self.count_error(entry.name)
            self.log(entry.name, "").error("resource {} failed to close: {}", entry.name,
                                           describe(exc))

    def _run_close(self, entry: Entry) -> BaseException | None:
        """``close()`` bounded by ``stop_timeout`` (on the loop when it is async)."""
        return call_bounded(self.system.loop_host, entry.resource.close,
                            self.system.stop_timeout, f"minions-resource-{entry.name}")

    def count_error(self, name: str) -> None:
        metrics = self.system.metrics
        if metrics is not None:
            metrics.resource_error(name)

    def log(self, name: str, user: str) -> Logger:
        log: Logger = self.system.log
        return log.bind(minions=True, resource=name, minion=user or "gru")

