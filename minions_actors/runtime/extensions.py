"""Where features above the runtime plug into a cell, so that the loop names none of them.

Workflows (:mod:`minions_actors.workflows`) register themselves here when imported (the
package imports them); the cell asks :attr:`Extensions.workflows` whether a class declares
workflows, builds its runner at an incarnation, and hands it the workflow messages
(:class:`~minions_actors.runtime.messages.StartWorkflow`, ``RunStep``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from minions_actors.records import WorkflowInfo
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.messages import RunStep
    from minions_actors.runtime.minion import Minion


class CellWorkflows(Protocol):
    """One minion's workflow runner, as the cell drives it and its minion's methods
    (``Minion.workflow``, ``retry_workflow``, ``discard_workflow``) call it."""

    def resume(self) -> None: ...

    def run_step(self, inst: Minion, msg: RunStep) -> None: ...

    def start(self, name: str, workflow_id: str, context: Mapping[str, Any] | None,
              answer: Callable[[Any], None] | None = None) -> Any: ...

    def get(self, workflow_id: str) -> WorkflowInfo | None: ...

    def retry(self, workflow_id: str) -> WorkflowInfo: ...

    def discard(self, workflow_id: str) -> bool: ...


class WorkflowSupport(Protocol):
    """What the runtime needs from the workflows feature."""

    def declared(self, cls: type) -> bool:
        """True when the minion class declares workflows."""
        ...

    def check_class(self, cls: type) -> None:
        """Check a minion class's workflow declarations when the class is created."""
        ...

    def runner(self, cell: Cell) -> CellWorkflows:
        """The runner of a new incarnation's workflows."""
        ...

    def unknown(self, describe: str, cls: type, name: str) -> Exception:
        """The error for starting a workflow the class does not declare."""
        ...


class Extensions:
    """The registered features (None until registered: a bare runtime has none)."""

    workflows: WorkflowSupport | None = None
