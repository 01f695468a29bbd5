"""The pool's monitor thread and its compensation of workers that cannot serve the queue.

Functions of :class:`~minions_actors.runtime.pool.WorkerPool` (assigned in its class body,
as the cell's are): a worker waiting inside the runtime (``compensate``), held in one message
while minions wait (``retake``: blocked outside the interpreter, or a long handler), or stuck
beyond ``starvation_threshold`` (``check_starvation``, which also reports it) stops counting
as able to run, and another worker is started up to ``max_workers``; a run queue that no
worker has served for ``WAKE_DELAY`` wakes a parked worker (``check_queue``).
"""

from __future__ import annotations

import gc
import queue
import sys
import time
from typing import TYPE_CHECKING

from minions_actors.runtime.sizing import free_threaded
from minions_actors.support.sched_policy import set_batch
from minions_actors.support.signals import block_shutdown_signals

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.pool import WorkerPool
    from minions_actors.runtime.pool_slot import Slot

# A worker in one message while minions wait for a worker is retaken (counted as blocked,
# another serves the queue) after RETAKE if its thread used no CPU (blocked in C, I/O, a
# lock, a sleep), or once that message has used SPIN_CPU of CPU (a long handler: Go preempts
# a goroutine after 10 ms). A worker that used no CPU while the interpreter was saturated
# (the process busy SATURATED of the time) may only be waiting for the GIL: retaking those
# would add a thread per queued minion under a flood, so they are not retaken (the
# starvation report at the threshold compensates them as before).
RETAKE = 0.001
# Without the GIL, a worker waiting on a runtime lock held by a thread the host descheduled
# (5 threads on 2 cores: a time slice is ~4 ms) also shows no CPU and is not runnable, so a
# blocked worker is retaken only after this long there (20,000 minions asked from one
# thread added a worker about 1 run in 8 with RETAKE).
RETAKE_FREE = 0.01
SPIN_CPU = 0.005
IDLE_CPU = 0.0005
SATURATED = 0.9
STALL = 0.1  # where threads have no CPU clock: retaken after this long in one message
LATE = 0.002  # the monitor woke this much later than it asked: its look proves nothing
RETAKE_PERIOD = 0.01  # while a worker holds a runnext: how often the monitor looks at it
HURRY = 0.01  # after a retake, this long: looks four times as often, workers all serve

# A non-empty run queue that no worker has taken from for this long wakes a parked worker:
# the busy ones are blocked (in C, I/O) or in long turns. Short enough that a handler
# sleeping for tens of milliseconds delays the others by ~1-2 ms; long enough that the
# monitor's tick (one GIL acquisition each) costs nothing measurable under a flood.
WAKE_DELAY = 0.001

# Under the GIL, a spinning handler holds the interpreter for a switch interval (5 ms) each
# time it gets it, so with eight of them an ask that crosses threads waits ~40 ms per hop
# (worst ask ~1 s). While the monitor sees one spin, the interpreter switches this often
# (``pool_spin_switch_interval``; None leaves it alone); restored once none is stuck.
SPIN_SWITCH = 0.001

#: collections begun and ended so far: a collection pauses every other thread (no CPU, not
#: runnable) and runs on one of them, so a window of evidence that spans one proves nothing
#: about a worker (on 3.13t a full collection over 20,000 minions took ~26 ms: two retakes)
GC_PHASES = [0]


def _count_gc(_phase: str, _info: dict[str, int]) -> None:
    GC_PHASES[0] += 1  # (collections do not overlap: one writer at a time)


gc.callbacks.append(_count_gc)


def compensate(pool: WorkerPool, slot: Slot, delta: int) -> None:
    """A worker begins (+1) or ends (-1) a wait: keep ``size`` workers able to run."""
    with pool._lock:
        slot.blocked += delta
        saturated = False
        if delta > 0 and slot.blocked == 1:
            slot.active = False
            pool._blocked += 1
            saturated = pool._grow()
        elif delta < 0 and slot.blocked == 0:
            slot.active = True
            pool._blocked -= 1
            pool._saturated = False
    if pool._added:  # (only a wait's start adds one: no call on every ask's way back)
        pool.start_added()
    if saturated:
        pool._report_saturated()
    if delta > 0:  # (once it no longer counts as active, so the put wakes a worker)
        pool.flush_runnext(slot)  # what it would have run next must not wait for it
        if pool._runq:  # left to this worker by the parked one woken for it: hand it on
            pool.nudge()


def grow(pool: WorkerPool) -> bool:
    """Keep ``size`` workers that are not blocked (the caller holds the lock, then calls
    ``start_added``). Extra workers stay until idle for ``KEEPALIVE`` seconds, so that asks
    in handlers do not start a thread each. True when, for the first time since a wait
    ended, every worker waits and ``max_workers`` forbids another (the caller reports it,
    unlocked)."""
    if pool._closed or len(pool._slots) - pool._blocked >= pool.size:
        return False
    if len(pool._slots) < pool.max_workers:
        pool._add_worker()
        return False
    if pool._saturated or len(pool._slots) > pool._blocked:
        return False
    pool._saturated = True
    return True


