"""Futures of asks: :class:`MinionFuture` (a pykka future whose timeout names the minion,
awaitable from asyncio code without blocking the loop) and the stop's future."""

from __future__ import annotations

import asyncio
import functools
import math
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pykka
from pykka import Future, ThreadingFuture
from pykka._threading import ThreadingFutureResult

from minions_actors.errors import AskDeadlock, AskTimeout
from minions_actors.runtime import waits
from minions_actors.runtime.blocking import _local, blocking
from minions_actors.runtime.context import current, current_handler_cell, current_task_cell
from minions_actors.support.threads import in_thread

if TYPE_CHECKING:
    from collections.abc import Generator

    from pykka._future import GetHookFunc
    from pykka._types import OptExcInfo

    from minions_actors.runtime.cell import Cell

T = TypeVar("T")


_SETTLE_LOCK = threading.Lock()  # setting a result is check-then-set; held for a moment
#: pykka's "no hook result yet" marker, one for every future (pykka makes one per future
#: and only tests its type)
_UNSET = Future()._get_hook_result
_SET: Any = object()  # _block(): the result was set
_new = tuple.__new__  # a ThreadingFutureResult without its Python-level __new__ (~0.5 us)


class _Described(Protocol):
    def describe(self) -> str: ...


def check_timeout(timeout: Any) -> float | None:
    """Validate a ``timeout=`` argument: None or ``inf`` wait forever (returned as None),
    a number >= 0 is seconds; negative, NaN or a non-number is a clear error."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be None or a number of seconds, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(
            f"timeout must be None or a number >= 0 seconds (inf waits forever), got {timeout!r}"
        )
    return None if math.isinf(timeout) else float(timeout)


class MinionFuture(ThreadingFuture[T]):
    """A pykka future whose timeout names the minion that did not answer.

    A lighter waiting mechanism than pykka's (a Condition and its Python-level waiter
    list per future): a C lock, taken at creation, is released once by whoever sets the
    result; ``get()`` acquires it with the timeout and releases it again for the next
    caller. Setting twice, or a result and a get hook, raises ``queue.Full`` as in pykka.
    """

    __slots__ = ("_done", "_minion", "_result", "_waiters")

    def __init__(self, minion: str | _Described = "a minion") -> None:
        # the get-hook state, as Future.__init__ sets it (not ThreadingFuture's Condition)
        self._get_hook = None
        self._get_hook_result = _UNSET
        self._result: ThreadingFutureResult | None = None
        self._done = threading.Lock()
        self._done.acquire()
        self._minion = minion  # a name, or a cell described only if a timeout needs it
        # the asyncio futures to wake when the result is set, with their loops (see
        # result_async): None until a coroutine awaits (most futures are waited with get)
        # (and the loop's thread)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int]] | None \
            = None

    def get(self, *, timeout: float | None = None) -> Any:
        return self._get(check_timeout(timeout))

    def _get(self, timeout: float | None) -> Any:
        """:meth:`get` with ``timeout`` checked already (by ``ask``)."""
        result = self._result
        if result is None:
            if current_task_cell.get() is not None and timeout != 0:
                raise AskDeadlock(_blocking_text(self._name()))
            if timeout != 0 and _needs_this_loop(self._minion):
                raise AskDeadlock(_hosting_loop_text(self._name()))
            waiter = current.cell
            if waiter is not None:  # a minion's handler waits: refuse a wait in a cycle
                if waiter is self._minion:  # its own unanswered ask, on its own thread
                    raise AskDeadlock(_self_wait_text(waiter))
                waits.wait_on(waiter, self)
            try:
                if _local.slot is None:  # not a pool worker: no wait to announce (~1 us)
                    value = self._block(timeout)
                else:
                    with blocking():  # a pool worker waiting here is replaced meanwhile
                        value = self._block(timeout)
                if value is not _SET:
                    return value
            except pykka.Timeout:
                raise AskTimeout(self._timeout_text(timeout)) from None
            finally:
                if waiter is not None:
                    waits.done(waiter)
            result = self._result
            assert result is not None
        if result.exc_info is not None:
            exc_type, exc_value, exc_traceback = result.exc_info
            assert exc_type is not None
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return result.value

    def _awaited(self) -> Cell | None:
        """The cell whose turn still owes this reply (the wait-for graph's edge), or None:
        answered, handed to another thread to answer, or not a reply from a minion."""
        minion = self._minion
        if self._result is not None or self._get_hook is not None or isinstance(minion, str):
            return None
        return minion  # type: ignore[return-value]  # a cell (the only _Described)

    def _hand_off(self) -> None:
        """The reply now comes from another thread (a durable workflow start is answered
        by the store's writer), not from the minion's turn: a wait on it is no edge."""
        self._minion = self._name()

    def _block(self, timeout: float | None) -> Any:
        """Wait for the result (``_SET``), or return what a get hook gives; raises
        ``pykka.Timeout`` when neither comes within ``timeout``."""
        if self._get_hook is None and self._wait(timeout):
            return _SET
        return self._hooked(timeout)

    def _wait(self, timeout: float | None) -> bool:
        """Wait for a result (False: none in time, or a get hook was set meanwhile)."""
        done = self._done
        if not done.acquire(True, -1 if timeout is None else timeout):
            return False
        done.release()  # every later get() passes at once
        return self._result is not None

    def _hooked(self, timeout: float | None) -> Any:
        """pykka's get-hook path (map/filter/join/stop futures), or a timeout."""
        if self._get_hook is None:
            raise pykka.Timeout(f"{timeout} seconds")
        return Future.get(self, timeout=timeout)

    def set(self, value: Any | None = None) -> None:
        self._settle(_new(ThreadingFutureResult, (value, None)))

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        assert exc_info is None or len(exc_info) == 3
        self._settle(_new(ThreadingFutureResult, (None, exc_info or sys.exc_info())))

    def _settle(self, result: ThreadingFutureResult) -> None:
        with _SETTLE_LOCK:
            if self._result is not None or self._get_hook is not None:
                raise queue.Full
            self._result = result
            waiters = self._waiters
        self._done.release()
        for waiter in waiters or ():  # every coroutine awaiting it
            _wake(*waiter)

    # -- asyncio ---------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, T]:
        """``await future``: the result, without blocking the running loop."""
        return self.result_async(None).__await__()

    async def result_async(self, timeout: float | None = None) -> T:
        """The result, awaited on the running loop; raises what :meth:`get` raises
        (:class:`~minions_actors.AskTimeout` after ``timeout`` seconds)."""
        timeout = check_timeout(timeout)
        waiter = current_handler_cell.get()
        if self._result is None and waiter is not None:  # an async minion waits: an edge
            if waiter is self._minion:  # its own ask: answered only after this handler
                raise AskDeadlock(_self_wait_text(waiter))
            waits.wait_on(waiter, self)
        try:
            return await self._result_async(timeout)
        finally:
            if waiter is not None:
                waits.done(waiter)

    async def _result_async(self, timeout: float | None) -> T:
        if self._result is None:
            loop = _running_loop(self._minion)
            woken: asyncio.Future[None] = loop.create_future()
            with _SETTLE_LOCK:
                hooked = self._get_hook is not None
                if self._result is None and not hooked:
                    if self._waiters is None:
                        self._waiters = []
                    self._waiters.append((loop, woken, threading.get_ident()))
            if hooked:  # a stop's future: its hook blocks, so it waits on a thread
                return await in_thread(functools.partial(self.get, timeout=timeout),
                                       "minions-await")
            if self._result is None:
                try:
                    if timeout is None:
                        await woken
                    else:  # (not wait_for: 3.11's drops a cancel that comes with the answer)
                        async with asyncio.timeout(timeout):
                            await woken
                except BaseException as exc:  # (a timeout or a cancel; not on the hot path)
                    self._forget(woken)
                    if isinstance(exc, TimeoutError):
                        raise AskTimeout(self._timeout_text(timeout)) from None
                    raise
        return self.get(timeout=0)  # type: ignore[no-any-return]

    def _forget(self, woken: asyncio.Future[None]) -> None:
        """Drop an awaiter that gave up (a timeout, a cancel): repeated waits do not pile up."""
        with _SETTLE_LOCK:
            if self._result is None and self._waiters is not None:
                self._waiters = [w for w in self._waiters if w[1] is not woken]

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        with _SETTLE_LOCK:
            if self._result is not None or self._get_hook is not None:
                raise queue.Full
            Future.set_get_hook(self, func)
        self._done.release()  # a get() already waiting calls the hook

    def _timeout_text(self, timeout: float | None) -> str:
        return (
            f"{self._name()} did not answer within {timeout}s (it may be busy, "
            f"restarting with backoff, or its handler may block); raise the timeout "
            f"or check the minion"
        )

    def _name(self) -> str:
        minion = self._minion
        return minion if isinstance(minion, str) else minion.describe()


#: the ``_done`` of futures hooked at birth: released, never waited on (a hooked get()
#: calls its hook)
_OPEN = threading.Lock()


class _StopFuture(MinionFuture[bool]):
    """``ref.stop(block=False)``: True once the minion has stopped."""

    __slots__ = ()

    @classmethod
    def hooked(cls, cell: _Described, hook: GetHookFunc[bool]) -> _StopFuture:
        """A future whose ``get`` calls ``hook`` from birth, as if ``set_get_hook`` had
        been called: no lock of its own to make and release (one stop each, 100,000
        stopped at once)."""
        future = cls.__new__(cls)
        Future.__init__(future)
        future._get_hook = hook
        future._result = None
        future._done = _OPEN
        future._minion = cell
        future._waiters = None
        return future

    def _timeout_text(self, timeout: float | None) -> str:
        return (
            f"{self._name()} did not stop within {timeout}s: it stops after the messages "
            f"queued before the stop, and its current handler may block; wait again with "
            f"a longer timeout"
        )




def _self_wait_text(cell: Cell) -> str:
    return (
        f"{cell.describe()} waited for a reply from itself on its own thread: the reply "
        f"could only come after this handler returns (a deadlock); use tell() or a proxy "
        f"call without get() to queue work for later, or call the method on self directly"
    )


def _needs_this_loop(minion: Any) -> bool:
    """True when ``minion`` is an async one and this code runs on the loop it needs."""
    host = getattr(minion, "loop_host", None)  # (only an async minion's cell has one)
    return host is not None and host.running_here()  # type: ignore[no-any-return]


def _hosting_loop_text(minion: str) -> str:
    return (
        f"a coroutine waited for {minion} with a blocking get(), ask() or stop() on the "
        f"event loop that runs the async minions: {minion} needs that loop to answer, so "
        f"the wait could never end; await it instead: 'await ref.ask_async(...)', "
        f"'await future', 'await ref.stop_async()'"
    )


def _running_loop(minion: Any) -> asyncio.AbstractEventLoop:
    """The running loop; on an async minion's own loop, read from its host: on CPython 3.11
    ``asyncio.get_running_loop()`` makes a ``getpid()`` system call, which costs a
    microsecond or more in some sandboxes (gVisor)."""
    host = getattr(minion, "loop_host", None)  # (only an async minion's cell has one)
    if host is not None and host.on_loop():
        loop = host.loop
        if loop is not None and loop.is_running():  # (then it runs on this thread)
            return loop  # type: ignore[no-any-return]
    return asyncio.get_running_loop()


def _wake(loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None], thread: int) -> None:
    """Wake an awaiting ``result_async`` on its loop, from any thread (on that loop's own
    ``thread`` directly: no self-pipe write)."""
    if thread == threading.get_ident():
        if not loop.is_closed():  # (closed: nobody awaits any more)
            _resolve(woken)
        return
    try:
        loop.call_soon_threadsafe(_resolve, woken)
    except RuntimeError:  # its loop is closed: nobody awaits any more
        pass


def _resolve(woken: asyncio.Future[None]) -> None:
    if not woken.done():  # (a timed-out wait cancelled it)
        woken.set_result(None)


def _blocking_text(minion: str) -> str:
    return (
        f"a coroutine of an async minion waited for {minion} with a blocking get() or "
        f"ask(): that would block the event loop every async minion runs on (and the "
        f"answer may need that loop); await it instead: 'await ref.ask_async(...)', "
        f"'await future', 'await ref.proxy().method(...)'"
    )
