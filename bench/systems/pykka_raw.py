"""Raw pykka ``ThreadingActor``: the floor minions_actors is built on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pykka

from bench.common import WAIT, Skip
from bench.systems.base import Metrics
from bench.systems.threaded import CounterLogic, PingLogic, ThreadedSystem


class PykkaCounter(CounterLogic, pykka.ThreadingActor):
    """:class:`CounterLogic` on a plain pykka thread actor."""


class PykkaPing(PingLogic, pykka.ThreadingActor):
    """:class:`PingLogic` on a plain pykka thread actor."""


class PykkaSystem(ThreadedSystem):
    """pykka 4 ``ThreadingActor`` with no supervision and no persistence."""

    key = "pykka"
    label = "pykka"
    counter_cls = PykkaCounter
    ping_cls = PykkaPing

    @contextmanager
    def running(self) -> Iterator[None]:
        try:
            yield
        finally:
            pykka.ActorRegistry.stop_all(block=True, timeout=WAIT)

    def spawn(self, cls: Any, *args: Any) -> Any:
        return cls.start(*args)

    def stop_all(self, refs: list[Any]) -> None:
        futures = [r.stop(block=False) for r in refs]
        for future in futures:
            future.get(timeout=WAIT)

    def persistent_tell(self, n: int, tmp: Path) -> Metrics:
        """pykka has no persistence: the reference is its plain (non-persistent) tell."""
        return self.tell(n)

    def restart(self, n: int) -> Metrics:
        raise Skip("pykka has no supervisor: a crashed actor stays dead (minions only)")
