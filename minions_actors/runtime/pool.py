"""The shared worker pool: it runs *turns* of many cells on a few named worker threads. A cell
with mail is queued once, a worker handles up to ``throughput`` of its
messages, then the cell goes to the back of the run queue if it still has mail::

    senders --tell--> [mailbox A] [mailbox B] ... [mailbox Z]    (idle: no thread)
                          |  first message schedules the cell once
                          v
                 run queue: A -> C -> B ...  (FIFO, fair: one turn each)
                    |          |          |
               worker-1   worker-2   (+ a compensating worker while one waits
                                      in ask()/get(), or is held in a handler)

A message a turn sends to an idle minion makes that minion the worker's *runnext*: it runs
right after the turn on the same worker (no hand-off of the GIL to another thread), unless
the worker starts waiting first (then it goes to the run queue).

Idle workers park, each on a lock of its own, and queueing a minion wakes one only when no
worker is active (in a turn or about to look at the run queue): under a flood one busy worker
keeps draining the queue, so minions collect several messages per turn instead of each being
taken at once by a freshly woken worker that only competes for the GIL. Without the GIL
(free-threaded builds) up to one worker per core serves the queue at once
(``_parallel``). The monitor thread covers a busy worker that stops serving the queue (blocked
in C or I/O, or in a long turn): when the queue has not been served for ``WAKE_DELAY``, that
worker no longer counts as active and a parked worker is woken, so queued minions wait at most
about twice ``WAKE_DELAY``.

A worker that waits inside the runtime's own blocking calls (``ask``, a future's ``get``,
stopping children) announces it through :func:`blocking`: the pool starts another worker so
the minion it waits for can still run (as a fork-join pool's managed blocker). A worker held
in one message while minions wait (blocked outside the runtime for about a millisecond, or
running Python for ``SPIN_CPU``) is *retaken* by the monitor the same way, as Go retakes a
processor from a thread blocked in a system call, up to ``max_workers`` threads; one stuck
beyond ``starvation_threshold`` is also reported once (``worker_starved`` hook: a WARNING and
a metric). That monitor and compensation live in :mod:`minions_actors.runtime.pool_monitor`.
"""

from __future__ import annotations

import collections
import functools
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minions_actors.runtime import pool_monitor
from minions_actors.runtime.blocking import _local, blocking
from minions_actors.runtime.context import current
from minions_actors.runtime.mailbox import WAKE
from minions_actors.runtime.pool_slot import LINGER, NOTHING, Slot, linger, named_thread
from minions_actors.runtime.sizing import default_pool_size, parallel_workers
from minions_actors.support.sched_policy import batch_this_thread
from minions_actors.support.signals import block_shutdown_signals

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

KEEPALIVE = 2.0  # seconds an extra (compensating) worker stays idle before it leaves
IDLE_JOIN = 0.1  # close(): the least time an idle worker gets to take its sentinel and leave


def on_worker() -> bool:
    """True on a pool worker thread."""
    return _local.slot is not None


