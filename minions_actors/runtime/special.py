"""The messages a cell handles other than plain tells: asks, proxy calls, workflow steps
and starts, stop and exit requests, wake-ups. The hot loop sends each to its handler here
through one table (:data:`SPECIAL` is that table's keys), built once. These are methods of
:class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import contextlib
import functools
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from minions_actors.errors import StateStoreError, StateStoreWriteFailed, WorkflowError
from minions_actors.observability.hooks import PHASE_MESSAGE, PHASE_SNAPSHOT
from minions_actors.runtime import messages as m
from minions_actors.runtime.extensions import Extensions
from minions_actors.runtime.mailbox import HALT_MARK, WakeUp

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

PROXY = (ProxyCall, ProxyGetAttr, ProxySetAttr)
# A StartWorkflow ask that fails with these is refused (the asker gets the error); the
# minion did nothing wrong and does not crash.
REFUSED_START = (WorkflowError, StateStoreError)


def phase_of(exc: BaseException) -> str:
    """The crash phase of a failed call through ``_invoke``: its snapshot was refused by a
    sync-mode store (``"snapshot"``), or the handler raised (``"message"``)."""
    return PHASE_SNAPSHOT if isinstance(exc, StateStoreWriteFailed) else PHASE_MESSAGE


def answer_ask(future: Any, value: Any) -> None:
    """Answer an ask from any thread (the store's writer, for a durable workflow start);
    a future answered already (its asker got an error) stays as it is."""
    with contextlib.suppress(queue.Full):
        future.set(value)


def _get_attr_path(root: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        root = getattr(root, name)
    return root


def proxy_message(inst: Any, msg: Any) -> Any:
    """Carry out a proxy message on ``inst``: call, read or set the attribute at its path."""
    if isinstance(msg, ProxyCall):
        return _get_attr_path(inst, msg.attr_path)(*msg.args, **msg.kwargs)
    if isinstance(msg, ProxyGetAttr):
        return _get_attr_path(inst, msg.attr_path)
    parent = _get_attr_path(inst, msg.attr_path[:-1])
    setattr(parent, msg.attr_path[-1], msg.value)
    return None


def forward_proxy(inst: Minion, msg: Any) -> Any:
    """A proxy message on this minion: forwarded by a placed minion's stand-in, else
    carried out here."""
    forward = getattr(inst, "_minion_forward", None)  # a placed minion's stand-in
    if forward is not None:
        return forward(msg)
    return proxy_message(inst, msg)


def start_workflow(cell: Cell, request: m.StartWorkflow,
                   answer: Callable[[Any], None] | None = None) -> Any:
    if cell.workflows is None:
        support = Extensions.workflows
        if support is None:
            raise WorkflowError(f"{cell.describe()}: workflows are not available")
        raise support.unknown(cell.describe(), cell.cls, request.name)
    return cell.workflows.start(request.name, request.workflow_id, request.context, answer)


def dispatch_special(cell: Cell, inst: Minion, msg: Any) -> bool:
    """Handle one message that is not a plain tell; False when the incarnation ended."""
    return _HANDLERS[msg.__class__](cell, inst, msg)


def _wake_up(cell: Cell, inst: Minion, msg: WakeUp) -> bool:
    if msg is HALT_MARK:  # reached before its Halt: the backlog is already gone
        cell._mark_passed = True
    return True


def _ask(cell: Cell, inst: Minion, msg: m.Ask) -> bool:
    inner = msg.message
    starting = inner.__class__ is m.StartWorkflow
    handler: Callable[[Any], Any] = (
        functools.partial(cell._proxy_message, inst) if isinstance(inner, PROXY)
        # a start is answered by the runner once its record is durable
        else functools.partial(cell.start_workflow,
                               answer=functools.partial(answer_ask, msg.future))
        if starting
        else inst.on_receive
    )
    try:
        ok, value = cell._invoke(inst, handler, inner,
                                 passthrough=REFUSED_START if starting else None)
    except REFUSED_START:  # a bad request or a start the store refused: no crash
        msg.future.set_exception()
        return True
    if not ok:
        with contextlib.suppress(queue.Full):  # a start may be answered already
            msg.future.set_exception(exc_info=(type(value), value, value.__traceback__))
        cell._crash(value, phase_of(value))
        return False
    if not starting:
        msg.future.set(value)
    return True


def _proxy_tell(cell: Cell, inst: Minion, msg: Any) -> bool:
    """Proxy ``.defer()``: a tell of a method call."""
    ok, value = cell._invoke(inst, functools.partial(cell._proxy_message, inst), msg)
    if not ok:
        cell._crash(value, phase_of(value))
    return ok


def _run_step(cell: Cell, inst: Minion, msg: m.RunStep) -> bool:
    assert cell.workflows is not None
    cell.workflows.run_step(inst, msg)
    if cell.snapshots is not None:
        try:
            cell.snapshots.after_message(inst)
        except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
            cell._crash(exc, "snapshot")
            return False
    return True


def _start_workflow_told(cell: Cell, inst: Minion, msg: m.StartWorkflow) -> bool:
    """Told, not asked: report a failed request, do not crash."""
    try:
        cell.start_workflow(msg)
    except Exception as exc:
        cell.hooks.lifecycle_error(cell, exc, "start_workflow")
    return True


def _stop_request(cell: Cell, inst: Minion, msg: m.StopRequest) -> bool:
    cell._stop_requests.append(msg)
    cell._terminate(cell._stop_deadline(), "stopped")
    return False


def _exit_request(cell: Cell, inst: Minion, msg: m.ExitRequest) -> bool:
    cell._end_incarnation(crashed=False)
    cell._report_down(None)
    return False


_HANDLERS: dict[type, Callable[[Cell, Minion, Any], bool]] = {
    WakeUp: _wake_up, m.Ask: _ask, ProxyCall: _proxy_tell, ProxyGetAttr: _proxy_tell,
    ProxySetAttr: _proxy_tell, m.RunStep: _run_step, m.StartWorkflow: _start_workflow_told,
    m.StopRequest: _stop_request, m.ExitRequest: _exit_request,
}
# The classes the hot loop hands to ``dispatch_special`` (a frozenset: the fastest test).
SPECIAL = frozenset(_HANDLERS)
