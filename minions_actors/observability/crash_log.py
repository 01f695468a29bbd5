"""Which crashes the log shows with their traceback: a crash storm (one minion failing
again and again in the same way) must not cost a traceback's formatting per restart.

A crash is *the same* as the one before it when the same minion raised the same exception
type at the same place (file and line of the frame that raised). The first crash of a kind
is logged with its traceback and opens a window (``log_crash_window`` seconds); repeats
within the window are logged as one short line each; the first repeat after the window is
logged in full again and opens the next one. Only the log is thinned: hooks and metrics
see every crash.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from os.path import basename
from typing import Any

__all__ = ["CrashLog", "Seen", "ordinal"]

#: entries kept before expired ones are swept (then twice the live count)
_SWEEP_AT = 1024


class Seen:
    """A minion's latest crash logged in full, and its repeats since."""

    __slots__ = ("count", "folded", "key", "kind", "memo", "since", "where")

    def __init__(self, key: tuple[type, str, int], since: float) -> None:
        self.key = key
        self.since = since  # when the crash logged in full happened
        self.count = 1  # crashes of the window, that one included
        self.folded = False  # the latest was a repeat: its restart line is folded into it
        self.kind = key[0].__name__  # (names for the short line, made once)
        self.where = f"{basename(key[1])}:{key[2]}"
        self.memo: Any = None  # what the log writer keeps for the repeats (its line's parts)


def raised_at(exc: BaseException) -> tuple[str, int]:
    """File and line of the frame that raised ``exc`` (the traceback's innermost)."""
    tb = exc.__traceback__
    if tb is None:
        return "?", 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 21st..."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class CrashLog:
    """Remembers each minion's latest crash for ``window`` seconds (0: every crash is
    logged in full). Thread-safe: crashes are reported from every worker at once."""

    def __init__(self, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._seen: dict[str, Seen] = {}
        self._lock = threading.Lock()
        self._sweep_at = _SWEEP_AT

    def crashed(self, path: str, exc: BaseException) -> Seen | None:
        """Note a crash of ``path``: None when it is to be logged with its traceback, else
        the crash it repeats (``count`` is this one's number in the window)."""
        if self.window <= 0:
            return None
        filename, line = raised_at(exc)
        key = (type(exc), filename, line)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(path)
            if seen is not None and seen.key == key and now - seen.since < self.window:
                seen.count += 1
                seen.folded = True
                return seen
            self._seen[path] = Seen(key, now)
            if len(self._seen) >= self._sweep_at:
                self._sweep(now)
        return None

    def restart_folded(self, path: str, cause: str) -> bool:
        """Whether the restart of ``path`` for ``cause`` follows a crash logged as a
        repeat (its line says enough); True once per such crash."""
        seen = self._seen.get(path)
        if seen is None or not seen.folded or not cause.startswith(f"{seen.kind}:"):
            return False
        seen.folded = False
        return True

    def _sweep(self, now: float) -> None:
        """Forget crashes whose window has passed (the caller holds the lock)."""
        self._seen = {p: s for p, s in self._seen.items() if now - s.since < self.window}
        self._sweep_at = max(_SWEEP_AT, 2 * len(self._seen))
