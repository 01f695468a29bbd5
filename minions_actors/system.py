"""`ActorSystem`: the façade scripts use to start, reach and stop a minions system.

``ActorSystem.start()`` wires, in order: logging, the state store, Gru (the root minion),
the Prometheus endpoint and signal handlers. ``shutdown()`` undoes them in reverse order.
One system runs per process at a time.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar, cast

from minions_actors.errors import AskTimeout, MinionNotFound, SystemAlreadyRunning, SystemNotRunning
from minions_actors.hosting import aio
from minions_actors.hosting import shutdown as _shutdown
from minions_actors.hosting.aio import Starting
from minions_actors.hosting.options import StartOptions
from minions_actors.hosting.registry import CellRegistry, find_cell
from minions_actors.hosting.reports import SystemReports
from minions_actors.hosting.signals import SignalHandlers
from minions_actors.hosting.workflow_inbox import InboxPoller
from minions_actors.hosting.workflows import SystemWorkflows
from minions_actors.observability.hooks import HookDispatcher
from minions_actors.observability.log_hooks import LoggingHooks
from minions_actors.observability.logs import LogSetup
from minions_actors.resources import declares_any
from minions_actors.resources.registry import ResourceRegistry
from minions_actors.runtime import spawner
from minions_actors.runtime.cell import Cell
from minions_actors.runtime.dispatch import DEDICATED, Dispatcher, WorkerPool
from minions_actors.runtime.host import RunningHost
from minions_actors.runtime.loophost import LoopHost
from minions_actors.runtime.minion import Gru
from minions_actors.support.signatures import options_of
from minions_actors.support.timer import Timer
from minions_actors.workflows import WorkflowWaiters

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.observability.metrics import MetricsHooks
    from minions_actors.persistence import StateStore
    from minions_actors.runtime.host import SystemAPI
    from minions_actors.runtime.ref import MinionRef

_DEFAULT = object()


class ActorSystem(SystemWorkflows, SystemReports):
    """A running minions system: Gru, its minions, and the services around them.

    Create it with :meth:`start`; do not instantiate it directly.
    """

    _lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(self, _token: object = None) -> None:
        if _token is not _DEFAULT:
            raise TypeError("create an ActorSystem with ActorSystem.start(...)")
        self.hooks = HookDispatcher()
        self._workflow_waiters = WorkflowWaiters()
        self.hooks.add(self._workflow_waiters)
        #: user resources (resources/): opened for their users, closed after the last
        self.resources = ResourceRegistry(self)
        self.hooks.add(self.resources)
        self.store: StateStore | None = None
        self.workflow_store: Any = None
        self.timer = Timer()
        self.worker_pool = WorkerPool(on_starved=self._worker_starved,
                                      on_error=self._pool_fault,
                                      on_saturated=self._pool_saturated)
        self.dispatcher: Dispatcher = self.worker_pool
        #: where async minions' coroutines run: the runtime's own loop (started at the first
        #: async spawn) or, under start_async(), the caller's
        self.loop_host = LoopHost(on_blocked=self._loop_blocked)
        self.workflow_retention = 7 * 24 * 3600.0
        self.metrics: MetricsHooks | None = None
        self.stop_timeout = 5.0
        self.shutdown_timeout = 10.0
        self.failure: BaseException | None = None
        self._logs: LogSetup | None = None
        self._log: Logger | None = None
        self._gru: Cell | None = None
        self._registry = CellRegistry()
        self._accepts = False
        self._shutdown = _shutdown.ShutdownState()
        self._signals = SignalHandlers(self._shutdown_on_signal, self._shutdown.stopped)

    # ================================================================== start
    @classmethod
    @options_of(StartOptions)
    def start(cls, **options: Any) -> ActorSystem:
        """Start the system for this process and return it.

        Every option is a keyword with a default (the signature lists them; what each
        one does: :doc:`configuration`), checked before anything starts: a bad value
        raises ``ValueError`` or ``TypeError``, an unknown keyword a ``TypeError`` naming
        the option it probably meant. Raises :class:`~minions_actors.SystemAlreadyRunning`
        if a system is already running in this process. The defaults give a state file
        ``minions.db`` in the working directory, metrics on ``127.0.0.1:8081``, file logs
        under ``logs/``, SIGTERM/SIGINT handled, minions on a shared worker pool.
        """
        return cls._start(StartOptions.of(options))

    @classmethod
    @options_of(StartOptions)
    def start_async(cls, **options: Any) -> Starting[ActorSystem]:
        """Start the system from a running event loop, whose async minions then run on it:
        ``system = await ActorSystem.start_async(...)`` or ``async with
        ActorSystem.start_async(...) as system:`` (the exit awaits :meth:`shutdown_async`).
        The same options as :meth:`start`; the start runs on a short-lived thread, so the
        loop is never blocked. Sync minions still run on the worker pool."""
        return Starting(cls._start, options)

    shutdown_async = aio.shutdown_async
    wait_async = aio.wait_async

    @classmethod
    def _start(cls, settings: StartOptions, loop_host: LoopHost | None = None,
               signals: bool = True) -> ActorSystem:
        """``start()`` with checked options; ``loop_host``: the caller's running loop, where
        async minions run (see ``start_async``); ``signals``: False when the caller installs
        the handlers itself (on its own thread)."""
        with cls._lock:
            running = cast("ActorSystem | None", RunningHost.host)
            if running is not None and not running._shutdown.stopped.is_set():
                raise SystemAlreadyRunning(
                    "an ActorSystem is already running in this process (one Gru per "
                    "process); call system.shutdown() or Gru.shutdown() before starting "
                    "another"
                )
            system = cls(_DEFAULT)
            if loop_host is not None:
                loop_host.on_blocked = system._loop_blocked
                system.loop_host = loop_host
            system.loop_host.lag_threshold = settings.loop_lag_threshold
            try:
                system._boot(settings)
            except BaseException:
                system._teardown(time.monotonic() + settings.shutdown_timeout)
                raise
            RunningHost.host = system
        _shutdown.shutdown_at_exit(system.shutdown, system._shutdown.stopped)
        if settings.handle_signals and signals:
            system._signals.install()
        system.hooks.system_started(system)
        return system

    def _configure(self, settings: StartOptions) -> None:
        self.stop_timeout = settings.stop_timeout
        self.shutdown_timeout = settings.shutdown_timeout
        self.workflow_retention = settings.workflow_retention
        self.worker_pool = WorkerPool(
            size=settings.pool_size, throughput=settings.pool_throughput,
            starvation_threshold=settings.starvation_threshold,
            max_workers=settings.pool_max_workers,
            spin_switch_interval=settings.pool_spin_switch_interval,
            on_starved=self._worker_starved,
            on_error=self._pool_fault, on_saturated=self._pool_saturated)
        self.dispatcher = self.worker_pool if settings.execution == "pooled" else DEDICATED

    def _boot(self, settings: StartOptions) -> None:
        """Logs, hooks, store, metrics, then Gru, then the resources given to start()."""
        self._configure(settings)
        self._logs = LogSetup(logger=settings.logger, log_sinks=tuple(settings.log_sinks),
                              options=settings.log_options())
        self._logs.install()
        self._log = self._logs.log
        self.hooks.on_error = self._hook_failed
        self.hooks.add(LoggingHooks(self._logs.log, settings.log_crash_window))
        for hook in settings.hooks:
            self.hooks.add(hook)
        from minions_actors.persistence.writer import use_store_logger

        use_store_logger(self._logs.log)  # store records carry the app's bound fields too
        if settings.state_store is not None:
            from minions_actors.persistence import open_state_store

            self.store = open_state_store(settings.state_store)
        self._open_workflow_store()
        if settings.metrics_port is not None:
            from minions_actors.observability.metrics import MetricsHooks

            metrics = MetricsHooks(self, host=settings.metrics_host, port=settings.metrics_port)
            if settings.serves_observer:
                from minions_actors.observer import attach

                self.hooks.add(attach(self, metrics, settings.observer_token))  # /observer
            metrics.start()
            self.metrics = metrics
            self.hooks.add(metrics, first=True)
        self._accepts = True
        gru = Cell(self, None, Gru, (), {}, "gru", "permanent", strategy=settings.supervision)
        self._gru = gru
        gru.dispatcher.start(gru)
        for resource in settings.resources:
            self.resources.add(resource)

    def _open_workflow_store(self) -> None:
        """Workflows live in the state store when it supports them, else in memory."""
        from minions_actors.persistence import InMemoryStateStore, supports_workflows

        store = self.store
        self.workflow_store = store if store is not None and supports_workflows(store) \
            else InMemoryStateStore()
        self._prune_workflows()
        InboxPoller(self).start()  # signals and cancels from other processes (the CLI)

    def _prune_workflows(self) -> None:
        """Delete completed workflows older than the retention, now and periodically."""
        if self._shutdown.stopped.is_set():
            return
        try:
            self.workflow_store.prune_workflows(time.time() - self.workflow_retention)
        except Exception as exc:
            if self._gru is not None:
                self.hooks.lifecycle_error(self._gru, exc, "prune-workflows")
        self.timer.call_later(min(3600.0, max(1.0, self.workflow_retention / 10)),
                              self._prune_workflows)

    @classmethod
    def current(cls) -> ActorSystem | None:
        """The running system of this process, or None."""
        system = cast("ActorSystem | None", RunningHost.host)
        if system is None or system._shutdown.stopped.is_set():
            return None
        return system

    # ================================================================== minions
    @property
    def log(self) -> Logger:
        """The loguru logger the runtime writes through (bound with ``minions=True``)."""
        if self._log is None:
            raise SystemNotRunning("the system has no logger before start()")
        return self._log

    spawn = spawner.spawn  # the one definition of spawn()'s options, shared with Minion

    def get(self, path: str) -> MinionRef[Any]:
        """The live minion at ``path`` (``"name"`` or ``"parent/child"``)."""
        return find_cell(self._root(), path).ref

    def find(self, path: str) -> MinionRef[Any] | None:
        """Like :meth:`get`, but returns None when there is no such minion."""
        try:
            return self.get(path)
        except MinionNotFound:
            return None

    def stop(self, path: str, timeout: float | None = None) -> bool:
        """Stop the minion at ``path`` for good (no restart); True when it stopped in time,
        False when it did not stop within the timeout or had stopped already."""
        try:
            return self.get(path).stop(timeout=self.stop_timeout if timeout is None else timeout)
        except AskTimeout:
            return False

    def prepare_incarnation(self, cell: Cell) -> None:
        """Called by ``cell`` before it builds an instance: open the resources its class
        declares (raising fails the start: a crash in phase ``init``)."""
        self.resources.acquire(cell)

    def prepares(self, cls: type) -> bool:
        """True when :meth:`prepare_incarnation` has work for ``cls`` (it declares
        resources, whose opening may block)."""
        return declares_any(cls)

    def cells(self) -> list[Cell]:
        """Live minions (Gru excluded): what metrics and introspection read."""
        return self._registry.cells()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted snapshot is durable; True when done in time."""
        if self.store is None:
            return True
        return self.store.flush(timeout)

    # ================================================================== lifecycle
    @property
    def running(self) -> bool:
        return not self._shutdown.stopped.is_set() and not self._shutdown.started

    @property
    def exit_code(self) -> int:
        """0 after a clean shutdown, 1 after an escalation at Gru or an unclean stop."""
        return 0 if self.failure is None and self._shutdown.clean else 1

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the system has stopped (True) or ``timeout`` passed (False)."""
        if not self._shutdown.wait(timeout):
            return False
        self._signals.restore()
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop everything gracefully; idempotent; True when it all stopped in time.

        Intake stops, minions stop children-first in reverse start order (each
        ``on_stop`` runs; messages still queued become dead letters), snapshots are flushed
        and the store closed, the metrics server stops, and only the log sinks the runtime
        added are removed. Called from inside a minion, it runs in the background.
        """
        timeout = self.shutdown_timeout if timeout is None else timeout
        state = self._shutdown
        aio.refuse_blocking_shutdown(self.loop_host, state.stopped.is_set())
        if state.claim():
            if _shutdown.on_minion_thread():
                _shutdown.in_background(lambda: self._do_shutdown(timeout))
                return True
            self._do_shutdown(timeout)
        elif _shutdown.on_minion_thread() or state.owner == threading.get_ident():
            # a minion cannot wait for its own stop, and a signal handler that interrupted
            # this thread's own shutdown (e.g. Gru.shutdown() on SIGTERM) must not wait for it
            return state.stopped.is_set() and state.clean
        state.stopped.wait(timeout)
        return state.stopped.is_set() and state.clean

    def root_failed(self, exc: BaseException | None) -> None:
        """Gru gave up (escalation) or exited: shut the system down with that status."""
        if exc is not None and self.failure is None:
            self.failure = exc
        if self._shutdown.claim():
            _shutdown.in_background(lambda: self._do_shutdown(self.shutdown_timeout))

    def _shutdown_on_signal(self) -> bool:
        """The signals thread's action: run the shutdown unless it already started."""
        if not self._shutdown.claim():
            return False
        self._do_shutdown(self.shutdown_timeout)
        return True

    def _do_shutdown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.hooks.system_stopping(self, self.failure)
        self._teardown(deadline)

    def _teardown(self, deadline: float) -> None:
        """Reverse of start; tolerant of a partial start."""
        self._accepts = False
        gru, state = self._gru, self._shutdown
        self.worker_pool.relieve()  # a handler that never returns holds no stop up
        _shutdown.stop_minions(self.cells, gru, deadline)
        self.timer.close(max(0.1, deadline - time.monotonic()))
        if not _shutdown.report_stuck(self.cells(), gru, self.hooks):
            state.clean = False
        self.worker_pool.close(max(0.0, deadline - time.monotonic()))  # (idle ones: see close)
        self.resources.close_all()  # before the loop closes: an async close() runs on it
        if not self.loop_host.close(max(0.0, deadline - time.monotonic())):
            state.clean = False
        if self.store is not None and not _shutdown.close_store(
                self.store, deadline, self.hooks, gru, self._log):
            state.clean = False
        if self.metrics is not None:
            self.metrics.close()
        self._signals.restore()
        self._signals.stop_thread()
        self.hooks.system_stopped(self, self.failure)
        if self._logs is not None:
            self._logs.close()
        from minions_actors.persistence.writer import use_store_logger

        use_store_logger(None)
        with ActorSystem._lock:
            if RunningHost.host is self:
                RunningHost.host = None
        state.stopped.set()

    # ================================================================== host interface
    def _root(self) -> Cell:
        gru = self._gru
        if gru is None or not self._accepts:
            raise SystemNotRunning(
                "the ActorSystem is shut down; start a new one with ActorSystem.start()"
            )
        return gru

    _spawning_cell = _root  # top-level minions are Gru's children

    @property
    def accepting(self) -> bool:
        """True while new minions are accepted (part of the cells' host interface)."""
        return self._accepts

    @property
    def shutdown_started(self) -> bool:
        """True once shutdown began (part of the cells' host interface)."""
        return self._shutdown.started

    def check_accepting(self) -> None:
        if not self._accepts:
            raise SystemNotRunning(
                "the ActorSystem is shutting down and accepts no new minions"
            )

    def register_cell(self, cell: Cell) -> None:
        self._registry.add(cell)

    def unregister_cell(self, cell: Cell) -> None:
        self._registry.remove(cell)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ActorSystem {state}, {len(self._registry)} minions>"


if TYPE_CHECKING:  # mypy checks that ActorSystem is what a minion's ``self.system`` promises
    _SYSTEM_API: type[SystemAPI] = ActorSystem
