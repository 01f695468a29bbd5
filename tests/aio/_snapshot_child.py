"""Subprocess helper for the async tests.

``python tests/aio/_snapshot_child.py HOW DB N`` starts a system the HOW way ("owned":
start(); "caller": start_async() in asyncio.run) on the SQLite file DB, prints the restored
total of the async minion ``tally`` as "RESTORED <total>", adds N to it, and shuts down
(which flushes the snapshot).

``python tests/aio/_snapshot_child.py HOW sigterm`` starts a system the HOW way with signal
handlers, gives an async minion a handler that awaits for ever (it prints "HANDLING", then
"CANCELLED" when cancelled; its async on_stop prints "ON_STOP"), and waits for the system
to stop (SIGTERM from the test); prints "EXIT <clean>" at the end."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from minions_actors import ActorSystem, Minion
from tests.aio.persistent import Tally
from tests.conftest import QUIET


async def use(system: ActorSystem, n: int) -> None:
    ref = system.spawn(Tally, name="tally")
    print("RESTORED", await ref.ask_async("get", timeout=10), flush=True)
    await ref.ask_async(n, timeout=10)


class Stuck(Minion):
    async def on_receive(self, message: Any) -> Any:
        print("HANDLING", flush=True)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            print("CANCELLED", flush=True)
            raise

    async def on_stop(self) -> None:
        await asyncio.sleep(0)
        print("ON_STOP", flush=True)


def until_signalled(how: str) -> None:
    options = {**QUIET, "handle_signals": True, "stop_timeout": 0.3}
    if how == "owned":
        system = ActorSystem.start(**options)
        system.spawn(Stuck).tell("wait")
        print("EXIT", system.wait(timeout=30), flush=True)
        return

    async def run() -> None:
        async with ActorSystem.start_async(**options) as system:
            system.spawn(Stuck).tell("wait")
            print("EXIT", await system.wait_async(timeout=30), flush=True)

    asyncio.run(run())


def main() -> None:
    if sys.argv[2] == "sigterm":
        until_signalled(sys.argv[1])
        return
    how, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    options = {**QUIET, "state_store": db}
    if how == "owned":
        system = ActorSystem.start(**options)
        try:
            asyncio.run(use(system, n))
        finally:
            assert system.shutdown(timeout=10)
    else:
        async def run() -> None:
            async with ActorSystem.start_async(**options) as system:
                await use(system, n)

        asyncio.run(run())


if __name__ == "__main__":
    main()
