"""The threads of the resource registry: bounded calls (``close()`` gets ``stop_timeout``)
and the ``minions-resource-health`` thread that runs health checks and reopen attempts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from minions_actors.errors import StillRunning
from minions_actors.support.signals import block_shutdown_signals


def run_bounded(fn: Callable[[], Any], timeout: float, name: str,
                bound: str = "stop_timeout") -> BaseException | None:
    """Run ``fn`` on a named thread, waiting at most ``timeout`` seconds (the option
    ``bound``): what it raised, :class:`StillRunning` if it is still running (left behind
    on its daemon thread), or None."""
    errors: list[BaseException] = []

    def run() -> None:
        block_shutdown_signals()
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        late = StillRunning(f"it did not return within {timeout}s ({bound}); it is left "
                            f"running on thread {name!r}")
        late.thread = thread
        return late
    return errors[0] if errors else None


class HealthChecks:
    """One named thread (``minions-resource-health``) that runs due checks and reopens."""

    def __init__(self, check: Callable[[Any], None]) -> None:
        self._check = check
        self._due: dict[Any, float] = {}
        self._cond = threading.Condition()
        self._closed = False
        # joined at shutdown; a daemon so that a health check stuck in a network call
        # cannot keep the process from exiting after the join gave up
        self._thread = threading.Thread(target=self._run, name="minions-resource-health",
                                        daemon=True)
        self._thread.start()

    def schedule(self, entry: Any, at: float) -> None:
        with self._cond:
            self._due[entry] = at
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        block_shutdown_signals()
        while True:
            with self._cond:
                ready: list[Any] = []
                while not self._closed and not ready:
                    now = time.monotonic()
                    ready = [e for e, at in self._due.items() if at <= now]
                    if not ready:
                        soonest = min(self._due.values(), default=None)
                        self._cond.wait(None if soonest is None else soonest - now)
                if self._closed:
                    return
                for entry in ready:
                    del self._due[entry]
            for entry in ready:
                self._check(entry)
