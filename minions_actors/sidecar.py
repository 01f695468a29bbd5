"""Sidecar minions: run crash-prone code (native extensions) in a child process.

A segfault, an ``abort()`` or the OOM killer in a native extension ends the whole process:
every minion, Gru and the state store go down with it, and nothing in Python can catch it.
A :class:`Sidecar` moves one function into a child process and talks to it over a pipe, so
such a crash only ends that child: the minion sees it, raises :class:`SidecarCrashed`
(an ordinary crash), and its supervisor restarts it with a fresh process while every other
minion keeps running::

    resizer = system.spawn(Sidecar, "thumbs.native:resize", name="resizer", call_timeout=30.0)
    small = resizer.ask(image_bytes, timeout=35.0)

Each message (``tell`` or ``ask``) is pickled, sent to the child, passed to the function,
and the pickled return value is the reply. One call at a time: the minion's own thread
writes the request and waits for the answer with ``poll``, so the parent side starts no
thread and a sidecar costs one process and one pipe.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from minions_actors.errors import SidecarCrashed, SidecarError
from minions_actors.placement.process import (
    ChildChannel,
    child_setup,
    describe_exit,
    error_reply,
    next_request,
    ok_reply,
)
from minions_actors.runtime.minion import Minion

__all__ = ["Sidecar", "SidecarCrashed", "SidecarError", "check_target", "describe_exit"]


def check_target(target: object, what: str = "target") -> tuple[str, str]:
    """Split ``"pkg.module:function"`` into its two parts, or raise a clear ValueError.

    Only the form is checked here, plus whether the top-level package exists: importing
    the module is the child's job (importing risky native code in the parent is what a
    sidecar avoids).
    """
    if not isinstance(target, str):
        raise ValueError(
            f"a sidecar {what} is a string 'pkg.module:function', got {target!r} "
            f"(the child process imports it by name; pass the name, not the function)"
        )
    module, sep, func = target.partition(":")
    if (
        not sep
        or not all(part.isidentifier() for part in module.split("."))
        or not all(part.isidentifier() for part in func.split("."))
    ):
        raise ValueError(
            f"a sidecar {what} is a string 'pkg.module:function' (e.g. 'json:dumps'), "
            f"got {target!r}"
        )
    top = module.split(".")[0]
    if top not in sys.modules and importlib.util.find_spec(top) is None:
        raise ModuleNotFoundError(
            f"sidecar {what} {target!r}: no module named {top!r} can be imported "
            f"(check the spelling and sys.path)", name=top,
        )
    return module, func


def _resolve(target: str) -> Callable[..., Any]:
    module_name, _, func_name = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in func_name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                f"sidecar target {target!r}: module {module_name!r} has no attribute "
                f"{func_name!r}"
            ) from None
    if not callable(obj):
        raise TypeError(f"sidecar target {target!r} is not callable: {obj!r}")
    return obj  # type: ignore[no-any-return]


# ------------------------------------------------------------------------- the child side
def _serve(conn: Connection, target: str, init: str | None, parent_pid: int) -> None:
    """The child process: load the target, run ``init``, then answer calls until told to
    stop, until the pipe closes or until the parent process is gone."""
    child_setup()
    try:
        func = _resolve(target)
        if init is not None:
            _resolve(init)()
    except Exception as exc:
        conn.send_bytes(error_reply(exc))
        return
    conn.send_bytes(ok_reply(os.getpid(), target))
    while True:
        alive, request = next_request(conn, parent_pid, target)
        if not alive or request is None:
            return
        if not request:  # could not be unpickled: answered already
            continue
        try:
            reply = ok_reply(func(request[0]), target)
        except Exception as exc:
            reply = error_reply(exc)
        conn.send_bytes(reply)


# ------------------------------------------------------------------------- the minion
class Sidecar(Minion):
    """A minion whose messages are handled by ``function(message)`` in a child process.

    ``target`` names the function as ``"pkg.module:function"``; the child imports it (the
    parent never does), runs the optional ``init`` (``"pkg.module:setup"``, no arguments)
    once, then serves one call per message. ``ask`` returns the function's result; an
    exception it raises is re-raised here as the same type (a :class:`SidecarError` when
    it cannot be pickled) and crashes the minion like any handler exception.

    If the child dies or takes longer than ``call_timeout`` seconds (None: no limit), the
    minion raises :class:`SidecarCrashed`. Either way the supervisor restarts the minion
    and ``on_start`` starts a fresh process: a process is never reused after a failure,
    because native state may be corrupt.

    ``start_method`` is the :mod:`multiprocessing` start method: ``"spawn"`` (default; a
    fresh interpreter, safe with the parent's threads), ``"forkserver"`` or ``"fork"``
    (fastest, but forking a multi-threaded process can deadlock the child). With spawn
    and forkserver the main script is imported again in the child, so it needs the
    ``if __name__ == "__main__":`` guard. ``start_timeout`` bounds the start (including
    ``init``); ``stop_timeout`` is how long a clean exit may take before the child is
    terminated, then killed.
    """

    # class-level default: on_failure must work even when __init__ raised early
    _channel: ChildChannel | None = None

    @classmethod
    def check_args(cls, target: object = None, *args: Any, init: object = None,
                   **kwargs: Any) -> None:
        """Reject a malformed target (or init) at ``spawn()`` time.

        Only for arguments actually passed: a subclass may fix its target in ``__init__``
        (then ``__init__`` checks it, as a crash at start)."""
        if target is not None and cls.__init__ is Sidecar.__init__:
            check_target(target)
        if init is not None and cls.__init__ is Sidecar.__init__:
            check_target(init, "init")

    def __init__(
        self,
        target: str,
        *,
        init: str | None = None,
        call_timeout: float | None = 30.0,
        start_timeout: float = 30.0,
        stop_timeout: float = 2.0,
        start_method: str = "spawn",
    ) -> None:
        super().__init__()
        check_target(target)
        if init is not None:
            check_target(init, "init")
        if start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"start_method must be one of {multiprocessing.get_all_start_methods()}, "
                f"got {start_method!r}"
            )
        for label, value in (("call_timeout", call_timeout), ("start_timeout", start_timeout),
                             ("stop_timeout", stop_timeout)):
            if value is not None and not value > 0:
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        self.target = target
        self.init = init
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.start_method = start_method
        self.start_seconds: float | None = None
        """How long the last start took, from launching the process to ``init`` done."""

    @property
    def pid(self) -> int | None:
        """The child process's pid (None before it started and after it stopped)."""
        return None if self._channel is None else self._channel.pid

    # -- lifecycle ---------------------------------------------------------------------
    def on_start(self) -> None:
        """Start the child and wait until it has loaded the target and run ``init``."""
        cell = self._minion_cell
        self._channel = ChildChannel(
            f"sidecar {self.path!r} ({self.target})", self.target, lambda: cell.stopping,
            start_method=self.start_method, stop_timeout=self.stop_timeout,
        )
        t0 = time.perf_counter()
        self._channel.start(_serve, (self.target, self.init), f"sidecar:{self.path}",
                            self.start_timeout)
        self.start_seconds = time.perf_counter() - t0

    def on_stop(self) -> None:
        """Ask the child to exit, then terminate and kill it if it does not."""
        self._stop_process()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """After a crash the process is never reused: stop it so the restart gets a new one."""
        self._stop_process()

    def _stop_process(self) -> None:
        if self._channel is not None:
            self._channel.stop()

    # -- calls -------------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        """Every message is a call: ``function(message)`` in the child; returns its result."""
        return self.call(message)

    def call(self, message: Any) -> Any:
        """Send ``message`` to the child's function and return its result.

        Raises what the function raised, :class:`SidecarError` when something cannot be
        pickled, and :class:`SidecarCrashed` when the child dies or times out. Subclasses
        can wrap it in typed methods for use through ``ref.proxy()``.
        """
        channel = self._channel
        if channel is None:
            raise SidecarCrashed(
                f"sidecar {self.path!r} ({self.target}) has no process (it failed to start "
                f"or was stopped)", target=self.target,
            )
        doing = f"while handling a {type(message).__name__} message"
        return channel.call((message,), self.call_timeout, doing)
