"""The narrow interface a cell sees of the system that hosts it.

:class:`~minions_actors.ActorSystem` implements it; the runtime names only this protocol, so
that it never imports the system (the dependency points up the layers, never down again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from minions_actors.runtime import spawner
from minions_actors.support.signatures import signature_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from loguru import Logger

    from minions_actors.observability.hooks import Hooks
    from minions_actors.observability.metrics import MetricsHooks
    from minions_actors.records import WorkflowInfo
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.dispatch import Dispatcher, WorkerPool
    from minions_actors.runtime.loophost import LoopHost
    from minions_actors.runtime.ref import MinionRef
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
    def dispatcher(self) -> Dispatcher:
        """Where minions run unless they choose (the pool, or dedicated threads)."""
        ...

    @property
    def worker_pool(self) -> WorkerPool:
        """The shared worker pool (minions with ``dedicated_thread=False`` run there)."""
        ...

    @property
    def loop_host(self) -> LoopHost:
        """Where async minions' coroutines run (the runtime's loop, or the caller's)."""
        ...

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

    def prepares(self, cls: type) -> bool:
        """True when :meth:`prepare_incarnation` has work for minions of ``cls`` (which may
        block: an async minion's start then runs on the pool, not on its event loop)."""
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


class ResourcesAPI(Protocol):
    """``system.resources`` (:class:`~minions_actors.resources.registry.ResourceRegistry`)
    as a minion sees it: register, look up, ask the state."""

    def add(self, resource: Any, name: str | None = None) -> str: ...

    def get(self, name: str) -> Any: ...

    def state(self, name: str) -> str: ...

    def names(self) -> list[str]: ...


class SystemAPI(Host, Protocol):
    """The running :class:`~minions_actors.ActorSystem` as a minion reaches it through
    ``self.system``: the host interface and the system's public methods and attributes.

    The runtime names this protocol instead of importing the system (which sits above it),
    and users' type checkers see the real signatures. ``ActorSystem`` is checked against it
    (mypy, in ``system.py``), and a test checks that every public name of ``ActorSystem``
    is listed here: a new public method of the system is added to both.
    """

    metrics: MetricsHooks | None
    shutdown_timeout: float
    workflow_retention: float
    failure: BaseException | None

    @property
    def resources(self) -> ResourcesAPI: ...

    @property
    def log(self) -> Logger: ...

    @property
    def running(self) -> bool: ...

    @property
    def exit_code(self) -> int: ...

    @signature_of(spawner.spawn)
    def spawn(self, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`ActorSystem.spawn <minions_actors.ActorSystem.spawn>`."""
        ...

    def get(self, path: str) -> MinionRef[Any]: ...

    def find(self, path: str) -> MinionRef[Any] | None: ...

    def stop(self, path: str, timeout: float | None = None) -> bool: ...

    def cells(self) -> list[Cell]: ...

    def workflows(self, status: str | Iterable[str] | None = None,
                  minion: str | None = None) -> list[WorkflowInfo]: ...

    def workflow(self, workflow_id: str) -> WorkflowInfo | None: ...

    def wait_workflow(self, workflow_id: str, timeout: float | None = None) -> WorkflowInfo: ...

    def retry_workflow(self, workflow_id: str, timeout: float = 10.0) -> WorkflowInfo: ...

    def discard_workflow(self, workflow_id: str, timeout: float = 10.0) -> bool: ...

    def signal_workflow(self, workflow_id: str, name: str, payload: Any = None) -> int: ...

    def cancel_workflow(self, workflow_id: str, by: str = "api",
                        timeout: float = 10.0) -> WorkflowInfo: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    async def shutdown_async(self, timeout: float | None = None) -> bool: ...

    async def wait_async(self, timeout: float | None = None) -> bool: ...
