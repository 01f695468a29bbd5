"""`ActorSystem`: the façade scripts use to start, reach and stop a minions system.

``ActorSystem.start()`` wires, in order: logging, the state store, Gru (the root minion),
the Prometheus endpoint and signal handlers. ``shutdown()`` undoes them in reverse order.
One system runs per process at a time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from minions_actors.errors import AskTimeout, MinionNotFound, SystemAlreadyRunning, SystemNotRunning
from minions_actors.observability.hooks import HookDispatcher, Hooks
from minions_actors.observability.logs import LogOptions
from minions_actors.resources.registry import ResourceRegistry
from minions_actors.runtime.cell import Cell, current_cell
from minions_actors.runtime.dispatch import (
    DEDICATED,
    Dispatcher,
    WorkerPool,
    check_pool_options,
    execution_mode,
)
from minions_actors.runtime.host import RunningHost
from minions_actors.runtime.mailbox import Overflow
from minions_actors.runtime.messages import Terminate
from minions_actors.runtime.minion import Gru, Minion
from minions_actors.runtime.supervision import OneForOne, Strategy
from minions_actors.support.timer import Timer
from minions_actors.workflows import WorkflowError, WorkflowWaiters

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.observability.logs import LogSetup
    from minions_actors.observability.metrics import MetricsHooks
    from minions_actors.persistence import StateStore
    from minions_actors.resources import Resource
    from minions_actors.runtime.host import SystemAPI
    from minions_actors.runtime.placement import Placement
    from minions_actors.runtime.ref import MinionRef
    from minions_actors.workflows import WorkflowInfo

_DEFAULT = object()
_SIGNAL_POLL = 0.2  # seconds: the longest a signal can wait for the main thread in wait()


class ActorSystem:
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
        self.workflow_retention = 7 * 24 * 3600.0
        self.metrics: MetricsHooks | None = None
        self.stop_timeout = 5.0
        self.shutdown_timeout = 10.0
        self.failure: BaseException | None = None
        self._logs: LogSetup | None = None
        self._log: Logger | None = None
        self._gru: Cell | None = None
        self._cells: dict[Cell, None] = {}
        self._cells_lock = threading.RLock()  # re-entrant: a signal handler may shut down mid-spawn
        self._accepts = False
        self._shutdown_lock = threading.RLock()
        self._shutting_down = False
        self._stopped = threading.Event()
        self._clean = True
        self._old_signals: dict[int, Any] = {}
        self._signals_seen = 0
        self._signal_pipe: tuple[int, int] | None = None
        self._signal_thread: threading.Thread | None = None
        self._shutdown_owner: int | None = None

    # ================================================================== start
    @classmethod
    def start(
        cls,
        *,
        state_store: str | os.PathLike[str] | StateStore | None = "minions.db",
        log_sinks: Iterable[Any] = (),
        logger: Logger | None = None,
        metrics_port: int | None = 8081,
        metrics_host: str = "127.0.0.1",
        strategy: Strategy | None = None,
        handle_signals: bool = True,
        file_logs: bool = LogOptions.file_logs,
        log_dir: str | os.PathLike[str] = LogOptions.log_dir,
        json_logs: bool = LogOptions.json_logs,
        stderr_logs: bool = LogOptions.stderr_logs,
        log_level: str | int = LogOptions.log_level,
        log_rotation: str | int = LogOptions.log_rotation,
        log_retention: str | int = LogOptions.log_retention,
        log_diagnose: bool = LogOptions.log_diagnose,
        stop_timeout: float = 5.0,
        shutdown_timeout: float = 10.0,
        hooks: Iterable[Hooks] = (),
        workflow_retention: float = 7 * 24 * 3600.0,
        execution: str | None = None,
        pool_size: int | None = None,
        pool_throughput: int = 64,
        starvation_threshold: float = 1.0,
        pool_max_workers: int | None = None,
        resources: Iterable[Resource] = (),
    ) -> ActorSystem:
        """Start the system for this process and return it.

        ``state_store``: ``"minions.db"`` (default, in the working directory), another
        path, a :class:`~minions_actors.StateStore`, or ``None`` for a stateless run.
        ``metrics_port``: Prometheus endpoint on ``metrics_host`` (``None`` disables it).
        ``strategy``: how Gru supervises top-level minions (default one-for-one, 3
        restarts within 5 s). ``handle_signals``: SIGTERM/SIGINT shut down gracefully
        (main thread only). ``stop_timeout`` bounds each minion's stop,
        ``shutdown_timeout`` the whole shutdown. Raises
        :class:`~minions_actors.SystemAlreadyRunning` if a system is already running.
        ``workflow_retention``: completed workflows are pruned after this many seconds
        (default 7 days); failed and aborted ones stay until retried or discarded.
        ``log_diagnose=True`` lets the runtime's log sinks print local variables in
        tracebacks (loguru's ``diagnose``; off by default: they hold message contents).
        ``execution``: ``"pooled"`` (default; ``$MINIONS_EXECUTION`` when None) runs minions
        in turns on a shared pool of ``pool_size`` workers (default from the CPU count),
        ``pool_throughput`` messages per turn; a handler stuck longer than
        ``starvation_threshold`` seconds is reported and its worker replaced, up to
        ``pool_max_workers`` workers. ``"dedicated"`` gives every minion its own thread.
        ``resources``: :class:`~minions_actors.Resource` instances to register (each under
        its default name; ``system.resources.add()`` registers more, or by another name).
        """
        execution = execution_mode(execution)
        check_pool_options(pool_size, pool_throughput, starvation_threshold, pool_max_workers)
        if strategy is None:
            strategy = OneForOne(max_restarts=3, within=5.0)
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"strategy must be OneForOne, OneForAll or RestForOne, got {strategy!r}"
            )
        for label, value in (("stop_timeout", stop_timeout),
                             ("shutdown_timeout", shutdown_timeout),
                             ("workflow_retention", workflow_retention)):
            if not value > 0:
                raise ValueError(f"{label} must be > 0 seconds, got {value!r}")
        with cls._lock:
            running = cast("ActorSystem | None", RunningHost.host)
            if running is not None and not running._stopped.is_set():
                raise SystemAlreadyRunning(
                    "an ActorSystem is already running in this process (one Gru per "
                    "process); call system.shutdown() or Gru.shutdown() before starting "
                    "another"
                )
            system = cls(_DEFAULT)
            system.stop_timeout = stop_timeout
            system.shutdown_timeout = shutdown_timeout
            system.workflow_retention = workflow_retention
            system._configure_pool(execution, pool_size, pool_throughput,
                                   starvation_threshold, pool_max_workers)
            try:
                system._boot(
                    state_store=state_store, log_sinks=log_sinks, logger=logger,
                    metrics_port=metrics_port, metrics_host=metrics_host, strategy=strategy,
                    file_logs=file_logs, log_dir=log_dir, json_logs=json_logs,
                    stderr_logs=stderr_logs, log_level=log_level, log_rotation=log_rotation,
                    log_retention=log_retention, log_diagnose=log_diagnose, hooks=hooks,
                )
                for resource in resources:
                    system.resources.add(resource)
            except BaseException:
                system._teardown(time.monotonic() + shutdown_timeout)
                raise
            RunningHost.host = system
        _shutdown_at_exit(system)
        if handle_signals:
            system._install_signal_handlers()
        system.hooks.system_started(system)
        return system

    def _configure_pool(self, execution: str, size: int | None, throughput: int,
                        starvation_threshold: float, max_workers: int | None) -> None:
        self.worker_pool = WorkerPool(
            size=size, throughput=throughput, starvation_threshold=starvation_threshold,
            max_workers=max_workers, on_starved=self._worker_starved,
            on_error=self._pool_fault, on_saturated=self._pool_saturated)
        self.dispatcher = self.worker_pool if execution == "pooled" else DEDICATED

    def _worker_starved(self, cell: Cell, seconds: float) -> None:
        self.hooks.worker_starved(cell, seconds)

    def _pool_saturated(self, max_workers: int) -> None:
        """Every pool worker waits and the cap forbids another: say so (once per episode),
        since the minions queued meanwhile cannot run until a wait ends."""
        if self._log is not None:
            self._log.warning(
                "every worker of the pool waits and pool_max_workers ({}) is reached: minions "
                "queued on the pool cannot run until a wait ends (asks with a timeout raise "
                "AskTimeout, waits without one hang); raise pool_max_workers, or give minions "
                "that wait for long dedicated_thread=True", max_workers)

    def _pool_fault(self, exc: BaseException) -> None:
        gru = self._gru
        if gru is not None:
            self.hooks.lifecycle_error(gru, exc, "worker-pool")

    def _boot(
        self, *, state_store: Any, log_sinks: Iterable[Any], logger: Logger | None,
        metrics_port: int | None, metrics_host: str, strategy: Strategy, file_logs: bool,
        log_dir: Any, json_logs: bool, stderr_logs: bool, log_level: str | int,
        log_rotation: str | int, log_retention: str | int, log_diagnose: bool,
        hooks: Iterable[Hooks],
    ) -> None:
        from minions_actors.observability.logs import LoggingHooks, LogSetup

        self._logs = LogSetup(logger=logger, log_sinks=tuple(log_sinks), options=LogOptions(
            file_logs=file_logs, log_dir=str(log_dir), json_logs=json_logs,
            stderr_logs=stderr_logs, log_level=log_level, log_rotation=log_rotation,
            log_retention=log_retention, log_diagnose=log_diagnose,
        ))
        self._logs.install()
        self._log = self._logs.log
        self.hooks.on_error = self._hook_failed
        self.hooks.add(LoggingHooks(self._logs.log))
        for hook in hooks:
            self.hooks.add(hook)
        from minions_actors.persistence.writer import use_store_logger

        use_store_logger(self._logs.log)  # store records carry the app's bound fields too
        if state_store is not None:
            from minions_actors.persistence import open_state_store

            self.store = open_state_store(state_store)
        self._open_workflow_store()
        if metrics_port is not None:
            from minions_actors.observability.metrics import MetricsHooks

            metrics = MetricsHooks(self, host=metrics_host, port=metrics_port)
            metrics.start()
            self.metrics = metrics
            self.hooks.hooks.insert(0, metrics)
        self._accepts = True
        gru = Cell(self, None, Gru, (), {}, "gru", "permanent", strategy=strategy)
        self._gru = gru
        gru.dispatcher.start(gru)

    def _open_workflow_store(self) -> None:
        """Workflows live in the state store when it supports them, else in memory."""
        from minions_actors.persistence import InMemoryStateStore, supports_workflows

        store = self.store
        self.workflow_store = store if store is not None and supports_workflows(store) \
            else InMemoryStateStore()
        self._prune_workflows()

    def _prune_workflows(self) -> None:
        """Delete completed workflows older than the retention, now and periodically."""
        if self._stopped.is_set():
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
        if system is None or system._stopped.is_set():
            return None
        return system

    # ================================================================== minions
    @property
    def log(self) -> Logger:
        """The loguru logger the runtime writes through (bound with ``minions=True``)."""
        if self._log is None:
            raise SystemNotRunning("the system has no logger before start()")
        return self._log

    def spawn(
        self,
        cls: type[Minion],
        *args: Any,
        name: str | None = None,
        restart: str = "permanent",
        mailbox_size: int | None = None,
        mailbox_overflow: Overflow = "block",
        mailbox_put_timeout: float = 1.0,
        dedicated_thread: bool | None = None,
        placement: Placement | None = None,
        **kwargs: Any,
    ) -> MinionRef[Any]:
        """Start a top-level minion supervised by Gru and return its ref at once.

        ``args``/``kwargs`` go to the class's constructor (checked now: a mismatch raises
        :class:`~minions_actors.SpawnError`). The minion is built and started on its own
        thread; a failure there is a crash handled by Gru's strategy. ``restart`` is
        ``"permanent"``, ``"transient"`` or ``"temporary"``. ``mailbox_size`` bounds the
        mailbox; when full, ``tell`` waits up to ``mailbox_put_timeout`` seconds
        (``mailbox_overflow="block"``) or fails at once (``"raise"``) with
        :class:`~minions_actors.MailboxFull`. ``dedicated_thread=True`` runs it on a
        thread of its own, ``False`` on the worker pool (default: the class's
        ``dedicated_thread``, else the system's ``execution`` mode). ``placement`` says
        where the minion's code runs: in this process (None, the default) or in a child
        process (:class:`~minions_actors.ChildProcess`, on a dedicated thread here); the
        ref, supervision and state stay here.
        """
        return self._root().spawn_child(
            cls, args, kwargs, name=name, restart=restart, mailbox_size=mailbox_size,
            mailbox_overflow=mailbox_overflow, mailbox_put_timeout=mailbox_put_timeout,
            dedicated_thread=dedicated_thread,
            placement=placement,
        )

    def get(self, path: str) -> MinionRef[Any]:
        """The live minion at ``path`` (``"name"`` or ``"parent/child"``)."""
        cell = self._root()
        walked: list[str] = []
        for part in path.strip("/").split("/"):
            with cell.children_lock:
                child = cell.children.get(part)
                siblings = sorted(cell.children)
            if child is None or child.terminated:
                where = "/".join(walked) or "the top level"
                raise MinionNotFound(
                    f"no live minion at {path!r}: {part!r} is not among the children of "
                    f"{where} ({', '.join(siblings) or 'none'})"
                )
            walked.append(part)
            cell = child
        return cell.ref

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

    def cells(self) -> list[Cell]:
        """Live minions (Gru excluded): what metrics and introspection read."""
        with self._cells_lock:
            return list(self._cells)

    # ================================================================== workflows
    def workflows(self, status: str | Iterable[str] | None = None,
                  minion: str | None = None) -> list[WorkflowInfo]:
        """Workflows in the store (``status``: running, completed, aborted, failed)."""
        from minions_actors.workflows import WorkflowInfo

        return [WorkflowInfo.of(r)
                for r in self.workflow_store.workflows(minion_path=minion, status=status)]

    def workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """One workflow by id, or None."""
        from minions_actors.workflows import WorkflowInfo

        rec = self.workflow_store.get_workflow(workflow_id)
        return WorkflowInfo.of(rec) if rec is not None else None

    def wait_workflow(self, workflow_id: str, timeout: float | None = None) -> WorkflowInfo:
        """Block until the workflow is no longer running and return its final info
        (``status`` completed, failed or aborted).

        Woken by the workflow's end, not by polling. Raises
        :class:`~minions_actors.WorkflowTimeout` (a ``TimeoutError``) when it is still
        running after ``timeout`` seconds, :class:`~minions_actors.WorkflowError` for an
        unknown id or when called by the minion that runs it (its steps need that thread),
        and :class:`~minions_actors.SystemNotRunning` when the system shuts down first.
        """
        caller = current_cell()

        def read() -> WorkflowInfo | None:
            info = self.workflow(workflow_id)
            if (info is not None and info.status == "running" and caller is not None
                    and info.minion == caller.path):
                raise WorkflowError(
                    f"{caller.describe()} cannot wait for its own workflow {workflow_id!r}: "
                    "its steps run on the thread that would be waiting"
                )
            return info

        return self._workflow_waiters.wait(read, workflow_id, timeout)

    def retry_workflow(self, workflow_id: str, timeout: float = 10.0) -> WorkflowInfo:
        """Run a failed or aborted workflow again from the step where it stopped.

        Its minion must be running (the retry runs on its thread)."""
        info: WorkflowInfo = (
            self._owner(workflow_id).proxy().retry_workflow(workflow_id).get(timeout=timeout)
        )
        return info

    def discard_workflow(self, workflow_id: str, timeout: float = 10.0) -> bool:
        """Forget a workflow; a running one is stopped first by its minion, if alive."""
        rec = self.workflow_store.get_workflow(workflow_id)
        if rec is None:
            return False
        owner = self.find(rec.minion_path)
        if owner is not None and owner.is_alive():
            return bool(owner.proxy().discard_workflow(workflow_id).get(timeout=timeout))
        return bool(self.workflow_store.delete_workflow(workflow_id))

    def _owner(self, workflow_id: str) -> MinionRef[Any]:
        rec = self.workflow_store.get_workflow(workflow_id)
        if rec is None:
            raise WorkflowError(f"no workflow with id {workflow_id!r}")
        owner = self.find(rec.minion_path)
        if owner is None:
            raise WorkflowError(
                f"workflow {workflow_id!r} belongs to {rec.minion_path!r}, which is not "
                f"running: spawn it (the retry then runs there) or use the CLI on the file"
            )
        return owner

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted snapshot is durable; True when done in time."""
        if self.store is None:
            return True
        return self.store.flush(timeout)

    # ================================================================== lifecycle
    @property
    def running(self) -> bool:
        return not self._stopped.is_set() and not self._shutting_down

    @property
    def exit_code(self) -> int:
        """0 after a clean shutdown, 1 after an escalation at Gru or an unclean stop."""
        return 0 if self.failure is None and self._clean else 1

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the system has stopped (True) or ``timeout`` passed (False)."""
        # On the main thread, wake up now and then: CPython runs signal handlers only when
        # the main thread executes Python code, and a signal can land on a foreign thread.
        poll = _SIGNAL_POLL if threading.current_thread() is threading.main_thread() else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = left if poll is None else poll if left is None else min(poll, left)
            if self._stopped.wait(step):
                self._restore_signal_handlers()
                return True
            if left is not None and time.monotonic() >= deadline:  # type: ignore[operator]
                return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop everything gracefully; idempotent; True when it all stopped in time.

        Intake stops, minions stop children-first in reverse start order (each
        ``on_stop`` runs; messages still queued become dead letters), snapshots are flushed
        and the store closed, the metrics server stops, and only the log sinks the runtime
        added are removed. Called from inside a minion, it runs in the background.
        """
        timeout = self.shutdown_timeout if timeout is None else timeout
        first = self._claim_shutdown()
        if first:
            if self._on_minion_thread():
                self._shutdown_in_background(timeout)
                return True
            self._do_shutdown(timeout)
        elif self._on_minion_thread() or self._shutdown_owner == threading.get_ident():
            # a minion cannot wait for its own stop, and a signal handler that interrupted
            # this thread's own shutdown (e.g. Gru.shutdown() on SIGTERM) must not wait for it
            return self._stopped.is_set() and self._clean
        self._stopped.wait(timeout)
        return self._stopped.is_set() and self._clean

    @staticmethod
    def _on_minion_thread() -> bool:
        """True on a minion's own thread (a thread-local: no lock, safe in a signal handler)."""
        return current_cell() is not None

    def _shutdown_in_background(self, timeout: float) -> None:
        def run() -> None:
            from minions_actors.support.signals import block_shutdown_signals

            block_shutdown_signals()  # a second signal must reach the main thread
            self._do_shutdown(timeout)

        threading.Thread(target=run, name="minions-shutdown", daemon=False).start()

    def root_failed(self, exc: BaseException | None) -> None:
        """Gru gave up (escalation) or exited: shut the system down with that status."""
        if exc is not None and self.failure is None:
            self.failure = exc
        if self._claim_shutdown():
            self._shutdown_in_background(self.shutdown_timeout)

    def _claim_shutdown(self) -> bool:
        """Mark the shutdown as started; True for the one caller that gets to run it. A
        caller that is not a minion records its thread, so a nested call from that thread
        (a signal handler interrupting it) does not wait for itself."""
        with self._shutdown_lock:
            first = not self._shutting_down
            self._shutting_down = True
            if first and not self._on_minion_thread():
                self._shutdown_owner = threading.get_ident()
        return first

    def _do_shutdown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.hooks.system_stopping(self, self.failure)
        self._teardown(deadline)

    def _hook_failed(self, hook_name: str, observer: Hooks, exc: BaseException) -> None:
        """A hook raised: log it with the hook's and the observer's names (never swallow)."""
        if self._log is not None:
            self._log.opt(exception=exc).error(
                "hook {} of observer {} raised {}: {}", hook_name, type(observer).__name__,
                type(exc).__name__, exc)

    def _teardown(self, deadline: float) -> None:
        """Reverse of start; tolerant of a partial start."""
        self._accepts = False
        gru = self._gru
        self._stop_minions(gru, deadline)
        self.timer.close(max(0.1, deadline - time.monotonic()))
        self._report_stuck(gru)
        self.worker_pool.close(max(0.0, deadline - time.monotonic()))  # (idle ones: see close)
        if self.store is not None:
            self._close_store(gru, deadline)
        if self.metrics is not None:
            self.metrics.close()
        self._restore_signal_handlers()
        self._stop_signal_thread()
        self.hooks.system_stopped(self, self.failure)
        if self._logs is not None:
            self._logs.close()
        from minions_actors.persistence.writer import use_store_logger

        use_store_logger(None)
        with ActorSystem._lock:
            if RunningHost.host is self:
                RunningHost.host = None
        self._stopped.set()

    def _close_store(self, gru: Cell | None, deadline: float) -> None:
        """Flush and close the store; anything accepted but not written makes the stop
        unclean (False, exit code 1) and is reported (the store logs which paths)."""
        assert self.store is not None
        try:
            self.store.close(max(1.0, deadline - time.monotonic()))
        except Exception as exc:
            self._clean = False
            self._report_store_fault(gru, exc)
        lost = getattr(self.store.stats(), "lost", 0)
        if lost:
            from minions_actors.errors import StateStoreError

            self._clean = False
            self._report_store_fault(gru, StateStoreError(
                f"{lost} snapshots or workflow records that were accepted could not be "
                f"written before the store was closed ({self.store.stats().last_error}); "
                "they are lost and the shutdown reports failure"
            ))

    def _report_store_fault(self, gru: Cell | None, exc: BaseException) -> None:
        if gru is not None:
            self.hooks.lifecycle_error(gru, exc, "store-close")
        elif self._log is not None:
            self._log.error("state store close failed: {!r}", exc)

    def _stop_minions(self, gru: Cell | None, deadline: float) -> None:
        """Halt every minion at once, then stop the tree children-first through Gru, then
        whatever is left under an abandoned (stuck) minion; wait until ``deadline``."""
        self.worker_pool.relieve()  # a handler that never returns holds no stop up
        for cell in self.cells():  # from now on no backlog is handled, only minions' last words
            cell.halt()
        if gru is not None:
            if not gru.stopped_event.is_set():
                gru.send_system(Terminate(deadline, "shutdown"))
            # Gru waits for its children until the deadline itself: a little grace
            gru.join(max(0.0, deadline - time.monotonic()) + 0.5)
        orphans = self.cells()
        for cell in reversed(orphans):  # youngest first: children before their parents
            cell.send_system(Terminate(deadline, "shutdown"))
        for cell in orphans:
            cell.join(max(0.0, deadline - time.monotonic()))

    def _report_stuck(self, gru: Cell | None) -> None:
        """Report each minion still running after the deadline; the stop is then unclean."""
        stuck = [c for c in self.cells() if c.running()]
        if not stuck and gru is not None and gru.running():
            stuck.append(gru)  # only when no minion holds it up
        if stuck:
            self._clean = False
            from minions_actors.errors import MinionsError

            for cell in stuck:
                self.hooks.lifecycle_error(
                    cell, MinionsError(
                        f"{cell.describe()} did not stop before the shutdown deadline; its "
                        f"handler is still running on {cell.where()}"
                    ), "shutdown",
                )

    # ================================================================== signals
    def _install_signal_handlers(self) -> None:
        """Install SIGTERM/SIGINT handlers (main thread only) and the thread that acts on
        them: a handler may interrupt the main thread anywhere, even inside our own locks,
        so it only writes a byte to a pipe (async-signal-safe) and this thread does the rest.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        read_fd, write_fd = os.pipe()
        self._signal_pipe = (read_fd, write_fd)
        self._signal_thread = threading.Thread(
            target=self._signal_loop, args=(read_fd,), name="minions-signals", daemon=False
        )
        self._signal_thread.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._old_signals[signum] = signal.signal(signum, self._on_signal)

    def _signal_loop(self, read_fd: int) -> None:
        """Wait for a signal byte; start the graceful shutdown, or quit on b"q"."""
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()
        try:
            while True:
                byte = os.read(read_fd, 1)
                if not byte or byte == b"q":
                    return
                if self._claim_shutdown():
                    self._do_shutdown(self.shutdown_timeout)
                    return
        finally:
            os.close(read_fd)

    def _stop_signal_thread(self) -> None:
        pipe, self._signal_pipe = self._signal_pipe, None
        if pipe is None:
            return
        thread = self._signal_thread
        try:
            os.write(pipe[1], b"q")
        finally:
            os.close(pipe[1])
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _restore_signal_handlers(self) -> None:
        """Put back the handlers we replaced; only possible on the main thread.

        After a shutdown that ran on another thread, our handler stays installed until the
        main thread next returns from :meth:`wait` or receives a signal, and then hands
        the signal back to the previous handler.
        """
        if self._old_signals and threading.current_thread() is threading.main_thread():
            for signum, handler in self._old_signals.items():
                signal.signal(signum, handler)
            self._old_signals.clear()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stopped.is_set():  # a stale handler: give the signal back
            self._restore_signal_handlers()
            signal.raise_signal(signum)
            return
        self._signals_seen += 1
        if self._signals_seen > 1:
            os._exit(128 + signum)  # second signal: fast exit, as documented
        pipe = self._signal_pipe
        if pipe is not None:
            os.write(pipe[1], b"s")  # no locks here: the signals thread does the shutdown

    # ================================================================== internals
    def _root(self) -> Cell:
        gru = self._gru
        if gru is None or not self._accepts:
            raise SystemNotRunning(
                "the ActorSystem is shut down; start a new one with ActorSystem.start()"
            )
        return gru

    @property
    def accepting(self) -> bool:
        """True while new minions are accepted (part of the cells' host interface)."""
        return self._accepts

    @property
    def shutdown_started(self) -> bool:
        """True once shutdown began (part of the cells' host interface)."""
        return self._shutting_down

    def check_accepting(self) -> None:
        if not self._accepts:
            raise SystemNotRunning(
                "the ActorSystem is shutting down and accepts no new minions"
            )

    def register_cell(self, cell: Cell) -> None:
        with self._cells_lock:
            self._cells[cell] = None

    def unregister_cell(self, cell: Cell) -> None:
        with self._cells_lock:
            self._cells.pop(cell, None)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ActorSystem {state}, {len(self._cells)} minions>"


if TYPE_CHECKING:  # mypy checks that ActorSystem is what a minion's ``self.system`` promises
    _SYSTEM_API: type[SystemAPI] = ActorSystem


def _shutdown_at_exit(system: ActorSystem) -> None:
    """Shut ``system`` down when the main thread ends without having done it.

    Minion threads are not daemons (a handler is never cut off mid-message), so a script
    that forgets ``shutdown()`` would otherwise hang at exit. ``threading``'s pre-join exit
    hook (the one ``concurrent.futures`` uses) runs before non-daemon threads are joined.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every CPython we support has it
        return
    try:
        register(lambda: system.shutdown() if not system._stopped.is_set() else None)
    except RuntimeError:  # the interpreter is already shutting down
        pass

