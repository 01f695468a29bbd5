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
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import CancelSwallowed, MinionStopped
from minions_actors.runtime.async_job import (
    Job,
    cancelled_by,
    close_awaitable,
    complete,
    iterate,
    settle,
    swallowed_text,
)
from minions_actors.runtime.context import current_handler_cell, current_task_cell
from minions_actors.runtime.loophost import TASK_PREFIX
from minions_actors.runtime.mailbox import WAKE

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


def start_task(job: Job, awaitable: Awaitable[Any], name: str | None = None) -> asyncio.Task[Any]:
    """A task for ``job`` in a context that names its cell (on the loop thread). A handler's
    or hook's task runs ``job`` as its coroutine (see :class:`~.async_job.Job`); it starts
    eagerly where asyncio can (3.12+): one that ends in that first step has ``job.outcome``
    set on return (its caller collects it). (A handler's first step in a loop callback runs
    as the loop's spare task instead: runtime.async_spare.) A created task's outcome is the
    coroutine's own (see :class:`_SystemStopInTask`)."""
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
        task = job.task = loop.create_task(_task_body(awaitable), name=name, context=context)
        task.add_done_callback(functools.partial(finished, job), context=context)
        return task
    if EAGER:
        job.awaitable = iterate(awaitable)
        task = asyncio.Task(job, loop=loop, name=name, context=context,  # type: ignore[arg-type]
                            eager_start=True)  # type: ignore[call-arg]
        if job.outcome is not None:  # (it ended in that first step)
            return task
    else:
        job.awaitable = iterate(awaitable)
        task = loop.create_task(job, name=name, context=context)  # type: ignore[arg-type]
    job.task = task
    cell.jobs[job] = None
    return task


def first_raised(job: Job, exc: BaseException) -> tuple[bool, Any]:
    """The outcome of a handler's first step that raised ``exc``."""
    if isinstance(exc, asyncio.CancelledError):  # (its own: no task was cancelled)
        return (False, MinionStopped(
            f"{job.cell.describe()} did not answer: its handler was cancelled "
            f"({cancelled_by(job.cell)})"))
    return (False, exc)


def finished(job: Job, task: asyncio.Task[Any]) -> None:
    """A created task ended: the turn only hears of its error (a crash)."""
    cell = job.cell
    cell.tasks.pop(task, None)
    exc = None if task.cancelled() else task.exception()
    if exc is None:
        return
    job.outcome = (False, exc.original if isinstance(exc, _SystemStopInTask) else exc)
    settle(job)


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
        complete(cell, job)
        cell.inbox.put(WAKE)


def never_run(job: Job, awaitable: Awaitable[Any]) -> None:
    """``job``'s coroutine cannot run (its loop closed or is closing): settle it stopped."""
    close_awaitable(awaitable)
    job.outcome = (False, MinionStopped(
        f"{job.cell.describe()} cannot run its coroutine: its event loop is closed "
        f"(the loop that hosted async minions ended before the system's shutdown)"))
    job.settled = True
    complete(job.cell, job)
    job.cell.inbox.put(WAKE)  # the pool reschedules a cell for its mailbox, not completions
