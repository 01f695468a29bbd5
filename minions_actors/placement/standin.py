"""The home side of a placed minion: a stand-in the cell drives like any instance.

The cell builds a :class:`StandIn` instead of the user's class (see
:mod:`minions_actors.runtime.placement`). Its ``__init__`` opens a :class:`Remote` (a child
process, a Ray actor) and builds the user's class there with the spawn arguments; every
handler the cell calls is one request to the remote, whose reply carries the handler's
result and, for a persistent class, the minion's snapshot taken right after it, so the
cell's snapshotter stores it at home exactly as for a local minion.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, cast

from pykka.messages import ProxyCall

from minions_actors.errors import (
    PlacementError,
    RefusedUnsent,
    SidecarError,
    SnapshotFailed,
    UnpicklableMessage,
)
from minions_actors.placement import away_timers
from minions_actors.placement.process import dumps_request, unpack
from minions_actors.runtime.minion import Minion

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell

#: A request to the remote: (kind, argument). Kinds: restore, start, receive, batch, proxy,
#: stop, failure (see minions_actors.placement.away.handle).
Request = tuple[str, Any]
#: The kinds that carry what a sender sent: one that cannot be pickled is the sender's
#: error (refused before it is sent), not a crash of the minion.
SENT = frozenset({"receive", "batch", "proxy"})


class Remote(Protocol):
    """One incarnation's placed instance, seen from home."""

    who: str  # names the minion and where it runs, in errors

    def open(self, cell: Cell, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        """Start where the code runs and build the instance; return the public names of
        its instance attributes (so that proxies know them)."""
        ...

    def request(self, data: bytes, doing: str, *, stopping: bool = False) -> Any:
        """Run one request (pickled by :func:`pickled`) there and return its reply
        ``(result, snapshot_outcome)``; ``stopping`` is the last request of a graceful
        stop (not cut short by it)."""
        ...

    def check(self) -> None:
        """Raise the crash error when what runs there is gone (asked between calls, when
        the placement's watcher saw it end)."""
        ...

    def close(self, graceful: bool) -> None:
        """Release what runs there (the process, the actor) for good."""
        ...


class RemotePlacement(Protocol):
    """A placement whose minions run through a :class:`Remote` (one per incarnation)."""

    @property
    def max_batch(self) -> int:
        """How many consecutive tells may travel in one call."""
        ...

    def remote(self, cell: Cell) -> Remote: ...


def check_max_batch(value: object, placement: str) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise PlacementError(
            f"{placement}(max_batch=...) is how many tells may travel in one call: an int "
            f">= 1, got {value!r}"
        )


def check_seconds(placement: str, **timeouts: object) -> None:
    """Each timeout is None (no limit) or a positive number of seconds."""
    for label, value in timeouts.items():
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise PlacementError(
                f"{placement}({label}=...) must be a positive number of seconds, got {value!r}"
            )


def describe_message(message: Any) -> str:
    return f"while handling a {type(message).__name__} message"


def pickled(remote: Remote, request: Request, doing: str) -> bytes:
    """The request as it travels; a sender's message that cannot be pickled is refused
    here, before anything is sent (:class:`UnpicklableMessage`, the sender's error)."""
    error = RefusedUnsent if request[0] in SENT else SidecarError
    return dumps_request(request, remote.who, doing, error)


class StandIn(Minion):
    """Stands for a placed minion's instance in its cell; see the module docstring."""

    # class-level defaults: on_failure must work even when __init__ failed early
    _minion_remote: Remote | None = None
    _minion_state: Any = None
    _minion_built = False
    _minion_max_batch = 1  # set from the placement: consecutive tells sent in one call

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        cell = self._minion_cell
        placement = cast("RemotePlacement", cell.placement)
        self._minion_remote = remote = placement.remote(cell)
        self._minion_max_batch = placement.max_batch
        for name in remote.open(cell, args, kwargs):  # names only, for proxy introspection
            self.__dict__.setdefault(name, None)
        self._minion_built = True

    def _minion_call(self, request: Request, doing: str) -> Any:
        remote = self._minion_remote
        assert remote is not None  # the cell calls handlers only after __init__ succeeded
        result, outcome = self._minion_reply(remote.request(pickled(remote, request, doing),
                                                            doing))
        if outcome is not None:
            self._minion_state = outcome
        return result

    def _minion_reply(self, reply: tuple[Any, ...]) -> tuple[Any, Any]:
        """(result, snapshot outcome) of a reply; the timer calls the handler made there
        (a third item) are carried out here, on the home cell."""
        if len(reply) > 2:
            away_timers.apply(self._minion_cell, reply[2])
        return reply[0], reply[1]

    # -- what the cell calls ---------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        return self._minion_call(("receive", message), describe_message(message))

    def _minion_receive_batch(self, messages: Sequence[Any]) -> tuple[int, BaseException | None]:
        """Tell several messages in one call (see :mod:`minions_actors.runtime.batching`)."""
        remote = self._minion_remote
        assert remote is not None
        doing = f"while handling a batch of {len(messages)} tells"
        try:
            data = pickled(remote, ("batch", list(messages)), doing)
        except UnpicklableMessage as exc:
            return self._minion_receive_sendable(messages, exc)
        (done, outcome, error), _ = self._minion_reply(remote.request(data, doing))
        if outcome is not None:
            self._minion_state = outcome
        if error is None:
            return done, None
        try:
            unpack(error, repr(self), self._minion_cell.cls_name)
        except BaseException as exc:
            return done, exc
        return done, None  # pragma: no cover - an error reply always raises

    def _minion_receive_sendable(
        self, messages: Sequence[Any], exc: UnpicklableMessage,
    ) -> tuple[int, BaseException | None]:
        """A batch that cannot be pickled: send the messages before the first one that
        cannot, and report that one refused (the batch goes on after it)."""
        remote = self._minion_remote
        assert remote is not None
        for bad, message in enumerate(messages):
            try:
                pickled(remote, ("receive", message), describe_message(message))
            except UnpicklableMessage as refused:
                if bad == 0:
                    return 0, refused
                done, error = self._minion_receive_batch(messages[:bad])
                return (done, error) if error is not None else (bad, refused)
        raise exc  # each alone can be pickled, the batch cannot: report it as it is

    def _minion_check(self) -> None:
        """Raise the crash error when where the instance runs is gone (see
        :func:`minions_actors.runtime.placement.check_placed`)."""
        remote = self._minion_remote
        if remote is not None:
            remote.check()

    def _minion_forward(self, message: Any) -> Any:
        doing = f"while handling proxy access to {'.'.join(message.attr_path)!r}"
        return self._minion_call(("proxy", message), doing)

    def snapshot(self) -> Any:
        outcome = self._minion_state
        if outcome is None:
            return None
        ok, value = outcome
        if not ok:
            raise SnapshotFailed(value)
        return value

    def restore(self, state: Any) -> None:
        self._minion_call(("restore", state), "in restore()")
        self._minion_state = (True, state)

    def on_start(self) -> None:
        self._minion_call(("start", None), "in on_start()")

    def on_stop(self) -> None:
        remote, self._minion_remote = self._minion_remote, None
        if remote is None:
            return
        try:
            remote.request(pickled(remote, ("stop", None), "in on_stop()"), "in on_stop()",
                           stopping=True)
        finally:
            remote.close(graceful=True)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Run the class's ``on_failure`` there when the instance is still reachable, then
        release it: a restart always gets a fresh process or actor (native state may be
        corrupt)."""
        remote, self._minion_remote = self._minion_remote, None
        if remote is None:
            return
        try:
            if self._minion_built:
                with contextlib.suppress(Exception):  # it may be dead: that is the crash
                    remote.request(pickled(remote, ("failure", exception_value),
                                           "in on_failure()"), "in on_failure()",
                                   stopping=True)
        finally:
            remote.close(graceful=False)

    # -- workflow steps and other method lookups ---------------------------------------
    def __getattr__(self, name: str) -> Any:
        """A public method of the placed class (a workflow step): call it there."""
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._minion_method, name)

    def _minion_method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._minion_forward(ProxyCall(attr_path=(name,), args=args, kwargs=kwargs))

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._minion_cell.cls)) | set(self.__dict__))

    def __repr__(self) -> str:
        cell = self.__dict__.get("_minion_cell")
        where = "placed" if cell is None else f"{cell.path}, placed"
        return f"<{cell.cls_name if cell else 'StandIn'} {where}>"
