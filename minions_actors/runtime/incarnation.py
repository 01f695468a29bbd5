"""A cell's incarnations: building, restoring and starting a minion instance, ending it
(``on_stop``, or ``on_failure`` after a crash), reporting the exit to the supervisor, the
final stop, and the runtime messages that drive them (``handle_system``). What a supervisor
does with a child's exit is :mod:`.supervisor`'s. These are methods of
:class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any

from minions_actors.errors import SystemNotRunning
from minions_actors.observability.hooks import PHASE_INIT, PHASE_ON_START, PHASE_RESTORE
from minions_actors.runtime import messages as m
from minions_actors.runtime.extensions import used_by
from minions_actors.runtime.minion import Minion
from minions_actors.runtime.placement import CheckPlaced, check_placed
from minions_actors.runtime.supervisor import supervise_here

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.extensions import CellExtension, CellPart


def bind_base(inst: Minion) -> None:
    """Set the attributes ``Minion.__init__`` sets."""
    Minion.__init__(inst)


def start_incarnation(cell: Cell) -> bool:
    """Construct, restore and start a new instance; a failure counts as a crash."""
    failure = begin_incarnation(cell)
    if failure is not None:
        cell._crash(*failure)
        return False
    return True


def begin_incarnation(cell: Cell) -> tuple[BaseException, str] | None:
    """Construct, restore and start a new instance; on failure return the error and the
    phase it came in, for the caller to crash the minion with (``cell.instance`` is set:
    the instance that failed, whose ``on_failure`` runs)."""
    cell.incarnation += 1
    cell.restart_history = ()
    phase = PHASE_INIT
    restored = False
    inst: Minion | None = None
    try:
        cell.system.prepare_incarnation(cell)  # opens the class's resources, if any
        inst = cell._blank()
        cell._initialise(inst)
        phase = PHASE_RESTORE
        for extension in used_by(cell.cls):  # restore a snapshot, resume workflows
            part = cell.parts.get(extension.key) or cell._attach(extension)
            outcome = part.incarnation(inst)
            if outcome is None:  # the snapshot was quarantined: start from scratch
                phase = PHASE_INIT
                inst = cell._blank()
                cell._initialise(inst)
                phase = PHASE_RESTORE
            restored = restored or bool(outcome)
        phase = PHASE_ON_START
        cell.instance = inst
        cell._built = True
        cell._instance_changed()
        result = _hook(inst, "on_start")()
        if result is not None:  # an async minion's coroutine: it runs on the loop, and
            cell._adopt(result, PHASE_ON_START, restored)  # minion_started fires at its end
            return None
    except BaseException as exc:
        cell.instance = inst
        return exc, phase
    if cell.parent is not None:
        cell.hooks.minion_started(cell, restored)
    return None


def attach(cell: Cell, extension: CellExtension) -> CellPart:
    """Build ``extension``'s part of this cell; the cell runs its ``after`` after each
    message (one callable: two are chained)."""
    part = extension.attach(cell)
    cell.parts = {**cell.parts, extension.key: part}
    first, second = cell.after, part.after
    if first is None or second is None:
        cell.after = first or second
    else:
        def both(inst: Minion) -> None:
            first(inst)
            second(inst)

        cell.after = both
    return part


def blank(cell: Cell) -> Minion:
    """A new, not yet initialised instance, already ``last_instance`` (a proxy made
    inside ``__init__`` introspects it; a crash in ``__init__`` still gets its
    ``on_failure``)."""
    placement = cell.placement
    inst: Minion = (cell.cls.__new__(cell.cls) if placement is None
                    else placement.stand_in(cell.cls))
    # (not through ``inst.__dict__``: reading it builds a dict object, one more for the
    # cyclic GC per minion, where the attribute alone stays in the instance's own values)
    object.__setattr__(inst, "_minion_cell", cell)
    # the base attributes first, so a subclass that forgets super().__init__() works
    bind_base(inst)
    cell.last_instance = inst
    return inst


def initialise(cell: Cell, inst: Minion) -> None:
    """Run ``__init__`` with the spawn arguments."""
    inst.__init__(*cell.args, **cell.kwargs)  # type: ignore[misc]


def end_incarnation(cell: Cell, crashed: bool, exc: BaseException | None = None) -> None:
    """Stop the children, then run ``on_stop`` (or ``on_failure`` after a crash)."""
    inst, cell.instance = cell.instance, None
    cell._stop_children(cell._stop_deadline(), "parent-restart")
    if inst is None:
        parts_ended(cell)
        return
    try:
        result = None
        if crashed and exc is not None:
            result = _hook(inst, "on_failure")(type(exc), exc, exc.__traceback__)
        elif not crashed:
            result = _hook(inst, "on_stop")()
        if result is not None:
            cell._adopt(result, "on_failure" if crashed else "on_stop")
    except BaseException as err:
        cell.hooks.lifecycle_error(cell, err, "on_failure" if crashed else "on_stop")
    finally:
        parts_ended(cell)


def parts_ended(cell: Cell) -> None:
    """The incarnation ended: each extension part that defines ``ended`` drops what
    belonged to it (a minion's timers)."""
    for part in cell.parts.values():
        ended = getattr(part, "ended", None)
        if ended is not None:
            ended()


def _hook(inst: Minion, name: str) -> Any:
    """A lifecycle hook of ``inst``, typed as returning anything: an async minion's
    returns a coroutine (pykka types them as returning None)."""
    return getattr(inst, name)


def adopt(cell: Cell, result: Any, phase: str, restored: bool = False) -> None:
    """A lifecycle hook returned ``result`` (not None). Only an async minion's cell runs an
    awaitable (see :class:`~minions_actors.runtime.async_cell.AsyncCell`); here it is a bug."""
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # (no "never awaited" warning on top of this error)
        raise TypeError(
            f"{phase} of {cell.cls_name} returned an awaitable, but the minion is not async "
            f"(its class has no 'async def' handler or hook): write it as 'async def "
            f"{phase}' so that it runs on the event loop")


def crash(cell: Cell, exc: BaseException, phase: str) -> None:
    if isinstance(exc, SystemNotRunning) and not cell.system.accepting:
        # spawning children while the system shuts down: a race with shutdown, not a bug
        cell._end_incarnation(crashed=False)
        cell._report_down(None)
        return
    if not isinstance(exc, Exception):
        cell._stop_system(exc, phase)
        return
    cell.hooks.minion_crashed(cell, exc, phase)
    cell._end_incarnation(crashed=True, exc=exc)
    cell._report_down(exc)


def stop_system(cell: Cell, exc: BaseException, phase: str) -> None:
    """KeyboardInterrupt, SystemExit and other non-``Exception`` errors stop the whole
    system, as in pykka: a restart would swallow a Ctrl-C or a ``sys.exit()``. The
    minion handles nothing more; the shutdown stops it in the usual order (its
    ``on_stop`` runs if its instance was built). ``SystemExit(0)`` is a clean exit,
    not a crash."""
    clean = isinstance(exc, SystemExit) and exc.code in (0, None)
    if not clean:
        cell.hooks.minion_crashed(cell, exc, phase)
    if phase in (PHASE_INIT, PHASE_RESTORE):
        cell.instance = None  # nothing was started, so nothing to stop
    cell._interrupted = True
    cell.system.root_failed(None if clean else exc)


def report_down(cell: Cell, exc: BaseException | None) -> None:
    if cell.parent is None:
        cell.system.root_failed(exc)
    else:
        msg = m.ChildDown(cell, cell.incarnation, exc)
        if not supervise_here(cell.parent, msg):
            cell.parent.send_system(msg)


def terminate(cell: Cell, deadline: float, reason: str) -> None:
    cell.stop_reason = cell.stop_reason or reason  # also tells the parent we are stopping
    if deadline <= time.monotonic():
        # we come late (a stuck handler): our supervisor has moved on without us, so our
        # own subtree gets a stop_timeout rather than no time at all
        deadline = cell._stop_deadline()
    inst, cell.instance = cell.instance, None
    cell._stop_children(deadline, reason)
    if inst is not None:
        try:
            result = _hook(inst, "on_stop")()
            if result is not None:
                cell._adopt(result, "on_stop")
        except BaseException as err:
            cell.hooks.lifecycle_error(cell, err, "on_stop")
    parts_ended(cell)
    cell.terminated = True


def handle_system(cell: Cell, msg: Any) -> None:
    if isinstance(msg, m.ChildDown):
        cell._supervise(msg)
    elif isinstance(msg, m.Terminate):
        cell._terminate(msg.deadline, msg.reason)
    elif isinstance(msg, m.Halt):
        cell._drop_to_mark()
    elif isinstance(msg, m.StopInstance):
        if cell.instance is not None:
            cell._end_incarnation(crashed=False)
        msg.done.set()
    elif isinstance(msg, CheckPlaced):
        check_placed(cell, msg)
    elif isinstance(msg, m.StopPending):
        if cell.instance is None:  # crashed or waiting to restart: stop right away
            cell._terminate(cell._stop_deadline(), "stopped")
    elif isinstance(msg, m.Restart):
        if cell.thread is None:  # pooled: a backoff left parks the cell (no worker waits)
            if cell._park(msg):
                return
        else:
            with cell._sys_cond:  # the backoff; a stop or terminate request cuts it short
                while not (cell._terminate_requested or cell._stop_requested or cell.closing):
                    left = msg.start_at - time.monotonic()
                    if left <= 0:
                        break
                    cell._sys_cond.wait(left)
        try:
            if cell._stop_requested and not cell._terminate_requested:
                cell._terminate(cell._stop_deadline(), "stopped")
            elif not (cell._terminate_requested or cell.closing):
                msg.failed = not cell._start_incarnation()
        finally:
            if msg.started is not None:
                msg.started.set()