def report_saturated(pool: WorkerPool) -> None:
    if pool._on_saturated is not None:
        pool._on_saturated(pool.max_workers)


def watch(pool: WorkerPool) -> None:
    """While the run queue has minions, look every ``WAKE_DELAY`` whether it is served; while
    a worker holds a runnext, every ``RETAKE_PERIOD`` whether it can run it;
    every fraction of the threshold, look for a worker to report as stuck."""
    block_shutdown_signals()
    period = max(0.01, pool.starvation_threshold / 4)
    due = time.monotonic() + period
    while not pool._monitor_stop.is_set():
        wait = max(0.0, due - time.monotonic())
        if pool._armed:
            wait = WAKE_DELAY / 4 if pool._retook else WAKE_DELAY
        elif pool.holding():
            wait = min(wait, RETAKE_PERIOD)
        # sleeping past RETAKE_PERIOD: a runnext set from now on kicks it (schedule_put), or
        # a worker that blocks right after setting one would hold it until the next look
        pool._dozing = wait > RETAKE_PERIOD
        if pool._dozing and pool.holding():  # (set before the flag was up)
            wait = RETAKE_PERIOD
        asleep = time.monotonic()
        try:
            pool._kick.get(True, wait)
            kicked = True  # armed by a put (or closing)
        except queue.Empty:
            kicked = False
        now = time.monotonic()
        # woken late: the GIL was held, or the host did not run this process; either way a
        # worker that used no CPU meanwhile may not have been able to (see held_up)
        pool._late = not kicked and now - asleep - wait > LATE
        if pool._retook and now - pool._retook_at > HURRY:
            pool._retook = False
        if pool._armed:
            pool.check_queue(kicked, now)
        else:
            pool.retake(now, holding=True)
        if now >= due:
            pool.check_starvation(now)
            due = now + period


def check_queue(pool: WorkerPool, start: bool = False, now: float = 0.0) -> None:
    """Wake a parked worker when no minion was taken from the run queue since the last
    look (``start``: the first look since the queue got work, which only takes note);
    the workers busy in the same turn as then stop counting as active, so the puts that
    follow wake a worker at once while they stay in that turn, and those blocked or long
    in one message are retaken (see :func:`retake`)."""
    if not pool._runq:
        pool._armed = False
        if not pool._runq:  # (a put that saw it armed came before this look)
            return
        pool._armed = True
    taken = sum(slot.taken for slot in list(pool._slots))  # (a worker that left: a change too)
    if start or taken != pool._seen_taken:
        pool._seen_taken = taken
        for slot in list(pool._slots):
            slot.mark = slot.turn
            cell = slot.cell
            if cell is not None:  # (so that a retake can come at the next look)
                observe(slot, cell, now or time.monotonic())
        return
    for slot in list(pool._slots):
        if slot.cell is not None and slot.turn == slot.mark:
            slot.active = False
    pool.retake(now or time.monotonic())
    pool._wake_one()


def observe(slot: Slot, cell: Cell, now: float) -> None:
    """Note when the monitor first saw ``slot`` in its current message, with the CPU time
    its thread had used then (and start a window of :func:`held_up`'s evidence)."""
    mark = (slot.turn, cell.handled + cell.failed)
    if mark != slot.progress:
        slot.progress, slot.since, slot.reported = mark, now, False
        slot.cpu0 = thread_cpu(slot)
        new_window(slot, now, slot.cpu0)


def new_window(slot: Slot, now: float, cpu: float) -> None:
    """Start a window of :func:`held_up`'s evidence: its time, the thread's and the process's
    CPU times, and the collections counted so far."""
    slot.window, slot.wcpu, slot.wpcpu = now, cpu, time.process_time()
    slot.wgc = GC_PHASES[0]


def thread_cpu(slot: Slot) -> float:
    """CPU seconds ``slot``'s thread has used (-1.0 where the platform cannot tell)."""
    try:
        if slot.clock is None and slot.thread is not None and slot.thread.ident is not None:
            slot.clock = time.pthread_getcpuclockid(slot.thread.ident)
        return -1.0 if slot.clock is None else time.clock_gettime(slot.clock)
    except (AttributeError, OSError):  # no per-thread clocks here; the thread has ended
        return -1.0


def held_up(pool: WorkerPool, slot: Slot, now: float) -> bool:
    """``slot``'s worker no longer serves the pool in its current message: running Python
    in it for ``SPIN_CPU`` (a long handler keeps its worker until it returns), or blocked
    outside the interpreter: its thread used no CPU for ``RETAKE``, not runnable, and under
    the GIL while the interpreter had room (the process used less than ``SATURATED`` of the
    time) and the monitor ran on time (not woken late: the GIL held, or the process not
    run by the host)."""
    if now - slot.since < RETAKE:
        return False
    cpu = thread_cpu(slot)
    if cpu < 0:  # (cannot tell blocked from running)
        return now - slot.since >= STALL
    if slot.wgc != GC_PHASES[0]:  # a collection ran: its pause, or its own CPU, is no evidence
        slot.cpu0 = cpu
        new_window(slot, now, cpu)
        return False
    if cpu - slot.cpu0 >= SPIN_CPU:
        return True
    # Without the GIL no worker waits for the interpreter: one that used no CPU is blocked,
    # or waits for a CPU of a loaded host, which runnable() tells apart. A late monitor and
    # a busy process prove nothing there (on a loaded host the monitor is late at every
    # look, and 40 handlers blocked on a lock got no worker for 20 s).
    gil = not free_threaded()
    if (pool._late and gil) or cpu - slot.wcpu > IDLE_CPU:  # no evidence: a new window
        new_window(slot, now, cpu)
        return False
    wall = now - slot.window
    return (wall >= (RETAKE if gil else RETAKE_FREE)
            and (not gil or (time.process_time() - slot.wpcpu) / wall < SATURATED)
            and not runnable(slot))


