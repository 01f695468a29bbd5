"""`Minion`, the base class users subclass, and the `Terminated` death-watch message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, TypeVar, cast

import pykka

from minions_actors.errors import MinionsError, WorkflowError
from minions_actors.runtime import spawner
from minions_actors.runtime.extensions import WORKFLOWS, Extensions, check_class
from minions_actors.runtime.host import RunningHost
from minions_actors.runtime.messages import StartWorkflow
from minions_actors.runtime.receive_timeout import receive_timeout, set_receive_timeout
from minions_actors.runtime.schedules import Schedules, schedules
from minions_actors.runtime.supervision import Backoff, OneForOne, Strategy
from minions_actors.runtime.timers import TimerScheduler, scheduler

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine, Mapping

    from minions_actors.records import WorkflowInfo
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.extensions import CellWorkflows
    from minions_actors.runtime.host import SystemAPI
    from minions_actors.runtime.ref import MinionRef


T = TypeVar("T")


@dataclass(frozen=True)
class Terminated:
    """Delivered to ``on_receive`` of a watcher when a watched minion stops for good."""

    ref: MinionRef[Any]
    path: str
    reason: str


class Minion(pykka.ThreadingActor):
    """An actor with a supervisor: subclass it and start it with ``system.spawn``.

    One mailbox, one message at a time, on the system's worker pool (or on a thread of its
    own: :attr:`dedicated_thread`). Plain messages go to
    :meth:`on_receive`; public methods can be called through ``ref.proxy()``. Override
    :meth:`snapshot` and :meth:`restore` to make the minion persistent. A minion that
    spawns children supervises them with its class attribute :attr:`strategy`.
    """

    strategy: ClassVar[Strategy] = OneForOne(max_restarts=3, within=5.0)
    """How this minion supervises its children (default: one-for-one, 3 restarts in 5 s)."""

    restore_failure: ClassVar[Literal["crash", "quarantine"]] = "crash"
    """What a :meth:`restore` that raises for the stored snapshot does: ``"crash"`` (the
    default: a crash, restarted and escalated like any other) or ``"quarantine"`` (the
    snapshot is moved to the store's quarantine, an ERROR is logged and counted, and the
    minion starts fresh from its constructor)."""

    observer_state: ClassVar[bool] = False
    """``True``: the observer page (docs/observer.md) shows this minion's stored snapshot
    (and a pipeline's position); by default it shows no state, which may hold secrets."""

    dedicated_thread: ClassVar[bool | None] = None
    """``True``: run this minion on a thread of its own (for handlers that block for long:
    a socket read loop, a long C call); ``False``: on the shared worker pool; ``None`` (the
    default): the system's ``execution`` mode. ``spawn(..., dedicated_thread=...)`` overrides
    it. pykka's ``use_daemon_thread`` applies to a dedicated thread."""

    max_concurrency: ClassVar[int] = 1
    """For an async minion (one with ``async def`` handlers): how many of its handlers may
    run at once, interleaved at their ``await`` points. The default, 1, is actor semantics:
    the next message starts when the previous handler's coroutine has finished, so state
    needs no locks. Higher values trade that for throughput (Ray's ``max_concurrency``)."""

    _minion_cell: Cell

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check declared workflows when the class is created, not when it first runs."""
        super().__init_subclass__(**kwargs)
        check_class(cls)  # by the registered extensions (none while the runtime defines Gru)

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        cell = getattr(self, "_minion_cell", None)  # (not __dict__: see incarnation.blank)
        if cell is None:
            name = type(self).__name__
            raise TypeError(
                f"{name} is a Minion: start it with system.spawn({name}, ...) or, inside "
                f"another minion, self.spawn({name}, ...); do not call the class directly"
            )
        # pykka's attributes (actor_urn, actor_inbox, actor_stopped, actor_ref) are
        # properties below, read from what survives restarts: none is stored per instance

    @classmethod
    def check_args(cls, *args: Any, **kwargs: Any) -> None:
        """Override to reject bad constructor arguments when ``spawn()`` is called.

        Runs in the caller's thread, before the minion exists; raise ``ValueError`` or
        ``TypeError`` with a message that says what to fix. A failure in ``__init__`` itself
        is a crash handled by the supervisor; this hook turns obvious mistakes into errors
        the caller sees at once.
        """

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> NoReturn:
        """Not used for minions: they are started by their supervisor."""
        raise TypeError(
            f"{cls.__name__}.start() is pykka's way; minions are started with "
            f"system.spawn({cls.__name__}, ...) so that they are supervised"
        )

    # -- identity --------------------------------------------------------------------
    @property
    def ref(self) -> MinionRef[Any]:
        """This minion's ref (the same object across restarts)."""
        return self._minion_cell.ref

    @property
    def actor_ref(self) -> Any:
        return self._minion_cell.ref

    @property
    def _actor_ref(self) -> Any:  # type: ignore[override]  # pykka's name for it
        return self._minion_cell.ref

    @property
    def actor_urn(self) -> str:  # type: ignore[override]
        return self._minion_cell.urn

    @property
    def actor_inbox(self) -> Any:  # type: ignore[override]
        return self._minion_cell.inbox

    @property
    def actor_stopped(self) -> Any:  # type: ignore[override]
        return self._minion_cell.stopped_event

    @property
    def path(self) -> str:
        """Slash-separated names from the top level, e.g. ``"parent/child"``."""
        return self._minion_cell.path

    @property
    def name(self) -> str:
        """This minion's name among its siblings."""
        return self._minion_cell.name

    @property
    def system(self) -> SystemAPI:
        """The running :class:`~minions_actors.ActorSystem` (typed by its public methods,
        :class:`~minions_actors.runtime.host.SystemAPI`, so that the runtime does not import
        the system)."""
        return cast("SystemAPI", self._minion_cell.system)  # the host is the ActorSystem

    @property
    def children(self) -> dict[str, MinionRef[Any]]:
        """Refs of the live children, by name, in start order."""
        return {c.name: c.ref for c in self._minion_cell.children_in_order()}

    # -- supervision -----------------------------------------------------------------
    spawn = spawner.spawn  # the one definition of spawn()'s options, shared with the system

    def _spawning_cell(self) -> Cell:
        return self._minion_cell

    def watch(self, ref: MinionRef[Any]) -> None:
        """Receive a :class:`Terminated` message when ``ref``'s minion stops for good."""
        self._minion_cell.watch(ref._cell)

    def unwatch(self, ref: MinionRef[Any]) -> None:
        """Stop watching ``ref``."""
        self._minion_cell.unwatch(ref._cell)

    def stop(self) -> None:
        """Exit normally once the messages already queued are handled.

        This is a *normal exit*, as in OTP: a ``"permanent"`` minion is restarted by its
        supervisor, ``"transient"`` and ``"temporary"`` ones are not. To remove a minion
        for good from outside, use ``ref.stop()`` or ``system.stop(path)``.
        """
        from minions_actors.runtime.messages import EXIT

        self._minion_cell.inbox.put(EXIT)

    # -- timers ----------------------------------------------------------------------
    @property
    def timers(self) -> TimerScheduler:
        """This minion's timers (Akka's ``TimerScheduler``): ``start_single``,
        ``start_periodic``, ``cancel``, ``is_active``, ``keys``. A restart or a stop cancels
        them; see the timers page of the docs."""
        return scheduler(self._minion_cell)

    @property
    def schedules(self) -> Schedules:
        """This persistent minion's durable schedules: ``start_single``, ``start_periodic``,
        ``start_cron``, ``start_workflow_cron``, ``cancel``, ``keys``. Stored in the state
        store, they survive restarts and the process; see the schedules page of the docs."""
        return schedules(self._minion_cell)

    def set_receive_timeout(self, seconds: float | None) -> None:
        """Receive a :class:`~minions_actors.ReceiveTimeout` after ``seconds`` with no
        message handled, again after each such idle period; None ends it. A restart or
        a stop ends it too (set it in ``__init__`` or ``on_start``)."""
        set_receive_timeout(self._minion_cell, seconds)

    @property
    def receive_timeout(self) -> float | None:
        """The receive timeout set with :meth:`set_receive_timeout` (None: none)."""
        return receive_timeout(self._minion_cell)

    # -- workflows -------------------------------------------------------------------
    def create_task(self, coro: Coroutine[Any, Any, T], *,
                    name: str | None = None) -> asyncio.Task[T]:
        """In an async minion's coroutine: start ``coro`` as a task of this incarnation.
        The runtime cancels it when the incarnation ends (a restart, a stop), and an error
        it raises crashes the minion (its supervisor decides what follows)."""
        cell = self._minion_cell
        create = getattr(cell, "create_task", None)
        if create is None or not cell.loop_host.on_loop():  # type: ignore[attr-defined]
            close = getattr(coro, "close", None)
            if close is not None:
                close()
            raise RuntimeError(
                f"create_task() runs in an async minion's coroutine, on its event loop; "
                f"{cell.cls_name} {'is not async' if create is None else 'called it elsewhere'}"
                f" (write the handler that calls it as 'async def')")
        return create(coro, name)  # type: ignore[no-any-return]

    def start_workflow(
        self, name: str, workflow_id: str, context: Mapping[str, Any] | None = None
    ) -> WorkflowInfo:
        """Start the workflow ``name`` (a :class:`~minions_actors.Workflow` attribute) with
        ``workflow_id`` as idempotency key: an id that exists already returns the existing
        workflow and runs nothing again. Its first step runs once the start is durable."""
        support = Extensions.workflows
        if support is None:
            raise WorkflowError(f"{self._minion_cell.describe()}: workflows are not available")
        return support.start(  # type: ignore[no-any-return]
            self._minion_cell, StartWorkflow(name, workflow_id, context))

    def workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """The current state of a workflow, or None when there is no such id."""
        return self._workflow_runner().get(workflow_id)

    def retry_workflow(self, workflow_id: str) -> WorkflowInfo:
        """Run a failed or aborted workflow of this minion again from the step it stopped at."""
        return self._workflow_runner().retry(workflow_id)

    def discard_workflow(self, workflow_id: str) -> bool:
        """Forget a workflow of this minion (stopping it if it runs); True if it existed."""
        return self._workflow_runner().discard(workflow_id)

    def _workflow_runner(self) -> CellWorkflows:
        runner: CellWorkflows | None = self._minion_cell.parts.get(WORKFLOWS)
        if runner is None:
            raise WorkflowError(f"{self._minion_cell.describe()} declares no workflows")
        return runner

    # -- hooks for users -------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        """Handle a plain message sent with ``tell`` or ``ask``; the return value is the
        reply to an ``ask``. The default counts unexpected messages as dead letters and
        ignores :class:`Terminated`."""
        if not isinstance(message, Terminated):
            self._minion_cell.count_dead_letter(message)

    def snapshot(self) -> Any:
        """Return this minion's state as JSON-serialisable data (override to persist)."""
        return None

    def restore(self, state: Any) -> None:
        """Load state returned earlier by :meth:`snapshot`; runs before :meth:`on_start`."""

    def __repr__(self) -> str:
        cell = getattr(self, "_minion_cell", None)
        return f"<{type(self).__name__} {cell.path if cell else '(not spawned)'}>"

    __str__ = __repr__


class Gru(Minion):
    """The root minion: one per process, supervising the top-level minions.

    ``Gru.shutdown()`` shuts down this process's running system; deployment guides call
    it on SIGTERM. It is safe to call when nothing runs, and more than once.
    """

    _minions_is_gru: ClassVar[bool] = True
    # The default of ActorSystem.start(strategy=): restarts back off up to 10 s and Gru gives
    # up 18-25 s after a top-level minion started failing for good, so a dependency outage is
    # ridden out here and, past that, by the shipped systemd unit (docs/deployment.md).
    strategy: ClassVar[Strategy] = OneForOne(
        max_restarts=8, within=60.0, backoff=Backoff(initial=0.1, maximum=10.0))

    @classmethod
    def shutdown(cls, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Gracefully shut down the running :class:`~minions_actors.ActorSystem`, if any."""
        host = RunningHost.host
        if host is None:
            return True
        return host.shutdown(timeout=timeout)

    def on_receive(self, message: Any) -> Any:
        raise MinionsError(f"Gru does not take messages (got {message!r}); spawn a minion")
