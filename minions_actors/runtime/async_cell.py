"""Async minions: a cell whose handlers may be coroutines, run on the system's event loop.

An :class:`AsyncCell` is a pooled cell: its turns (runtime messages, supervision,
snapshots, stopping children: everything that may block) run on the worker pool, as
every pooled minion's do. A handler that returns an awaitable (an ``async def``
``on_receive``, proxied method, ``on_start``, ``on_stop`` or ``on_failure``) becomes a task
on the :class:`~minions_actors.runtime.loophost.LoopHost`'s loop, and the cell waits for it
without holding a worker: when the task ends, its outcome is queued (``completions``) and
the cell's next turn answers the asker, counts it, snapshots and takes the next message,
or crashes the incarnation. So thousands of minions awaiting I/O share one loop and a few
workers, the loop never waits for the runtime, and sync methods of the same class still run
on the pool. ``max_concurrency`` handlers may be in flight at once (default one: the next
message starts when the previous coroutine has finished, so state needs no locks).

Ownership: ``inflight``, ``lifecycle`` and the completions' handling belong to the turn
(under ``sched``); ``jobs`` and ``tasks`` to the loop thread (see
:mod:`~minions_actors.runtime.async_tasks`); the two meet only through the thread-safe
``completions`` list and the mailbox's wake-up.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import queue
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from minions_actors.errors import MinionsError, MinionStopped, RefusedUnsent
from minions_actors.observability.hooks import PHASE_INIT, PHASE_MESSAGE, PHASE_ON_START
from minions_actors.runtime import messages as m
from minions_actors.runtime.async_job import NO_COMPLETIONS, Job
from minions_actors.runtime.async_runner import begin, stop_runner
from minions_actors.runtime.async_tasks import (
    CANCELLED_HOOK,
    CANCELLED_RESTART,
    CANCELLED_STOP,
    MESSAGE,
    TASK,
    arm_stop,
    cancel_jobs,
    cancel_one,
    never_run,
    start_task,
)
from minions_actors.runtime.cell import Cell
from minions_actors.runtime.context import NOTHING_HELD, current
from minions_actors.runtime.mailbox import WAKE
from minions_actors.runtime.special import _ASKED, SPECIAL, answer_ask, fail_future

if TYPE_CHECKING:
    from minions_actors.runtime.async_runner import Runner
    from minions_actors.runtime.loophost import LoopHost
    from minions_actors.runtime.minion import Minion

PROXY = (ProxyCall, ProxyGetAttr, ProxySetAttr)
#: the phases of a start whose failure a turn collects: a crash of the minion
STARTING = (PHASE_INIT, PHASE_ON_START)


class AsyncCell(Cell):
    """A cell whose coroutines run on a loop (see the module docstring)."""

    __slots__ = ("completions", "inflight", "jobs", "lifecycle", "limit", "loop_host",
                 "receive_async", "runner", "tasks")

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # (Cell's)
        self.loop_host: LoopHost = args[0].loop_host  # the system's
        #: on_receive is ``async def``: the loop's turn may start it (see async_dispatch)
        self.limit, self.receive_async = _class_facts(args[2])
        # (a shared empty list, then its own, and dicts: the cheapest empty containers,
        # since most cells idle; a list's append and pop(0) are atomic, and the loop
        # thread only appends: async_job.complete)
        self.completions: list[Job] = NO_COMPLETIONS
        self.inflight = 0  # handlers started and not yet collected (the turn's)
        self.lifecycle = 0  # lifecycle coroutines not yet collected (the turn's)
        self.jobs: dict[Job, None] = {}  # the loop thread's: jobs whose task runs
        self.tasks: dict[asyncio.Task[Any], None] = {}  # the loop thread's: created tasks
        self.runner: Runner | None = None  # the loop thread's: awaits handlers one by one
        super().__init__(*args, **kwargs)

    def _init_state(self) -> None:
        super()._init_state()
        self._sys = m.NO_SYSTEM_MESSAGES  # (its turns read _sys afresh: see the constant)

    # ------------------------------------------------------------------ the turn
    def run_turn(self, throughput: int) -> bool:
        """A pooled turn: the coroutines' outcomes first, then runtime messages (once no
        handler is in flight), then messages while fewer than ``limit`` are in flight."""
        if self._finalized:
            return False
        current.cell = self
        try:
            self._collect_done()
            if self.incarnation == 0 and not self.lifecycle:
                self._guarded(self._start_incarnation)
            budget = throughput
            while not self.terminated:
                if self.lifecycle:
                    return False
                if self._sys:
                    if self.inflight or self._is_parked():
                        return False
                    self._guarded(self._next_system)
                elif self.instance is None or self._interrupted or self._terminate_requested \
                        or self.inflight >= self.limit:
                    return False
                elif budget <= 0:
                    return True
                elif self._held is not NOTHING_HELD and self.inflight:
                    return False  # a stop or an extension's message waits for the handlers
                else:
                    msg = self._next_message()
                    if msg is NOTHING_HELD:
                        return False
                    if msg is WAKE:  # a coroutine's end: its wake-up is taken here, so
                        self._collect_done()  # collect now (the pool will not call again)
                    else:
                        budget -= 1
                        self._guarded(self._start, self.instance, msg)
            if self.inflight or self.lifecycle:
                return False
            self._finalize()
            return False
        finally:
            current.cell = None

    def _collect_done(self) -> None:
        while self.completions:
            self._guarded(self._collect, self.completions.pop(0))

    def _next_message(self) -> Any:
        held = self._held
        if held is not NOTHING_HELD:
            self._held = NOTHING_HELD
            return held
        if self.inbox.empty():  # (cheaper than the exception; this turn is its one reader)
            return NOTHING_HELD
        try:
            return self.inbox.get_nowait()
        except queue.Empty:
            return NOTHING_HELD

    def has_work(self) -> bool:
        if self._finalized:
            return False
        if self.completions:
            return True
        if self.lifecycle:
            return False
        if self.terminated:
            return not self.inflight
        if self._sys:
            return not self.inflight and not self._is_parked()
        if self.instance is None or self._interrupted or self._terminate_requested:
            return self.incarnation == 0
        if self._held is not NOTHING_HELD:
            return not self.inflight
        return self.inflight < self.limit and not self.inbox.empty()

    # ------------------------------------------------------------------ starting
    def _start(self, inst: Minion, msg: Any) -> None:
        """Call the handler for ``msg``; a coroutine it returns runs on the loop."""
        told = classify(msg)
        if told is None:  # a stop, an exit, an extension's message
            if self.inflight:  # it waits until every handler in flight has ended
                self._held = msg
                return
            self._dispatch_special(inst, msg)
            return
        future, arg = told
        handler: Callable[[Any], Any] = (
            functools.partial(self._proxy_message, inst) if isinstance(arg, PROXY)
            else inst.on_receive)
        t0 = time.perf_counter()
        awaiting = False
        try:
            result = handler(arg)
            awaiting = inspect.isawaitable(result)
        except RefusedUnsent as exc:  # the sender's error: no crash
            if future is not None:
                fail_future(future, exc)
            else:
                self.refuse(msg, exc)
            return
        except BaseException as exc:
            self._failed(future, msg, exc)
            return
        finally:
            if not awaiting:  # (a coroutine's time is counted when it is collected)
                self.busy_seconds += time.perf_counter() - t0
        if awaiting:
            self.inflight += 1
            self._launch(Job(self, MESSAGE, future, msg), result)
        else:
            self._succeeded(inst, future, result)

    def await_in_turn(self, awaitable: Awaitable[Any], answer: Any) -> None:
        """For an extension (async workflow steps): run ``awaitable`` as one of this
        minion's in-flight handlers (it counts toward ``max_concurrency``; a stop cancels
        it at its deadline, a restart at once). In a later turn ``answer.set(result)`` gets
        its result, or ``answer.set_exception()`` its error or cancellation."""
        self.inflight += 1
        self._launch(Job(self, MESSAGE, answer, None), awaitable)

    def _launch(self, job: Job, awaitable: Awaitable[Any]) -> None:
        host = self.loop_host
        if host.on_loop() and not host.ending:  # a start on the loop (runtime.async_start):
            begin(job, awaitable)  # its on_start begins now, not in a callback of its own
        elif not host.call(begin, job, awaitable):  # the loop is gone
            never_run(job, awaitable)

    def _adopt(self, result: Any, phase: str, restored: bool = False) -> None:
        """A lifecycle hook returned ``result``: an awaitable runs on the loop, and the cell
        handles nothing until it ends (its error: a crash in ``on_start``, else logged; an
        ``on_start``'s good end: ``minion_started``, ``restored`` from a snapshot or not)."""
        if inspect.isawaitable(result):
            self.lifecycle += 1
            job = Job(self, phase, None, restored)
            self._launch(job, result)
            if phase != PHASE_ON_START:  # an end hook gets stop_timeout, as a stop does
                self.loop_host.call_at(self._stop_deadline(), cancel_one, job, CANCELLED_HOOK)

    # ------------------------------------------------------------------ ending
    def _collect(self, job: Job) -> None:
        """Act on a finished coroutine's outcome (under ``sched``, on a pool worker)."""
        ok, value = job.outcome or (False, MinionStopped("no outcome"))
        live = job.incarnation == self.incarnation and self.instance is not None
        if job.kind == MESSAGE:
            self.inflight -= 1
            self.busy_seconds += time.perf_counter() - job.started
            if ok:
                if live:
                    self._succeeded(self.instance, job.future, value)  # type: ignore[arg-type]
                elif job.future is not None:
                    answer_ask(job.future, value)
            elif job.cancelled or not live:
                if job.future is not None:
                    fail_future(job.future, value)
            else:
                self._failed(job.future, job.msg, value)
        elif job.kind == TASK:
            if live and not ok:
                self._crash(value, PHASE_MESSAGE)
        else:
            self.lifecycle -= 1
            if ok:
                if job.kind == PHASE_ON_START and live and self.parent is not None:
                    self.hooks.minion_started(self, bool(job.msg))
                return
            if job.kind in STARTING and live:  # (PHASE_INIT: a start on the loop failed)
                self._crash(value, job.kind)
            elif job.cancelled == CANCELLED_HOOK:
                self.hooks.lifecycle_error(self, MinionsError(
                    f"{job.kind} of {self.describe()} ran past stop_timeout "
                    f"({self.system.stop_timeout}s) and was cancelled"), job.kind)
            elif not job.cancelled:
                self.hooks.lifecycle_error(self, value, job.kind)

    def _succeeded(self, inst: Minion, future: Any, value: Any) -> None:
        self.handled += 1
        if self.run_after(inst, future) and future is not None:
            answer_ask(future, value)

    def _failed(self, future: Any, msg: Any, exc: BaseException) -> None:
        self.failed += 1
        if future is not None:
            fail_future(future, exc)
        self._crash(exc, PHASE_MESSAGE)

    def _finalize(self) -> None:
        super()._finalize()
        # its runner ends with it (read here safely: a runner starts in a turn, under
        # sched, and no turn is left to start one; most cells never had one)
        if self.runner is not None:
            self.loop_host.call(stop_runner, self)

    def _end_incarnation(self, crashed: bool, exc: BaseException | None = None) -> None:
        """A restart cancels at once what the old incarnation left running."""
        self._cancel(CANCELLED_RESTART)
        super()._end_incarnation(crashed, exc)

    def _terminate(self, deadline: float, reason: str) -> None:
        self._cancel(CANCELLED_STOP)
        super()._terminate(deadline, reason)

    def send_system(self, msg: Any) -> None:
        """A stop cancels the handlers in flight when it came if they outlive its deadline;
        a group restart (``StopInstance``) cancels them at once."""
        super().send_system(msg)
        if isinstance(msg, m.Terminate):  # by half the time left: the parent gives up at
            now = time.monotonic()          # its deadline on a child that has not stopped
            at = min(now + (msg.deadline - now) / 2, self._stop_deadline())
            self.loop_host.call(arm_stop, self, at)
        elif isinstance(msg, (m.StopPending, m.Halt)):  # a shutdown gives it stop_timeout too
            self.loop_host.call(arm_stop, self, self._stop_deadline())
        elif isinstance(msg, m.StopInstance):
            self._cancel(CANCELLED_RESTART)

    def _cancel(self, why: str) -> None:
        if self.loop_host.loop is not None:
            self.loop_host.call(cancel_jobs, self, why)

    def create_task(self, coro: Coroutine[Any, Any, Any], name: str | None) -> asyncio.Task[Any]:
        """``Minion.create_task``: a task of this incarnation (on the loop thread only)."""
        job = Job(self, TASK)
        task = start_task(job, coro, name)
        self.tasks[task] = None
        return task



@functools.lru_cache(maxsize=1024)
def _class_facts(cls: type) -> tuple[int, bool]:
    """``max_concurrency``, and whether ``on_receive`` is a coroutine function (per class)."""
    return getattr(cls, "max_concurrency", 1), inspect.iscoroutinefunction(
        getattr(cls, "on_receive", None))


def classify(msg: Any) -> tuple[Any, Any] | None:
    """``(future, argument)`` for a message a handler answers (``future``: the asker's, or
    None for a tell; ``argument``: what ``on_receive`` or a proxy call gets), None for a
    runtime or extension message (a stop, an exit, a workflow's)."""
    cls = msg.__class__
    if cls is m.Ask:
        arg = msg.message
        return None if arg.__class__ in _ASKED else (msg.future, arg)
    return None if cls in SPECIAL else (None, msg)
