"""The shutdown of a system: who runs it, how its steps stop the minions and close the
store, and how it ended (clean or not).

``ActorSystem._teardown`` runs the steps in the reverse order of the start; each step here
tolerates a partial start and reports what it could not do through the hooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from minions_actors.errors import MinionsError, StateStoreError
from minions_actors.runtime.context import current_cell
from minions_actors.runtime.messages import Terminate
from minions_actors.support.signals import block_shutdown_signals

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.observability.hooks import HookDispatcher
    from minions_actors.persistence import StateStore
    from minions_actors.runtime.cell import Cell

RESERVE = 0.6  # seconds of a shutdown's timeout kept for reporting and closing (stop_minions)
_SIGNAL_POLL = 0.2  # seconds: the longest a signal can wait for the main thread in wait()


def on_minion_thread() -> bool:
    """True on a minion's own thread (a thread-local: no lock, safe in a signal handler)."""
    return current_cell() is not None


class ShutdownState:
    """Whether the shutdown started, which thread runs it, whether it is over and clean."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.started = False
        self.owner: int | None = None  # the thread running it, unless a minion's
        self.stopped = threading.Event()
        self.clean = True

    def claim(self) -> bool:
        """Mark the shutdown as started; True for the one caller that gets to run it. A
        caller that is not a minion records its thread, so a nested call from that thread
        (a signal handler interrupting it) does not wait for itself."""
        with self.lock:
            first = not self.started
            self.started = True
            if first and not on_minion_thread():
                self.owner = threading.get_ident()
        return first

    def wait(self, timeout: float | None) -> bool:
        """Block until the system stopped (True) or ``timeout`` passed (False)."""
        # On the main thread, wake up now and then: CPython runs signal handlers only when
        # the main thread executes Python code, and a signal can land on a foreign thread.
        poll = _SIGNAL_POLL if threading.current_thread() is threading.main_thread() else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = left if poll is None else poll if left is None else min(poll, left)
            if self.stopped.wait(step):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False


def in_background(run: Callable[[], None]) -> None:
    """Run the shutdown on a thread of its own (a minion cannot wait for its own stop)."""

    def target() -> None:
        block_shutdown_signals()  # a second signal must reach the main thread
        run()

    threading.Thread(target=target, name="minions-shutdown", daemon=False).start()


def stop_minions(cells: Callable[[], list[Cell]], gru: Cell | None, deadline: float) -> None:
    """Halt every minion at once, then stop the tree children-first through Gru, then
    whatever is left under an abandoned (stuck) minion. The stops get until ``deadline``
    less a reserve (``RESERVE``, at most a fifth of the time left) for what follows them:
    beside handlers that spin, every step of the teardown gets only a slice of the GIL."""
    reserve = max(0.0, min(RESERVE, (deadline - time.monotonic()) / 5))  # never later
    deadline -= reserve
    for cell in cells():  # from now on no backlog is handled, only minions' last words
        cell.halt()
    if gru is not None:
        if not gru.stopped_event.is_set():
            gru.send_system(Terminate(deadline, "shutdown"))
        # Gru waits for its children until the deadline itself: a little grace
        gru.join(max(0.0, deadline - time.monotonic()) + max(0.0, reserve / 2))
    orphans = cells()
    # past the deadline these loops only cost time (beside handlers that spin, a slice of
    # the GIL per minion): what is left is reported as it is
    for cell in reversed(orphans):  # youngest first: children before their parents
        if time.monotonic() >= deadline:
            break
        cell.send_system(Terminate(deadline, "shutdown"))
    for cell in orphans:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        cell.join(left)


REPORT_WAITING = 10  # minions named in the one report of those still waiting for a worker


def report_stuck(cells: list[Cell], gru: Cell | None, hooks: HookDispatcher) -> bool:
    """Report each minion whose handler still runs after the deadline, by name; the ones
    only waiting for a worker to run their stop (queued behind such handlers) in one report
    on Gru. False when any minion was still running (the stop is then unclean)."""
    stuck = [c for c in cells if c.running()]
    if not stuck and gru is not None and gru.running():
        stuck.append(gru)  # only when no minion holds it up
    waiting = [c for c in stuck if c is not gru and not c.dispatcher.handling(c)]
    if gru is None:
        waiting = []
    queued = {id(c) for c in waiting}
    for cell in stuck:
        if id(cell) not in queued:
            hooks.lifecycle_error(
                cell, MinionsError(
                    f"{cell.describe()} did not stop before the shutdown deadline; its "
                    f"handler is still running on {cell.where()}"
                ), "shutdown",
            )
    if waiting and gru is not None:
        names = ", ".join(c.path for c in waiting[:REPORT_WAITING])
        more = f" and {len(waiting) - REPORT_WAITING} more" if len(waiting) > REPORT_WAITING else ""
        hooks.lifecycle_error(gru, MinionsError(
            f"{len(waiting)} minions had not stopped at the shutdown deadline, waiting for a "
            f"pool worker to run their stop while the handlers reported above held the "
            f"workers: {names}{more}"), "shutdown")
    return not stuck


def close_store(store: StateStore, deadline: float, hooks: HookDispatcher, gru: Cell | None,
                log: Logger | None) -> bool:
    """Flush and close the store; False when anything accepted was not written (the stop
    is then unclean). Each fault is reported through Gru's hooks, else logged (the store
    itself logs which paths were lost)."""
    faults: list[BaseException] = []
    try:
        store.close(max(1.0, deadline - time.monotonic()))
    except Exception as exc:
        faults.append(exc)
    lost = getattr(store.stats(), "lost", 0)
    if lost:
        faults.append(StateStoreError(
            f"{lost} snapshots or workflow records that were accepted could not be "
            f"written before the store was closed ({store.stats().last_error}); "
            "they are lost and the shutdown reports failure"
        ))
    for fault in faults:
        if gru is not None:
            hooks.lifecycle_error(gru, fault, "store-close")
        elif log is not None:
            log.error("state store close failed: {!r}", fault)
    return not faults


def shutdown_at_exit(shutdown: Callable[[], object], stopped: threading.Event) -> None:
    """Call ``shutdown`` when the main thread ends without having stopped the system.

    Minion threads are not daemons (a handler is never cut off mid-message), so a script
    that forgets ``shutdown()`` would otherwise hang at exit. ``threading``'s pre-join exit
    hook (the one ``concurrent.futures`` uses) runs before non-daemon threads are joined.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every CPython we support has it
        return
    try:
        register(lambda: shutdown() if not stopped.is_set() else None)
    except RuntimeError:  # the interpreter is already shutting down
        pass
