"""``AsyncPipeline``: a pipeline whose source is an async generator (a websocket, an HTTP
poller), run on the system's event loop.

The generator runs as a task on the loop (``minions-loop``, or the caller's loop under
``start_async``); the pipeline's turns stay on the pool, exactly as in
:mod:`minions_actors.pipelines.base`: delivery with back-pressure, acks, the committed
position and its snapshot are the same. The two meet in a hand-off of one batch: the
generator's task puts a batch there, wakes the pipeline and *awaits room* (an
:class:`asyncio.Event`, so the loop goes on) until a turn has taken it; a turn takes it in
``produce()`` only once the previous batch is handed over and handled. So at most one batch
waits beside the one being delivered, and a slow subscriber pauses the generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, ClassVar

from minions_actors.pipelines.base import Batch, Pipeline, _generations
from minions_actors.runtime.loophost import TASK_PREFIX
from minions_actors.runtime.mailbox import RuntimeMessage

if TYPE_CHECKING:
    from minions_actors.runtime.loophost import LoopHost

__all__ = ["AsyncPipeline"]


class _Wake(RuntimeMessage):
    """From the generator's task: a batch is ready (never waits for mailbox room)."""

    __slots__ = ()


class _Broke(RuntimeMessage):
    """From the generator's task: it raised; the pipeline crashes with that error (unless
    it has restarted meanwhile: ``owner`` is the instance the task ran for)."""

    __slots__ = ("error", "owner")

    def __init__(self, error: BaseException, owner: object) -> None:
        self.error = error
        self.owner = owner


class AsyncPipeline(Pipeline):
    """Base class of pipelines fed by an async generator: override :meth:`stream`, list the
    ``subscribers``, spawn it like any pipeline (see the module docstring)."""

    poll_interval: ClassVar[float] = 1.0
    """Seconds before :meth:`stream` is started again once it ended (a poller written as
    "yield what is new, then return"), from the position of its last batch."""

    async def stream(self, position: Any) -> AsyncGenerator[Batch, None]:
        """Yield batches (:class:`Batch`: events and the position just after them) from
        ``position`` (None: from the start), awaiting the source between them. Runs on the
        event loop: await, never block. An exception crashes the pipeline, which restarts
        it from the committed position; a stop cancels it (use ``try``/``finally`` or
        ``async with`` to release what it holds)."""
        raise NotImplementedError(f"{type(self).__name__} must define async def stream()")
        yield  # an async generator

    # ------------------------------------------------------------------ the pool's side
    def open(self, position: Any) -> None:
        self._handoff: deque[Batch] = deque()  # at most one batch (see the module docstring)
        self._idle = False  # the last produce() found nothing: a wake starts a turn
        self._room: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._shut = False  # close() ran: the task is not started (or is cancelled)
        self._host().call(self._begin, position)

    def produce(self) -> Batch | None:
        try:
            batch = self._handoff.popleft()
        except IndexError:
            self._idle = True
            return None
        self._idle = False
        self._host().call(self._make_room)
        return batch

    def close(self) -> None:
        """Cancel the generator's task and wait (at most ``stop_timeout``) until it ended,
        its ``finally`` blocks run, so nothing of it is left on the loop."""
        if not hasattr(self, "_handoff"):
            return  # never opened
        host, ended = self._host(), threading.Event()
        if host.call(self._cancel, ended) and not host.on_loop():
            ended.wait(self.system.stop_timeout)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Wake):
            if self._idle:  # the poll's timer turn is dropped: one chain of turns only
                self._idle = False
                self._generation = next(_generations)
                self._next_turn(0.0)
            return None
        if isinstance(message, _Broke):
            if message.owner is self:
                raise message.error
            return None
        return super().on_receive(message)

    def _host(self) -> LoopHost:
        host: LoopHost = self.system.loop_host
        return host

    # ------------------------------------------------------------------ the loop's side
    def _begin(self, position: Any) -> None:
        if self._shut:
            return
        self._room = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._pump(position), name=f"{TASK_PREFIX}{self.path}")
        self._task.add_done_callback(self._pumped)

    async def _pump(self, position: Any) -> None:
        """Run :meth:`stream`, start it again when it ends, hand each batch over."""
        while True:
            async with contextlib.aclosing(self.stream(position)) as batches:
                async for batch in batches:
                    if not isinstance(batch, Batch):
                        raise TypeError(f"{type(self).__name__}.stream() must yield Batch "
                                        f"objects, got {type(batch).__name__}")
                    await self._hand(batch)
                    position = batch.position
            await asyncio.sleep(self.poll_interval)

    async def _hand(self, batch: Batch) -> None:
        """Put ``batch`` in the hand-off, wake the pipeline, await until a turn took it."""
        assert self._room is not None
        self._room.clear()
        self._handoff.append(batch)
        self._tell(_Wake())
        await self._room.wait()

    def _make_room(self) -> None:
        if self._room is not None:
            self._room.set()

    def _tell(self, message: RuntimeMessage) -> None:
        cell = self._minion_cell
        if cell.accepting:
            with contextlib.suppress(Exception):  # stopped meanwhile: nothing to tell
                cell.ref.tell(message)

    def _pumped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._tell(_Broke(task.exception(), self))  # type: ignore[arg-type]

    def _cancel(self, ended: threading.Event) -> None:
        self._shut = True
        task = self._task
        if task is None or task.done():
            ended.set()
            return
        task.add_done_callback(lambda _: ended.set())
        task.cancel()
