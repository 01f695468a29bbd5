"""Where an async minion's turns run: on its event loop when they only start coroutines.

:class:`LoopDispatcher` schedules an :class:`~minions_actors.runtime.async_cell.AsyncCell`
on the loop: a turn there (:func:`loop_turn`) starts handler coroutines for plain tells,
asks and proxy calls of ``async def`` methods and answers the ones that ended well, with no
thread hand-off (a ping-pong between two async minions never leaves the loop). Anything
that may block or run sync code (runtime messages, a snapshot after the message, a sync
method, a crash, the first incarnation, a stop) hands the turn, ``sched`` still held, to
the worker pool, whose turn (``AsyncCell.run_turn``) does it all.

A message sent on the loop thread queues its cell on ``ready``, which one loop callback
(:func:`drain`) empties, taking the cells that handlers make ready meanwhile too, up to
:data:`DRAIN_TURNS`; and a handler's first step runs in that turn: as the cell's parked
runner (see :mod:`~minions_actors.runtime.task_entry`), or, for a minion's first message,
as the loop's spare task (:mod:`~minions_actors.runtime.async_spare`). One that never
suspends is answered in the same turn, so a ping-pong between async minions runs many round
trips to a loop callback, as a pool worker runs a sync one. An ask from a task on the loop
to an idle minion runs its turn in the asker's step (:meth:`LoopDispatcher.schedule_ask`).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import inspect
import time
from threading import get_ident
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall

from minions_actors.observability.hooks import PHASE_ON_START
from minions_actors.runtime.async_cell import PROXY, AsyncCell, classify
from minions_actors.runtime.async_job import NO_COMPLETIONS, Job, complete
from minions_actors.runtime.async_runner import go_on, hand, uses_runner
from minions_actors.runtime.async_spare import adopt, first_step_on_spare
from minions_actors.runtime.async_start import collect_started, start, start_now
from minions_actors.runtime.async_tasks import MESSAGE, first_raised, start_task
from minions_actors.runtime.context import NOTHING_HELD
from minions_actors.runtime.futures import MinionFuture
from minions_actors.runtime.mailbox import WAKE
from minions_actors.runtime.special import _get_attr_path, answer_ask
from minions_actors.runtime.task_entry import AVAILABLE as FIRST_STEPS
from minions_actors.runtime.task_entry import DONE as DONE_STEP
from minions_actors.runtime.task_entry import SUSPENDED as SUSPENDED_STEP
from minions_actors.runtime.task_entry import first_step, step_aside, step_back

if TYPE_CHECKING:
    from minions_actors.runtime.loophost import LoopHost
    from minions_actors.runtime.pool import WorkerPool

DONE, AGAIN, POOL = 0, 1, 2  # what a turn on the loop ends with
#: the most turns one drain runs before it lets the loop's other callbacks in; also the
#: most asks one task has answered in its step in a row (see
#: :meth:`LoopDispatcher.schedule_ask`) before one goes through a drain, so that a loop of
#: asks lets the loop run too
DRAIN_TURNS = 100


class LoopDispatcher:
    """Async minions' dispatcher: turns on the loop, or on ``pool`` when they must."""

    name = "loop"
    pooled = True  # (a pooled cell's mailbox schedules it on a put)

    def __init__(self, pool: WorkerPool, host: LoopHost) -> None:
        self.pool = pool
        self.host = host
        #: the loop thread's: cells (``sched`` held) whose turn the drain runs next
        self.ready: collections.deque[AsyncCell] = collections.deque()
        self.draining = False  # turns run on the loop now (a drain, an ask's, a callback's)
        self.posted = False  # a drain is queued on the loop
        #: spawned on the loop, to start there, in order (runtime.async_start)
        self.starting: collections.deque[AsyncCell] = collections.deque()
        #: the id of the task whose asks ran their turns in its step last (not the task: a
        #: finished one would be kept), and how many in a row (schedule_ask; the loop thread's)
        self.asker = 0
        self.asks_here = 0

    def start(self, cell: Any) -> None:
        start(self, cell)  # on the loop when it can be (runtime.async_start)

    def start_now(self, cell: Any) -> None:
        start_now(self, cell)  # (a proxy on the loop needs the instance: runtime.async_start)

    def running(self, cell: Any) -> bool:
        return self.pool.running(cell)

    def join(self, cell: Any, timeout: float | None) -> None:
        self.pool.join(cell, timeout)

    def where(self, cell: Any) -> str:
        if self.pool.handling(cell):
            return self.pool.where(cell)
        return "the event loop of the async minions"

    def handling(self, cell: Any) -> bool:
        return bool(cell.inflight or cell.lifecycle) or self.pool.handling(cell)

    def schedule_put(self, cell: Any) -> None:
        """Run a turn of ``cell`` (its ``sched`` is held) on the loop soon: on the loop
        thread, in the drain that runs (a message sent by a handler's first step), else in
        one queued for every cell made ready meanwhile; a cell whose handlers in flight are
        at its limit needs none (the end of one runs it)."""
        host = self.host
        if get_ident() == host._ident and not host.ending:  # (host.on_loop(), inlined)
            if cell.inflight >= cell.limit and not cell._sys and not cell.completions:
                cell.sched.release()
                return
            self.ready.append(cell)
            if not self.draining and not self.posted:
                self._post()
            return
        if not self.host.call(loop_turn, self, cell):
            self.pool.schedule_put(cell)  # the loop is closed: the pool ends the cell

    def schedule_ask(self, cell: Any) -> None:
        """As :meth:`schedule_put`, for an ask just put: from a task on the loop thread
        (``await ref.ask_async()``), not inside a turn, the turn runs at once in the asker's
        step, the asker stepped aside (see :func:`ask_turn`): a handler that never suspends
        is answered before the asker awaits, with no drain, no wake-up and no trip through
        the loop. One task's :data:`DRAIN_TURNS` th such ask in a row goes through a drain,
        so that its loop of asks lets the loop's other callbacks in."""
        host = self.host
        if self.draining or host.ending or not host.on_loop() or not FIRST_STEPS:
            self.schedule_put(cell)
            return
        loop = host.loop
        assert loop is not None
        asker = asyncio.current_task(loop)
        if id(asker) != self.asker:
            self.asker, self.asks_here = id(asker), 0
        elif self.asks_here >= DRAIN_TURNS:
            self.asks_here = 0  # (this ask makes the asker wait for a drain)
            self.schedule_put(cell)
            return
        self.asks_here += 1
        ask_turn(self, cell, loop, asker)

    def _post(self) -> None:
        """Queue a drain on the loop (on the loop thread); the loop closed: the pool ends
        the ready cells."""
        self.posted = True
        loop = self.host.loop
        try:
            assert loop is not None
            loop.call_soon(drain, self, context=contextvars.Context())
        except RuntimeError:
            self.posted = False
            ready = self.ready
            while ready:
                self.pool.schedule_put(ready.popleft())

    def run_here(self, cell: Any, eager: bool = True) -> None:
        """Run a turn of ``cell`` (its ``sched`` is held) now, on the loop thread
        (``eager``: in a loop callback, not in a task)."""
        loop_turn(self, cell, eager)

    @property
    def linger(self) -> Any:  # (no worker lingers on the loop)
        return self.pool.linger


