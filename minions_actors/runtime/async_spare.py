"""One spare task per loop, as which the first steps of minions' first messages run.

A handler's first step runs as the task that will own the rest of it (see
:mod:`~minions_actors.runtime.task_entry`), so a minion told or asked once (a fan-out, a
batch of sleepers) needed a task of its own before its handler's first line, even when
that handler never suspends. Instead such a first step runs as the loop's spare task
(:func:`first_step_on_spare`), in the spare's context, which names the minion for that
step: a handler that ends there leaves the spare for the next one; one that suspends is
adopted (:func:`adopt`): the spare becomes its task (a :class:`Spare` is a
:class:`~minions_actors.runtime.async_job.Job`, as a handler's task's coroutine is),
renamed after the minion, and the next first step gets a new spare. A first step that
leaves the spare unfit for another minion retires it: one after which anything but the
spare and the loop holds its task, coroutine or context (``asyncio.current_task()`` kept, a
weak reference, a done callback), or that set a context variable or cancelled its own task
(:func:`_holders`). So no handler reaches, through the task it ran as, the handler of
another minion: a retired spare ends at once, as the task of a handler that has returned
would. The spare ends with the loop's host (``LoopHost.spare``). Everything here runs on
the loop thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from minions_actors.runtime.async_job import Job
from minions_actors.runtime.async_tasks import MESSAGE
from minions_actors.runtime.context import current_handler_cell, current_task_cell
from minions_actors.runtime.loophost import TASK_PREFIX
from minions_actors.runtime.task_entry import SUSPENDED, first_step

if TYPE_CHECKING:
    from minions_actors.runtime.async_cell import AsyncCell
    from minions_actors.runtime.loophost import LoopHost

#: the spare's name while no minion's handler runs as it (a minion's task is named for it)
SPARE_NAME = "minions-spare"
_BLANK = "spare"  # a spare's ``kind`` until it is adopted


class Spare(Job):
    """The spare task's coroutine: parked (on ``parked``) while blank; once adopted, the
    adopted handler's :class:`~minions_actors.runtime.async_job.Job`."""

    __slots__ = ("context", "holders", "loop", "parked", "retired")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # (no Job.__init__: no cell yet; a blank spare reads only these, adopt() sets the rest)
        self.kind = _BLANK
        self.parked: asyncio.Future[None] | None = None
        self.retired = False
        self.context = context = contextvars.Context()
        context.run(current_task_cell.set, None)  # (a step sets them: only a variable its
        context.run(current_handler_cell.set, None)  # handler set adds to the count)
        self.loop = loop
        # (not loop.create_task: a loop's eager task factory would run its first step now,
        # as the current task, before first_step_on_spare counts its holders)
        self.task = asyncio.Task(self, loop=loop, name=SPARE_NAME,  # type: ignore[arg-type]
                                 context=self.context)
        self.holders: tuple[Any, ...] = ()  # (counted by first_step_on_spare)

    def send(self, value: Any) -> Any:
        if self.kind is not _BLANK:
            return Job.send(self, value)
        if self.retired:
            raise StopIteration
        parked = self.parked = self.loop.create_future()
        parked._asyncio_future_blocking = True  # (what ``await`` sets: the task waits on it)
        return parked

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self.kind is not _BLANK:
            return Job.throw(self, typ, val, tb)
        self.parked = None
        raise typ if val is None else val  # (a loop's teardown: the spare ends)

    def close(self) -> None:
        if self.kind is not _BLANK:
            Job.close(self)

    def retire(self) -> None:
        """End this spare (it is not adopted): at its next step."""
        self.retired = True
        parked, self.parked = self.parked, None
        if parked is not None and not parked.done():
            parked.set_result(None)


def first_step_on_spare(host: LoopHost, cell: AsyncCell,
                        coro: Coroutine[Any, Any, Any]) -> tuple[int, Any, Spare]:
    """Run ``coro``'s first step as ``host``'s spare task, in its context naming ``cell``
    (no task may be current): ``(how, value, spare)`` as
    :func:`~minions_actors.runtime.task_entry.first_step` returns them; when it suspended
    the caller must :func:`adopt` ``spare``."""
    spare = host.spare
    # (changed since its last step: a thread that read the current task in the spare's
    # own step holds it still, or a loop's teardown cancelled every task, this one too)
    if spare is None or _holders(spare) != spare.holders:
        if spare is not None:
            spare.retire()
        loop = host.loop
        assert loop is not None
        spare = host.spare = Spare(loop)
        spare.holders = _holders(spare)  # (never the current task yet: no one else has it)
    how, value = _step(spare, cell, coro)
    if how != SUSPENDED and _holders(spare) != spare.holders:
        host.spare = None
        spare.retire()
    return how, value, spare


def _step(spare: Spare, cell: AsyncCell, coro: Coroutine[Any, Any, Any]) -> tuple[int, Any]:
    """Run ``coro``'s first step as ``spare``'s task, in its context naming ``cell``."""
    context, task = spare.context, spare.task
    assert task is not None
    context.run(current_task_cell.set, cell)
    context.run(current_handler_cell.set, cell if cell.limit == 1 else None)
    task.set_name(TASK_PREFIX + cell.path)  # (a loop blocked in this step names the minion)
    how, value = first_step(spare.loop, task, context, coro)
    if how != SUSPENDED:
        task.set_name(SPARE_NAME)
    return how, value


def _holders(spare: Spare) -> tuple[Any, ...]:
    """Who holds ``spare`` and what marks it: the references to its task (strong, then
    weak: the loop's set of tasks), to its coroutine and to its context, the task's done
    callbacks, the variables in its context and the cancels asked of it. Counted with the
    same references held here and by the caller, these stay as they were when it was made
    while only the spare and the loop hold it (a parked task is held by the future it
    waits for, a new one by its scheduled first step): anything else means a step kept it
    (``asyncio.current_task()`` stored, a weak reference, a done callback; or a thread that
    read the current task meanwhile), set a context variable or cancelled it, and the
    spare must not run another minion's handler. CPython's reference counts are exact."""
    task, context, parked = spare.task, spare.context, spare.parked
    assert task is not None
    return (sys.getrefcount(task), weakref.getweakrefcount(task), sys.getrefcount(spare),
            sys.getrefcount(context), len(context), task._callbacks,  # type: ignore[attr-defined]
            task.cancelling(), task._must_cancel,  # type: ignore[attr-defined]
            parked is not None and parked.done())  # (what a cancel while parked does)


def adopt(spare: Spare, cell: AsyncCell, future: Any, msg: Any, started: float,
          coro: Coroutine[Any, Any, Any], yielded: Any) -> Job:
    """The handler whose first step ran as ``spare`` suspended there, yielding
    ``yielded``: the spare becomes its task, which goes on with it."""
    host = cell.loop_host
    host.spare = None
    task = spare.task
    Job.__init__(spare, cell, MESSAGE, future, msg)
    spare.started = started
    spare.awaitable, spare.yielded, spare.task = coro, yielded, task
    cell.jobs[spare] = None
    parked, spare.parked = spare.parked, None
    # (None: its first step is still to come, and yields that; done: the handler cancelled
    # its own task, which delivers that cancel to it, at its await, as to any task)
    if parked is not None and not parked.done():
        parked.set_result(None)
    return spare

