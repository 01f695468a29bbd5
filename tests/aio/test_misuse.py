"""Async minions used wrongly: clear errors rather than hangs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, MinionRef, MinionStopped

from ..conftest import QUIET, runtime_threads

pytestmark = pytest.mark.timeout(60)


class Echo(Minion):
    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(0)
        return message


def test_a_callers_loop_that_ended_before_shutdown_gives_a_clear_error_not_a_hang() -> None:
    async def main() -> tuple[ActorSystem, MinionRef[Any]]:
        system = await ActorSystem.start_async(**QUIET)  # and no shutdown_async: a mistake
        ref = system.spawn(Echo, name="echo")
        assert await ref.ask_async(1, timeout=10) == 1
        return system, ref

    system, ref = asyncio.run(main())
    try:
        with pytest.raises(MinionStopped, match=r"'echo'.*event loop is closed"):
            ref.ask(2, timeout=10)
    finally:
        assert system.shutdown(timeout=10)
    assert runtime_threads() == []