def drain(dispatcher: LoopDispatcher) -> None:
    """A loop callback: run the turns of the ready cells, and of those their handlers'
    first steps make ready meanwhile (a ping-pong runs many round trips here, as a pool
    worker does), up to :data:`DRAIN_TURNS`; then queue another for the rest, so that the
    loop's other callbacks get their turn."""
    dispatcher.posted = False
    ready = dispatcher.ready
    dispatcher.draining = True
    try:
        for _ in range(DRAIN_TURNS):
            if not ready:
                break
            _loop_turn(dispatcher, ready.popleft(), True)
    finally:
        _drained(dispatcher)


def ask_turn(dispatcher: LoopDispatcher, cell: AsyncCell, loop: asyncio.AbstractEventLoop,
             asker: asyncio.Task[Any] | None) -> None:
    """Run ``cell``'s turn (``sched`` held) in the step of ``asker`` (the current task, or
    None), that task stepped aside (no task is current: a first step may run as the
    handler's own), in a fresh context (not the asker's), as a drain would: what the turn
    makes ready waits for one."""
    step_aside(loop, asker)
    dispatcher.draining = True
    try:
        contextvars.Context().run(_loop_turn, dispatcher, cell, True)
    finally:
        step_back(loop, asker)
        _drained(dispatcher)


