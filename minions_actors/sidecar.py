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

import faulthandler
import importlib
import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, NoReturn

from minions_actors.errors import SidecarCrashed, SidecarError
from minions_actors.runtime.minion import Minion

__all__ = ["Sidecar", "SidecarCrashed", "SidecarError", "check_target", "describe_exit"]

# How often a long call checks whether the minion is being stopped (shutdown must not wait
# for ``call_timeout``). Replies are read as soon as they arrive, whatever this value.
_SLICE = 0.1
_STOP = pickle.dumps(None)  # the request that asks the child to exit cleanly
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class _RemoteTraceback(Exception):
    """Carries the child's formatted traceback as the ``__cause__`` of a re-raised error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nTraceback in the sidecar process:\n{self.text}"


def describe_exit(exitcode: int | None) -> str:
    """Say how a process ended, e.g. ``"killed by SIGSEGV"`` or ``"exited with code 3"``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory? the OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode}"


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
def _error_reply(exc: BaseException) -> bytes:
    """Pickle an exception for the parent; fall back to its text when it cannot travel."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        data = pickle.dumps(("error", exc, tb), protocol=_PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (custom __init__)
        return data
    except Exception:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        try:
            text = str(exc)
        except Exception:
            text = "<str() failed>"
        return pickle.dumps(("error-text", kind, text, tb), protocol=_PROTOCOL)


def _serve(conn: Connection, target: str, init: str | None, parent_pid: int) -> None:
    """The child process: load the target, run ``init``, then answer calls until told to
    stop, until the pipe closes or until the parent process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.stderr is not None:  # a segfault prints the Python stack to stderr before dying
        try:
            faulthandler.enable()
        except (RuntimeError, ValueError, OSError):  # stderr without a usable file descriptor
            pass
    try:
        func = _resolve(target)
        if init is not None:
            _resolve(init)()
    except Exception as exc:
        conn.send_bytes(_error_reply(exc))
        return
    conn.send_bytes(pickle.dumps(("ready", os.getpid()), protocol=_PROTOCOL))
    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent_pid:  # orphaned (the parent was killed): go away
                return
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            request = pickle.loads(data)
        except Exception as exc:
            conn.send_bytes(_error_reply(SidecarError(
                f"the sidecar process cannot unpickle the message for {target}: "
                f"{type(exc).__name__}: {exc} (its class must be importable in the child: "
                f"define it in a module, not in a function)"
            )))
            continue
        if request is None:
            return
        try:
            result = func(request[0])
        except Exception as exc:
            reply = _error_reply(exc)
        else:
            try:
                reply = pickle.dumps(("ok", result), protocol=_PROTOCOL)
            except Exception as exc:
                reply = _error_reply(SidecarError(
                    f"{target} returned a {type(result).__name__} that cannot be pickled "
                    f"({type(exc).__name__}: {exc}); return plain data such as numbers, "
                    f"str, bytes, lists, dicts or dataclasses of those"
                ))
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

    # class-level defaults: on_failure must work even when __init__ raised early
    _proc: BaseProcess | None = None
    _conn: Connection | None = None
    _pid: int | None = None

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
        return self._pid

    # -- lifecycle ---------------------------------------------------------------------
    def on_start(self) -> None:
        """Start the child and wait until it has loaded the target and run ``init``."""
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            raise SidecarError(
                f"{self._who()} was spawned while a sidecar process was importing the main "
                f"script: the script starts minions at import time. Put that code under "
                f"`if __name__ == '__main__':` (spawned processes import the main script)"
            )
        ctx: Any = multiprocessing.get_context(self.start_method)  # typeshed: no .Process
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc: BaseProcess = ctx.Process(
            target=_serve, args=(child_conn, self.target, self.init, os.getpid()),
            name=f"sidecar:{self.path}", daemon=False,
        )
        t0 = time.perf_counter()
        try:
            proc.start()
        except BaseException:
            parent_conn.close()
            raise
        finally:
            child_conn.close()  # the child has its copy; EOF must mean the child is gone
        self._proc, self._conn, self._pid = proc, parent_conn, proc.pid
        self._receive(self.start_timeout, "while starting")
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
        conn = self._conn
        if conn is None:
            raise SidecarCrashed(
                f"{self._who()} has no process (it failed to start or was stopped)",
                target=self.target,
            )
        try:
            data = pickle.dumps((message,), protocol=_PROTOCOL)
        except Exception as exc:
            raise SidecarError(
                f"{self._who()} cannot send a {type(message).__name__} message: it cannot "
                f"be pickled ({type(exc).__name__}: {exc}); sidecar messages and results "
                f"must be picklable: plain data, or instances of classes defined at module "
                f"level (no lambdas, locks, sockets, open files or generators)"
            ) from exc
        try:
            conn.send_bytes(data)
        except OSError:
            pass  # the child is gone: _receive reports how it ended
        doing = f"while handling a {type(message).__name__} message"
        return self._receive(self.call_timeout, doing)

    def _receive(self, timeout: float | None, doing: str) -> Any:
        """Wait for the child's next reply; raise its error, or SidecarCrashed."""
        conn, proc = self._conn, self._proc
        assert conn is not None and proc is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        cell = self._minion_cell
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                pid = proc.pid
                self._stop_process(0.0)
                raise SidecarCrashed(
                    f"{self._who()}: process {pid} did not answer within {timeout}s "
                    f"{doing}; it was killed", target=self.target, pid=pid,
                )
            if cell.stopping:  # shutting down: no call_timeout wait
                pid = proc.pid
                self._stop_process(0.0)
                raise SidecarCrashed(
                    f"{self._who()}: the minion is stopping, so the call to process {pid} "
                    f"{doing} was abandoned and the process killed",
                    target=self.target, pid=pid,
                )
            ready = wait([conn, proc.sentinel], _SLICE if left is None else min(left, _SLICE))
            if not ready:
                continue
            if conn in ready or conn.poll(0):
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    self._child_died(doing)
                return self._unpack(data)
            self._child_died(doing)  # the sentinel fired and nothing is left to read

    def _unpack(self, data: bytes) -> Any:
        try:
            reply = pickle.loads(data)
        except Exception as exc:
            raise SidecarError(
                f"{self._who()}: the reply cannot be unpickled in this process "
                f"({type(exc).__name__}: {exc}); return plain data, not objects of the "
                f"native library"
            ) from exc
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "ready":
            self._pid = reply[1]
            return None
        if kind == "error":
            raise reply[1] from _RemoteTraceback(reply[2])
        _, type_name, text, tb = reply
        raise SidecarError(
            f"{self.target} raised {type_name}: {text} (reported as SidecarError because "
            f"the exception cannot be pickled)"
        ) from _RemoteTraceback(tb)

    def _child_died(self, doing: str) -> NoReturn:
        proc = self._proc
        assert proc is not None
        pid = proc.pid
        proc.join(self.stop_timeout)
        exitcode = proc.exitcode
        self._stop_process(0.0)
        hint = ""
        if doing == "while starting" and self.start_method != "fork":
            hint = (
                " (the child imports the main script first: if that fails, check that it "
                "is guarded by `if __name__ == '__main__':`)"
            )
        raise SidecarCrashed(
            f"{self._who()}: process {pid} {describe_exit(exitcode)} {doing}{hint}",
            target=self.target, pid=pid, exitcode=exitcode,
        )

    def _stop_process(self, grace: float | None = None) -> None:
        """Stop the child for good and reap it: sentinel, join, terminate, kill.

        ``grace`` (default ``stop_timeout``) is how long a clean exit may take; 0 skips it.
        """
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._pid = None
        if proc is None:
            return
        if grace is None:
            grace = self.stop_timeout
        try:
            if grace > 0 and conn is not None and proc.is_alive():
                try:
                    conn.send_bytes(_STOP)
                except OSError:
                    pass
                proc.join(grace)
            if proc.is_alive():
                proc.terminate()
                proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
        finally:
            if conn is not None:
                conn.close()
            if not proc.is_alive():
                proc.close()

    def _who(self) -> str:
        return f"sidecar {self.path!r} ({self.target})"
