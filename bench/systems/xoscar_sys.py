"""xoscar, an asyncio actor framework: one local actor pool per repetition.

The pool is ``xo.create_actor_pool("127.0.0.1", n_process=0)``: the main pool only, in this
process, listening on 127.0.0.1 (nothing is reachable from outside). Actors are called by
method (``await ref.get()``), so ping-pong is an awaited call each way rather than tells.
xoscar is optional: without it every scenario skips with a note.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from time import perf_counter
from typing import Any

from bench.common import Skip, percentile
from bench.systems.asyncloops import run
from bench.systems.base import Metrics, System


@cache
def _classes() -> tuple[Any, Any]:
    """The xoscar actor classes (defined lazily: ``xoscar`` is an optional import)."""
    import xoscar as xo

    class XoCounter(xo.Actor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def add(self, _i: int) -> None:
            self.count += 1

        def get(self) -> int:
            return self.count

    class XoPing(xo.Actor):  # type: ignore[misc]
        def ping(self) -> str:
            return "pong"

        async def run(self, peer: Any, n: int) -> int:
            for _ in range(n):
                await peer.ping()
            return n

    return XoCounter, XoPing


class XoscarSystem(System):
    """xoscar actors in one in-process pool on 127.0.0.1."""

    key = "xoscar"
    label = "xoscar"

    def __init__(self) -> None:
        self._address = ""
        self._made = 0

    def check(self) -> None:
        if importlib.util.find_spec("xoscar") is None:
            raise Skip("xoscar is not installed (pip install xoscar); xoscar peer skipped")

    def close(self) -> None:
        """Stop the loop thread xoscar starts on first use (it is never stopped otherwise
        before exit, and the suite reports threads left alive)."""
        core = sys.modules.get("xoscar.backends.core")
        caller = getattr(core, "ActorCaller", None)
        if caller is not None and getattr(caller, "_initialized", False):
            caller._cleanup()

    @asynccontextmanager
    async def _pool(self) -> AsyncIterator[Any]:
        import xoscar as xo

        pool = await xo.create_actor_pool("127.0.0.1", n_process=0)
        self._address = pool.external_address
        async with pool:
            yield xo

    async def _create(self, xo: Any, cls: Any) -> Any:
        self._made += 1
        return await xo.create_actor(cls, address=self._address, uid=f"bench-{self._made}")

    def ask(self, n: int) -> Metrics:
        return run(self._ask(n))

    async def _ask(self, n: int) -> Metrics:
        counter_cls, _ = _classes()
        async with self._pool() as xo:
            ref = await self._create(xo, counter_cls)
            for _ in range(min(200, n)):
                await ref.get()
            samples = []
            for _ in range(n):
                t0 = perf_counter()
                await ref.get()
                samples.append(perf_counter() - t0)
        return {"p50": percentile(samples, 50) * 1e6, "p99": percentile(samples, 99) * 1e6}

    def pingpong(self, n: int) -> Metrics:
        return run(self._pingpong(n))

    async def _pingpong(self, n: int) -> Metrics:
        _, ping_cls = _classes()
        async with self._pool() as xo:
            a = await self._create(xo, ping_cls)
            b = await self._create(xo, ping_cls)
            await a.run(b, 100)
            t0 = perf_counter()
            await a.run(b, n)
            elapsed = perf_counter() - t0
        return {"rate": n / elapsed}

    def fanout(self, n: int) -> Metrics:
        return run(self._fanout(n))

    async def _fanout(self, n: int) -> Metrics:
        counter_cls, _ = _classes()
        async with self._pool() as xo:
            t0 = perf_counter()
            refs = [await self._create(xo, counter_cls) for _ in range(n)]
            t1 = perf_counter()
            got = await asyncio.gather(*(ref.add(i) for i, ref in enumerate(refs)))
            t2 = perf_counter()
            assert len(got) == n, (len(got), n)
        return {"spawn": t1 - t0, "rate": n / (t2 - t1)}