def loop_turn(dispatcher: LoopDispatcher, cell: AsyncCell, eager: bool = True) -> None:
    """A turn of ``cell`` on the loop thread (``sched`` held), as in a drain: a message its
    handlers send waits for one (so no ask runs a turn in the step of a first step run here,
    which may run as the loop's spare task)."""
    if dispatcher.draining:
        _loop_turn(dispatcher, cell, eager)
        return
    dispatcher.draining = True
    try:
        _loop_turn(dispatcher, cell, eager)
    finally:
        _drained(dispatcher)


def _drained(dispatcher: LoopDispatcher) -> None:
    """Turns run here have ended: a drain is queued for the cells they made ready."""
    dispatcher.draining = False
    if dispatcher.ready and not dispatcher.posted:
        dispatcher._post()


def _loop_turn(dispatcher: LoopDispatcher, cell: AsyncCell, eager: bool = True) -> None:
    """A turn of ``cell`` on the loop thread (``sched`` held); then as a pool worker does:
    release, and look again at what arrived meanwhile. ``eager``: no task is current (a
    loop callback), so handlers' first steps may run here (see :func:`_start_here`)."""
    if dispatcher.host.ending:  # the caller's loop is tearing down: the pool ends the cell
        dispatcher.pool.schedule_put(cell)
        return
    try:
        outcome = _turn(cell, dispatcher.pool.throughput, eager)
    except BaseException as exc:  # a runtime bug: the pool's turn reports and recovers
        cell.hooks.lifecycle_error(cell, exc, "runtime")
        outcome = POOL
    if outcome == POOL:
        dispatcher.pool.schedule_put(cell)
        return
    cell.sched.release()
    if (outcome == AGAIN or (not cell.inbox.empty() and cell.has_work())) \
            and cell.sched.acquire(False):
        dispatcher.schedule_put(cell)


def _turn(cell: AsyncCell, budget: int, eager: bool) -> int:
    completions = cell.completions
    if completions:
        while completions:
            if not _collect_here(cell, completions[0]):
                return POOL
            completions.pop(0)
        # (on the loop thread, which alone appends: an idle minion keeps no list of its own)
        cell.completions = NO_COMPLETIONS
    if cell._finalized:
        return DONE
    while True:
        if cell.lifecycle:
            return DONE
        if cell._sys or cell.terminated:
            return DONE if cell.inflight or cell.lifecycle else POOL
        inst = cell.instance
        if inst is None or cell._interrupted or cell._terminate_requested:
            return POOL if cell.has_work() else DONE
        if cell.inflight >= cell.limit:
            return DONE
        if budget <= 0:
            return AGAIN
        if cell._held is not NOTHING_HELD:
            return DONE if cell.inflight else POOL
        msg = cell._next_message()
        if msg is NOTHING_HELD:
            return DONE
        if msg is WAKE:
            continue
        budget -= 1
        if not _start_here(cell, inst, msg, eager):
            cell._held = msg  # the pool's turn handles it
            return POOL
        if cell.completions:  # an outcome the loop cannot collect: no wake-up will come for it
            return POOL


