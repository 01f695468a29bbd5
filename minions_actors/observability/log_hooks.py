"""The hooks that turn lifecycle events into log records (one record per event, nothing
per message), through the sinks :class:`~minions_actors.observability.logs.LogSetup` owns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minions_actors.errors import CancelSwallowed
from minions_actors.observability.crash_log import CrashLog, ordinal
from minions_actors.observability.hooks import Hooks, MinionView
from minions_actors.observability.logs import (
    GRU_CLASS,
    GRU_PATH,
    LogOptions,
    loguru_handlers,
    takes_runtime_debug,
)

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["LoggingHooks"]


class LoggingHooks(Hooks):
    """Writes one log record per lifecycle event, with the minion's path and class bound.

    Levels: system start/stop INFO (ERROR when stopped by a failure); crashes ERROR with the
    traceback, once per crash, but a crash storm's repeats (the same crash within
    ``crash_window`` seconds, see :mod:`~minions_actors.observability.crash_log`) one short
    ERROR line each, their restarts DEBUG; restarts WARNING; escalations and ``on_stop``
    errors ERROR; dead letters and snapshot errors WARNING/ERROR for the first one of a
    minion, DEBUG after; the messages a minion still had queued when it stopped, one WARNING
    with their count; a told message a minion refused (the sender's error), WARNING each.
    """

    def __init__(self, log: Logger, crash_window: float = LogOptions.log_crash_window,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.crashes = CrashLog(crash_window, clock)
        self._debug_seen: tuple[Any, bool] = (None, True)  # (handler table, debug wanted)

    def debug_wanted(self) -> bool:
        """Would any sink take a runtime DEBUG record? Loguru builds a whole record (about
        10 us) before its sinks drop it, and its threshold stays at DEBUG while the stand-in
        for its default handler is installed, so minions would pay that for every start and
        stop. The answer is kept until loguru replaces its handler table (on each add and
        remove); True when the table cannot be read."""
        handlers = loguru_handlers(self.log)
        if handlers is None:
            return True
        seen, wanted = self._debug_seen
        if seen is not handlers:
            wanted = any(takes_runtime_debug(h) for h in handlers.values())
            self._debug_seen = (handlers, wanted)  # one assignment: atomic for other threads
        return wanted

    def for_cell(self, cell: MinionView, workflow_id: str | None = None) -> Logger:
        """The runtime logger bound with ``minion``/``minion_class`` (and ``workflow_id``)."""
        if workflow_id is None:
            workflow_id = getattr(cell, "workflow_id", None)
        path = cell.path or GRU_PATH  # Gru's own cell has the empty path
        if workflow_id is None:
            return self.log.bind(minions=True, minion=path, minion_class=cell.cls_name)
        return self.log.bind(
            minions=True, minion=path, minion_class=cell.cls_name, workflow_id=workflow_id
        )

    def _system(self) -> Logger:
        return self.log.bind(minions=True, minion=GRU_PATH, minion_class=GRU_CLASS)

    def system_started(self, system: Any) -> None:
        self._system().info("minions system started")

    def system_stopping(self, system: Any, failure: BaseException | None) -> None:
        if failure is None:
            self._system().info("minions system shutting down")
        else:
            self._system().warning("minions system shutting down after a failure: {!r}", failure)

    def system_stopped(self, system: Any, failure: BaseException | None) -> None:
        if failure is None:
            self._system().info("minions system stopped")
        else:
            self._system().error("minions system stopped with a failure: {!r}", failure)

    def minion_started(self, cell: MinionView, restored: bool) -> None:
        if self.debug_wanted():
            self.for_cell(cell).debug(
                "minion {} started{}", cell.path, " (state restored)" if restored else ""
            )

    def minion_crashed(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        repeat = self.crashes.crashed(cell.path, exc)
        if repeat is None:
            self.for_cell(cell).opt(exception=exc).error(
                "minion {} ({}) crashed in {}: {!r}", cell.path, cell.cls_name, phase, exc
            )
            return
        if repeat.memo is None:  # bound and worded once per window: a storm's line is cheap
            repeat.memo = (self.for_cell(cell), f"minion {cell.path} crashed again: "
                           f"{repeat.kind} at {repeat.where} (",
                           f" time in {self.crashes.window:g} s, traceback as above)")
        log, head, tail = repeat.memo
        log.error(f"{head}{ordinal(repeat.count)}{tail}")  # (no arguments: not formatted again)

    def minion_restarting(self, cell: MinionView, delay: float, cause: str) -> None:
        if not self.crashes.restart_folded(cell.path, cause):
            level = "WARNING"
        elif self.debug_wanted():
            level = "DEBUG"
        else:
            return
        self.for_cell(cell).log(
            level, "minion {} restarting in {:.3f}s ({})", cell.path, delay, cause)

    def minion_stopped(self, cell: MinionView, reason: str) -> None:
        if self.debug_wanted():
            self.for_cell(cell).debug("minion {} stopped ({})", cell.path, reason)

    def lifecycle_error(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        if isinstance(exc, CancelSwallowed):  # the stop went on: a warning, no traceback
            self.for_cell(cell).warning("minion {}: {}", cell.path, exc)
            return
        self.for_cell(cell).opt(exception=exc).error(
            "minion {} raised in {} (ignored, shutdown continues): {!r}", cell.path, phase, exc
        )

    def escalated(self, cell: MinionView, exc: BaseException) -> None:
        self.for_cell(cell).opt(exception=exc).error(
            "minion {} exceeded its restart intensity and escalated: {!r}", cell.path, exc
        )

    def dead_letter(self, cell: MinionView, message: Any, first: bool) -> None:
        # Only the message type: message content may be large or sensitive.
        if not (first or self.debug_wanted()):
            return
        level = "WARNING" if first else "DEBUG"
        suffix = " (further dead letters to it are logged at DEBUG)" if first else ""
        self.for_cell(cell).log(
            level,
            "dead letter: a {} message reached stopped minion {}{}",
            type(message).__name__,
            cell.path,
            suffix,
        )

    def worker_starved(self, cell: MinionView, seconds: float) -> None:
        self.for_cell(cell).warning(
            "minion {} ({}) has blocked a pool worker for {:.1f}s in one handler; another "
            "worker was added meanwhile. If it blocks on purpose (a socket, a long call), "
            "spawn it with dedicated_thread=True", cell.path, cell.cls_name, seconds,
        )

    def loop_blocked(self, cell: MinionView | None, seconds: float, task: str | None) -> None:
        where = (f"minion {cell.path} ({cell.cls_name})" if cell is not None
                 else f"task {task!r}" if task is not None else "a callback")
        log = self.for_cell(cell) if cell is not None else self.log.bind(minions=True)
        log.warning(
            "the event loop of the async minions has been blocked for {:.2f}s by {}: a "
            "coroutine made a blocking call (time.sleep, a sync HTTP or database call); "
            "await an async version, or run it with asyncio.to_thread() or in a sync "
            "minion", seconds, where)

    def message_refused(self, cell: MinionView, message: Any, exc: BaseException) -> None:
        self.for_cell(cell).warning(
            "dead letter: minion {} refused a {} message (the sender's error): {}",
            cell.path, type(message).__name__, exc,
        )

    def messages_dropped(self, cell: MinionView, count: int) -> None:
        self.for_cell(cell).warning(
            "minion {} stopped with {} queued messages; they were dropped as dead letters",
            cell.path, count,
        )

    def workflow_started(self, cell: MinionView, info: Any, resumed: bool) -> None:
        # routine starts are DEBUG (thousands per second are normal); resumes are news
        if not (resumed or self.debug_wanted()):
            return
        log = self.for_cell(cell, info.workflow_id)
        (log.info if resumed else log.debug)(
            "workflow {} {} {} at step {!r}", info.name, info.workflow_id,
            "resumed" if resumed else "started", info.step,
        )

    def workflow_retrying(self, cell: MinionView, info: Any, step: str, exc: BaseException,
                          delay: float) -> None:
        self.for_cell(cell, info.workflow_id).warning(
            "workflow {} {} step {!r} failed (attempt {}): {!r}; retrying in {:.3f}s",
            info.name, info.workflow_id, step, info.attempts, exc, delay,
        )

    def workflow_finished(self, cell: MinionView, info: Any, exc: BaseException | None) -> None:
        log = self.for_cell(cell, info.workflow_id)
        if info.status == "failed":
            log.opt(exception=exc).error(
                "workflow {} {} failed at step {!r}: {}", info.name, info.workflow_id,
                info.step, info.error,
            )
        elif info.status in ("aborted", "cancelled"):
            log.warning("workflow {} {} {} at step {!r}: {}", info.name,
                        info.workflow_id, info.status, info.step, info.error)
        elif self.debug_wanted():
            log.debug("workflow {} {} completed", info.name, info.workflow_id)

    def snapshot_quarantined(self, cell: MinionView, exc: BaseException) -> None:
        self.for_cell(cell).opt(exception=exc).error(
            "minion {} ({}): restore() raised for its stored snapshot, which was moved to the "
            "store's quarantine; the minion starts fresh: {!r}",
            cell.path,
            cell.cls_name,
            exc,
        )

    def snapshot_error(self, cell: MinionView, exc: BaseException, first: bool) -> None:
        log = self.for_cell(cell)
        if first:
            log.opt(exception=exc).error(
                "minion {} cannot be snapshotted, its state is not persisted: {!r}"
                " (repeats are logged at DEBUG)",
                cell.path,
                exc,
            )
        else:
            log.debug("minion {} snapshot failed again: {!r}", cell.path, exc)
