"""What the system does with the reports of its runtime parts: a starving or saturated
pool, a blocked event loop, a failing hook (mixed into ``ActorSystem``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from minions_actors.errors import MinionNotFound
from minions_actors.hosting.registry import find_cell
from minions_actors.runtime.loophost import minion_path

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.observability.hooks import HookDispatcher, Hooks
    from minions_actors.runtime.cell import Cell


class SystemReports:
    """Mixed into ``ActorSystem``, which sets these attributes."""

    hooks: HookDispatcher
    _log: Logger | None
    _gru: Cell | None

    def _worker_starved(self, cell: Cell, seconds: float) -> None:
        self.hooks.worker_starved(cell, seconds)

    def _loop_blocked(self, task: str | None, seconds: float) -> None:
        path, gru = minion_path(task), self._gru
        cell = None
        if path and gru is not None:
            with contextlib.suppress(MinionNotFound):
                cell = find_cell(gru, path)
        self.hooks.loop_blocked(cell, seconds, task)

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

    def _hook_failed(self, hook_name: str, observer: Hooks, exc: BaseException) -> None:
        """A hook raised: log it with the hook's and the observer's names (never swallow)."""
        if self._log is not None:
            self._log.opt(exception=exc).error(
                "hook {} of observer {} raised {}: {}", hook_name, type(observer).__name__,
                type(exc).__name__, exc)
