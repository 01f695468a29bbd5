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
leaves the spare unfit for another minion (it set a context variable, or cancelled its own
task) retires it. The spare ends with the loop's host (``LoopHost.spare``). Everything here
runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import contextvars
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

    __slots__ = ("context", "loop", "parked", "retired")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # (no Job.__init__: no cell yet; a blank spare reads only these, adopt() sets the rest)
        self.kind = _BLANK
        self.parked: asyncio.Future[None] | None = None
        self.retired = False
        self.context = contextvars.Context()
        # (before the task: a loop's eager task factory runs its first step in create_task)
        self.loop = loop
        self.task = loop.create_task(self, name=SPARE_NAME,  # type: ignore[arg-type]
                                     context=self.context)

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
    loop = host.loop
    assert loop is not None
    if spare is None or spare.task.done():  # type: ignore[union-attr]
        spare = host.spare = Spare(loop)
    context, task = spare.context, spare.task
    assert task is not None
    context.run(current_task_cell.set, cell)
    context.run(current_handler_cell.set, cell if cell.limit == 1 else None)
    task.set_name(TASK_PREFIX + cell.path)  # (a loop blocked in this step names the minion)
    how, value = first_step(loop, task, context, coro)
    if how == SUSPENDED:
        return how, value, spare
    task.set_name(SPARE_NAME)
    parked = spare.parked
    if len(context) != 2 or task.cancelling() or task._must_cancel \
            or (parked is not None and parked.done()):  # (a cancel of its own task)
        host.spare = None
        spare.retire()
    return how, value, spare


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
    if parked is not None:  # (else its first step is still to come: it yields that)
        parked.set_result(None)
    return spare

