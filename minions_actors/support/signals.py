"""Keep SIGTERM/SIGINT for the main thread, where Python runs signal handlers.

The kernel delivers a process-directed signal to any thread that does not block it. If that
is one of the runtime's threads while the main thread sleeps in a lock (``system.wait()``),
CPython only runs the handler once the main thread wakes up. Every thread the runtime starts
therefore blocks these signals first.
"""

from __future__ import annotations

import signal

_HANDLED = {signal.SIGTERM, signal.SIGINT}


def block_shutdown_signals() -> None:
    """Block SIGTERM and SIGINT in the calling thread (a no-op where unsupported)."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is not None:
        mask(signal.SIG_BLOCK, _HANDLED)
