"""The options of ``ActorSystem.start()``: their one definition (names, types, defaults)
and their checks (:data:`START_RULES`), all made before anything starts.

``ActorSystem.start`` takes exactly these keywords (its signature is copied from
:class:`StartOptions`, so type checkers and the API reference show them), and
docs/configuration.md lists them with the values each rule allows.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger as _loguru

from minions_actors.observability.hooks import Hooks
from minions_actors.observability.logs import LogOptions
from minions_actors.resources import Resource
from minions_actors.runtime.dispatch import POOL_RULES, check_pool_options, execution_mode
from minions_actors.runtime.loophost import LAG_THRESHOLD
from minions_actors.runtime.minion import Gru
from minions_actors.runtime.pool_monitor import SPIN_SWITCH
from minions_actors.runtime.supervision import Strategy
from minions_actors.support.option_checks import Rule, flag, integer, seconds

if TYPE_CHECKING:
    from loguru import Logger

    from minions_actors.persistence import StateStore


def _resolves(host: str) -> bool:
    try:
        return bool(host) and bool(socket.getaddrinfo(host, None))
    except (OSError, UnicodeError):
        return False


def _makeable_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory, or can be made one (its nearest existing
    ancestor is a directory)."""
    here = Path(path)
    while not here.exists() and here.parent != here:
        here = here.parent
    return here.is_dir()


def _known_level(level: str | int) -> bool:
    if isinstance(level, int):
        return level >= 0
    try:
        _loguru.level(level)
    except ValueError:
        return False
    return True


def _each(kind: type) -> Rule:
    return Rule(f"an iterable of {kind.__name__} instances", (Iterable,),
                lambda items: all(isinstance(i, kind) for i in items), bad_value=TypeError)


#: the check of each option of ``start()`` that has one (logger, log_sinks, log_rotation,
#: log_retention go to loguru as they are; state_store is checked when it is opened)
_OWN_RULES: dict[str, Rule] = {
    "strategy": Rule("OneForOne, OneForAll or RestForOne", (Strategy,)),
    "metrics_port": integer(0, 65535, none="no metrics endpoint"),
    "metrics_host": Rule("a host name or IP address that resolves", (str,), _resolves),
    "observer": flag(none="served when metrics_host is a loopback address"),
    "observer_token": Rule("None (no actions on the observer page) or a str of 16 or more "
                           "characters", (str,), lambda t: len(t) >= 16),
    "handle_signals": flag(),
    "file_logs": flag(),
    "log_dir": Rule("a directory path (made if missing, with its parents), not a file",
                    (str, os.PathLike), _makeable_dir),
    "json_logs": flag(),
    "stderr_logs": flag(),
    "log_level": Rule("a loguru level name (TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, "
                      "CRITICAL or one added with logger.level()) or an int >= 0",
                      (str, int), _known_level),
    "log_diagnose": flag(),
    "log_crash_window": seconds(above=False),
    "stop_timeout": seconds(above=True),
    "shutdown_timeout": seconds(above=True),
    "workflow_retention": seconds(above=True),
    "loop_lag_threshold": seconds(above=True),
    "hooks": _each(Hooks),
    "resources": _each(Resource),
}
#: options checked only when the option they serve is on (a file, an endpoint)
_ONLY_WHEN = {"log_dir": "file_logs", "metrics_host": "metrics_port",
              "observer": "metrics_port", "observer_token": "observer_token"}
#: every checked option of ``start()``: docs/configuration.md quotes each ``allowed``
START_RULES: dict[str, Rule] = {**_OWN_RULES, **POOL_RULES}

@dataclass(frozen=True, kw_only=True)
class StartOptions:
    """Every keyword of ``ActorSystem.start()`` with its default; built by ``start()``,
    which fails here (``ValueError``, ``TypeError``) before anything runs."""

    state_store: str | os.PathLike[str] | StateStore | None = "minions.db"
    log_sinks: Iterable[Any] = ()
    logger: Logger | None = None
    metrics_port: int | None = 8081
    metrics_host: str = "127.0.0.1"
    observer: bool | None = None
    observer_token: str | None = None
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
    log_crash_window: float = LogOptions.log_crash_window
    stop_timeout: float = 5.0
    shutdown_timeout: float = 10.0
    hooks: Iterable[Hooks] = ()
    workflow_retention: float = 7 * 24 * 3600.0
    execution: str | None = None
    pool_size: int | None = None
    pool_throughput: int = 64
    starvation_threshold: float = 1.0
    pool_max_workers: int | None = None
    pool_spin_switch_interval: float | None = SPIN_SWITCH
    loop_lag_threshold: float = LAG_THRESHOLD
    resources: Iterable[Resource] = ()

    def __post_init__(self) -> None:
        # frozen: the normalised values are set through object.__setattr__
        setattr_ = object.__setattr__
        for name in ("hooks", "resources"):  # once: checking a generator would use it up
            if isinstance(getattr(self, name), Iterable):
                setattr_(self, name, tuple(getattr(self, name)))
        if self.strategy is None:
            setattr_(self, "strategy", Gru.strategy)
        for name, rule in _OWN_RULES.items():
            serves = getattr(self, _ONLY_WHEN[name]) if name in _ONLY_WHEN else True
            if serves is not None and serves is not False:  # metrics_port=0 serves
                rule.check(name, getattr(self, name))
        setattr_(self, "execution", execution_mode(self.execution))
        check_pool_options(self.pool_size, self.pool_throughput, self.starvation_threshold,
                           self.pool_max_workers, self.pool_spin_switch_interval)

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> StartOptions:
        """The checked options, or a ``TypeError`` that names an unknown keyword and the
        option it probably meant."""
        known = [f.name for f in dataclasses.fields(cls)]
        for name in options:
            if name not in known:
                import difflib  # (only for a misspelt option: not at start-up)

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

    @property
    def serves_observer(self) -> bool:
        """Whether the metrics server also serves the observer page (``observer``)."""
        if self.metrics_port is None or self.observer is False:
            return False
        if self.observer:
            return True
        addresses = socket.getaddrinfo(self.metrics_host, None)
        return all(ipaddress.ip_address(str(a[4][0]).split("%")[0]).is_loopback
                   for a in addresses)

    def log_options(self) -> LogOptions:
        """The logging part, as the log setup takes it."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(LogOptions)}
        return LogOptions(**{**values, "log_dir": str(self.log_dir)})
