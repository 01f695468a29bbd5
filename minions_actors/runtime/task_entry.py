"""Run a coroutine's first step as a given asyncio task, outside any task (a loop callback).

An async minion's handler often ends without suspending (a counter, a ping-pong): running
its first step at once in the loop callback that took the message saves a trip through the
loop. asyncio semantics must hold from the handler's first line, so that step runs with the
task that will own the rest (the minion's runner) entered as the loop's current task, in
that task's context: ``asyncio.current_task()``, ``asyncio.timeout()`` and ``TaskGroup``
see the task that will be cancelled, and a contextvar set there is seen after the await.
This is what ``Task.__eager_start`` does on 3.12+ (``_swap_current_task`` around the step).

The only private asyncio functions the runtime uses are here: ``asyncio.tasks._enter_task``
and ``_leave_task`` (the C versions on CPython 3.11-3.13; tested per Python in
tests/aio/test_first_step.py). Where they are missing, :data:`AVAILABLE` is False and
handlers go the way they did before: their runner awaits them from their first line.
An ask from a task on the loop may run the asked minion's turn in that task's step with the
task stepped aside (:func:`step_aside`, :func:`step_back`), as 3.12's eager tasks swap the
current task around their first step.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any

try:  # private: see the module docstring
    from asyncio.tasks import _enter_task, _leave_task
except ImportError:  # pragma: no cover - a Python without them: the runner's path only
    _enter_task = _leave_task = None  # type: ignore[assignment]

AVAILABLE = _enter_task is not None and _leave_task is not None

DONE, RAISED, SUSPENDED = 0, 1, 2  # how a first step ended


def first_step(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any],
               context: contextvars.Context, coro: Coroutine[Any, Any, Any]) -> tuple[int, Any]:
    """Send ``coro`` its first ``None`` as ``task`` (no task may be current): ``(DONE,
    result)``, ``(RAISED, exception)`` or ``(SUSPENDED, what it yielded)`` (a future, or
    None for a bare yield), which the task must yield next (see ``async_runner.Resume``)."""
    _enter_task(loop, task)  # type: ignore[misc]
    try:
        return SUSPENDED, context.run(coro.send, None)
    except StopIteration as stop:
        return DONE, stop.value
    except BaseException as exc:  # (every one: the caller decides, as a runner would)
        return RAISED, exc
    finally:
        _leave_task(loop, task)  # type: ignore[misc]


def step_aside(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any] | None) -> None:
    """Leave ``task``, the loop's current one (None: none is), so that code run now may
    enter another (:func:`first_step`); :func:`step_back` re-enters it."""
    if task is not None:
        _leave_task(loop, task)  # type: ignore[misc]


def step_back(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any] | None) -> None:
    """Re-enter ``task`` as the loop's current task after :func:`step_aside`."""
    if task is not None:
        _enter_task(loop, task)  # type: ignore[misc]
