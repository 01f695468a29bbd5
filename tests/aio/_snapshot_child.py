"""Subprocess helper: ``python tests/aio/_snapshot_child.py HOW DB N`` starts a system the
HOW way ("owned": start(); "caller": start_async() in asyncio.run) on the SQLite file DB,
prints the restored total of the async minion ``tally`` as "RESTORED <total>", adds N to it,
and shuts down (which flushes the snapshot)."""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from minions_actors import ActorSystem
from tests.aio.persistent import Tally
from tests.conftest import QUIET


async def use(system: ActorSystem, n: int) -> None:
    ref = system.spawn(Tally, name="tally")
    print("RESTORED", await ref.ask_async("get", timeout=10), flush=True)
    await ref.ask_async(n, timeout=10)


def main() -> None:
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
