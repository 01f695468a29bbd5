"""``async def`` workflow steps: the step's coroutine runs on the event loop as one of the
async minion's in-flight handlers, so it counts toward ``max_concurrency`` (by default
nothing else of the minion runs meanwhile, as during a sync step), a stop waits for it until
its deadline and a restart cancels it. When it ends, the runner continues in the minion's
next turn on the pool, exactly as after a sync step: checkpoint, retry or the end.

It runs through :meth:`AsyncCell.await_in_turn
<minions_actors.runtime.async_cell.AsyncCell.await_in_turn>` (a handler job whose "asker"
is the runner); the step's error is the job's *result*, never a crash of the minion.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import WorkflowError
from minions_actors.runtime.async_cell import AsyncCell

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

#: what the runner is given when the step ended: (True, result), (False, its exception),
#: or None when it was cancelled (a restart, a stop's deadline) and must run again
StepOutcome = tuple[bool, Any] | None


class _StepAnswer:
    """Stands where an asker's future would: the cell answers it in its turn."""

    __slots__ = ("on_done",)

    def __init__(self, on_done: Callable[[StepOutcome], None]) -> None:
        self.on_done = on_done

    def set(self, value: tuple[bool, Any]) -> None:
        self.on_done(value)

    def set_exception(self, exc_info: Any = None) -> None:
        self.on_done(None)


async def _step_outcome(awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    try:
        return True, await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # the step failed (retried by its policy): no crash
        return False, exc


def await_step(cell: Cell, awaitable: Awaitable[Any],
               on_done: Callable[[StepOutcome], None]) -> None:
    """Run an async step's ``awaitable`` on ``cell``'s loop; ``on_done`` gets its outcome
    in a later turn of the cell."""
    if not isinstance(cell, AsyncCell):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        raise WorkflowError(
            f"{cell.describe()}: a workflow step returned an awaitable, but {cell.cls_name} "
            "is not an async minion; make the step a public 'async def' method (or write "
            "it as a plain def)")
    cell.await_in_turn(_step_outcome(awaitable), _StepAnswer(on_done))


def check_steps(cls: type, steps: tuple[str, ...], is_async: bool, where: str) -> None:
    """At class creation: an ``async def`` step needs an async minion (a private one does
    not make the class async by itself)."""
    if is_async:
        return
    for step in steps:
        if inspect.iscoroutinefunction(getattr(cls, step, None)):
            raise TypeError(
                f"workflow {where} step {step!r} is 'async def' but {cls.__name__} is not an "
                "async minion (only public async methods and async handlers make it one); "
                "give the step a public name")
