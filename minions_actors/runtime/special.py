"""The messages a cell handles other than plain tells: asks, proxy calls, stop and exit
requests, wake-ups, and those of the registered extensions (workflow steps and starts). The
hot loop sends each to its handler here through one table (:data:`SPECIAL` is that table's
keys), which grows as extensions register. These are methods of
:class:`~minions_actors.runtime.cell.Cell` (assigned in its class body).
"""

from __future__ import annotations

import contextlib
import functools
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from minions_actors.errors import RefusedUnsent, StateStoreWriteFailed
from minions_actors.observability.hooks import PHASE_MESSAGE, PHASE_SNAPSHOT
from minions_actors.runtime import messages as m
from minions_actors.runtime.extensions import CellExtension, Handler, on_register
from minions_actors.runtime.mailbox import HALT_MARK, WakeUp

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

PROXY = (ProxyCall, ProxyGetAttr, ProxySetAttr)


def phase_of(exc: BaseException) -> str:
    """The crash phase of a failed call through ``_invoke``: its snapshot was refused by a
    sync-mode store (``"snapshot"``), or the handler raised (``"message"``)."""
    return PHASE_SNAPSHOT if isinstance(exc, StateStoreWriteFailed) else PHASE_MESSAGE


def answer_ask(future: Any, value: Any) -> None:
    """Answer an ask from any thread (the store's writer, for a durable workflow start);
    a future answered already (its asker got an error) stays as it is."""
    try:  # (not contextlib.suppress: this runs once per answered ask)
        future.set(value)
    except queue.Full:
        pass


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


def dispatch_special(cell: Cell, inst: Minion, msg: Any) -> bool:
    """Handle one message that is not a plain tell; False when the incarnation ended."""
    return _HANDLERS[msg.__class__](cell, inst, msg)


def _wake_up(cell: Cell, inst: Minion, msg: WakeUp) -> bool:
    if msg is HALT_MARK:  # reached before its Halt: the backlog is already gone
        cell._mark_passed = True
    return True


def _ask(cell: Cell, inst: Minion, msg: m.Ask) -> bool:
    inner = msg.message
    extension_handler = _ASKED.get(inner.__class__)
    if extension_handler is not None:  # e.g. a workflow start
        try:
            return extension_handler(cell, inst, msg)
        finally:  # it may answer later from another thread: its asker no longer waits on us
            hand_off = getattr(msg.future, "_hand_off", None)
            if hand_off is not None:
                hand_off()
    handler: Callable[[Any], Any] = (
        functools.partial(cell._proxy_message, inst) if isinstance(inner, PROXY)
        else inst.on_receive
    )
    try:
        ok, value = cell._invoke(inst, handler, inner, RefusedUnsent)
    except RefusedUnsent as exc:  # the sender's error: the asker gets it, no crash
        fail_ask(msg, exc)
        return True
    if not ok:
        fail_ask(msg, value)
        cell._crash(value, phase_of(value))
        return False
    msg.future.set(value)
    return True


def fail_ask(msg: m.Ask, exc: BaseException) -> None:
    """Give the asker the handler's error (a future answered already stays as it is)."""
    fail_future(msg.future, exc)


def fail_future(future: Any, exc: BaseException) -> None:
    """Give ``future``'s asker ``exc`` (a future answered already stays as it is)."""
    with contextlib.suppress(queue.Full):
        future.set_exception(exc_info=(type(exc), exc, exc.__traceback__))


def _proxy_tell(cell: Cell, inst: Minion, msg: Any) -> bool:
    """Proxy ``.defer()``: a tell of a method call."""
    return cell._handle_told(inst, functools.partial(cell._proxy_message, inst), msg)


def _stop_request(cell: Cell, inst: Minion, msg: m.StopRequest) -> bool:
    cell._stop_requests += (msg,)
    cell._terminate(cell._stop_deadline(), "stopped")
    return False


def _exit_request(cell: Cell, inst: Minion, msg: m.ExitRequest) -> bool:
    cell._end_incarnation(crashed=False)
    cell._report_down(None)
    return False


_HANDLERS: dict[type, Handler] = {
    WakeUp: _wake_up, m.Ask: _ask, ProxyCall: _proxy_tell, ProxyGetAttr: _proxy_tell,
    ProxySetAttr: _proxy_tell, m.StopRequest: _stop_request, m.ExitRequest: _exit_request,
}
# The asked messages an extension handles (the whole Ask goes to its handler).
_ASKED: dict[type, Handler] = {}
# The classes the hot loop hands to ``dispatch_special`` (a set, as fast to test as a
# frozenset, so that registering an extension adds its messages in place).
SPECIAL = set(_HANDLERS)


def _add_extension(extension: CellExtension) -> None:
    for cls, handler in extension.told.items():
        if cls in _HANDLERS:
            raise ValueError(f"{cls.__name__} is handled already; {extension.key} cannot")
        _HANDLERS[cls] = handler
        SPECIAL.add(cls)
    _ASKED.update(extension.asked)


on_register(_add_extension)