def runnable(slot: Slot) -> bool:
    """True when the host shows ``slot``'s thread as runnable (``R``): it waits for a CPU
    (on a loaded host), not for an event. False where the host does not tell (not Linux)."""
    tid = slot.thread.native_id if slot.thread is not None else None
    try:
        with open(f"/proc/self/task/{tid}/stat", "rb") as stat:
            state: bytes = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == b"R"


def retake(pool: WorkerPool, now: float, holding: bool = False) -> None:
    """Count each worker :func:`held_up` in its message as blocked until its turn ends, so
    that others serve the run queue and what it would have run next at once (Go's retake of
    a processor blocked in a system call); ``holding``: only those holding a runnext. For
    ``HURRY`` after a retake the monitor looks four times as often and every worker serves
    the queue (see ``WorkerPool._alone``): the minions they take next may block as well."""
    for slot in list(pool._slots):
        cell = slot.cell
        if cell is None or slot.blocked or slot.lingering is not None:
            continue
        observe(slot, cell, now)
        if slot.stuck or (holding and not slot.runnext) or not held_up(pool, slot, now):
            continue
        pool._compensate_stuck(slot, cell)
        pool._retook, pool._retook_at = True, now
        if thread_cpu(slot) - slot.cpu0 >= SPIN_CPU:
            hurry_switches(pool)


def hurry_switches(pool: WorkerPool) -> None:
    """A spinning handler was retaken: shorten the switch interval (see SPIN_SWITCH)."""
    wanted = pool.spin_switch_interval
    if wanted is None or pool._switch_saved is not None or free_threaded():
        return
    saved = sys.getswitchinterval()
    if wanted < saved:
        pool._switch_saved = saved
        sys.setswitchinterval(wanted)
        set_batch(_native_ids(pool), False)  # (see support.sched_policy)


def calm_switches(pool: WorkerPool, force: bool = False) -> None:
    """Restore the switch interval once no worker is stuck (or the pool closes)."""
    saved = pool._switch_saved
    if saved is not None and (force or not any(s.stuck for s in list(pool._slots))):
        pool._switch_saved = None
        sys.setswitchinterval(saved)
        set_batch(_native_ids(pool), True)


def _native_ids(pool: WorkerPool) -> list[int]:
    return [t.native_id for t in pool.threads() if t.native_id is not None]


def check_starvation(pool: WorkerPool, now: float) -> None:
    pool.calm_switches()
    for slot in list(pool._slots):
        cell = slot.cell
        if cell is None or slot.blocked:
            slot.progress = (-1, -1)
            continue
        observe(slot, cell, now)
        stuck = now - slot.since
        if stuck < pool.starvation_threshold or slot.reported:
            continue
        slot.reported = True
        pool.starvation_events += 1
        if pool._on_starved is not None:
            pool._on_starved(cell, stuck)
        pool._compensate_stuck(slot, cell)


def compensate_stuck(pool: WorkerPool, slot: Slot, cell: Cell) -> None:
    """Count a stuck worker as blocked until its turn ends (then :meth:`_unstick`)."""
    with pool._lock:
        if not slot.stuck:  # a turn's next slow message: counted once per turn
            slot.stuck = True  # first: a send that sees it flushes what it queued
            slot.active = False
            pool._blocked += 1
        saturated = pool._grow()
    pool.start_added()
    if saturated:
        pool._report_saturated()
    pool.flush_runnext(slot)
    if slot.cell is not cell:  # the turn ended meanwhile, maybe before it saw the flag
        pool._unstick(slot)


def relieve(pool: WorkerPool) -> None:
    """A shutdown begins: count every worker now in a turn as stuck (unreported), so
    that a worker is added for each and the minions' stops run beside handlers that
    may never return, as they would with a thread each (the monitor would only do it
    after ``starvation_threshold``, maybe past the shutdown's deadline)."""
    for slot in list(pool._slots):
        cell = slot.cell
        if cell is not None and not slot.blocked:
            pool._compensate_stuck(slot, cell)


def unstick(pool: WorkerPool, slot: Slot) -> None:
    with pool._lock:
        if slot.stuck:
            slot.stuck = False
            pool._blocked -= 1
            pool._saturated = False
    if pool._switch_saved is not None:  # the last spinner's turn may have ended
        calm_switches(pool)
