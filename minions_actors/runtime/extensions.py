"""The one interface through which features attach to a cell, so that the loop names none.

A :class:`CellExtension` says whether a minion class uses it, builds the part it keeps in a
cell (:class:`CellPart`) at the cell's first incarnation, and names the message classes it
handles. Its part runs at each incarnation (restore, resume) and may give a callable that
runs after each successfully handled message (a snapshot). Features register themselves
with :func:`register` when imported: snapshots (:mod:`minions_actors.runtime.snapshots`) and
workflows (:mod:`minions_actors.workflows`); ``import minions_actors`` imports both. A bare
runtime has none and runs minions without them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from minions_actors.records import WorkflowInfo
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.messages import RunStep, StartWorkflow
    from minions_actors.runtime.minion import Minion

#: A handler of one message class: ``(cell, instance, message)``, False when the
#: incarnation ended (it crashed or stopped), as the runtime's own handlers.
Handler = Callable[["Cell", "Minion", Any], bool]
#: The workflows' key in ``cell.parts`` (the runner, a :class:`CellWorkflows`).
WORKFLOWS = "workflows"
#: A cell's parts before any extension attached (shared, never written).
NO_PARTS: Mapping[str, Any] = MappingProxyType({})


class CellPart(Protocol):
    """What one extension keeps in one cell (built once per cell, kept across restarts)."""

    @property
    def after(self) -> Callable[[Minion], None] | None:
        """Runs after each successfully handled message, or None. It may raise
        :class:`~minions_actors.errors.StateStoreWriteFailed`: the message is then not
        acknowledged and the incarnation crashes in phase ``"snapshot"``."""
        ...

    def incarnation(self, inst: Minion) -> bool | None:
        """At each incarnation, after ``__init__`` and before ``on_start``: True when it
        gave ``inst`` stored state, False when not, None when ``inst`` must be discarded
        and a fresh one built (an unloadable snapshot was set aside)."""
        ...


class CellExtension(Protocol):
    """A feature that attaches to the cells of the minion classes that use it."""

    @property
    def key(self) -> str:
        """Where a cell keeps this extension's part (``cell.parts[key]``)."""
        ...

    @property
    def told(self) -> Mapping[type, Handler]:
        """The message classes it handles when told, with their handlers."""
        ...

    @property
    def asked(self) -> Mapping[type, Handler]:
        """The message classes it handles when asked (the handler gets the ``Ask``)."""
        ...

    def used_by(self, cls: type) -> bool:
        """True when the minion class uses this feature (once per class: cached)."""
        ...

    def check_class(self, cls: type) -> None:
        """Check a minion class's declarations when the class is created."""
        ...

    def attach(self, cell: Cell) -> CellPart:
        """The part of a cell whose class uses this feature, at its first incarnation."""
        ...


class OnUse:
    """A base for an extension attached on first use, never by class (timers, receive
    timeouts, the observer's restart): it answers no asks and checks no class."""

    asked: Mapping[type, Handler] = {}

    def used_by(self, cls: type) -> bool:
        return False

    def check_class(self, cls: type) -> None:
        return None


def part_of(cell: Cell, extension: CellExtension) -> Any:
    """``cell``'s part of ``extension``, attached now if it has none yet."""
    part = cell.parts.get(extension.key)
    return cell._attach(extension) if part is None else part


class CellWorkflows(Protocol):
    """One minion's workflow runner (the workflows' part), as its minion's methods
    (``Minion.workflow``, ``retry_workflow``, ``discard_workflow``) call it."""

    def run_step(self, inst: Minion, msg: RunStep) -> None: ...

    def start(self, name: str, workflow_id: str, context: Mapping[str, Any] | None,
              answer: Callable[[Any], None] | None = None) -> Any: ...

    def get(self, workflow_id: str) -> WorkflowInfo | None: ...

    def retry(self, workflow_id: str) -> WorkflowInfo: ...

    def discard(self, workflow_id: str) -> bool: ...


class WorkflowSupport(CellExtension, Protocol):
    """The workflows extension, as ``Minion.start_workflow`` reaches it."""

    def start(self, cell: Cell, request: StartWorkflow,
              answer: Callable[[Any], None] | None = None) -> Any:
        """Start the workflow ``request`` names on ``cell``'s minion (or raise
        :class:`~minions_actors.errors.WorkflowError`: the class declares no such one)."""
        ...


class Extensions:
    """The registered features (None until registered: a bare runtime has none)."""

    workflows: WorkflowSupport | None = None


_registered: list[CellExtension] = []
_listeners: list[Callable[[CellExtension], None]] = []


def register(extension: CellExtension) -> None:
    """Attach ``extension`` to the cells of the classes that use it (idempotent by key)."""
    if any(e.key == extension.key for e in _registered):
        return
    _registered.append(extension)
    used_by.cache_clear()
    for listener in _listeners:
        listener(extension)


def on_register(listener: Callable[[CellExtension], None]) -> None:
    """Call ``listener`` with each extension registered so far and from now on (the
    runtime's table of special messages follows the registered extensions)."""
    _listeners.append(listener)
    for extension in _registered:
        listener(extension)


def registered() -> tuple[CellExtension, ...]:
    """The registered extensions, in registration order."""
    return tuple(_registered)


@functools.lru_cache(maxsize=1024)
def used_by(cls: type) -> tuple[CellExtension, ...]:
    """The registered extensions that minion class ``cls`` uses, in registration order."""
    return tuple(e for e in _registered if e.used_by(cls))


def check_class(cls: type) -> None:
    """Let each registered extension check a new minion class."""
    for extension in _registered:
        extension.check_class(cls)
