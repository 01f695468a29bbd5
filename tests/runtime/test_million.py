"""A million pooled minions: spawn, one message each, stop all (issue 22). Behaviour only,
never timings: every message is handled once and every minion stops. Marked ``slow``
(about a minute and 2 GiB here); ``MINIONS_MILLION=N`` runs it with N minions."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET

N = int(os.environ.get("MINIONS_MILLION", "1000000"))


class Once(Minion):
    """Counts its one message down on a shared countdown."""

    def __init__(self, left: list[Any]) -> None:
        super().__init__()
        self.left = left

    def on_receive(self, message: Any) -> None:
        lock, done = self.left[1], self.left[2]
        with lock:
            self.left[0] -= 1
            if self.left[0] == 0:
                done.set()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_million_minions_each_handle_one_message_and_all_stop() -> None:
    system = ActorSystem.start(**QUIET, execution="pooled")
    try:
        left: list[Any] = [N, threading.Lock(), threading.Event()]
        refs = [system.spawn(Once, left) for _ in range(N)]
        for ref in refs:
            ref.tell(1)
        assert left[2].wait(1200), f"{left[0]} of {N} messages were not handled"
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            assert ref.actor_stopped.wait(600), f"{ref!r} did not stop"
        assert not any(ref.is_alive() for ref in refs)
        assert system.find(refs[-1].path) is None
    finally:
        system.shutdown(timeout=120)
