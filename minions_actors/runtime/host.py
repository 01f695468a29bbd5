"""The narrow interface a cell sees of the system that hosts it.

:class:`~minions_actors.ActorSystem` implements it; the runtime names only this protocol, so
that it never imports the system (the dependency points up the layers, never down again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from minions_actors.observability.hooks import Hooks
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.snapshots import SnapshotStore
    from minions_actors.support.timer import Timer


class Host(Protocol):
    """What a cell needs from its host: hooks, the timer, the stores, the registry of cells,
    whether spawning is accepted, and where a failure at the root goes."""

    @property
    def hooks(self) -> Hooks: ...

    @property
    def timer(self) -> Timer: ...

    @property
    def store(self) -> SnapshotStore | None: ...

    @property
    def workflow_store(self) -> Any: ...

    @property
    def stop_timeout(self) -> float: ...

    @property
    def accepting(self) -> bool:
        """True while the system accepts new minions (False before start and in shutdown)."""
        ...

    @property
    def shutdown_started(self) -> bool:
        """True once shutdown began (the cells stop starting incarnations)."""
        ...

    def check_accepting(self) -> None:
        """Raise :class:`~minions_actors.SystemNotRunning` unless new minions are accepted."""
        ...

    def prepare_incarnation(self, cell: Cell) -> None:
        """Called before the cell builds an instance (the system opens the user resources
        its class declares); raising fails the start: a crash in phase ``init``."""
        ...

    def register_cell(self, cell: Cell) -> None:
        """A new cell exists (it can be found by path from now on)."""
        ...

    def unregister_cell(self, cell: Cell) -> None:
        """The cell stopped for good."""
        ...

    def root_failed(self, exc: BaseException | None) -> None:
        """Gru stopped: shut the system down, with a failure status when ``exc`` is set."""
        ...

    def shutdown(self, timeout: float | None = None) -> bool:
        """Shut the system down gracefully (idempotent); False when anything was lost."""
        ...


class RunningHost:
    """This process's one running host (one Gru per process); set by the system while it
    runs, so that ``Gru.shutdown()`` finds it without importing the system."""

    host: Host | None = None
