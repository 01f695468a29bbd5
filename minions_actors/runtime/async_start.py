"""Starting an async minion spawned on its event loop: its first incarnation is built on
the loop, with no trip through the worker pool.

A sync minion's first incarnation is built on a pool worker, and so was an async one's: a
thread hand-off per spawn, and then another per message, since the first messages (told
right after the spawn) found the cell still on the pool, which posted their coroutines back
to the loop. Spawned on the loop thread, an async minion whose start cannot block (its class
declares no resources, uses no extension such as snapshots or workflows, and its
``on_start`` is ``async def`` or not written) is queued instead; one callback on the loop
builds the queued minions in spawn order (``__init__`` runs on the loop thread, the
caller's, as pykka runs it in the caller's thread) and runs each one's first turn, which
starts the messages told meanwhile. ``on_start`` is a coroutine on the loop either way, and
the first message starts when it has ended. A failure in ``__init__`` or ``on_start`` is
handed to the pool's turn, which crashes the minion as it would have (supervision, the
spawner's asks answered with the error); so is any start the loop cannot make (a stop or a
shutdown that came first, the caller's loop tearing down). Restarts are built on the pool,
as a sync minion's are.

Everything here runs on the loop thread, but :func:`start`'s choice (any thread).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
from typing import TYPE_CHECKING

import pykka

from minions_actors.observability.hooks import PHASE_INIT
from minions_actors.runtime.async_job import Job, complete
from minions_actors.runtime.context import current
from minions_actors.runtime.extensions import used_by
from minions_actors.runtime.incarnation import begin_incarnation

if TYPE_CHECKING:
    from minions_actors.runtime.async_cell import AsyncCell
    from minions_actors.runtime.async_dispatch import LoopDispatcher

#: the most minions one callback starts: the rest wait for the next turn of the loop, so
#: that a spawn of thousands never holds the loop for the whole batch
BATCH = 256
_BASE_ON_START = pykka.Actor.on_start


@functools.lru_cache(maxsize=1024)
def _light(cls: type) -> bool:
    """Starting ``cls`` runs no sync code of its author's but ``__init__`` (and no
    extension's, which may read a store): its on_start is a coroutine or pykka's no-op."""
    on_start = cls.on_start  # type: ignore[attr-defined]
    return (on_start is _BASE_ON_START or inspect.iscoroutinefunction(on_start)) \
        and not used_by(cls)


def start(dispatcher: LoopDispatcher, cell: AsyncCell) -> None:
    """``LoopDispatcher.start``: on the loop thread, queue a light start for the next
    callback of the loop (``cell.sched`` held until then, as a pool worker holds it);
    otherwise the first incarnation is built on the pool."""
    host = dispatcher.host
    if not host.on_loop() or host.ending or not _light(cell.cls) \
            or cell.system.prepares(cell.cls) or not cell.sched.acquire(False):
        dispatcher.pool.start(cell)
        return
    starting = dispatcher.starting
    starting.append(cell)
    if len(starting) == 1 and not host.call(_start_batch, dispatcher):
        _to_pool(dispatcher)  # the loop is closed or closing


def _start_batch(dispatcher: LoopDispatcher) -> None:
    """Start the queued minions, :data:`BATCH` at most, in spawn order (each stays queued
    until its turn: an ``__init__`` before it may need it now, see :func:`start_now`)."""
    starting = dispatcher.starting
    for _ in range(BATCH):
        if not starting:
            return  # (a spawn from now on posts the next callback)
        _start_here(dispatcher, starting.popleft())
    if starting and not dispatcher.host.call(_start_batch, dispatcher):
        _to_pool(dispatcher)


def start_now(dispatcher: LoopDispatcher, cell: AsyncCell) -> None:
    """Code on the loop thread needs ``cell``'s instance (a proxy's lookup of an attribute
    set in ``__init__``): a start queued here runs now, since waiting for the next callback
    on this thread would never end. Its first turn runs no first step eagerly when a task
    is current (a handler's, the caller's): that step would enter a task of its own."""
    host = dispatcher.host
    if host.on_loop() and cell in dispatcher.starting:
        dispatcher.starting.remove(cell)
        _start_here(dispatcher, cell, asyncio.current_task(host.loop) is None)


def _to_pool(dispatcher: LoopDispatcher) -> None:
    """Hand every queued start to the pool."""
    starting, dispatcher.starting = dispatcher.starting, collections.deque()
    for cell in starting:
        _pool_start(dispatcher, cell)


def _pool_start(dispatcher: LoopDispatcher, cell: AsyncCell) -> None:
    # (pool.start starts the workers if none runs yet, then schedules the cell unless a
    # put got its sched first: that put's turn hands the start to the pool as well)
    cell.sched.release()
    dispatcher.pool.start(cell)


def _start_here(dispatcher: LoopDispatcher, cell: AsyncCell, eager: bool = True) -> None:
    """Build ``cell``'s first incarnation on the loop and run its first turn (``sched``
    held; ``eager``: in a loop callback, see ``run_here``); a failure or a stop is the
    pool's turn's."""
    if dispatcher.host.ending or cell._sys or cell._terminate_requested or cell.closing:
        _pool_start(dispatcher, cell)
        return
    held, current.cell = current.cell, cell  # (what runs here is the minion's own code)
    try:
        failure = begin_incarnation(cell)
    except BaseException as exc:  # a runtime bug: reported, and the start's crash
        cell.hooks.lifecycle_error(cell, exc, "runtime")
        failure = (exc, PHASE_INIT)
    finally:
        current.cell = held
    if failure is None:
        dispatcher.run_here(cell, eager)
        return
    job = Job(cell, failure[1], None, False)  # collected by the pool's turn: the crash
    job.outcome = (False, failure[0])
    job.settled = True
    cell.lifecycle += 1
    complete(cell, job)
    _pool_start(dispatcher, cell)


def collect_started(cell: AsyncCell, job: Job) -> bool:
    """Collect an ``on_start`` that ended well on the loop (``minion_started`` fires
    here); False when the pool's turn must (an error, or a stale incarnation)."""
    outcome = job.outcome
    if outcome is None or not outcome[0] or job.incarnation != cell.incarnation \
            or cell.instance is None:
        return False
    cell.lifecycle -= 1
    if cell.parent is not None:
        cell.hooks.minion_started(cell, bool(job.msg))
    return True

