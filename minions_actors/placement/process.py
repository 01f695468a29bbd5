"""One child process and its pipe, driven by one minion's thread: the mechanism shared by
:class:`~minions_actors.Sidecar` (a function in a child) and ``ChildProcess`` placement
(a whole minion in a child).

The minion's thread writes a pickled request and waits for the reply with ``wait`` on the
pipe and the process's sentinel, so the home side starts no thread, a death is seen at
once (whatever killed the child: a segfault, ``abort()``, the OOM killer) and a stopping
minion never waits for a call's timeout.
"""

from __future__ import annotations

import faulthandler
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
from typing import Any, NoReturn

from minions_actors.errors import RemoteTraceback, SidecarCrashed, SidecarError

# How often a long call checks whether the minion is being stopped (shutdown must not wait
# for the call's timeout). Replies are read as soon as they arrive, whatever this value.
_SLICE = 0.1
STOP = pickle.dumps(None)  # the request that asks a child to exit cleanly
PROTOCOL = pickle.HIGHEST_PROTOCOL


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


# ------------------------------------------------------------------------- the child side
def error_reply(exc: BaseException) -> bytes:
    """Pickle an exception for the parent; fall back to its text when it cannot travel."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        data = pickle.dumps(("error", exc, tb), protocol=PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (custom __init__)
        return data
    except Exception:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        try:
            text = str(exc)
        except Exception:
            text = "<str() failed>"
        return pickle.dumps(("error-text", kind, text, tb), protocol=PROTOCOL)


def ok_reply(value: Any, what: str) -> bytes:
    """Pickle a successful reply, or an error reply saying ``what`` cannot travel back."""
    try:
        return pickle.dumps(("ok", value), protocol=PROTOCOL)
    except Exception as exc:
        return error_reply(SidecarError(
            f"{what} returned a {type(value).__name__} that cannot be pickled "
            f"({type(exc).__name__}: {exc}); return plain data such as numbers, str, bytes, "
            f"lists, dicts or dataclasses of those"
        ))


def child_setup() -> None:
    """First thing in a child: Ctrl-C is the parent's; a segfault prints the Python stack."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.stderr is not None:
        try:
            faulthandler.enable()
        except (RuntimeError, ValueError, OSError):  # stderr without a usable file descriptor
            pass


def next_request(conn: Connection, parent_pid: int, what: str) -> tuple[bool, Any]:
    """Wait for the parent's next request: ``(True, request)``, ``(True, None)`` for a stop,
    ``(False, None)`` when the parent is gone or the request was answered with an error."""
    while not conn.poll(1.0):
        if os.getppid() != parent_pid:  # orphaned (the parent was killed): go away
            return False, None
    try:
        data = conn.recv_bytes()
    except (EOFError, OSError):
        return False, None
    try:
        return True, pickle.loads(data)
    except Exception as exc:
        conn.send_bytes(error_reply(SidecarError(
            f"the child process cannot unpickle the message for {what}: "
            f"{type(exc).__name__}: {exc} (its class must be importable in the child: "
            f"define it in a module, not in a function)"
        )))
        return True, ()


# ------------------------------------------------------------------------- the parent side
def dumps_request(request: Any, who: str, doing: str,
                  error: type[SidecarError] = SidecarError) -> bytes:
    """Pickle a request, or raise ``error`` (a :class:`SidecarError`; for a placed minion's
    message, :class:`~minions_actors.errors.UnpicklableMessage`) saying what cannot travel."""
    try:
        return pickle.dumps(request, protocol=PROTOCOL)
    except Exception as exc:
        raise error(
            f"{who} cannot send {doing.removeprefix('while handling ')}: it cannot "
            f"be pickled ({type(exc).__name__}: {exc}); messages and results that cross "
            f"to another process must be picklable: plain data, or instances of classes "
            f"defined at module level (no lambdas, locks, sockets, open files or "
            f"generators)"
        ) from exc


def unpack(data: bytes, who: str, target: str) -> Any:
    """The value of a reply made by :func:`ok_reply`, or raise the error it carries."""
    try:
        reply = pickle.loads(data)
    except Exception as exc:
        raise SidecarError(
            f"{who}: the reply cannot be unpickled in this process "
            f"({type(exc).__name__}: {exc}); return plain data, not objects of the "
            f"native library"
        ) from exc
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "error":
        raise reply[1] from RemoteTraceback(reply[2])
    _, type_name, text, tb = reply
    raise SidecarError(
        f"{target} raised {type_name}: {text} (reported as SidecarError because "
        f"the exception cannot be pickled)"
    ) from RemoteTraceback(tb)


