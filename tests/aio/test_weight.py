"""What an async minion gives the cyclic GC (issue 19's speed: a third of 10,000 async
sleepers' time was collections): an idle one, and one whose first message awaits."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion
from minions_actors.runtime.context import current_handler_cell, current_task_cell

from ..conftest import QUIET
from .conftest import until

pytestmark = pytest.mark.timeout(120)
N = 2_000


class Waiter(Minion):
    """Counts its build and each handler that reached the gate, then awaits the gate."""

    def __init__(self, gate: asyncio.Event, counts: list[int]) -> None:
        super().__init__()
        self.gate, self.counts = gate, counts
        counts[0] += 1

    async def on_receive(self, message: Any) -> Any:
        self.counts[1] += 1
        await self.gate.wait()
        self.counts[2] += 1


def _tracked() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects())


def _per(grown: Counter[str]) -> float:
    return sum(grown.values()) / N


def _context_nodes() -> int:
    """The nodes of the map in a context holding both of the runtime's context variables:
    one, and one more per 5-bit level at which their hashes agree (CPython's hamt.c folds a
    hash to 32 bits, then reads it 5 bits a level; the hashes mix in the variables'
    addresses, so this differs between processes)."""
    first, second = (_hamt_hash(var) for var in (current_task_cell, current_handler_cell))
    nodes = 1
    for shift in range(0, 32, 5):
        if (first >> shift) & 31 != (second >> shift) & 31:
            break
        nodes += 1
    return nodes


def _hamt_hash(var: Any) -> int:
    value = hash(var)
    return (value ^ (value >> 32)) & 0xFFFFFFFF


def test_idle_and_awaiting_async_minions_give_the_cyclic_gc_few_objects() -> None:
    async def main() -> tuple[Counter[str], Counter[str], Counter[str]]:
        async with ActorSystem.start_async(**QUIET) as system:
            gate = asyncio.Event()
            warm = [0, 0, 0]  # (a first spawn and message build caches: not counted)
            system.spawn(Waiter, gate, warm).tell("go")
            await until(lambda: warm[1] == 1, what="the warm-up handler")
            counts = [0, 0, 0]
            before = _tracked()
            refs = [system.spawn(Waiter, gate, counts) for _ in range(N)]
            await until(lambda: counts[0] == N, 60, "every minion built")
            idle = _tracked()
            for ref in refs:
                ref.tell("go")
            await until(lambda: counts[1] == N, 60, "every handler at the gate")
            awaiting = _tracked()
            gate.set()
            await until(lambda: counts[2] == N and warm[2] == 1, 60, "every handler ended")
            await asyncio.sleep(0.05)  # (the last answers' turns)
            return idle - before, awaiting - idle, _tracked() - before

    idle, awaiting, after = asyncio.run(main())
    # cell, ref, mailbox (and its list), instance, the sched lock and the spawn's args
    # tuple: no list for coroutines' outcomes until one ends (11 before), nor for runtime
    # messages until one comes (8 before)
    assert _per(idle) <= 7.1, f"{_per(idle):.2f} tracked objects per idle minion: {idle}"
    # asyncio's own for a task awaiting an Event (the task, its context and weak reference,
    # the two coroutines, the waiter future and its iterator, the task's wake-up: 8, as a
    # bare task's), the context's two values (a map and its node: two nodes in the 1 in 32
    # processes whose two variables' hashes agree at the map's first level), the job, and
    # the jobs dict now tracked: no wrapper coroutine, no done callback nor its context (16
    # before)
    assert _per(awaiting) <= 11.1 + _context_nodes(), \
        f"{_per(awaiting):.2f} tracked objects per awaiting first message: {awaiting}"
    # and once its handler has ended, an idle minion again (11 before: a list kept)
    assert _per(after) <= 7.1, f"{_per(after):.2f} tracked objects per minion after: {after}"
