"""Where async minions' coroutines run: an event loop the runtime owns, or the caller's.

:class:`LoopHost` is the one owner of that loop for a system. Started from ordinary code,
the runtime starts a loop on a thread of its own (``minions-loop``) at the first async
spawn and joins it at shutdown; started with ``ActorSystem.start_async()`` from a running
loop, the coroutines run on that loop and the runtime never blocks it (its own work stays
on the worker pool). A watcher thread (``minions-loop-watch``) measures the loop's lag:
a coroutine that blocks it (``time.sleep``, a sync HTTP call) is reported with the minion
it belongs to, as a starving pool worker is.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from minions_actors.support.signals import block_shutdown_signals

#: a loop that has not run a posted callback for this long is reported as blocked
LAG_THRESHOLD = 0.1
#: the prefix of the names of the tasks that run minions' coroutines (then the path)
TASK_PREFIX = "minion:"


class LoopHost:
    """One event loop for a system's async minions (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None,
                 on_blocked: Callable[[str | None, float], None] | None = None,
                 lag_threshold: float = LAG_THRESHOLD) -> None:
        self.owned = loop is None  # True: the runtime starts, runs and closes it
        self.loop: asyncio.AbstractEventLoop | None = loop
        self._ident: int | None = None
        self._thread: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.on_blocked = on_blocked
        self.lag_threshold = lag_threshold
        self.blocked_events = 0
        self.max_lag = 0.0  # the longest lag seen (seconds), for the metric
        self.dispatcher: Any = None  # the async minions' (runtime.async_dispatch), once built
        #: runners parked, oldest first, and whether a sweep that ends idle ones is due
        #: (runtime.async_runner; the loop thread's)
        self.idle_runners: dict[Any, None] = {}
        self.sweeping = False
        #: the task first steps run as (runtime.async_spare; the loop thread's), or None
        self.spare: Any = None
        #: the caller's loop is tearing down (``asyncio.run`` cancelled its tasks): what is
        #: posted to it now may never run, so the runtime's work goes to the pool instead
        self.ending = False
        self._posting = threading.Lock()
        self._guard: asyncio.Task[None] | None = None
        if loop is not None:
            self._ident = _loop_thread_ident(loop)
            self._guard = loop.create_task(_guard(self), name="minions-loop-guard")
            self._start_watch()

    # ----------------------------------------------------------------- running
    def ensure(self) -> asyncio.AbstractEventLoop:
        """The loop, starting the runtime's own on first use."""
        loop = self.loop
        if loop is not None:
            return loop
        with self._lock:
            if self.loop is None:
                if self._closed.is_set():
                    raise RuntimeError("the system's event loop is closed (it shut down)")
                self._start_owned()
            assert self.loop is not None
            return self.loop

    def _start_owned(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            block_shutdown_signals()
            asyncio.set_event_loop(loop)
            self._ident = threading.get_ident()
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _cancel_all(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="minions-loop", daemon=True)
        self._thread.start()
        ready.wait()
        self.loop = loop
        self._start_watch()

    def on_loop(self) -> bool:
        """True on the loop's own thread (a call there needs no thread-safe hand-off)."""
        return threading.get_ident() == self._ident

    def running_here(self) -> bool:
        """True in code the loop runs (a coroutine, a callback): a blocking wait there
        holds up every async minion, and whatever waits for one of them never ends."""
        return self.loop is not None and asyncio._get_running_loop() is self.loop

    def call(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` on the loop soon, from any thread; False once it is closed
        (or, the caller's, closing). It runs in a fresh context: not the caller's (a
        coroutine's, a handler's)."""
        # (under the lock the guard takes to set ``ending``: what is posted before is queued
        # ahead of the teardown's last turns of the loop, so it runs)
        with self._posting:
            if self.ending:
                return False
            try:
                loop = self.ensure()
                if threading.get_ident() == self._ident:
                    loop.call_soon(fn, *args, context=contextvars.Context())
                else:
                    loop.call_soon_threadsafe(fn, *args, context=contextvars.Context())
            except RuntimeError:  # the loop is closed (after shutdown; or the caller's ended)
                return False
        return True

    def call_at(self, deadline: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop at ``time.monotonic()`` ``deadline``."""
        self.call(_call_later, self, max(0.0, deadline - time.monotonic()), fn, args)

    # ----------------------------------------------------------------- lag watch
    def _start_watch(self) -> None:
        self._watch = threading.Thread(target=self._watch_lag, name="minions-loop-watch",
                                       daemon=True)
        self._watch.start()

    def _watch_lag(self) -> None:
        """Post a beat to the loop every half threshold; a beat not run within the
        threshold means a callback holds the loop: report the task that runs (once per
        episode, at once), and keep the longest episode for the metric."""
        block_shutdown_signals()
        while not self._closed.wait(self.lag_threshold / 2):  # (set after start: read each time)
            beat = threading.Event()
            posted = time.monotonic()
            loop = self.loop
            if loop is None or loop.is_closed():
                continue
            try:
                loop.call_soon_threadsafe(beat.set)
            except RuntimeError:
                return
            if beat.wait(self.lag_threshold):
                continue
            self.blocked_events += 1
            if self.on_blocked is not None:  # now: a loop blocked for good is reported too
                self.on_blocked(_running_task(loop), time.monotonic() - posted)
            while not beat.wait(self.lag_threshold) and not self._closed.is_set():
                pass
            self.max_lag = max(self.max_lag, time.monotonic() - posted)

    # ----------------------------------------------------------------- closing
    def close(self, timeout: float) -> bool:
        """Stop the watcher and, when the runtime owns the loop, cancel what is left on it,
        stop it and join its thread within ``timeout``. True when nothing was left alive."""
        self._closed.set()
        deadline = time.monotonic() + timeout
        if self._watch is not None and self._watch is not threading.current_thread():
            self._watch.join(max(0.0, deadline - time.monotonic()))
        thread, loop = self._thread, self.loop
        self._end_guard()
        if not self.owned or thread is None or loop is None:
            return True
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(max(0.1, deadline - time.monotonic()))
        return not thread.is_alive()

    def _end_guard(self) -> None:
        guard, loop = self._guard, self.loop
        if guard is None or loop is None:
            return
        if self.on_loop():
            guard.cancel()
        else:
            with contextlib.suppress(RuntimeError):  # (the caller's loop is closed)
                loop.call_soon_threadsafe(guard.cancel)

    async def guard_ended(self) -> None:
        """On the caller's loop, after close(): its guard task has ended (none is left)."""
        guard = self._guard
        if guard is not None:
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard
        spare, self.spare = self.spare, None  # (cancelled by the guard's end)
        if spare is not None and not spare.task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await spare.task

    def threads(self) -> list[threading.Thread]:
        return [t for t in (self._thread, self._watch) if t is not None]


async def _guard(host: LoopHost) -> None:
    """Wait on the caller's loop until its teardown cancels every task (or close() does)."""
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        with host._posting:
            host.ending = True
        if host.spare is not None:  # (guard_ended waits for it to end)
            host.spare.task.cancel()
        _cancel_minions_tasks(asyncio.get_running_loop())


def _cancel_minions_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """The teardown cancelled the tasks it found; a minion's task started since (in the
    same turn of the loop) is cancelled too, so that it ends, answered, before the loop
    closes."""
    for task in asyncio.all_tasks(loop):
        if task.get_name().startswith(TASK_PREFIX):
            task.cancel()


def _call_later(host: LoopHost, delay: float, fn: Callable[..., Any],
                args: tuple[Any, ...]) -> None:
    assert host.loop is not None
    host.loop.call_later(delay, fn, *args)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks left on a loop the runtime owns and let them unwind."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))


def _running_task(loop: asyncio.AbstractEventLoop) -> str | None:
    """The name of the task the loop runs now (read from another thread: a dict lookup)."""
    try:
        task = asyncio.current_task(loop)
    except RuntimeError:
        return None
    return None if task is None else task.get_name()


def _loop_thread_ident(loop: asyncio.AbstractEventLoop) -> int:
    """The thread that runs ``loop``: the caller's (start_async runs on it)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not loop:
        raise RuntimeError("start_async() must be awaited on the loop it hosts minions on")
    return threading.get_ident()


def minion_path(task_name: str | None) -> str | None:
    """The path of the minion a task named by the runtime runs for, else None."""
    if task_name is None or not task_name.startswith(TASK_PREFIX):
        return None
    return task_name[len(TASK_PREFIX):]
