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

from minions_actors.runtime.pool import WorkerPool
from minions_actors.runtime.pool_slot import named_thread
from minions_actors.support.option_checks import Rule, check_all, flag, integer, seconds

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

__all__ = [
    "DEDICATED", "DEDICATED_THREAD_RULE", "EXECUTION_MODES", "MAX_POOL_SIZE", "POOL_RULES",
    "DedicatedThreads", "Dispatcher", "WorkerPool", "check_pool_options", "choose",
    "execution_mode",
]

EXECUTION_MODES = ("pooled", "dedicated")
#: the check of spawn()'s ``dedicated_thread`` and of the class attribute of that name
DEDICATED_THREAD_RULE = flag(none="the class attribute, else the system's execution")


class Dispatcher(Protocol):
    """How a cell's message loop gets a thread to run on."""

    name: str
    #: True when a put schedules the cell (its turns run on shared threads or a loop)
    pooled: bool

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
    pooled = False

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
        if dedicated_thread is not None:
            DEDICATED_THREAD_RULE.check(f"{cls.__name__}.dedicated_thread", dedicated_thread)
    if dedicated_thread is None:
        return default
    return DEDICATED if dedicated_thread else pool


#: the most workers a pool starts with: the GIL runs one at a time, and each costs a thread
#: started at start() and joined at shutdown (10,000 took 20 s); blocking handlers get
#: workers added up to pool_max_workers, or a dedicated thread
MAX_POOL_SIZE = 256

#: the checks of the pool options of ``ActorSystem.start()``
POOL_RULES: dict[str, Rule] = {
    "execution": Rule(
        "'pooled' (minions share a worker pool) or 'dedicated' (a thread per minion), or "
        "None ($MINIONS_EXECUTION, else 'pooled')", (str, type(None)),
        lambda v: v in EXECUTION_MODES),
    "pool_size": integer(1, MAX_POOL_SIZE, none="CPU count + 1: 2 to 8, up to 64 without the GIL"),
    "pool_throughput": integer(1),
    "starvation_threshold": seconds(above=True),
    "pool_max_workers": integer(1, none="max(128, pool_size)"),
    "pool_spin_switch_interval": Rule(
        "> 0 seconds (a finite number), or None (never change the interpreter's switch "
        "interval)", (int, float, type(None)),
        lambda v: v is None or (not isinstance(v, bool) and 0 < v < float("inf"))),
}


def execution_mode(execution: str | None) -> str:
    """``execution`` checked; None: ``$MINIONS_EXECUTION``, else ``"pooled"``."""
    name = "execution"
    if execution is None:
        execution = os.environ.get("MINIONS_EXECUTION") or "pooled"
        name = "execution (here $MINIONS_EXECUTION)"
    POOL_RULES["execution"].check(name, execution)
    return execution


def check_pool_options(size: int | None, throughput: int, starvation_threshold: float,
                       max_workers: int | None, spin_switch_interval: float | None = None
                       ) -> None:
    """Reject bad pool options with what was wrong and what is accepted."""
    check_all(POOL_RULES, {"pool_size": size, "pool_throughput": throughput,
                           "starvation_threshold": starvation_threshold,
                           "pool_max_workers": max_workers,
                           "pool_spin_switch_interval": spin_switch_interval})
    if size is not None and max_workers is not None and max_workers < size:
        raise ValueError(
            f"pool_max_workers ({max_workers}) must be >= pool_size ({size})")
