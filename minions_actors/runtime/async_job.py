"""One coroutine an async minion's cell waits for (a :class:`Job`), and the hand-over of its
outcome to the cell's next turn (:func:`settle`).

A job whose handler or lifecycle hook runs as a task of its own is also that task's
coroutine: it steps the handler's coroutine itself and settles when that ends, so the task
needs no wrapper coroutine, no done callback (and no context copied for one) and no trip
through the loop's queue after its end. These were most of the objects the cyclic GC
walked per first message of a minion (a handler awaiting a sleep: 19 tracked objects per
message before, 15 now; tests/aio/test_weight.py). Everything here runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from minions_actors.errors import CancelSwallowed, MinionStopped
from minions_actors.runtime.mailbox import WAKE

if TYPE_CHECKING:
    from minions_actors.runtime.async_cell import AsyncCell

_NOT_YET: Any = object()  # a job's first step ran outside its task and yielded nothing yet


class Job:
    """One coroutine the cell waits for: a handler, a lifecycle hook or a created task.

    As its task's coroutine (:func:`~minions_actors.runtime.async_tasks.start_task`) it
    steps ``awaitable`` (an iterator then: a coroutine, or an awaitable's ``__await__()``),
    first yielding ``yielded`` when a first step ran outside the task (the future that step
    waits on; ``Task.cancel`` before the task resumes cancels it, as it would the task's)."""

    __slots__ = ("awaitable", "cancelled", "cell", "future", "incarnation", "kind", "msg",
                 "outcome", "settled", "started", "task", "yielded")

    def __init__(self, cell: AsyncCell, kind: str, future: Any = None, msg: Any = None) -> None:
        self.cell = cell
        self.kind = kind
        self.future = future  # the asker's, or None
        self.msg = msg
        self.incarnation = cell.incarnation
        self.started = time.perf_counter()  # its coroutine's time counts as busy time
        self.task: asyncio.Task[Any] | None = None
        self.awaitable: Any = None  # its coroutine, while a task runs it
        self.outcome: tuple[bool, Any] | None = None  # (ok, value or exception)
        self.cancelled = ""  # why cancel() was asked for it ("": it was not)
        self.settled = False  # its outcome went to the turn (or it was abandoned)
        self.yielded: Any = _NOT_YET

    # ------------------------------------------------------------ as its task's coroutine
    def send(self, value: Any) -> Any:
        yielded = self.yielded
        if yielded is not _NOT_YET:
            self.yielded = _NOT_YET
            return yielded
        it = self.awaitable
        if it is None:  # it ended in a first step run by its starter, which collected it
            raise StopIteration
        return self._step(it.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        exc = typ if val is None else val
        yielded, self.yielded = self.yielded, _NOT_YET
        it = self.awaitable
        if it is None:
            raise exc
        if yielded is not _NOT_YET and asyncio.isfuture(yielded) and yielded.cancel():
            return yielded  # (a cancel before the task resumed it: as Task.cancel does)
        return self._step(getattr(it, "throw", _raise), exc)

    def close(self) -> None:
        it, self.awaitable = self.awaitable, None
        if it is not None:
            close_awaitable(it)

    def __await__(self) -> Any:  # (a coroutine must have one; the task never calls it)
        return self

    def _step(self, step: Callable[[Any], Any], arg: Any) -> Any:
        try:
            return step(arg)
        except StopIteration as stop:
            self._end((True, stop.value))
        except asyncio.CancelledError:
            self._end(None)
            raise
        except BaseException as exc:  # (every one: a crash or a system stop, as in a sync
            self._end((False, exc))  # turn; a KeyboardInterrupt must not stop the loop)
        raise StopIteration

    def _end(self, outcome: tuple[bool, Any] | None) -> None:
        """Its coroutine ended (None: cancelled): settle, unless its starter runs this
        first step (no task yet: the starter collects it) or it was abandoned."""
        self.awaitable = None
        task, self.task = self.task, None  # (its task holds this job: no cycle left)
        cell = self.cell
        if task is not None:  # (an abandoned one too: it is no longer running)
            cell.jobs.pop(self, None)
        if self.settled:  # abandoned after swallowing a cancel: reported already
            return
        if outcome is None:
            outcome = (False, MinionStopped(
                f"{cell.describe()} did not answer: its handler was cancelled "
                f"({self.cancelled or cancelled_by(cell)})"))
        elif self.cancelled and task is not None:  # it went on after cancel(): the stop
            cell.hooks.lifecycle_error(  # waited for it
                cell, CancelSwallowed(swallowed_text(cell, task)), "stop")
        self.outcome = outcome
        if task is not None:
            settle(self, eager=False)  # (in its task: no first step of a next handler)


def iterate(awaitable: Awaitable[Any]) -> Iterator[Any]:
    """What a job's task steps: a coroutine itself, else the awaitable's iterator (an
    ``__await__`` that raises: its first step raises that, a crash as ``await`` would be)."""
    if hasattr(awaitable, "send"):
        return awaitable  # type: ignore[return-value]
    try:
        return awaitable.__await__()  # type: ignore[return-value]
    except BaseException as exc:  # (every one, as the task's step would see it)
        return _raising(exc)


def _raising(exc: BaseException) -> Generator[Any, None, None]:
    raise exc
    yield  # (a generator: it raises at its first step)


def _raise(exc: BaseException) -> Any:
    raise exc


class _NoCompletions(list):  # type: ignore[type-arg]
    """Every idle cell's ``completions``: shared, so never appended to (see :func:`complete`)."""

    __slots__ = ()

    def append(self, job: Any) -> None:
        raise RuntimeError("NO_COMPLETIONS is shared: use async_job.complete()")


#: a cell's ``completions`` until its first coroutine ends (one list less per idle minion)
NO_COMPLETIONS: list[Job] = _NoCompletions()


def complete(cell: AsyncCell, job: Job) -> None:
    """Queue ``job``'s outcome for ``cell``'s turn (the loop thread's, or any thread's once
    the loop has ended: appends are atomic, and the turn only pops)."""
    done = cell.completions
    if done is NO_COMPLETIONS:
        cell.completions = [job]
    else:
        done.append(job)


def settle(job: Job, eager: bool = True) -> None:
    """Hand ``job``'s outcome to the cell's next turn: run here when the cell is idle (no
    trip through the loop's queue), else its running turn sees it after (a pool worker's
    looks at a non-empty mailbox). ``eager``: no task is current (a loop callback), so
    that turn may run its next handler's first step at once."""
    cell = job.cell
    job.settled = True
    complete(cell, job)
    if cell.sched.acquire(False):
        cell.dispatcher.run_here(cell, eager)  # type: ignore[attr-defined]  # a LoopDispatcher
    else:
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


def close_awaitable(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
