"""Found in session 9's review of issue 19's loop turn: an exception raised in the turn
after it took a message (see also tests/aio/test_spare.py, a first message that cancels its
own task)."""

from __future__ import annotations

from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from .conftest import Runner

pytestmark = pytest.mark.timeout(60)


class LooksUpBadly(Minion):
    """Once armed, looking its method ``work`` up raises SystemExit (a ``__getattribute__``
    of its own): the lookup a proxy call's turn does before it starts the coroutine."""

    armed = False

    def __getattribute__(self, name: str) -> Any:
        if name == "work" and object.__getattribute__(self, "armed"):
            raise SystemExit(3)
        return object.__getattribute__(self, name)

    async def work(self) -> str:
        return "worked"

    async def arm(self) -> str:
        self.armed = True
        return "armed"


def test_a_system_exit_in_a_proxy_calls_lookup_stops_the_system_and_answers_the_asker(
        run: Runner) -> None:
    async def body(system: ActorSystem) -> bool:
        proxy = system.spawn(LooksUpBadly).proxy()
        assert await proxy.work() == "worked"
        assert await proxy.arm() == "armed"
        with pytest.raises(SystemExit):  # (as a sync turn answers it; before: AskTimeout)
            await proxy.work().result_async(10)  # (no wait_for: its task would re-raise it)
        return await system.wait_async(timeout=10)  # (a system stop, as in a sync turn)

    assert run(body, stop_timeout=1) is True
