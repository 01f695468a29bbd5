"""One long-lived runner task per one-at-a-time async minion (``max_concurrency == 1``).

A turn on the loop (:mod:`~minions_actors.runtime.async_dispatch`) that starts a handler
coroutine of such a minion hands it to the cell's runner instead of creating a task for it:
the runner awaits each handler inline, so a message costs no Task, no context copy and no
done callback. A turn in a loop callback runs the handler's first step itself, as the
parked runner (``async_dispatch._start_here``): one that ends there never wakes the
runner; one that suspends is handed to it as a :class:`Resume`, which the runner awaits. The
runner is started when the cell has a handler to run after its first message (a minion told once
runs it as the loop's spare task, or as a task: cheaper than a runner that parks after it),
ends after ``IDLE_EXIT`` parked, and with the cell (or with the caller's loop); the handler
it awaits is a :class:`~minions_actors.runtime.async_tasks.Job` whose ``task`` is the
runner, so a stop's deadline or a restart cancels it as it cancels a task, and a handler
that swallows the cancel is reported and abandoned (the runner is then detached, and the
next handler gets a fresh one). Everything here runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from minions_actors.errors import CancelSwallowed, MinionStopped
from minions_actors.runtime.async_job import (
    Job,
    cancelled_by,
    close_awaitable,
    settle,
    swallowed_text,
)
from minions_actors.runtime.async_tasks import MESSAGE, never_run, start_task
from minions_actors.runtime.context import current_handler_cell, current_task_cell
from minions_actors.runtime.loophost import TASK_PREFIX
from minions_actors.runtime.task_entry import DONE, SUSPENDED

if TYPE_CHECKING:
    from minions_actors.runtime.async_cell import AsyncCell

JOB = "job"  # a parked runner is woken to run the handler a turn handed it (``next``)
EXIT = "exit"  # ... or to end (the cell ended, or it idled for IDLE_EXIT)
#: a runner parked this long (seconds) ends, so that an idle minion holds no task; the next
#: message starts a fresh one
IDLE_EXIT = 1.0


class Runner:
    """A cell's runner: its task and context, and the future it is parked on (None: not
    parked)."""

    __slots__ = ("cell", "context", "next", "parked", "parked_at", "task")

    def __init__(self, cell: AsyncCell) -> None:
        self.cell = cell
        self.next: tuple[Job, Awaitable[Any]] | None = None  # the handler to await next
        self.parked: asyncio.Future[str] | None = None
        self.parked_at = 0.0  # (the loop's clock)
        self.context = _context(cell)  # the task's: a first step runs in it too
        loop = cell.loop_host.loop
        assert loop is not None
        # (not loop.create_task: a loop's eager task factory would run _run before this
        # runner has its task)
        self.task: asyncio.Task[None] = asyncio.Task(
            _run(self), loop=loop, name=TASK_PREFIX + cell.path, context=self.context)
        # (a task cancelled before its first step never runs _run's finally)
        self.task.add_done_callback(functools.partial(_ended, self))


class Resume:
    """The rest of a handler whose first step ran outside its runner (see
    :mod:`~minions_actors.runtime.task_entry`): awaited by the runner as the coroutine
    would be, first yielding what that step yielded (the future it waits for)."""

    __slots__ = ("coro", "thrown", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded
        self.thrown: BaseException | None = None  # a cancel to deliver first

    def cancel(self, exc: BaseException) -> None:
        """A cancel reached the runner before it resumed this: deliver it as
        ``Task.cancel`` would, by cancelling the awaited future, else by throwing it in."""
        waited = self.yielded
        if not (asyncio.isfuture(waited) and waited.cancel()):
            self.thrown = exc

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        coro, exc = self.coro, self.thrown
        if exc is None:
            try:
                yield self.yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as thrown:  # (a cancel: the coroutine decides)
                exc = thrown
            else:
                return (yield from coro.__await__())
        try:
            yielded = coro.throw(exc)
        except StopIteration as stop:
            return stop.value
        return (yield from Resume(coro, yielded).__await__())


def begin(job: Job, awaitable: Awaitable[Any]) -> None:
    """Start ``job``'s coroutine (posted by the pool's turn): on the cell's runner when it
    handles one message at a time, else as a task (a stop may have cancelled the job
    before it began; the caller's loop may be tearing down, and then it would never run)."""
    cell = job.cell
    if cell.loop_host.ending:
        never_run(job, awaitable)
    elif job.kind == MESSAGE and uses_runner(cell):
        hand(cell, job, awaitable)
    else:
        task = start_task(job, awaitable)
        if job.outcome is not None:  # it ended in its first step (3.12+)
            settle(job)
        elif job.cancelled:
            task.cancel()


def uses_runner(cell: AsyncCell) -> bool:
    """One at a time, and not its first message: a minion told once (a fan-out, a batch of
    sleepers) costs less with one task for it than with a runner that parks after it."""
    return cell.limit == 1 and (cell.runner is not None or cell.handled > 0)


def hand(cell: AsyncCell, job: Job, awaitable: Awaitable[Any]) -> None:
    """Run ``job``'s handler on ``cell``'s runner (started if it has none)."""
    runner = cell.runner
    if runner is None:
        runner = cell.runner = Runner(cell)
    runner.next = (job, awaitable)
    wake(runner, JOB)  # (False: it is starting, or a cancel woke it; it takes next)
    job.task = runner.task
    cell.jobs[job] = None


def go_on(cell: AsyncCell, job: Job, coro: Coroutine[Any, Any, Any], how: int,
          value: Any) -> bool:
    """After a first step run as the parked runner (``async_dispatch._start_here``): False
    when the handler suspended (its runner goes on with it), True when it ended
    (``job.outcome`` is set)."""
    if how == SUSPENDED:
        hand(cell, job, Resume(coro, value))
        return False
    if how == DONE:
        job.outcome = (True, value)
    elif isinstance(value, asyncio.CancelledError):  # (its own: no task was cancelled)
        job.outcome = (False, MinionStopped(
            f"{cell.describe()} did not answer: its handler was cancelled "
            f"({cancelled_by(cell)})"))
    else:
        job.outcome = (False, value)
    return True


def wake(runner: Runner, why: str) -> bool:
    """Wake ``runner`` if it is parked (False: it is not)."""
    parked = runner.parked
    if parked is None or parked.done():  # (done: cancelled by a loop's teardown)
        return False
    runner.parked = None
    runner.cell.loop_host.idle_runners.pop(runner, None)
    parked.set_result(why)
    return True


def stop_runner(cell: AsyncCell) -> None:
    """The cell ended: its parked runner ends too (a busy one ends after its handler)."""
    runner = cell.runner
    if runner is not None:
        cell.runner = None
        wake(runner, EXIT)


def _context(cell: AsyncCell) -> contextvars.Context:
    context = contextvars.Context()
    context.run(current_task_cell.set, cell)
    context.run(current_handler_cell.set, cell)  # one at a time: its waits hold it up
    return context


async def _run(runner: Runner) -> None:
    cell = runner.cell
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    try:
        while cell.runner is runner:
            step = runner.next
            if step is None:
                parked = runner.parked = loop.create_future()
                _idle(runner, loop)
                try:
                    await parked
                except asyncio.CancelledError as exc:
                    _unpark(runner)
                    step = runner.next
                    if step is not None and step[1].__class__ is Resume:  # a cancel of
                        step[1].cancel(exc)  # the handler whose first step ran as this task
                    elif not _runtime_cancel(runner, task):
                        raise
                continue
            runner.next = None
            job, awaitable = step
            if awaitable.__class__ is not Resume and (
                    job.cancelled or job.incarnation != cell.incarnation):
                close_awaitable(awaitable)  # never started: no "never awaited" warning
                _settle_unstarted(job)
                continue
            if not await _await(runner, task, job, awaitable):
                return  # abandoned (it swallowed a cancel), or the loop is ending
    finally:
        _ended(runner)


def _idle(runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
    """Note ``runner`` parked (oldest first), and sweep the idle ones later."""
    host = runner.cell.loop_host
    idle = host.idle_runners
    runner.parked_at = loop.time()
    idle[runner] = None
    if len(idle) == 1 and not host.sweeping:
        host.sweeping = True
        loop.call_later(IDLE_EXIT, _sweep, host, loop)


def _sweep(host: Any, loop: asyncio.AbstractEventLoop) -> None:
    """End the runners parked for IDLE_EXIT or longer (one timer for them all)."""
    idle = host.idle_runners
    old = loop.time() - IDLE_EXIT
    while idle:
        runner = next(iter(idle))
        if runner.parked_at > old:
            loop.call_later(runner.parked_at - old, _sweep, host, loop)
            return
        if runner.cell.runner is runner:
            runner.cell.runner = None
        wake(runner, EXIT)  # (and out of idle)
        idle.pop(runner, None)
    host.sweeping = False


def _unpark(runner: Runner) -> None:
    runner.parked = None
    runner.cell.loop_host.idle_runners.pop(runner, None)


def _ended(runner: Runner, _task: Any = None) -> None:
    _unpark(runner)
    if runner.cell.runner is runner:
        runner.cell.runner = None
    _drop_next(runner)


async def _await(runner: Runner, task: asyncio.Task[None], job: Job,
                 awaitable: Awaitable[Any]) -> bool:
    """Await one handler and settle its job; False when this runner must end."""
    try:
        job.outcome = (True, await awaitable)
    except GeneratorExit:  # (the runner itself is being closed)
        raise
    except asyncio.CancelledError:
        if not job.cancelled:  # not the runtime's: the loop is ending (or its own code)
            job.outcome = (False, MinionStopped(
                f"{job.cell.describe()} did not answer: its handler was cancelled "
                f"({cancelled_by(job.cell)})"))
            _settle(job)
            raise
        task.uncancel()
        job.outcome = (False, MinionStopped(
            f"{job.cell.describe()} did not answer: its handler was cancelled "
            f"({job.cancelled})"))
    except BaseException as exc:  # (every one: a crash or a system stop, as in a sync turn)
        job.outcome = (False, exc)
    else:
        if job.cancelled:  # it went on after cancel()
            task.uncancel()
        if job.cancelled and not job.settled:  # (the stop waited for it; abandoned: told)
            job.cell.hooks.lifecycle_error(job.cell, CancelSwallowed(
                swallowed_text(job.cell, task)), "stop")
    if job.settled:  # abandoned meanwhile: this runner was detached
        return False
    _settle(job)
    return runner.cell.runner is runner


def _settle(job: Job) -> None:
    job.cell.jobs.pop(job, None)
    if not job.settled:
        settle(job, eager=False)  # (in this task: no first step of the next handler)


def _settle_unstarted(job: Job) -> None:
    job.outcome = (False, MinionStopped(
        f"{job.cell.describe()} did not answer: its handler was cancelled before it began "
        f"({job.cancelled or 'the minion restarted'})"))
    _settle(job)


def _runtime_cancel(runner: Runner, task: asyncio.Task[None]) -> bool:
    """A cancel reached a parked (or just woken) runner: the runtime's, for the job it was
    handed (True: go on), or the loop's teardown (False: end)."""
    step = runner.next
    if step is None or not step[0].cancelled:
        return False
    task.uncancel()
    return True


def _drop_next(runner: Runner) -> None:
    """The runner ends with a handler handed and not begun: settle it stopped."""
    step, runner.next = runner.next, None
    if step is not None:
        close_awaitable(step[1])
        _settle_unstarted(step[0])
