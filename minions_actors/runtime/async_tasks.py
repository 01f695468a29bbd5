"""Async minions' coroutines on the loop thread: the jobs an
:class:`~minions_actors.runtime.async_cell.AsyncCell` waits for, their tasks, and their
cancellation.

Everything here runs on the :class:`~minions_actors.runtime.loophost.LoopHost`'s loop
thread (``jobs`` and ``tasks`` are its); a finished job's outcome reaches the cell's turn
through the thread-safe ``completions`` list and the mailbox's wake-up.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import time
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from minions_actors.errors import CancelSwallowed, MinionStopped
from minions_actors.runtime.context import current_handler_cell, current_task_cell
from minions_actors.runtime.loophost import TASK_PREFIX
from minions_actors.runtime.mailbox import WAKE
from minions_actors.runtime.task_entry import AVAILABLE as FIRST_STEPS
from minions_actors.runtime.task_entry import DONE, SUSPENDED, first_step

if TYPE_CHECKING:
    from minions_actors.runtime.async_cell import AsyncCell

#: a handler cancelled at a stop's deadline that has not ended this long after is reported
#: (it swallowed ``CancelledError``) and abandoned, so the stop goes on
CANCEL_GRACE = 1.0
#: start handlers' tasks eagerly (``eager_start``, 3.12+): a handler that never suspends
#: runs to its end at once, without a trip through the loop's queue
EAGER = sys.version_info >= (3, 12)
MESSAGE = "message"  # a job's kind: a handler (else a lifecycle phase, or TASK)
TASK = "task"  # a job's kind: a task started with Minion.create_task


CANCELLED_STOP = "its stop's deadline passed"
CANCELLED_RESTART = "the minion restarted"
CANCELLED_HOOK = "it ran past stop_timeout"



class Job:
    """One coroutine the cell waits for: a handler, a lifecycle hook or a created task."""

    __slots__ = ("awaitable", "cancelled", "cell", "future", "incarnation", "kind", "msg",
                 "outcome", "settled", "started", "task")

    def __init__(self, cell: AsyncCell, kind: str, future: Any = None, msg: Any = None) -> None:
        self.cell = cell
        self.kind = kind
        self.future = future  # the asker's, or None
        self.msg = msg
        self.incarnation = cell.incarnation
        self.started = time.perf_counter()  # its coroutine's time counts as busy time
        self.task: asyncio.Task[Any] | None = None
        self.awaitable: Awaitable[Any] | None = None  # its coroutine, while a task runs it
        self.outcome: tuple[bool, Any] | None = None  # (ok, value or exception)
        self.cancelled = ""  # why cancel() was asked for it ("": it was not)
        self.settled = False  # its outcome went to the turn (or it was abandoned)


async def _outcome(awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    """Await a minion's coroutine and return (True, result) or (False, exception): a
    KeyboardInterrupt or SystemExit in it must reach the supervisor, not stop the loop."""
    try:
        return True, await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # (every one: a crash or a system stop, as in a sync turn)
        return False, exc


class _SystemStopInTask(Exception):
    """A created task's KeyboardInterrupt or SystemExit (``original``), carried as an
    Exception: asyncio re-raises a BaseException out of the loop (ending the caller's
    ``asyncio.run`` or the runtime's loop thread) instead of storing it in the task."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__} in a task of a minion: the supervisor "
                         f"handles it")
        self.original = original


async def _task_body(awaitable: Awaitable[Any]) -> Any:
    """A created task's coroutine: its own result and exceptions, but a system stop."""
    try:
        return await awaitable
    except (KeyboardInterrupt, SystemExit) as exc:
        raise _SystemStopInTask(exc) from exc


