"""Internal envelopes and runtime (system) messages exchanged between cells.

User code never sees these, except :class:`~minions_actors.Terminated` which lives in
:mod:`minions_actors.minion`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from minions_actors.runtime.mailbox import RuntimeMessage

if TYPE_CHECKING:
    import pykka

    from minions_actors.runtime.cell import Cell


class Ask:
    """A message with a future to answer (``ask`` and proxy calls)."""

    __slots__ = ("future", "message")

    def __init__(self, message: Any, future: pykka.Future[Any]) -> None:
        self.message = message
        self.future = future


class StopRequest(RuntimeMessage):
    """``ref.stop()``: remove the minion for good once earlier messages are handled."""

    __slots__ = ()


class ExitRequest(RuntimeMessage):
    """``self.stop()`` inside a minion: a normal exit; its restart type decides what follows."""

    __slots__ = ()


EXIT = ExitRequest()


# --- system messages: handled before any queued user message ----------------------------


class ChildDown:
    """To a supervisor: a child's incarnation ended by crash (``exc``) or normal exit."""

    __slots__ = ("child", "exc", "incarnation")

    def __init__(self, child: Cell, incarnation: int, exc: BaseException | None) -> None:
        self.child = child
        self.incarnation = incarnation
        self.exc = exc


class Restart:
    """To a child: build a new incarnation at ``start_at`` (monotonic), then set ``started``
    (``failed``: building it crashed; a group restart starts no later child then)."""

    __slots__ = ("failed", "start_at", "started")

    def __init__(self, start_at: float, started: threading.Event | None = None) -> None:
        self.start_at = start_at
        self.started = started
        self.failed = False


class StopPending:
    """To a cell: ``ref.stop()`` was called; without a live incarnation, stop at once."""

    __slots__ = ()


class StopInstance:
    """To a child: stop the current incarnation (``on_stop``) and wait for a directive."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Halt:
    """To every cell when the system shuts down: drop the backlog queued before the halt
    mark at once (nobody keeps chewing it while the tree is stopped); what minions send
    afterwards is still handled until the ``Terminate`` from the parent arrives."""

    __slots__ = ()


class Terminate:
    """To a cell: stop children and the incarnation, then end the cell for good."""

    __slots__ = ("deadline", "reason")

    def __init__(self, deadline: float, reason: str) -> None:
        self.deadline = deadline
        self.reason = reason


# ---- workflow messages (handled by the workflow extension, see runtime.extensions)
@dataclass(frozen=True)
class StartWorkflow:
    """A message that starts a workflow: ``ref.ask(StartWorkflow("fulfil", "order-7", {...}))``
    returns its :class:`WorkflowInfo`. An id that exists already returns the existing one."""

    name: str
    workflow_id: str
    context: Mapping[str, Any] | None = None


class RunStep(RuntimeMessage):
    """Internal message: run the next step of ``workflow_id`` (stale when the token moved on)."""

    __slots__ = ("token", "workflow_id")

    def __init__(self, workflow_id: str, token: int) -> None:
        self.workflow_id = workflow_id
        self.token = token


class _NoSystemMessages(list):  # type: ignore[type-arg]
    """An async cell's runtime messages until its first (see ``Cell._queue_system``):
    shared, so never grown."""

    __slots__ = ()

    def append(self, msg: Any) -> None:
        raise RuntimeError("NO_SYSTEM_MESSAGES is shared: use Cell._queue_system()")

    def insert(self, index: Any, msg: Any) -> None:
        raise RuntimeError("NO_SYSTEM_MESSAGES is shared: use Cell._queue_system()")


#: an async cell's ``_sys`` until its first runtime message: most minions get none before
#: the shutdown, and a list per minion is one more object for the cyclic GC (its turns
#: read ``_sys`` afresh each time; a sync cell's batch keeps the list it read, so keeps one;
#: see ``Cell._queue_system``)
NO_SYSTEM_MESSAGES: list[Any] = _NoSystemMessages()
