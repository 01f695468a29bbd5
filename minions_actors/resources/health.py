"""Health watching for the resource registry: after a resource opens, the
``minions-resource-health`` thread checks it every ``health_interval``; an unhealthy one is
closed and reopened with the class's ``reopen_backoff`` until it works again.

A mixin of :class:`~minions_actors.resources.registry.ResourceRegistry`, kept apart because
it runs on its own thread and owns the ``unhealthy`` state's transitions."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from minions_actors.errors import StillRunning
from minions_actors.resources.aio import health
from minions_actors.resources.threads import HealthChecks

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.resources.registry import Entry


class HealthWatch:
    """The registry's health checks and reopen attempts (see the module's text)."""

    system: Any
    _lock: threading.Lock
    _closed: bool
    _health: HealthChecks | None

    if TYPE_CHECKING:  # provided by ResourceRegistry
        def _run_open(self, entry: Entry) -> None: ...
        def _run_close(self, entry: Entry) -> BaseException | None: ...
        def count_error(self, name: str) -> None: ...
        def log(self, name: str, user: str) -> Logger: ...

    def _schedule(self, entry: Entry, at: float) -> None:
        """Have the health thread (started on first use) look at ``entry`` at ``at``."""
        with self._lock:
            if self._closed:
                return
            if self._health is None:
                self._health = HealthChecks(self._check)
            health = self._health
        health.schedule(entry, at)

    def _check(self, entry: Entry) -> None:
        """Health thread: check an open resource, or try to reopen an unhealthy one. The
        check runs outside the resource's lock, so a slow one never holds up its users'
        starts and stops."""
        resource = entry.resource
        why = self._unhealthy(entry) if entry.state == "open" else None
        with entry.lock:
            if entry.state == "open":
                if why is None:
                    self._schedule(entry, time.monotonic()
                                   + (type(resource).health_interval or 1.0))
                    return
                entry.state, entry.reason, entry.attempts = "unhealthy", why, 0
                self.count_error(entry.name)
                self.log(entry.name, "").warning(
                    "resource {} is unhealthy ({}); reopening with backoff", entry.name, why)
            elif entry.state == "unhealthy":
                if self._reopen(entry):
                    return
            else:
                return  # closed meanwhile: nothing to watch
            delay = type(resource).reopen_backoff.delay(entry.attempts + 1)
            entry.next_try = time.monotonic() + delay
            self._schedule(entry, entry.next_try)

    def _reopen(self, entry: Entry) -> bool:
        entry.attempts += 1
        self._run_close(entry)
        try:
            self._run_open(entry)
        except Exception as exc:
            self.count_error(entry.name)
            entry.reason = f"reopening failed: {describe(exc)}"
            self.log(entry.name, "").warning("resource {} could not be reopened (attempt {}): "
                                             "{}", entry.name, entry.attempts, entry.reason)
            return False
        self.log(entry.name, "").info("resource {} reopened after {} attempt(s)", entry.name,
                                      entry.attempts)
        entry.state, entry.reason, entry.attempts = "open", "", 0
        interval = type(entry.resource).health_interval or 1.0
        self._schedule(entry, time.monotonic() + interval)
        return True

    def _unhealthy(self, entry: Entry) -> str | None:
        """None when the health check passes, else why not (an async check runs on the
        loop, bounded by the class's ``open_timeout``)."""
        resource = entry.resource
        exc, ok = health(self.system.loop_host, resource.health_check,
                         type(resource).open_timeout, f"minions-resource-{entry.name}")
        if exc is not None:
            return f"its health check raised {describe(exc)}"
        return None if ok else "its health check returned False"


def describe(exc: BaseException) -> str:
    """What is logged of a resource's exception: its type, never its text (a driver's
    error may carry a password), except the runtime's own timeout."""
    if isinstance(exc, StillRunning):
        return f"TimeoutError: {exc}"
    return type(exc).__name__