def start_task(job: Job, awaitable: Awaitable[Any], name: str | None = None,
               first: bool = False) -> asyncio.Task[Any]:
    """A task for ``job`` in a context that names its cell (on the loop thread). A handler's
    or hook's starts eagerly where asyncio can (3.12+): one that never suspends is done on
    return, and then has no done callback (its caller collects it); its result is its
    outcome (see :func:`_outcome`). A created task's is the coroutine's own (see
    :class:`_SystemStopInTask`). ``first`` (a handler, in a loop callback, before 3.12):
    its first step runs at once as the task (see :class:`_Rest`); one that ended there
    has ``job.outcome`` set, and its task only ends in its first step."""
    cell = job.cell
    # a created task keeps its creator's context vars (as asyncio's do), a handler starts
    # afresh: neither inherits a handler's identity from the coroutine that started it
    context = contextvars.copy_context() if job.kind == TASK else contextvars.Context()
    context.run(current_task_cell.set, cell)
    # a lone handler's waits hold the minion up: graph edges (see waits)
    context.run(current_handler_cell.set,
                cell if job.kind == MESSAGE and cell.limit == 1 else None)
    loop = cell.loop_host.loop
    assert loop is not None
    name = name or f"{TASK_PREFIX}{cell.path}"
    task: asyncio.Task[Any]
    if job.kind == TASK:
        task = loop.create_task(_task_body(awaitable), name=name, context=context)
    elif EAGER:
        task = asyncio.Task(_outcome(awaitable), loop=loop, name=name, context=context,
                            eager_start=True)  # type: ignore[call-arg]
    elif first and FIRST_STEPS:
        rest = _Rest()
        task = loop.create_task(rest, name=name, context=context)  # type: ignore[arg-type]
        how, value = first_step(loop, task, context, awaitable)  # type: ignore[arg-type]
        if how != SUSPENDED:  # (the task's own first step just ends it)
            job.outcome = (True, value) if how == DONE else _raised(job, value)
            return task
        rest.coro, rest.yielded = awaitable, value  # type: ignore[assignment]
    else:
        task = loop.create_task(_outcome(awaitable), name=name, context=context)
    job.task = task
    if not task.done():
        if job.kind != TASK:
            job.awaitable = awaitable
            cell.jobs[job] = None
        task.add_done_callback(functools.partial(finished, job))
    return task


