"""Noticing that a placed minion's process or actor is gone while the minion is idle.

A call notices a death at once (it waits on the pipe and the process's sentinel, or on
Ray's reply), but an idle minion makes no call. A :class:`Watcher` runs one thread for all
the placed minions of one kind: it waits on their processes' sentinels (``ChildProcess``)
or pings their actors (``Ray``), and when one is gone it calls that minion's ``lost``
callback, which posts :class:`~minions_actors.runtime.placement.CheckPlaced` to the cell:
the crash is then handled on the minion's own thread, through normal supervision. The
thread starts with the first watched minion and ends (joined) when the last one is
unwatched, so a system that stopped its placed minions leaves no thread behind.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from multiprocessing.connection import wait
from typing import Any

from loguru import logger

# How long the watcher's thread may take to notice that it has nothing left to watch.
_JOIN_TIMEOUT = 10.0


class Watcher:
    """One thread that watches handles (a process's sentinel, an actor), each under its
    owner's key, and calls the owner's ``lost`` callback once ``wait_lost`` reports it gone.
    Subclasses say how to wait. A report may be stale (a sentinel's descriptor reused after
    a close): ``lost`` only asks the minion's thread to check, so that is harmless."""

    thread_name = "minions-placement-watch"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[Hashable, tuple[Callable[[], None], Any]] = {}
        self._thread: threading.Thread | None = None
        self._changed = threading.Event()

    def watch(self, key: Hashable, handle: Any, lost: Callable[[], None]) -> None:
        """Call ``lost()`` (on the watcher's thread) once ``handle`` is gone."""
        with self._lock:
            self._watched[key] = (lost, handle)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.thread_name,
                                                daemon=True)
                self._thread.start()
        self._wake()

    def unwatch(self, key: Hashable) -> None:
        """Stop watching ``key`` (it is being released on purpose); the last one ends the
        thread, and waits for it."""
        with self._lock:
            self._watched.pop(key, None)  # gone already when the watcher reported it
            thread = self._thread if not self._watched else None
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            self._join(thread)

    def _join(self, thread: threading.Thread) -> None:
        """Wait for the thread to end, unless a new watch keeps it running meanwhile."""
        deadline = time.monotonic() + _JOIN_TIMEOUT
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.05)
            with self._lock:
                if self._watched and self._thread is thread:
                    return

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # waiting failed: say so, and let the next watch() restart
            logger.error("{} stopped: {}: {}; placed minions that die while idle are noticed "
                         "at their next call until another minion is placed",
                         self.thread_name, type(exc).__name__, exc)
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _loop(self) -> None:
        while True:
            self._changed.clear()  # before the snapshot: a later watch wakes the next wait
            with self._lock:
                if not self._watched:
                    self._thread = None  # in the same hold: a watch() from now starts one
                    return
                watched = {key: handle for key, (_, handle) in self._watched.items()}
            for key in self.wait_lost(watched):
                with self._lock:
                    entry = self._watched.pop(key, None)
                if entry is not None:
                    try:
                        entry[0]()
                    except Exception as exc:  # one minion's callback stops no other watch
                        logger.error("{}: reporting a lost placed minion failed: {}: {}",
                                     self.thread_name, type(exc).__name__, exc)

    def _wake(self) -> None:
        self._changed.set()

    def wait_lost(self, watched: dict[Any, Any]) -> list[Any]:
        """Block until some handles of ``watched`` (key: handle) are gone or the set
        changed; return the keys of those gone."""
        raise NotImplementedError


class SentinelWatcher(Watcher):
    """Watches child processes by their sentinels (ready when the process ends)."""

    def __init__(self) -> None:
        super().__init__()
        self.pid = os.getpid()  # a forked child builds its own
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)

    def _wake(self) -> None:
        os.write(self._wake_w, b"x")

    def wait_lost(self, watched: dict[Any, Any]) -> list[Any]:
        ready = set(wait([*set(watched.values()), self._wake_r]))
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        return [key for key, sentinel in watched.items() if sentinel in ready]


_sentinels: SentinelWatcher | None = None
_sentinels_lock = threading.Lock()


def sentinels() -> SentinelWatcher:
    """This process's watcher of placed minions' child processes (built on first use)."""
    global _sentinels
    with _sentinels_lock:
        if _sentinels is None or _sentinels.pid != os.getpid():
            _sentinels = SentinelWatcher()
        return _sentinels
