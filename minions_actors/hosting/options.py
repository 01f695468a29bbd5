"""The options of ``ActorSystem.start()``: their one definition (names, types, defaults)
and their checks, all made before anything starts.

``ActorSystem.start`` takes exactly these keywords (its signature is copied from
:class:`StartOptions`, so type checkers and the API reference show them), and
docs/configuration.md lists them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from minions_actors.observability.logs import LogOptions
from minions_actors.runtime.dispatch import check_pool_options, execution_mode
from minions_actors.runtime.minion import Gru
from minions_actors.runtime.supervision import Strategy

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.observability.hooks import Hooks
    from minions_actors.persistence import StateStore
    from minions_actors.resources import Resource

@dataclass(frozen=True, kw_only=True)
class StartOptions:
    """Every keyword of ``ActorSystem.start()`` with its default; built by ``start()``,
    which fails here (``ValueError``, ``TypeError``) before anything runs."""

    state_store: str | os.PathLike[str] | StateStore | None = "minions.db"
    log_sinks: Iterable[Any] = ()
    logger: Logger | None = None
    metrics_port: int | None = 8081
    metrics_host: str = "127.0.0.1"
    strategy: Strategy | None = None
    handle_signals: bool = True
    file_logs: bool = LogOptions.file_logs
    log_dir: str | os.PathLike[str] = LogOptions.log_dir
    json_logs: bool = LogOptions.json_logs
    stderr_logs: bool = LogOptions.stderr_logs
    log_level: str | int = LogOptions.log_level
    log_rotation: str | int = LogOptions.log_rotation
    log_retention: str | int = LogOptions.log_retention
    log_diagnose: bool = LogOptions.log_diagnose
    stop_timeout: float = 5.0
    shutdown_timeout: float = 10.0
    hooks: Iterable[Hooks] = ()
    workflow_retention: float = 7 * 24 * 3600.0
    execution: str | None = None
    pool_size: int | None = None
    pool_throughput: int = 64
    starvation_threshold: float = 1.0
    pool_max_workers: int | None = None
    resources: Iterable[Resource] = ()

    def __post_init__(self) -> None:
        # frozen: the normalised values are set through object.__setattr__
        setattr_ = object.__setattr__
        setattr_(self, "execution", execution_mode(self.execution))
        check_pool_options(self.pool_size, self.pool_throughput, self.starvation_threshold,
                           self.pool_max_workers)
        if self.strategy is None:
            setattr_(self, "strategy", Gru.strategy)
        if not isinstance(self.strategy, Strategy):
            raise TypeError(
                f"strategy must be OneForOne, OneForAll or RestForOne, got {self.strategy!r}"
            )
        for label in ("stop_timeout", "shutdown_timeout", "workflow_retention"):
            value = getattr(self, label)
            if not value > 0:
                raise ValueError(f"{label} must be > 0 seconds, got {value!r}")

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> StartOptions:
        """The checked options, or a ``TypeError`` that names an unknown keyword and the
        option it probably meant."""
        known = [f.name for f in dataclasses.fields(cls)]
        for name in options:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"ActorSystem.start() got an unexpected keyword argument {name!r}{hint} "
                    f"(the options are listed in docs/configuration.md)"
                )
        return cls(**options)

    @property
    def supervision(self) -> Strategy:
        """How Gru supervises the top-level minions (the default filled in)."""
        assert self.strategy is not None  # set in __post_init__
        return self.strategy

    def log_options(self) -> LogOptions:
        """The logging part, as the log setup takes it."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(LogOptions)}
        return LogOptions(**{**values, "log_dir": str(self.log_dir)})
