"""Carrying out supervision: the part of a cell that acts on its children.

What to do after a child's exit is decided by :func:`minions_actors.runtime.supervision.decide`
(pure, one clause per strategy); the functions here carry the decision out, in OTP's order:
stop in reverse start order, start in start order, give up and fail upward. They are methods
of :class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from minions_actors.errors import MinionsError, SupervisorGaveUp
from minions_actors.observability.hooks import PHASE_SUPERVISION
from minions_actors.runtime import messages as m
from minions_actors.runtime.blocking import blocking
from minions_actors.runtime.context import current
from minions_actors.runtime.loop import let_go, stop_here
from minions_actors.runtime.supervision import (
    ChildExit,
    GiveUp,
    History,
    RestartChildren,
    StopChild,
    backoff_delay,
    decide,
    lists_siblings,
)

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

Decision = StopChild | RestartChildren["Cell"] | GiveUp

# How long a supervisor waits for one sibling to stop or start during a group restart.
GROUP_STEP_TIMEOUT = 5.0


def children_in_order(cell: Cell) -> list[Cell]:
    with cell.children_lock:
        return list(cell.children.values())


def stop_children(cell: Cell, deadline: float, reason: str) -> None:
    """Terminate children in reverse start order, each finishing before the next.

    Each child (with its subtree) gets an equal share of the time left among the
    children still to stop, so a deep chain is not cut short. A child that has not even
    begun to stop by the time a share of this cell would also be spent (its handler is
    stuck) is abandoned then, leaving time for its older siblings and for what it
    leaves behind; they still stop, in order, before this cell's own ``on_stop``."""
    if not cell.children:  # (most minions have none: no lock, no list)
        return
    children = cell.children_in_order()
    if children:
        with blocking():  # on a pool worker, another worker runs the children meanwhile
            _stop_in_order(cell, children, deadline, reason)


def _stop_in_order(cell: Cell, children: list[Cell], deadline: float, reason: str) -> None:
    for left in range(len(children), 0, -1):
        child = children[left - 1]
        now = time.monotonic()
        share = now + max(0.0, deadline - now) / left
        if stop_here(child, m.Terminate(share, reason)):
            continue
        stuck_at = now + max(0.0, deadline - now) / (left + 1)
        if child.stopped_event.wait(max(0.0, stuck_at - now)):
            continue
        if not child.stop_reason or not child.stopped_event.wait(
            max(0.0, share - time.monotonic())
        ):
            cell._abandon(child)


def abandon(cell: Cell, child: Cell) -> None:
    """Report a child that did not stop in its share of the time; a shutdown reports
    every minion still running at its end instead (each one once)."""
    if cell.system.shutdown_started:
        return
    cell.hooks.lifecycle_error(child, MinionsError(
        f"{child.describe()} did not stop in time and was abandoned; its handler is "
        f"still running on {child.where()}"), "stop")


def _leaving(child: Cell) -> bool:
    """A child already stopping for good: a group restart leaves it alone."""
    return child.terminated or child._terminate_requested or child._stop_requested


def supervise(cell: Cell, msg: m.ChildDown) -> None:
    """Apply this cell's strategy to a child whose incarnation ended (OTP semantics)."""
    if _stale(cell, msg):
        return  # stale report: the child was restarted or removed meanwhile
    decision, cell.restart_history = _decide(cell, msg)
    _carry_out(cell, msg, decision)


def _stale(cell: Cell, msg: m.ChildDown) -> bool:
    """The report is stale (the child was restarted or removed meanwhile), or this cell
    restarts nothing any more (a shutdown stops the child)."""
    child = msg.child
    return (child.incarnation != msg.incarnation or child.terminated or cell.terminated
            or cell.closing)


def _decide(cell: Cell, msg: m.ChildDown) -> tuple[Decision, History]:
    """The strategy's decision on ``msg`` and the restart history it leaves (not stored)."""
    child, strategy = msg.child, cell.strategy
    children = cell.children_in_order() if lists_siblings(strategy) else ()
    return decide(ChildExit(child, child.restart, msg.exc, children, _leaving),
                  strategy, cell.restart_history, time.monotonic())


def _carry_out(cell: Cell, msg: m.ChildDown, decision: Decision) -> None:
    child = msg.child
    if isinstance(decision, StopChild):
        child.send_system(m.Terminate(cell._stop_deadline(), decision.reason))
    elif isinstance(decision, GiveUp):
        cell._give_up(child, msg.exc)
    else:
        cell._restart_children(child, decision.affected,
                               backoff_delay(cell.strategy, decision.attempt), decision.cause)


