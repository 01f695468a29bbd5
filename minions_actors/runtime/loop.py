"""A cell's loop: a dedicated thread's (``run_forever``) or one turn on the worker pool
(``pool_turn`` on a worker, ``run_turn`` elsewhere), and the hot loop both run
(``handle_messages``: one plain tell per iteration, with no call beyond the handler's).
Runtime messages come first; a pooled restart waiting for its backoff parks the cell
instead of holding a worker. These are methods of
:class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from minions_actors.errors import RefusedUnsent, StateStoreWriteFailed
from minions_actors.observability.hooks import PHASE_RUNTIME, PHASE_SNAPSHOT
from minions_actors.runtime import messages as m
from minions_actors.runtime.batching import run_batched
from minions_actors.runtime.context import NOTHING_HELD, current
from minions_actors.runtime.mailbox import WAKE
from minions_actors.runtime.minion import Minion
from minions_actors.runtime.pool_slot import NOTHING
from minions_actors.runtime.special import SPECIAL, fail_future, phase_of
from minions_actors.support.sched_policy import batch_this_thread
from minions_actors.support.signals import block_shutdown_signals

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

FOREVER = 1 << 62  # a dedicated thread's budget: it handles messages until told otherwise
# stop_here runs a child's stop inside its parent's, so a deep chain nests frames: beyond
# this depth the stop is handed to a worker (which starts from an empty stack)
STOP_HERE_DEPTH = 16


def run_forever(cell: Cell) -> None:
    """A dedicated thread's loop: handle messages until the minion stops for good."""
    block_shutdown_signals()
    batch_this_thread()  # a caller's wake-up must not preempt it (see sched_policy)
    current.cell = cell
    try:
        cell._guarded(cell._start_incarnation)
        while not cell.terminated:
            cell._guarded(cell._step)
    finally:
        cell._finalize()


def run_turn(cell: Cell, throughput: int) -> bool:
    """A pooled turn outside a worker's loop (a stop or a supervision carried out here):
    it lingers with the dispatcher's linger and clears ``current.cell`` after it."""
    try:
        return pool_turn(cell, throughput, cell.dispatcher.linger)  # type: ignore[attr-defined]
    finally:
        current.cell = None


def pool_turn(cell: Cell, throughput: int, wait: Callable[[Any], Any]) -> bool:
    """One turn on a pool worker: runtime messages, then up to ``throughput`` user
    messages, never waiting (but the pool's short linger, ``wait``: the worker's own,
    which reads no thread-local). True when mail is left. It leaves ``current.cell`` set:
    a worker runs turn after turn and clears it before it parks (a thread-local store
    costs ~0.1 us: one per turn, not two)."""
    if cell._finalized:
        return False
    current.cell = cell
    if cell.incarnation == 0:
        cell._guarded(cell._start_incarnation)
    budget = throughput
    while not cell.terminated:
        if cell._sys:
            if cell._is_parked():
                return False
            cell._guarded(cell._next_system)
        elif (inst := cell.instance) is None or cell._interrupted or cell._terminate_requested:
            if cell._stop_requested and inst is None \
                    and not cell._terminate_requested:  # ref.stop() while crashed
                cell._guarded(_stop_now, cell)
                continue  # (terminated: the loop ends)
            return False
        elif budget <= 0:
            return True
        else:
            try:  # guarded() inlined: one frame less under every handler and traceback
                budget = handle_messages(cell, inst, budget, wait)
            except BaseException as exc:
                fault(cell, exc)
                continue
            if budget < 0:  # the mailbox is empty
                return False
    cell._finalize()
    return False


def _stop_now(cell: Cell) -> None:
    """``ref.stop()`` found no live incarnation (a crash waits for its supervisor, a
    restart for its backoff): stop for good now (once: a fault here is not retried)."""
    cell._terminate_requested = True
    cell._terminate(cell._stop_deadline(), "stopped")


def stop_here(cell: Cell, msg: m.Terminate) -> bool:
    """Send ``msg`` to ``cell`` and, when it is pooled and idle (its ``sched`` lock is
    free: neither queued nor running) and its stop runs no code of its author's (the base
    ``on_stop``), carry the stop out on this thread, as a worker's turn would. True when
    the cell is stopped. A stop handed to another worker costs a thread hand-off per
    child, several times dearer on free-threaded builds; a stop that may block (an author's
    ``on_stop``) is handed off, so the caller can abandon it when its time share runs out."""
    if not cell.pooled or _here.depth >= STOP_HERE_DEPTH or not _plain_stop(cell) \
            or not cell.sched.acquire(False):
        cell.send_system(msg)
        return False
    cell.send_system(msg)  # (its WAKE schedules nothing: this thread holds ``sched``)
    _here.depth += 1
    held = current.cell
    try:
        cell.run_turn(1)
    finally:
        _here.depth -= 1
        current.cell = held
        let_go(cell)
    return cell._finalized


