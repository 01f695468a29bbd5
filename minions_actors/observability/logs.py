"""Logging for the runtime: the loguru sinks the system owns and their options.

The runtime never calls ``logger.remove()`` without an id: :class:`LogSetup` remembers the
handler ids it added and removes exactly those, so a user's own sinks survive shutdown.
The hooks that write to them are :class:`~minions_actors.observability.log_hooks.LoggingHooks`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger as _global_logger

if TYPE_CHECKING:
    from loguru import Logger, Record

__all__ = [
    "GRU_CLASS",
    "GRU_PATH",
    "LOG_FILE_NAME",
    "LogOptions",
    "LogSetup",
    "is_runtime_record",
    "loguru_handlers",
    "takes_runtime_debug",
]

#: Name of the log file created under ``log_dir``.
LOG_FILE_NAME = "minions.log"
#: ``extra["minion"]`` / ``extra["minion_class"]`` of records about the system as a whole.
GRU_PATH = "gru"
GRU_CLASS = "Gru"

_LOG_FILE_MODE = 0o600


def _compute_lib_dirs_once() -> None:
    """Make loguru compute its library directories once per process, not per handler.

    Every ``logger.add`` builds an exception formatter that lists the interpreter's library
    directories from ``sysconfig`` (7-9 ms here, and a start and stop add four handlers);
    they do not change while the process runs. Left as it is when loguru's internals moved.
    """
    try:
        from loguru._better_exceptions import ExceptionFormatter
    except ImportError:  # pragma: no cover - another loguru layout: only slower
        return
    compute = ExceptionFormatter.__dict__.get("_get_lib_dirs")
    if isinstance(compute, staticmethod) and not hasattr(compute.__func__, "cache_info"):
        ExceptionFormatter._get_lib_dirs = staticmethod(  # type: ignore[method-assign]
            functools.cache(compute.__func__))


_compute_lib_dirs_once()


def is_runtime_record(record: Record) -> bool:
    """True for records written by the runtime (bound with ``minions=True``)."""
    return bool(record["extra"].get("minions"))


_RUNTIME_PACKAGE = __name__.partition(".")[0] + "."


def _human_format(record: Record) -> str:
    """Loguru format template that shows the minion path when the record has one, and the
    code location only when it is not the runtime's own (where the runtime logged an event
    says nothing to an operator: the minion's path says who, a traceback says where)."""
    who = " | {extra[minion]}" if "minion" in record["extra"] else ""
    name = record["name"]
    where = "" if name and name.startswith(_RUNTIME_PACKAGE) else " | {name}:{function}:{line}"
    return (
        "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8}" + who + where +
        " - {message}\n{exception}"
    )


def _owner_only_opener(path: str, flags: int) -> int:
    """``open()`` opener creating log files (including rotated ones) with mode 0600."""
    return os.open(path, flags, _LOG_FILE_MODE)


#: Id of loguru's default stderr handler per logger core: 0 at import; a new id once a system
#: has swapped it for its stand-in and put it back (see :meth:`LogSetup._swap_default_handler`).
_default_handler_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _default_handler_stream(log: Logger) -> Any:
    """The stream of loguru's default handler if it is installed on ``log``'s core, else None.

    Loguru exposes no public query for this, so we look at its private core and, if that
    ever changes shape, answer None: the runtime then leaves the handlers alone (worst case
    its records also reach stderr through the default handler, never a missing line).
    """
    handlers = loguru_handlers(log)
    if handlers is None:
        return None
    handler = handlers.get(_default_handler_ids.get(getattr(log, "_core", None), 0))
    return getattr(getattr(handler, "_sink", None), "_stream", None)


def loguru_handlers(log: Logger) -> Mapping[int, Any] | None:
    """Loguru's private handler table of ``log``'s core (None if it ever changes shape)."""
    handlers = getattr(getattr(log, "_core", None), "handlers", None)
    # (a dict first: the ABC's isinstance is a Python call, and this runs per start and stop)
    return handlers if type(handlers) is dict or isinstance(handlers, Mapping) else None


def _not_runtime_record(record: Record) -> bool:
    return not is_runtime_record(record)


_DEBUG_NO = 10  # loguru's DEBUG level number


def takes_runtime_debug(handler: Any) -> bool:
    """Whether a loguru handler may write a runtime DEBUG record (True when unsure)."""
    return bool(getattr(handler, "levelno", 0) <= _DEBUG_NO
                and getattr(handler, "_filter", None) is not _not_runtime_record)