class WorkerPool:
    """The shared pool: a FIFO run queue of cells with mail, served by named workers."""

    name = "pooled"
    pooled = True

    def __init__(
        self,
        *,
        size: int | None = None,
        throughput: int = 64,
        starvation_threshold: float = 1.0,
        max_workers: int | None = None,
        spin_switch_interval: float | None = None,
        on_starved: Callable[[Cell, float], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_saturated: Callable[[int], None] | None = None,
    ) -> None:
        self.size = default_pool_size() if size is None else size
        self.throughput = throughput
        self.starvation_threshold = starvation_threshold
        self.max_workers = max(self.size, 128 if max_workers is None else max_workers)
        self.starvation_events = 0
        self.spin_switch_interval = spin_switch_interval  # see pool_monitor.hurry_switches
        self._switch_saved: float | None = None  # the interval to restore, while shortened
        self._on_starved = on_starved
        self._on_error = on_error
        self._on_saturated = on_saturated
        self._saturated = False  # every worker waits and the cap stops the pool growing
        self._runq: collections.deque[Cell] = collections.deque()
        self._seen_taken = -1  # the slots' ``taken`` summed at the monitor's last queue check
        self._idle: list[Slot] = []  # parked workers (LIFO: the warmest wakes first)
        self._armed = False  # the monitor checks the run queue every WAKE_DELAY
        self._dozing = False  # the monitor sleeps past RETAKE_PERIOD (pool_monitor.watch)
        self._retook = False  # a worker was retaken in the last HURRY (pool_monitor)
        self._retook_at = 0.0
        self._late = False  # the monitor woke late (pool_monitor.held_up)
        self._kick: queue.SimpleQueue[None] = queue.SimpleQueue()  # wakes the monitor
        self._linger_time = min(LINGER, starvation_threshold / 10)
        self._lock = threading.Lock()
        self._slots: list[Slot] = []
        self._added: list[threading.Thread] = []  # workers added, to start (start_added)
        self._blocked = 0  # workers waiting in the runtime or stuck in a handler
        self._closed = False
        self._names = itertools.count(1)
        self._monitor: threading.Thread | None = None
        self._monitor_stop = threading.Event()
        self._started = False
        self._parallel = parallel_workers()  # workers that may serve the queue at once

    # ----------------------------------------------------------------- Dispatcher
    def start(self, cell: Cell) -> None:
        if not self._started:
            self._start_workers()
        cell.thread = None
        if cell.sched.acquire(False):
            self.schedule_put(cell)

    def running(self, cell: Cell) -> bool:
        return not cell.stopped_event.is_set()

    def join(self, cell: Cell, timeout: float | None) -> None:
        if cell.on_own_thread():
            return
        with blocking():
            cell.stopped_event.wait(timeout)

    def where(self, cell: Cell) -> str:
        for slot in list(self._slots):
            if slot.cell is cell and slot.thread is not None:
                return f"pool worker {slot.thread.name!r}"
        return "the worker pool"

    def handling(self, cell: Cell) -> bool:
        return any(slot.cell is cell for slot in list(self._slots))

    # ----------------------------------------------------------------- metrics
    def workers(self) -> int:
        return len(self._slots)

    def busy(self) -> int:
        return sum(1 for slot in list(self._slots) if slot.cell is not None)

    def holding(self) -> bool:
        """True when a worker holds a runnext (the monitor looks at it more often)."""
        return any(slot.runnext for slot in list(self._slots))

    def queued(self) -> int:
        return len(self._runq)

    def schedule_put(self, cell: Cell) -> None:
        """Queue a minion that has mail (its ``sched`` lock is held). Sent from a turn on
        this pool, it runs next on the same worker (see ``Slot.runnext``). Otherwise it goes
        to the run queue (see :meth:`enqueue`)."""
        slot: Slot | None = _local.slot
        if slot is not None and slot.cell is not None and not (runnext := slot.runnext) \
                and not slot.blocked and slot.pool is self:  # (a waiting worker runs nothing)
            runnext.append(cell)
            if self._dozing:  # the monitor sleeps long: it must look at this runnext
                self._dozing = False
                self._kick.put(None)
            if slot.stuck:  # reported stuck (maybe flushed already): not on this worker
                self.flush_runnext(slot)
            return
        self.enqueue(cell)

    def enqueue(self, cell: Cell) -> None:
        """Put ``cell`` on the run queue. With ``_parallel`` workers active (one under the
        GIL), one of them will take it: no wake-up, the monitor only looks again in
        ``WAKE_DELAY``. Otherwise wake a parked worker, or one that lingers on another
        minion's mailbox."""
        self._runq.append(cell)
        self.nudge()

    def nudge(self) -> None:
        """The run queue has minions: make sure a worker will take them (see
        :meth:`enqueue`); also called by a worker that stops counting as active."""
        room = self._parallel
        for slot in self._slots:
            if slot.active:
                room -= 1
                if not room:
                    break
        else:  # fewer active than may run at once: wake one if none is, or one is parked
            # (none to wake: every worker is held in a handler the monitor has not retaken
            # yet, so it must look again, or the queue waits for the starvation check)
            if (room == self._parallel or self._idle) and self._wake_one():
                return
        if not self._armed:
            self._armed = True
            self._kick.put(None)

    def _wake_one(self) -> bool:
        """Wake a parked worker (it counts as active at once, so the puts that follow do
        not wake another): True. Else cut a linger short, once per linger (the lingerer
        counts as active too), and return False all the same: it may first catch a message
        of its own minion and block in it, so the put must still arm the monitor."""
        try:
            slot = self._idle.pop()  # atomic: wakers need no lock
        except IndexError:
            for slot in self._slots:
                inbox = slot.lingering  # (read once: the worker clears it when it stops)
                if inbox is not None and not slot.active:
                    slot.active = True
                    inbox.put(WAKE)
                    return False
            return False  # every worker waits in the runtime: compensation adds workers
        slot.active = True
        slot.park.release()
        return True

    def linger(self, inbox: Any) -> Any:
        """After a turn emptied ``inbox``: when no minion waits for a worker, wait a little
        for its next message (see ``LINGER``); ``NOTHING`` when none came."""
        slot: Slot | None = _local.slot
        if slot is None or slot.runnext or self._runq:
            return NOTHING
        return linger(slot, inbox, self._linger_time)

    def _linger_for(self, slot: Slot) -> Callable[[Any], Any]:
        """:meth:`linger` for the turns of ``slot``'s worker, without its thread-local read
        (the run queue and runnext are read first: in a ping-pong, every turn ends here)."""
        runq, runnext, time_ = self._runq, slot.runnext, self._linger_time

        def wait(inbox: Any) -> Any:
            if runnext or runq:
                return NOTHING
            return linger(slot, inbox, time_)

        return wait

    def threads(self) -> list[threading.Thread]:
        return [s.thread for s in list(self._slots) if s.thread is not None]

    # ----------------------------------------------------------------- workers
    def _start_workers(self) -> None:
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
            for _ in range(self.size):
                self._add_worker()
        self.start_added()
        self._monitor = threading.Thread(target=self._watch, name="minions-pool-monitor",
                                         daemon=True)
        self._monitor.start()

    def _add_worker(self) -> None:
        """Add one more worker (the caller holds the lock, and calls :meth:`start_added`
        once it let go of it: a thread's start waits until the thread runs, which takes a
        turn of the GIL, long beside handlers that spin)."""
        slot = Slot(self)
        slot.thread = named_thread(functools.partial(self._work, slot),
                              f"minions-worker-{next(self._names)}")
        self._slots.append(slot)
        self._added.append(slot.thread)

    def start_added(self) -> None:
        """Start the threads :meth:`_add_worker` added (from any thread: pop() is atomic)."""
        while True:
            try:
                thread = self._added.pop()
            except IndexError:
                return
            try:
                thread.start()
            except RuntimeError:  # 3.12+ starts no thread once the interpreter is exiting
                with self._lock:
                    self._slots[:] = [s for s in self._slots if s.thread is not thread]

    # the monitor and compensation (pool_monitor.py)
    compensate = pool_monitor.compensate
    _grow = pool_monitor.grow
    _report_saturated = pool_monitor.report_saturated
    _watch = pool_monitor.watch
    check_queue = pool_monitor.check_queue
    check_starvation = pool_monitor.check_starvation
    _compensate_stuck = pool_monitor.compensate_stuck
    relieve = pool_monitor.relieve
    retake = pool_monitor.retake
    _unstick = pool_monitor.unstick
    calm_switches = pool_monitor.calm_switches

    def _work(self, slot: Slot) -> None:
        block_shutdown_signals()
        if self._switch_saved is None:  # (not while a handler spins: see sched_policy)
            batch_this_thread()  # a caller's wake-up must not preempt it
        _local.slot = slot
        try:
            self._serve(slot)
        finally:
            with self._lock:
                if slot in self._slots:
                    self._slots.remove(slot)

    def _serve(self, slot: Slot) -> None:
        """The worker's loop: a turn of its runnext, else of the run queue's head, else park.
        Without the GIL (3.13t) there is no specialising interpreter: every attribute read
        is a full lookup (~30 ns), so what each turn needs is bound here once."""
        runq, runnext = self._runq, slot.runnext
        take, pop_next = runq.popleft, runnext.pop
        throughput = self.throughput
        wait = self._linger_for(slot)  # this worker's linger: no thread-local read per turn
        hops = 0  # turns taken from runnext in a row
        cell: Cell | None = None
        while True:
            if cell is None and runnext:
                try:
                    cell = pop_next()
                except IndexError:  # the monitor took it
                    pass
                else:  # the run queue waited for ``throughput`` such turns: runnext joins it
                    hops += 1  # (two minions that keep messaging each other cannot starve it)
                    if hops > throughput and runq:
                        self.enqueue(cell)
                        cell = None
            if cell is None:
                hops = 0
                try:
                    if not self._alone(slot):  # another worker serves the queue
                        raise IndexError
                    cell = take()
                except IndexError:
                    current.cell = None  # (a turn leaves it set: see loop.pool_turn)
                    if self._park(slot):
                        continue
                    return
                # counted on the slot: without the GIL, a store per turn into the pool
                # (which every sender reads) made each tell and turn 2-3x dearer
                slot.taken += 1
            slot.turn += 1
            slot.cell = cell
            try:  # a sync minion of this pool lingers with this worker's own ``wait``
                again = cell.pool_turn(throughput, wait) if cell.dispatcher is self \
                    else cell.run_turn(throughput)
            except BaseException as exc:  # run_turn guards its steps: a runtime bug
                again = False
                current.cell = None
                if self._on_error is not None:
                    self._on_error(exc)
            slot.cell = None
            if not slot.active:  # the monitor saw this turn as slow (senders read it:
                slot.active = True  # no store when it is unchanged, see slot.taken)
            if slot.stuck:
                self._unstick(slot)
            if again and not runnext and not runq:
                continue  # no other minion waits: its next turn, still scheduled
            # release, then look again: a message that arrived meanwhile saw the cell
            # scheduled and did not queue it (a runtime message comes with a WAKE in
            # the mailbox, so an empty mailbox means nothing to do)
            sched = cell.sched
            sched.release()
            if (again or (not cell.inbox.empty() and cell.has_work())) and sched.acquire(False):
                self.enqueue(cell)  # (schedule_put would: this worker is in no turn now)
            cell = None  # a stopped minion must not live on in this frame

    def flush_runnext(self, slot: Slot) -> None:
        """Move ``slot``'s runnext to the run queue (its worker waits or is stuck), so
        another worker serves it (from any thread: pop() is atomic)."""
        try:
            cell = slot.runnext.pop()
        except IndexError:
            return
        self.enqueue(cell)

    def _park(self, slot: Slot) -> bool:
        """The run queue was empty: wait until woken (True) or, once idle for ``KEEPALIVE``,
        leave if more than ``size`` workers are not blocked, or the pool is closed (False)."""
        slot.active = False
        if self._closed:
            return False
        self._idle.append(slot)
        # look again after counting as parked: a put before that saw this worker active
        # and woke nobody; a put after it sees no active worker and wakes one
        if (self._runq and self._alone(slot)) or self._closed:
            self._unpark(slot)
            return not self._closed or bool(self._runq)
        if self._runq and not self._armed:  # left to the active worker, which may block
            self._armed = True  # next: the monitor checks that the queue is served
            self._kick.put(None)
        if slot.park.acquire(True, KEEPALIVE):
            return not self._closed or bool(self._runq)
        self._unpark(slot)
        with self._lock:
            if len(self._slots) - self._blocked > self.size:
                self._slots.remove(slot)
                return False
        return True

    def _alone(self, slot: Slot) -> bool:
        """Fewer than ``_parallel`` workers but ``slot``'s are active (under the GIL: none).
        There a second worker serving the queue only splits the interpreter with the first
        (and with the senders), so a worker that finds another active parks; the monitor
        wakes it if the queue stalls. Without the GIL one per core serves it. Not while
        the monitor retakes blocked workers: the next minions may block as well, and each
        worker that takes one now saves the queue a retake round."""
        if self._retook:
            return True
        room = self._parallel
        for other in self._slots:  # (a loop: no generator frame per turn)
            if other.active and other is not slot:
                room -= 1
                if not room:
                    return False
        return True

    def _unpark(self, slot: Slot) -> None:
        """Take ``slot`` off the parked list itself, or take the wake-up a waker sent."""
        try:
            self._idle.remove(slot)
        except ValueError:  # a waker popped it: its release is on the way
            slot.park.acquire()
        slot.active = True

    # ----------------------------------------------------------------- shutdown
    def close(self, timeout: float) -> list[threading.Thread]:
        """Stop the workers once they finish their turns; join each within ``timeout``
        (the idle ones, which leave at once, get at least ``IDLE_JOIN`` in all even past it;
        one still in a turn is not waited for past it). Returns the threads still alive (a
        handler that never returns)."""
        deadline = time.monotonic() + timeout
        floor = max(deadline, time.monotonic() + IDLE_JOIN)  # (for all idle ones together)
        with self._lock:
            self._closed = True
            slots = list(self._slots)
        self._monitor_stop.set()
        self._kick.put(None)
        self.calm_switches(force=True)
        while self._idle:
            self._wake_one()
        left = []
        for slot in slots:
            thread = slot.thread
            if thread is None or thread is threading.current_thread():
                continue
            if thread.ident is None:  # added, not started yet: it will see the pool closed
                continue
            wait = max(0.0, (deadline if slot.cell is not None else floor) - time.monotonic())
            thread.join(wait)
            if thread.is_alive():
                left.append(thread)
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(max(IDLE_JOIN, deadline - time.monotonic()))
        return left