def let_go(cell: Cell) -> None:
    """Release the pooled ``cell``'s ``sched``, held by this thread for work done outside a
    worker's turn (a stop here, a supervision here), then look again, as a worker does after
    a turn (a runtime message comes with a WAKE: an empty mailbox means nothing to do)."""
    cell.sched.release()
    if not cell.inbox.empty() and cell.has_work() and cell.sched.acquire(False):
        cell.dispatcher.schedule_put(cell)  # type: ignore[attr-defined]  # pooled


def _plain_stop(cell: Cell) -> bool:
    """The minion is live and stopping it runs no code of its author's."""
    inst = cell.instance
    return inst is not None and type(inst).on_stop is _BASE_ON_STOP


class _Here(threading.local):
    depth = 0  # stops carried out on this thread, one inside the other


_here = _Here()
_BASE_ON_STOP = Minion.on_stop


def has_work(cell: Cell) -> bool:
    """After a pooled turn: is there something this cell can do now?"""
    if cell._finalized:
        return False
    if cell._sys:
        return not cell._is_parked()
    if cell.instance is None or cell._interrupted or cell._terminate_requested:
        return cell.incarnation == 0
    return not cell.inbox.empty()


def next_system(cell: Cell) -> None:
    cell._handle_system(cell._sys.pop(0))


def is_parked(cell: Cell) -> bool:
    """A pooled restart waits for its backoff (the timer wakes the cell): nothing to
    do until then, unless a stop cuts the backoff short."""
    parked = cell._parked
    if parked is None or not cell._sys or cell._sys[0] is not parked:
        return False
    if cell._backoff_left(parked) > 0:
        return True
    cell._parked = None
    return False


def backoff_left(cell: Cell, msg: m.Restart) -> float:
    if cell._terminate_requested or cell._stop_requested or cell.closing:
        return 0.0
    return msg.start_at - time.monotonic()


def park(cell: Cell, msg: m.Restart) -> bool:
    """On the pool, wait for a restart's backoff without holding a worker."""
    left = cell._backoff_left(msg)
    if left <= 0:
        return False
    cell._sys.insert(0, msg)
    if cell._parked is not msg:
        cell._parked = msg
        cell.system.timer.call_later(left, cell._wake)
    return True


def wake(cell: Cell) -> None:
    cell.inbox.put(WAKE)


def step(cell: Cell) -> None:
    if cell._sys:
        cell._handle_system(cell._sys.pop(0))
    elif cell.instance is None or cell._interrupted or cell._terminate_requested:
        with cell._sys_cond:
            while not cell._sys:
                cell._sys_cond.wait()
    else:
        inst = cell.instance
        batched = getattr(inst, "_minion_receive_batch", None)  # a placed minion's stand-in
        if batched is None:
            handle_messages(cell, inst, FOREVER, _wait_forever)
        elif cell._held is NOTHING_HELD or dispatch_held(cell, inst):
            run_batched(cell, inst, batched, SPECIAL)  # (always on a dedicated thread)


def _wait_forever(inbox: Any) -> Any:
    """A dedicated thread's wait for mail: as long as it takes."""
    return inbox.get()


def guarded(cell: Cell, step: Callable[..., Any], *args: Any) -> Any:
    """Run one step of the loop and return its result; an error outside a handler (a
    runtime or store fault) is reported and, when an incarnation is live, treated as its
    crash, so supervision applies instead of the cell vanishing with its children."""
    try:
        return step(*args)
    except BaseException as exc:
        fault(cell, exc)
        return None


def fault(cell: Cell, exc: BaseException) -> None:
    """A step of the loop failed outside a handler: see :func:`guarded`."""
    cell.hooks.lifecycle_error(cell, exc, "runtime")
    if cell.instance is not None:
        cell._crash(exc, PHASE_RUNTIME)