def _split_sink(item: Any) -> tuple[Any, dict[str, Any]]:
    """Normalise a ``log_sinks`` item into ``(sink, options)`` for ``logger.add``."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
        return item[0], dict(item[1])
    if isinstance(item, Mapping):
        if "sink" not in item:
            raise ValueError(f"log_sinks entry {item!r} is a dict without a 'sink' key")
        options = dict(item)
        return options.pop("sink"), options
    return item, {}


@dataclass(frozen=True)
class LogOptions:
    """The logging options of ``ActorSystem.start()``: their one definition (names and
    defaults). ``start()`` takes them as keywords of the same names with these defaults,
    and docs/configuration.md lists them (a test checks both)."""

    file_logs: bool = True
    log_dir: str | os.PathLike[str] = "logs"
    json_logs: bool = False
    stderr_logs: bool = True
    log_level: str | int = "INFO"
    log_rotation: str | int = "10 MB"
    log_retention: str | int = 5
    log_diagnose: bool = False
    log_crash_window: float = 10.0


class LogSetup:
    """Adds the runtime's loguru sinks at start and removes exactly those at shutdown.

    Rules (documented in ``docs/logging.md``; the options are a :class:`LogOptions`, named
    as ``ActorSystem.start()``'s keywords):

    - ``file_logs``: a rotating, retention-capped ``log_dir/minions.log`` (owner-only, 0600)
      receiving every record at ``log_level`` or above, the application's too: it is the
      process's log file. ``json_logs=True`` writes JSON lines (loguru ``serialize``).
    - ``stderr_logs``: runtime records at ``log_level`` or above on stderr, through a sink of
      the runtime's own. While the system runs, loguru's default handler (id 0, stderr,
      from DEBUG up) is swapped for a stand-in with the same stream and loguru's defaults
      that leaves runtime records out, so ``stderr_logs`` and ``log_level`` decide what the
      runtime prints; shutdown puts a default handler back. Sinks the application added
      are never touched.
    - ``log_diagnose``: loguru's ``diagnose`` (values of local variables in tracebacks) for the
      sinks the runtime adds; off by default, since locals hold message contents.
    - ``log_crash_window``: repeats of the same crash of a minion within this many seconds
      of the one logged with its traceback are logged as one short line each
      (:class:`~minions_actors.observability.log_hooks.LoggingHooks` applies it).
    - ``log_sinks``: extra sinks, each anything ``logger.add`` accepts, a ``(sink, options)``
      tuple or a dict with a ``"sink"`` key; options are passed through unchanged
      (``diagnose`` defaults to ``log_diagnose`` above).
    """

    def __init__(
        self,
        *,
        logger: Logger | None = None,
        log_sinks: Iterable[Any] = (),
        options: LogOptions = LogOptions(),  # frozen: one shared default is safe
    ) -> None:
        self._base: Logger = logger if logger is not None else _global_logger
        self.log: Logger = self._base.bind(minions=True, minion=GRU_PATH, minion_class=GRU_CLASS)
        self._sinks = list(log_sinks)
        self.options = options
        self.log_dir = Path(options.log_dir)
        self._ids: list[int] = []
        self._swapped_stream: Any = None  # the default handler's stream while swapped out
        self._standin_id: int | None = None

    @property
    def log_file(self) -> Path:
        """Path of the runtime's log file (whether or not ``file_logs`` is on)."""
        return self.log_dir / LOG_FILE_NAME

    @property
    def handler_ids(self) -> tuple[int, ...]:
        """Loguru handler ids added by :meth:`install` and not yet removed."""
        return tuple(self._ids)

    def install(self) -> None:
        """Add the configured sinks; on a failure, remove the ones already added and re-raise."""
        if self._ids:
            return
        try:
            self._swap_default_handler()
            if self.options.file_logs:
                self._add_file_sink()
            if self.options.stderr_logs:
                self._ids.append(
                    self._base.add(
                        sys.stderr,
                        level=self.options.log_level,
                        filter=is_runtime_record,
                        format=_human_format,
                        serialize=self.options.json_logs,
                        backtrace=False,
                        diagnose=self.options.log_diagnose,
                    )
                )
            for item in self._sinks:
                sink, options = _split_sink(item)
                options.setdefault("diagnose", self.options.log_diagnose)
                self._ids.append(self._base.add(sink, **options))
        except BaseException:
            self.close()
            raise

    def _swap_default_handler(self) -> None:
        """Replace loguru's default handler by a stand-in that leaves runtime records out.

        The stand-in is added before the default is removed, so no record falls in the gap.
        """
        stream = _default_handler_stream(self._base)
        if stream is None:
            return
        core = getattr(self._base, "_core", None)
        self._standin_id = self._base.add(stream, filter=_not_runtime_record)
        self._swapped_stream = stream
        self._base.remove(_default_handler_ids.get(core, 0))

    def _restore_default_handler(self) -> None:
        """Put a default handler back, unless the application removed the stand-in (say
        with ``logger.remove()``): then it wants no default handler."""
        stream, self._swapped_stream = self._swapped_stream, None
        standin, self._standin_id = self._standin_id, None
        handlers = loguru_handlers(self._base)
        if handlers is not None and standin not in handlers:
            return
        if stream is not None:
            # loguru's defaults, as at import
            _default_handler_ids[getattr(self._base, "_core", None)] = self._base.add(stream)
        if standin is not None:
            with contextlib.suppress(ValueError):  # already removed by the application
                self._base.remove(standin)

    def _add_file_sink(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_file
        handler_id = self._base.add(
            str(path),
            level=self.options.log_level,
            format=_human_format,
            serialize=self.options.json_logs,
            rotation=self.options.log_rotation,
            retention=self.options.log_retention,
            encoding="utf-8",
            enqueue=False,
            opener=_owner_only_opener,
            diagnose=self.options.log_diagnose,
        )
        self._ids.append(handler_id)
        # The opener only sets the mode of files it creates; tighten a pre-existing one too.
        with contextlib.suppress(OSError):
            os.chmod(path, _LOG_FILE_MODE)

    def close(self) -> None:
        """Remove only the sinks this setup added (flushing them) and put loguru's default
        handler back if it was swapped; safe to call twice."""
        self._restore_default_handler()
        while self._ids:
            handler_id = self._ids.pop()
            with contextlib.suppress(ValueError):  # already removed by someone else
                self._base.remove(handler_id)
