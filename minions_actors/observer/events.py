"""The observer's recent events: a :class:`Hooks` subclass that keeps the last crashes,
restarts, escalations and dead letters in bounded memory, for the page's events pane and
each minion's last crash."""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections import OrderedDict, deque
from typing import Any

from minions_actors.observability.hooks import Hooks, MinionView

#: How many events the pane can show (older ones are forgotten).
MAX_EVENTS = 500
#: How many minions' last crash are kept (the least recently crashed are forgotten).
MAX_CRASHES = 10_000
#: Frames kept of a crash's traceback (the innermost ones), and characters of its message.
_FRAMES = 20
_TEXT = 2000


def _cut(text: str, limit: int = _TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def crash_record(exc: BaseException, phase: str) -> dict[str, Any]:
    """What the page shows of a crash: type, message, phase and the traceback, without
    locals (never a frame's variables, which may hold secrets). The traceback is taken
    without its source lines, and formatted when the page first asks for it (see
    :func:`traceback_text`): a crash storm pays the taking (a tenth of the formatting) per
    crash, the formatting once per look."""
    taken = traceback.TracebackException(type(exc), exc, exc.__traceback__, limit=-_FRAMES,
                                         lookup_lines=False)
    return {"type": type(exc).__name__, "message": _cut(str(exc)), "phase": phase,
            "traceback": taken, "at": time.time()}


def traceback_text(crash: dict[str, Any]) -> dict[str, Any]:
    """``crash`` with its traceback formatted (once: the text replaces what was taken)."""
    taken = crash["traceback"]
    if not isinstance(taken, str):  # (two readers at once format the same text twice)
        crash["traceback"] = _cut("".join(taken.format()), 8 * _TEXT)
    return crash


class EventRecorder(Hooks):
    """Records lifecycle events; each hook call does O(1) work under one lock (a crash
    also takes its traceback, bounded to the last frames), and memory is bounded."""

    def __init__(self, max_events: int = MAX_EVENTS, max_crashes: int = MAX_CRASHES) -> None:
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self._crashes: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max_crashes = max_crashes
        self._seq = itertools.count(1)
        self.last_seq = 0

    # -- reading -------------------------------------------------------------------------
    def since(self, seq: int, limit: int = 200) -> list[dict[str, Any]]:
        """Events newer than ``seq``, oldest first (at most ``limit``, the newest)."""
        with self._lock:
            newer = [e for e in self._events if e["seq"] > seq]
        return newer[-limit:]

    def last_crash(self, path: str, with_traceback: bool = True) -> dict[str, Any] | None:
        """The last crash of ``path``; its traceback as text, unless not ``with_traceback``
        (then the field is left out)."""
        with self._lock:
            crash = self._crashes.get(path)
        if crash is None:
            return None
        if not with_traceback:
            return {k: v for k, v in crash.items() if k != "traceback"}
        return traceback_text(crash)

    # -- recording -----------------------------------------------------------------------
    def _add(self, kind: str, cell: MinionView | None, text: str,
             crash: dict[str, Any] | None = None) -> None:
        path = cell.path if cell is not None else ""
        event = {"kind": kind, "path": path, "cls": cell.cls_name if cell is not None else "",
                 "text": _cut(text, 500), "at": time.time()}
        with self._lock:
            event["seq"] = self.last_seq = next(self._seq)
            self._events.append(event)
            if crash is not None:
                self._crashes[path] = crash
                self._crashes.move_to_end(path)
                if len(self._crashes) > self._max_crashes:
                    self._crashes.popitem(last=False)

    def minion_crashed(self, cell: MinionView, exc: BaseException, phase: str) -> None:
        crash = crash_record(exc, phase)
        self._add("crash", cell, f"{crash['type']}: {crash['message']} (phase {phase})", crash)

    def minion_restarting(self, cell: MinionView, delay: float, cause: str) -> None:
        self._add("restart", cell, f"restarting in {delay:.2f} s ({cause})")

    def escalated(self, cell: MinionView, exc: BaseException) -> None:
        self._add("escalation", cell, f"gave up: {type(exc).__name__}: {exc}")

    def minion_stopped(self, cell: MinionView, reason: str) -> None:
        if reason not in ("stopped", "shutdown"):  # only the unexpected ends are events
            self._add("stopped", cell, f"stopped for good ({reason})")

    def dead_letter(self, cell: MinionView, message: Any, first: bool) -> None:
        # never the message itself (its contents may be secret): its type only
        self._add("dead-letter", cell, f"a {type(message).__name__} reached a stopped minion")

    def messages_dropped(self, cell: MinionView, count: int) -> None:
        self._add("dead-letter", cell, f"{count} queued messages dropped at its stop")

    def worker_starved(self, cell: MinionView, seconds: float) -> None:
        self._add("starvation", cell, f"held a pool worker for {seconds:.1f} s")

    def workflow_finished(self, cell: MinionView, info: Any,
                          exc: BaseException | None) -> None:
        if info.status != "completed":
            why = f": {type(exc).__name__}" if exc is not None else ""
            self._add("workflow", cell, f"workflow {info.workflow_id} {info.status}{why}")