def handle_messages(cell: Cell, inst: Minion, budget: int, wait: Callable[[Any], Any], *,
                    _held: Any = NOTHING_HELD, _nothing: Any = NOTHING,
                    _special: set[type] = SPECIAL, _clock: Callable[[], float] = perf_counter
                    ) -> int:
    """The hot loop: handle up to ``budget`` messages until a runtime message arrives or
    the incarnation (``inst``, live) ends; returns the budget left, or -1 when the mailbox
    is empty and ``wait`` (the pool's linger; a dedicated thread's blocking get) brought
    nothing.

    It reads what ``qsize()`` counts (this thread is the mailbox's only reader, so that
    many are there) and waits only when that is zero: no ``queue.Empty`` raised per turn.
    Busy time is taken per run of plain tells (snapshots included), not twice a message.
    The keyword-only defaults are module globals bound once: free-threaded builds have
    no specialising interpreter, so a global read is a dict lookup each time."""
    if cell._held is not _held:
        budget -= 1
        if not dispatch_held(cell, inst):
            return budget
    inbox = cell.inbox
    get, queued = inbox.get_nowait, inbox.qsize
    sysq = cell._sys
    receive = inst.on_receive
    after = cell.after  # an extension's (a snapshot), or None
    while budget > 0:
        n = queued()
        if n:
            msg = get()
        else:
            msg = wait(inbox)
            if msg is _nothing:
                return -1
            n = 1
        end = budget - n if n < budget else 0
        t0 = _clock()
        while True:
            if sysq:
                if msg is not WAKE:
                    cell._held = msg
                break
            budget -= 1
            if msg.__class__ in _special:  # it may take its time: count the mailbox again
                cell.busy_seconds += _clock() - t0
                if not cell._dispatch_special(inst, msg):
                    return budget
                t0 = _clock()
                break
            try:
                receive(msg)
            except BaseException as exc:
                cell.busy_seconds += _clock() - t0
                cell.failed += 1
                cell._crash(exc, "message")
                return budget
            cell.handled += 1
            if after is not None:
                try:
                    after(inst)
                except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
                    cell.busy_seconds += _clock() - t0
                    cell._crash(exc, "snapshot")
                    return budget
            if budget <= end:
                break
            msg = get()
        cell.busy_seconds += _clock() - t0
        if sysq:
            return budget
    return budget


def dispatch_held(cell: Cell, inst: Minion) -> bool:
    """Handle the message taken out before a runtime message came first (``_held``)."""
    msg, cell._held = cell._held, NOTHING_HELD
    return cell._dispatch_one(inst, msg)


def dispatch_one(cell: Cell, inst: Minion, msg: Any) -> bool:
    """Handle any one message outside the hot loop; False when the incarnation ended."""
    if msg.__class__ in SPECIAL:
        return cell._dispatch_special(inst, msg)
    return handle_told(cell, inst, inst.on_receive, msg)


def handle_told(cell: Cell, inst: Minion, handler: Callable[[Any], Any], msg: Any) -> bool:
    """Handle a told message outside the hot loop; False when the incarnation crashed. A
    message the runtime refused before any handler saw it (:class:`RefusedUnsent`: the
    sender's error) is a dead letter, and the minion runs on."""
    try:
        ok, value = cell._invoke(inst, handler, msg, RefusedUnsent)
    except RefusedUnsent as exc:
        cell.refuse(msg, exc)
        return True
    if not ok:
        cell._crash(value, phase_of(value))
    return ok


def invoke(
    cell: Cell, inst: Minion, handler: Callable[[Any], Any], arg: Any,
    passthrough: type[BaseException] | tuple[type[BaseException], ...] | None = None,
) -> tuple[bool, Any]:
    """Run one handler call outside the hot loop (which inlines the same steps): time
    it, count it, snapshot after success. Returns (True, result) or (False, exception);
    the caller crashes the incarnation. ``passthrough`` exceptions are re-raised
    untouched (a rejected request, not a failure of the minion)."""
    t0 = perf_counter()
    try:
        result = handler(arg)
    except BaseException as exc:
        if passthrough is not None and isinstance(exc, passthrough):
            raise
        cell.busy_seconds += perf_counter() - t0
        cell.failed += 1
        return False, exc
    cell.busy_seconds += perf_counter() - t0
    cell.handled += 1
    after = cell.after
    if after is not None:
        try:
            after(inst)
        except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
            return False, exc
    return True, result


def run_after(cell: Cell, inst: Minion, future: Any = None) -> bool:
    """Run what follows a handled message (an extension's ``after``, a snapshot) for a
    message handled outside the hot loop and ``invoke``; False when the incarnation
    crashed because a sync-mode store refused it (then ``future``, an asker's, gets the
    store's error: the message was not acknowledged)."""
    after = cell.after
    if after is None:
        return True
    try:
        after(inst)
    except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
        if future is not None:
            fail_future(future, exc)
        cell._crash(exc, PHASE_SNAPSHOT)
        return False
    return True