class _Rest(Coroutine[Any, Any, Any]):
    """A handler task's coroutine on Pythons without eager tasks (before 3.12), whose first
    step ran at once (see :func:`start_task`): the rest of the handler's coroutine, first
    yielding what that step yielded; its outcome is :func:`_outcome`'s. With no coroutine
    set (the handler ended in its first step) it ends at its first step."""

    __slots__ = ("coro", "yielded")

    def __init__(self) -> None:
        self.coro: Coroutine[Any, Any, Any] | None = None
        self.yielded: Any = _NOT_YET

    def send(self, value: Any) -> Any:
        yielded = self.yielded
        if yielded is not _NOT_YET:
            self.yielded = _NOT_YET
            return yielded
        if self.coro is None:
            raise StopIteration(None)
        return self._step(self.coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        exc = typ if val is None else val
        yielded, self.yielded = self.yielded, _NOT_YET
        if self.coro is None:
            raise exc
        if yielded is not _NOT_YET and asyncio.isfuture(yielded) and yielded.cancel():
            return yielded  # (a cancel before the task resumed it: as Task.cancel does)
        return self._step(self.coro.throw, exc)

    def close(self) -> None:
        if self.coro is not None:
            self.coro.close()

    def __await__(self) -> Any:  # (a Coroutine must have one; the task never calls it)
        return self

    def _step(self, step: Any, arg: Any) -> Any:
        try:
            return step(arg)
        except StopIteration as stop:
            raise StopIteration((True, stop.value)) from None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # (every one, as _outcome)
            raise StopIteration((False, exc)) from None


_NOT_YET: Any = object()


def _raised(job: Job, exc: BaseException) -> tuple[bool, Any]:
    """The outcome of a handler's first step that raised ``exc``."""
    if isinstance(exc, asyncio.CancelledError):  # (its own: no task was cancelled)
        return (False, MinionStopped(
            f"{job.cell.describe()} did not answer: its handler was cancelled "
            f"({cancelled_by(job.cell)})"))
    return (False, exc)


def finished(job: Job, task: asyncio.Task[Any]) -> None:
    """A job's task ended: hand its outcome to the cell's next turn."""
    cell = job.cell
    cell.jobs.pop(job, None)
    if job.kind == TASK:  # the turn only hears of a created task's error: a crash
        cell.tasks.pop(task, None)
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        job.outcome = (False, exc.original if isinstance(exc, _SystemStopInTask) else exc)
    elif job.settled:  # abandoned after swallowing a cancel: reported already
        return
    else:
        if task.cancelled() and job.awaitable is not None:  # (perhaps before it began:
            close_awaitable(job.awaitable)  # no "never awaited" warning then)
        job.awaitable = None
        job.outcome = task_outcome(job, task)
        if job.cancelled and not task.cancelled():  # it went on after cancel(): the stop waited
            cell.hooks.lifecycle_error(cell, CancelSwallowed(swallowed_text(cell, task)),
                                       "stop")
    settle(job)


def settle(job: Job, eager: bool = True) -> None:
    """Hand ``job``'s outcome to the cell's next turn: run here when the cell is idle (no
    trip through the loop's queue), else its running turn sees it after (a pool worker's
    looks at a non-empty mailbox). ``eager``: no task is current (a loop callback), so
    that turn may run its next handler's first step at once."""
    cell = job.cell
    job.settled = True
    cell.completions.append(job)
    if cell.sched.acquire(False):
        cell.dispatcher.run_here(cell, eager)  # type: ignore[attr-defined]  # a LoopDispatcher
    else:
        cell.inbox.put(WAKE)


def task_outcome(job: Job, task: asyncio.Task[Any]) -> tuple[bool, Any]:
    """The outcome of a handler's or hook's ended task (one cancelled: MinionStopped)."""
    if task.cancelled():
        return (False, MinionStopped(
            f"{job.cell.describe()} did not answer: its handler was cancelled "
            f"({job.cancelled or cancelled_by(job.cell)})"))
    return task.result()  # type: ignore[no-any-return]


def cancel_jobs(cell: AsyncCell, why: str) -> None:
    """Cancel ``cell``'s coroutines still running, created tasks included."""
    for task in list(cell.tasks):
        task.cancel()
    _cancel(cell, list(cell.jobs), why)


def arm_stop(cell: AsyncCell, deadline: float) -> None:
    """A stop came: the handlers in flight at ``deadline`` are cancelled then, whenever
    they started (one of the backlog queued before a ``ref.stop()`` too: a hung one would
    hold the stop for ever); an ``on_stop`` has its own deadline."""
    loop = cell.loop_host.loop
    assert loop is not None
    loop.call_later(max(0.0, deadline - time.monotonic()), _cancel_handlers, cell)


def _cancel_handlers(cell: AsyncCell) -> None:
    _cancel(cell, [j for j in cell.jobs if j.kind == MESSAGE], CANCELLED_STOP)


def _cancel(cell: AsyncCell, jobs: list[Job], why: str) -> None:
    """Cancel those of ``jobs`` still running; report and abandon, after ``CANCEL_GRACE``,
    one that swallowed the cancel."""
    jobs = [j for j in jobs if not j.cancelled and j.task is not None and not j.task.done()]
    for job in jobs:
        job.cancelled = why
        job.task.cancel()  # type: ignore[union-attr]
    if jobs:
        loop = cell.loop_host.loop
        assert loop is not None
        loop.call_later(CANCEL_GRACE, _abandon, cell, jobs)


def cancel_one(job: Job, why: str) -> None:
    """Cancel one coroutine still running (a lifecycle hook past its time)."""
    task = job.task
    if task is None or task.done() or job.cancelled:
        return
    job.cancelled = why
    task.cancel()
    loop = job.cell.loop_host.loop
    assert loop is not None
    loop.call_later(CANCEL_GRACE, _abandon, job.cell, [job])


def _abandon(cell: AsyncCell, jobs: list[Job]) -> None:
    for job in jobs:
        if job.settled or job.task is None or job.task.done():
            continue
        job.settled = True
        runner = cell.runner
        if runner is not None and runner.task is job.task:  # it stays with the handler:
            cell.runner = None  # the cell's next handler gets a fresh runner
        cell.hooks.lifecycle_error(cell, CancelSwallowed(swallowed_text(cell, job.task)), "stop")
        job.outcome = (False, MinionStopped(
            f"{cell.describe()} did not answer: its handler was cancelled and abandoned"))
        cell.completions.append(job)
        cell.inbox.put(WAKE)


def cancelled_by(cell: AsyncCell) -> str:
    """Who cancelled a handler when the runtime did not."""
    if cell.loop_host.ending:
        return ("its event loop ended: the asyncio.run that started the system returned "
                "before the system's shutdown")
    return "by its own code"


def swallowed_text(cell: AsyncCell, task: asyncio.Task[Any]) -> str:
    return (f"a coroutine of {cell.describe()} (task {task.get_name()!r}) went on after it "
            f"was cancelled: it swallowed CancelledError; re-raise it (or use "
            f"try/finally) so that stops and restarts can end it")


def never_run(job: Job, awaitable: Awaitable[Any]) -> None:
    """``job``'s coroutine cannot run (its loop closed or is closing): settle it stopped."""
    close_awaitable(awaitable)
    job.outcome = (False, MinionStopped(
        f"{job.cell.describe()} cannot run its coroutine: its event loop is closed "
        f"(the loop that hosted async minions ended before the system's shutdown)"))
    job.settled = True
    job.cell.completions.append(job)
    job.cell.inbox.put(WAKE)  # the pool reschedules a cell for its mailbox, not completions


def close_awaitable(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
