"""A pool worker's state (:class:`Slot`, read by the starvation monitor without a lock), its
thread, and its linger: the short wait on a minion's mailbox after a turn emptied it.

:class:`~minions_actors.runtime.pool.WorkerPool` runs the turns; this module holds what
each worker carries from one turn to the next.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minions_actors.runtime.mailbox import WAKE

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.pool import WorkerPool

__all__ = ["LINGER", "LINGER_COOLDOWN", "NOTHING", "Slot", "linger", "named_thread"]

# When a turn empties the mailbox and no other minion waits for a worker, the worker waits
# up to this long on the same mailbox before giving the minion up: the next message then
# wakes it directly, as a dedicated thread would (an ask round trip costs a third less than
# queueing the minion again). A minion queued meanwhile cuts the wait short (see schedule).
LINGER = 0.02
# A linger that did not pay off (no message came, or the worker was woken to serve the run
# queue) turns lingering off on that worker for this many linger chances: under a flood
# over many minions each linger only delayed the run queue and cost a WAKE to cut it short.
LINGER_COOLDOWN = 100
NOTHING: Any = object()  # linger(): no message came


def named_thread(run: Callable[[], None], name: str, daemon: bool = False) -> threading.Thread:
    """A named thread whose ``run`` is ``run`` itself rather than ``Thread.run`` calling a
    target: one Python frame less under every handler, and so in every crash traceback
    loguru extends upward (``backtrace``: ~10 us of formatting per frame)."""
    thread = threading.Thread(name=name, daemon=daemon)
    thread.run = run  # type: ignore[method-assign]
    return thread


class Slot:
    """One worker thread's state, read by the starvation monitor without a lock."""

    __slots__ = ("active", "blocked", "cell", "clock", "cooldown", "cpu0", "crossed",
                 "lingering", "mark", "park", "pool", "progress", "reported", "runnext", "since",
                 "stuck", "taken", "thread", "turn", "wcpu", "wgc", "window", "wpcpu")

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.cell: Cell | None = None
        self.turn = 0
        self.taken = 0  # turns this worker took from the run queue (see pool_monitor.check_queue)
        self.blocked = 0  # nested runtime waits (ask, get, stopping children)
        self.progress = (0, -1)  # (turn, messages handled) when last seen by the monitor
        self.since = 0.0
        self.cpu0 = 0.0  # the thread's CPU time at ``since`` (pool_monitor.held_up)
        self.window = self.wcpu = self.wpcpu = 0.0  # held_up's window: start, CPU times
        self.wgc = 0  # ... and the collections counted when it began
        self.clock: int | None = None  # the thread's CPU clock (pool_monitor.thread_cpu)
        self.reported = False
        self.stuck = False  # reported stuck: counted as blocked until its turn ends
        self.lingering: Any = None  # the mailbox this worker waits on after a turn
        self.cooldown = 0  # linger chances left to skip (see LINGER_COOLDOWN)
        # a message this worker's linger caught came from a thread that will run the minion
        # itself next time: another worker's turn (runnext)
        self.crossed = False
        # active: will look at the run queue soon without being woken (not parked,
        # lingering, waiting in the runtime, stuck, or seen slow by the monitor)
        self.active = True
        self.park = threading.Lock()  # held while parked: released to wake the worker
        self.park.acquire()
        self.mark = 0  # turn seen at the monitor's last queue check
        # a minion this worker's turn sent mail to: it runs next on this worker, without a
        # hand-off to another thread (Go's runnext). A list: pop() is atomic, so the monitor
        # can take it away from a stuck worker without a lock.
        self.runnext: list[Cell] = []
        self.thread: threading.Thread | None = None


def linger(slot: Slot, inbox: Any, seconds: float) -> Any:
    """Wait up to ``seconds`` on ``inbox`` after a turn emptied it (see ``LINGER``): what
    came, or ``NOTHING`` (none came, or lingering is off for now on this worker)."""
    if slot.crossed:  # let the minion go to its sender's thread (see mailbox.crossed)
        slot.crossed = False
        slot.cooldown = LINGER_COOLDOWN
        return NOTHING
    if slot.cooldown:
        slot.cooldown -= 1
        return NOTHING
    slot.lingering = inbox
    inbox.lingerer = slot  # (senders read it: see mailbox.crossed)
    slot.active = False
    try:
        got = inbox.get(True, seconds)
    except queue.Empty:
        got = NOTHING
    slot.active = True
    slot.lingering = inbox.lingerer = None
    if got is NOTHING or got is WAKE:  # (a WAKE: schedule_put cut it short)
        slot.cooldown = LINGER_COOLDOWN
    return got