def supervise_here(cell: Cell, msg: m.ChildDown) -> bool:
    """Carry out ``cell``'s supervision of ``msg`` on this thread (the child's, at the end
    of its crash) when ``cell`` is pooled and idle, as its next turn would: its ``sched``
    lock is held meanwhile (one at a time), and it has no runtime message queued before
    this one (their order). Only decisions that never wait for the child: stop it, or
    restart it alone (its own turn then restarts it). True when done; False: send ``msg``.
    The report is a message round trip otherwise (two turns, two wake-ups of the pool's
    monitor), most of a restart's latency once its log records are cheap."""
    child = msg.child
    pool = cell.dispatcher
    if pool is not cell.system.worker_pool or child.dispatcher is not pool or cell._sys \
            or cell.incarnation == 0 or not cell.sched.acquire(False):  # (async: its own)
        return False
    held = current.cell
    current.cell = cell
    try:
        if cell._sys or cell._finalized:  # (came meanwhile: theirs go first)
            return False
        if _stale(cell, msg):
            return True
        try:
            decision, history = _decide(cell, msg)
        except Exception:  # (a runtime bug: the supervisor's own turn meets and reports it)
            return False
        if not (isinstance(decision, StopChild) or (
                isinstance(decision, RestartChildren) and decision.affected == [child])):
            return False  # a group or a give-up waits for the child: its own turn does it
        cell.restart_history = history
        _carry_out(cell, msg, decision)
        return True
    finally:
        current.cell = held
        let_go(cell)


def restart_children(cell: Cell, child: Cell, affected: list[Cell], delay: float,
                      cause: str) -> None:
    """Carry out a restart decision: stop the others in reverse start order, then start
    each in start order after one backoff; a group waits for each start to finish."""
    start_at = time.monotonic() + delay  # one backoff for the whole group
    group = len(affected) > 1
    for other in reversed(affected):
        if other is not child:
            stop = m.StopInstance()
            other.send_system(stop)
            cell._wait_unless_terminating(stop.done, GROUP_STEP_TIMEOUT)
    for target in affected:
        if target is not child and target.restart == "temporary":
            target.send_system(m.Terminate(cell._stop_deadline(),
                                           "sibling-restart"))
            continue
        target.restarts += 1
        cell.hooks.minion_restarting(
            target, delay, cause if target is child else f"sibling {child.path} failed"
        )
        started = threading.Event() if group else None
        restart = m.Restart(start_at, started)
        target.send_system(restart)
        if started is not None:
            cell._wait_unless_terminating(
                started, GROUP_STEP_TIMEOUT + max(0.0, start_at - time.monotonic())
            )
            if restart.failed:
                # As OTP: later children wait until this one is up. Its failure is
                # reported to us (ChildDown), and handling that report retries the
                # group restart from here, counted against the intensity.
                return


def wait_unless_terminating(cell: Cell, event: threading.Event, timeout: float) -> None:
    """Wait for a sibling's step of a group restart; give up early if we are told to
    terminate (a shutdown must not queue behind a long group restart)."""
    end = time.monotonic() + timeout
    with blocking():
        _wait_polling(cell, event, end)


def _wait_polling(cell: Cell, event: threading.Event, end: float) -> None:
    while not event.wait(min(0.05, max(0.0, end - time.monotonic()))):
        if cell._terminate_requested or time.monotonic() >= end:
            return


def give_up(cell: Cell, child: Cell, exc: BaseException | None) -> None:
    """Restart intensity exceeded: stop every child and fail upward (escalate)."""
    strategy = cell.strategy
    err = SupervisorGaveUp(
        f"{cell.describe()} gave up: more than {strategy.max_restarts} restarts within "
        f"{strategy.within}s; the last failure was in {child.path!r}: "
        f"{type(exc).__name__ if exc else 'normal exit'}: {exc}"
    )
    err.__cause__ = exc
    cell._stop_children(cell._stop_deadline(), "escalation")  # first, as the docs say
    cell.hooks.escalated(cell, err)
    if cell.is_root:
        cell.system.root_failed(err)
    else:
        cell._crash(err, PHASE_SUPERVISION)  # fails upward (no children are left to stop)