def _start_here(cell: AsyncCell, inst: Any, msg: Any, eager: bool) -> bool:
    """Start the coroutine that handles ``msg`` on this loop (on the cell's runner when it
    takes one message at a time; ``eager``: its first step at once, as the runner, and one
    that ends there is answered now); False when its handler is not a coroutine function
    (or ``msg`` is not a tell, ask or proxy call): the pool's turn handles it."""
    told = classify(msg)
    if told is None:
        return False
    future, arg = told
    kwargs = None
    if arg.__class__ is ProxyCall:
        try:
            method = _get_attr_path(inst, arg.attr_path)
        except BaseException:  # (a KeyboardInterrupt too: not lost in this turn)
            return False  # (the pool's turn raises it again, as a crash or an answer)
        if not inspect.iscoroutinefunction(method):
            return False
        args, kwargs = arg.args, arg.kwargs
    elif isinstance(arg, PROXY) or not cell.receive_async:
        return False
    else:
        method, args = inst.on_receive, (arg,)
    started = time.perf_counter()
    try:
        coro = method(*args, **kwargs) if kwargs else method(*args)
    except BaseException as exc:  # (bad arguments): the pool's turn crashes the minion
        job = Job(cell, MESSAGE, future, msg)
        job.outcome = (False, exc)
        job.settled = True
        cell.inflight += 1
        complete(cell, job)
        return True
    cell.inflight += 1
    if uses_runner(cell):
        # (the first step as the parked runner, inlined: this is every message of a
        # ping-pong; no parked runner: hand() it, and a new runner runs it from its first
        # line, since a cancel before a task's first step would miss it)
        runner, first = cell.runner, None
        if eager and FIRST_STEPS and runner is not None and runner.parked is not None:
            task = runner.task
            first = first_step(task.get_loop(), task, runner.context, coro)
        if first is not None and first[0] == DONE_STEP \
                and _answer_here(cell, future, first[1], started):
            return True  # (no Job: the common case of a handler that never suspends)
        job = Job(cell, MESSAGE, future, msg)
        job.started = started
        if first is None:
            hand(cell, job, coro)
            return True
        if not go_on(cell, job, coro, *first):
            return True  # suspended: its runner goes on with it
    elif eager and FIRST_STEPS:  # its first step as the loop's spare task
        how, value, spare = first_step_on_spare(cell.loop_host, cell, coro)
        if how == DONE_STEP and _answer_here(cell, future, value, started):
            return True
        if how == SUSPENDED_STEP:  # the spare goes on with it, as its task
            adopt(spare, cell, future, msg, started, coro, value)
            return True
        job = Job(cell, MESSAGE, future, msg)
        job.started = started
        job.outcome = (True, value) if how == DONE_STEP else first_raised(job, value)
    else:
        job = Job(cell, MESSAGE, future, msg)
        job.started = started
        start_task(job, coro)
        if job.outcome is None:  # (else it ended in an eager first step, 3.12+)
            return True
    job.settled = True
    if not _collect_here(cell, job):
        complete(cell, job)
    return True


def _collect_here(cell: AsyncCell, job: Job) -> bool:
    """Collect a handler's good outcome on the loop (nothing to snapshot); False when the
    pool's turn must (an error, a snapshot, a lifecycle hook, a stale incarnation, or an
    answer that is not an asker's future: an extension's, which may write to a store)."""
    if job.kind == PHASE_ON_START:  # (the first message waits for it)
        return collect_started(cell, job)
    outcome = job.outcome
    if job.kind != MESSAGE or outcome is None or not outcome[0] \
            or job.incarnation != cell.incarnation:
        return False
    return _answer_here(cell, job.future, outcome[1], job.started)


def _answer_here(cell: AsyncCell, future: Any, value: Any, started: float) -> bool:
    """Count a handler of this incarnation that returned ``value`` and answer its asker;
    False when the pool's turn must (see :func:`_collect_here`)."""
    if cell.after is not None or cell.instance is None \
            or not (future is None or isinstance(future, MinionFuture)):
        return False
    cell.inflight -= 1
    cell.handled += 1
    cell.busy_seconds += time.perf_counter() - started  # (wall time, awaits included)
    if future is not None:
        answer_ask(future, value)
    return True