class ChildChannel:
    """One child process and its duplex pipe, used from one thread at a time.

    ``who`` names the owner in errors, ``target`` goes into :class:`SidecarCrashed`,
    ``crashed`` is the error class for a death or a timeout, ``stopping`` says whether the
    owning minion is being stopped (then a wait is abandoned at once).
    """

    def __init__(self, who: str, target: str, stopping: Callable[[], bool], *,
                 crashed: type[SidecarCrashed] = SidecarCrashed,
                 start_method: str = "spawn", stop_timeout: float = 2.0) -> None:
        self.who = who
        self.target = target
        self.stopping = stopping
        self.crashed = crashed
        self.start_method = start_method
        self.stop_timeout = stop_timeout
        self.proc: BaseProcess | None = None
        self.conn: Connection | None = None
        self.pid: int | None = None

    def start(self, serve: Callable[..., None], args: tuple[Any, ...], name: str,
              timeout: float | None) -> Any:
        """Start ``serve(conn, *args, parent_pid)`` in a child; return its first reply."""
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            raise SidecarError(
                f"{self.who} was spawned while a child process was importing the main "
                f"script: the script starts minions at import time. Put that code under "
                f"`if __name__ == '__main__':` (spawned processes import the main script)"
            )
        ctx: Any = multiprocessing.get_context(self.start_method)  # typeshed: no .Process
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc: BaseProcess = ctx.Process(
            target=serve, args=(child_conn, *args, os.getpid()), name=name, daemon=False,
        )
        try:
            proc.start()
        except BaseException:
            parent_conn.close()
            raise
        finally:
            child_conn.close()  # the child has its copy; EOF must mean the child is gone
        self.proc, self.conn, self.pid = proc, parent_conn, proc.pid
        return self.receive(timeout, "while starting")

    def call(self, request: Any, timeout: float | None, doing: str, *,
             interruptible: bool = True) -> Any:
        """Send ``request`` (pickled) and return the reply's value, raising its error;
        ``interruptible``: abandon the wait when the owning minion is being stopped."""
        data = dumps_request(request, self.who, doing)
        return self.call_pickled(data, timeout, doing, interruptible=interruptible)

    def call_pickled(self, data: bytes, timeout: float | None, doing: str, *,
                     interruptible: bool = True) -> Any:
        """:meth:`call` with a request pickled already (by :func:`dumps_request`)."""
        conn = self.conn
        if conn is None:
            raise self.crashed(
                f"{self.who} has no process (it failed to start or was stopped)",
                target=self.target,
            )
        try:
            conn.send_bytes(data)
        except OSError:
            pass  # the child is gone: receive reports how it ended
        return self.receive(timeout, doing, interruptible)

    def receive(self, timeout: float | None, doing: str, interruptible: bool = True) -> Any:
        """Wait for the child's next reply; raise its error, or ``crashed``."""
        conn, proc = self.conn, self.proc
        assert conn is not None and proc is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self._abandon(f"did not answer within {timeout}s {doing}; it was killed")
            if interruptible and self.stopping():  # shutting down: no call_timeout wait
                self._abandon(f"was abandoned {doing} because the minion is stopping, and "
                              f"killed")
            ready = wait([conn, proc.sentinel], _SLICE if left is None else min(left, _SLICE))
            if not ready:
                continue
            if conn in ready or conn.poll(0):
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    self._died(doing)
                return self._unpack(data)
            self._died(doing)  # the sentinel fired and nothing is left to read

    def check(self, doing: str) -> None:
        """Raise ``crashed`` when the child is gone (between calls: nothing to read)."""
        proc = self.proc
        if proc is None:
            raise self.crashed(f"{self.who} has no process (it failed to start or was "
                               f"stopped)", target=self.target)
        if wait([proc.sentinel], 0):
            self._died(doing)

    def _abandon(self, what: str) -> NoReturn:
        pid = self.pid
        self.stop(0.0)
        raise self.crashed(f"{self.who}: process {pid} {what}", target=self.target, pid=pid)

    def _unpack(self, data: bytes) -> Any:
        return unpack(data, self.who, self.target)

    def _died(self, doing: str) -> NoReturn:
        proc = self.proc
        assert proc is not None
        pid = proc.pid
        proc.join(self.stop_timeout)
        exitcode = proc.exitcode
        self.stop(0.0)
        hint = ""
        if doing == "while starting" and self.start_method != "fork":
            hint = (
                " (the child imports the main script first: if that fails, check that it "
                "is guarded by `if __name__ == '__main__':`)"
            )
        raise self.crashed(
            f"{self.who}: process {pid} {describe_exit(exitcode)} {doing}{hint}",
            target=self.target, pid=pid, exitcode=exitcode,
        )

    def stop(self, grace: float | None = None) -> None:
        """Stop the child for good and reap it: sentinel, join, terminate, kill.

        ``grace`` (default ``stop_timeout``) is how long a clean exit may take; 0 skips it.
        """
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        self.pid = None
        if proc is None:
            return
        if grace is None:
            grace = self.stop_timeout
        try:
            if grace > 0 and conn is not None and proc.is_alive():
                try:
                    conn.send_bytes(STOP)
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
