"""Where a minion's turns run: the shared worker pool (default) or a dedicated thread.

A :class:`Dispatcher` starts a cell, tells whether it still runs, waits for its end and
names where it runs. :data:`DEDICATED` gives each cell its own thread (pykka's model, for
handlers that block for long); :class:`~minions_actors.runtime.pool.WorkerPool` (its own
module, with its picture) runs *turns* of many cells on a few named worker threads.
:func:`choose` picks one for a spawn.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from minions_actors.runtime.pool import WorkerPool, named_thread

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

__all__ = [
    "DEDICATED", "EXECUTION_MODES", "DedicatedThreads", "Dispatcher", "WorkerPool",
    "check_pool_options", "choose", "execution_mode",
]

EXECUTION_MODES = ("pooled", "dedicated")


class Dispatcher(Protocol):
    """How a cell's message loop gets a thread to run on."""

    name: str

    def start(self, cell: Cell) -> None:
        """Begin running ``cell`` (its first turn builds the first incarnation)."""
        ...

    def running(self, cell: Cell) -> bool:
        """True while the cell has not finished (its loop may still run)."""
        ...

    def join(self, cell: Cell, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds for the cell to finish."""
        ...

    def where(self, cell: Cell) -> str:
        """Where the cell's handlers run, for error messages."""
        ...

    def handling(self, cell: Cell) -> bool:
        """True while a thread runs the cell's code (a handler, a stop), rather than the
        cell waiting for one (a pooled minion queued for a worker)."""
        ...


class DedicatedThreads:
    """One thread per cell, running its loop until the minion stops (today's behaviour).
    Named like pykka's actor threads; ``use_daemon_thread`` on the class applies."""

    name = "dedicated"

    def start(self, cell: Cell) -> None:
        thread = named_thread(cell.run_forever, f"{cell.cls_name} (minion:{cell.path or 'gru'})",
                         daemon=bool(getattr(cell.cls, "use_daemon_thread", False)))
        cell.thread = thread
        thread.start()

    def running(self, cell: Cell) -> bool:
        thread = cell.thread
        return thread is not None and thread.is_alive()

    def join(self, cell: Cell, timeout: float | None) -> None:
        thread = cell.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def where(self, cell: Cell) -> str:
        thread = cell.thread
        return f"thread {thread.name if thread is not None else '?'!r}"

    def handling(self, cell: Cell) -> bool:
        return self.running(cell)  # (an idle thread would have taken its stop at once)


DEDICATED = DedicatedThreads()


def choose(default: Dispatcher, pool: WorkerPool, cls: type[Any],
           dedicated_thread: bool | None) -> Dispatcher:
    """The dispatcher for a spawn: the option, else the class attribute, else the system's
    ``default`` (the pool, or dedicated threads under ``execution="dedicated"``)."""
    if dedicated_thread is None:
        dedicated_thread = getattr(cls, "dedicated_thread", None)
    if dedicated_thread is None:
        return default
    return DEDICATED if dedicated_thread else pool


def execution_mode(execution: str | None) -> str:
    """``execution`` checked; None: ``$MINIONS_EXECUTION``, else ``"pooled"``."""
    if execution is None:
        execution = os.environ.get("MINIONS_EXECUTION") or "pooled"
    if execution not in EXECUTION_MODES:
        raise ValueError(
            f"execution must be 'pooled' (minions share a worker pool) or 'dedicated' "
            f"(a thread per minion), got {execution!r}"
        )
    return execution


def check_pool_options(size: int | None, throughput: int, starvation_threshold: float,
                       max_workers: int | None) -> None:
    """Reject bad pool options with what was wrong and what is accepted."""
    for label, value, low in (("pool_size", size, 1), ("pool_throughput", throughput, 1),
                              ("pool_max_workers", max_workers, 1)):
        if value is None and label != "pool_throughput":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an int >= {low}, got {value!r}")
    if isinstance(starvation_threshold, bool) or not isinstance(
            starvation_threshold, (int, float)) or not starvation_threshold > 0:
        raise ValueError(
            f"starvation_threshold must be > 0 seconds, got {starvation_threshold!r}")
    if size is not None and max_workers is not None and max_workers < size:
        raise ValueError(
            f"pool_max_workers ({max_workers}) must be >= pool_size ({size})")
