"""SIGTERM and SIGINT for a running system: the first one starts the graceful shutdown, a
second one exits at once with status 128 + the signal number (as docs/deployment.md says)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from minions_actors.support.signals import block_shutdown_signals


class SignalHandlers:
    """Installs the handlers (main thread only) and runs the thread that acts on them.

    A handler may interrupt the main thread anywhere, even inside the runtime's own locks,
    so it only writes a byte to a pipe (async-signal-safe) and the ``minions-signals``
    thread does the rest: it calls ``shutdown``, which claims and runs the shutdown and
    returns True when this call ran it.
    """

    def __init__(self, shutdown: Callable[[], bool], stopped: threading.Event) -> None:
        self._shutdown = shutdown
        self._stopped = stopped
        self._old: dict[int, Any] = {}
        self._seen = 0
        self._pipe: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        """Install the handlers and start the thread; nothing off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        read_fd, write_fd = os.pipe()
        self._pipe = (read_fd, write_fd)
        self._thread = threading.Thread(
            target=self._loop, args=(read_fd,), name="minions-signals", daemon=False
        )
        self._thread.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._old[signum] = signal.signal(signum, self._on_signal)

    def _loop(self, read_fd: int) -> None:
        """Wait for a signal byte; start the graceful shutdown, or quit on b"q"."""
        block_shutdown_signals()
        try:
            while True:
                byte = os.read(read_fd, 1)
                if not byte or byte == b"q":
                    return
                if self._shutdown():
                    return
        finally:
            os.close(read_fd)

    def stop_thread(self) -> None:
        """Let the signals thread end and join it (unless called on it)."""
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return
        thread = self._thread
        try:
            os.write(pipe[1], b"q")
        finally:
            os.close(pipe[1])
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def restore(self) -> None:
        """Put back the handlers we replaced; only possible on the main thread.

        After a shutdown that ran on another thread, our handler stays installed until the
        main thread next returns from ``ActorSystem.wait`` or receives a signal, and then
        hands the signal back to the previous handler.
        """
        if self._old and threading.current_thread() is threading.main_thread():
            for signum, handler in self._old.items():
                signal.signal(signum, handler)
            self._old.clear()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stopped.is_set():  # a stale handler: give the signal back
            self.restore()
            signal.raise_signal(signum)
            return
        self._seen += 1
        if self._seen > 1:
            os._exit(128 + signum)  # second signal: fast exit, as documented
        pipe = self._pipe
        if pipe is not None:
            os.write(pipe[1], b"s")  # no locks here: the signals thread does the shutdown
