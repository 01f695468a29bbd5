"""``Ray`` placement: a minion's code runs as a Ray actor, still supervised at home.

Ray is an optional dependency (``pip install 'minions-actors[ray]'``), imported only when a
``Ray`` placement is used. Each incarnation is one Ray actor built with the user's Ray
options; every handler call is one actor call whose reply carries the minion's snapshot,
stored at home. When the actor or its node dies (``RayActorError``), the minion crashes
with :class:`RayActorLost` and its supervisor restarts it, as a new actor wherever Ray
schedules it, restored from the snapshot after its last successful message. Ray's own
actor restarts are turned off: supervision is ours.
"""

from __future__ import annotations

import functools
import pickle
import time
from typing import TYPE_CHECKING, Any

from minions_actors.errors import PlacementError, RayActorLost
from minions_actors.placement.away import Away
from minions_actors.placement.process import error_reply, ok_reply, unpack
from minions_actors.placement.standin import StandIn, check_max_batch, check_seconds
from minions_actors.placement.watch import Watcher
from minions_actors.runtime.placement import CheckPlaced

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

_SLICE = 0.1  # how often a wait checks whether the minion is being stopped
# Ray options that would make Ray restart or retry behind the supervisor's back
_OURS = ("max_restarts", "max_task_retries", "lifetime")
#: How often each placed actor is pinged, so that the death of an idle one (its process,
#: its node) is a crash within about this long, not at its next message.
PING_PERIOD = 1.0


def _ray() -> Any:
    """The ray module, or a PlacementError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise PlacementError(
            "placement=Ray(...) needs the ray package, which is not installed: "
            "pip install 'minions-actors[ray]'"
        ) from exc
    return ray


class _Host:
    """The Ray actor: builds the minion on its first call, then runs requests in order.
    Replies are pickled by :mod:`minions_actors.placement.process`'s protocol, so that an
    exception travels as in a child process."""

    def __init__(self) -> None:
        self.away: Away | None = None

    def build(self, cls: type[Minion], args: tuple[Any, ...], kwargs: dict[str, Any],
              identity: tuple[str, str, str]) -> bytes:
        try:
            self.away = Away(cls, args, kwargs, identity)
            return ok_reply(self.away.public_names(), cls.__qualname__)
        except Exception as exc:
            return error_reply(exc)

    def ping(self) -> bool:
        return True

    def handle(self, data: bytes) -> bytes:
        away = self.away
        assert away is not None
        try:
            return away.reply(pickle.loads(data))
        except Exception as exc:
            return error_reply(exc)


@functools.cache
def _host_class() -> Any:
    return _ray().remote(_Host)


class _Pinger(Watcher):
    """Pings every watched actor each :data:`PING_PERIOD` (a busy actor's ping waits in
    its queue: only an error counts); an actor that died is reported lost."""

    thread_name = "minions-ray-watch"

    def __init__(self) -> None:
        super().__init__()
        self._pings: dict[Any, tuple[Any, float]] = {}  # remote -> (its ping, sent at)

    def wait_lost(self, watched: dict[Any, Any]) -> list[Any]:
        ray, now = _ray(), time.monotonic()
        self._pings = {k: p for k, p in self._pings.items() if k in watched}
        for key, actor in watched.items():
            if key not in self._pings:
                self._pings[key] = (actor.ping.remote(), now)
        refs = {ref: key for key, (ref, _) in self._pings.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=_SLICE * 2)
        lost = []
        for ref in ready:
            key = refs[ref]
            try:
                ray.get(ref, timeout=0)
            except ray.exceptions.ActorUnavailableError:
                pass  # unreachable for now, maybe not dead: the next ping says
            except ray.exceptions.RayActorError:
                lost.append(key)
                continue
            except Exception:  # nothing that says the actor died: it answers the next one
                pass
            sent = self._pings[key][1]
            if time.monotonic() - sent >= PING_PERIOD:
                del self._pings[key]  # answered a period ago: ping again now
        self._changed.wait(_SLICE * 2)
        return lost


@functools.cache
def _pinger() -> _Pinger:
    return _Pinger()


class _RayRemote:
    """One incarnation as one Ray actor."""

    def __init__(self, placement: Ray, cell: Cell) -> None:
        self.placement = placement
        self.cell = cell
        self.who = f"minion {cell.path!r} ({cell.cls_name}) on Ray"
        self.actor: Any = None

    def open(self, cell: Cell, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        options = {**self.placement.options, "max_restarts": 0, "max_task_retries": 0,
                   "name": f"minion {cell.path} #{cell.incarnation} {cell.urn[-12:]}"}
        self.actor = _host_class().options(**options).remote()
        identity = (cell.path, cell.name, cell.urn)
        names: list[str] = self._get(self.actor.build.remote(cell.cls, args, kwargs, identity),
                                     self.placement.start_timeout, "while building")
        incarnation = cell.incarnation
        _pinger().watch(self, self.actor, lambda: cell.send_system(CheckPlaced(incarnation)))
        return names

    def request(self, data: bytes, doing: str, *, stopping: bool = False) -> Any:
        # pickled by the stand-in: Ray passes bytes at less cost than it serialises a tuple
        ref = self.actor.handle.remote(data)
        if stopping:
            return self._get(ref, self.placement.stop_timeout, doing, interruptible=False)
        return self._get(ref, self.placement.call_timeout, doing)

    def _get(self, ref: Any, timeout: float | None, doing: str,
             interruptible: bool = True) -> Any:
        """Wait for a reply; a dead actor, a timeout or a stop is :class:`RayActorLost`."""
        ray = _ray()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self.close(graceful=False)
                raise RayActorLost(f"{self.who} did not answer within {timeout}s {doing}; "
                                   f"the actor was killed")
            if interruptible and self.cell.stopping:
                self.close(graceful=False)
                raise RayActorLost(f"{self.who}: the call {doing} was abandoned because the "
                                   f"minion is stopping, and the actor killed")
            try:  # one ray.get per slice (ray.wait then ray.get costs a second round trip)
                data = ray.get(ref, timeout=_SLICE if left is None else min(left, _SLICE))
            except ray.exceptions.GetTimeoutError:
                continue
            except ray.exceptions.RayActorError as exc:
                self.actor = None
                raise RayActorLost(f"{self.who}: the actor died {doing} ({exc})") from exc
            return unpack(data, self.who, self.cell.cls_name)

    def check(self) -> None:
        if self.actor is None:
            raise RayActorLost(f"{self.who}: the actor is gone")
        self._get(self.actor.ping.remote(), self.placement.call_timeout, "while idle")

    def close(self, graceful: bool) -> None:
        _pinger().unwatch(self)
        actor, self.actor = self.actor, None
        if actor is not None:
            _ray().kill(actor, no_restart=True)


def _check_options(options: dict[str, Any]) -> None:
    """Each option goes to the actor's ``.options()`` or is refused here, by name."""
    refused = sorted(set(options) & set(_OURS))
    if refused:
        raise PlacementError(
            f"Ray({', '.join(f'{k}=...' for k in refused)}): the minion's supervisor "
            f"restarts it with its last state, so Ray's own restarts, retries and "
            f"detached lifetimes are not allowed; set restart= and the supervisor's "
            f"strategy instead"
        )
    if "name" in options:
        raise PlacementError(
            "Ray(name=...): each incarnation of a placed minion is a new actor, named "
            "after the minion ('minion <path> #<incarnation> <id>'); name the minion "
            "instead: system.spawn(..., name=...)"
        )
    try:
        _host_class().options(**options)  # Ray's own check of the names and values
    except (ValueError, TypeError) as exc:
        raise PlacementError(f"Ray({', '.join(f'{k}=...' for k in options)}): {exc}") from exc


class Ray:
    """Run the minion as a Ray actor: ``system.spawn(Cls, ..., placement=Ray(num_cpus=1))``.

    Keyword options go to Ray's ``.options()`` for the actor (``num_cpus``, ``num_gpus``,
    ``resources``, ``scheduling_strategy`` such as a node affinity, ``runtime_env``...);
    Ray's own restarts and retries (``max_restarts``, ``max_task_retries``) and detached
    lifetimes are refused, because the supervisor restarts the minion with its state.
    Call ``ray.init(...)`` before spawning (otherwise Ray starts a local cluster on first
    use, as it always does). ``call_timeout`` bounds each handler call (None: no limit),
    ``start_timeout`` the actor's scheduling and constructor, ``stop_timeout`` its
    ``on_stop``. Up to ``max_batch`` consecutive tells waiting in the mailbox travel in one
    actor call (1: one call per message).
    """

    def __init__(self, *, call_timeout: float | None = None, start_timeout: float = 60.0,
                 stop_timeout: float = 5.0, max_batch: int = 256, **options: Any) -> None:
        check_max_batch(max_batch, "Ray")
        _ray()  # imported here, when a Ray placement is asked for; or a clear error
        _check_options(options)
        check_seconds("Ray", call_timeout=call_timeout, start_timeout=start_timeout,
                      stop_timeout=stop_timeout)
        self.options: dict[str, Any] = dict(options)
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.max_batch = max_batch

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Ray({shown})"

    @property
    def dedicated_thread(self) -> bool:
        return True  # each call waits for Ray

    def check(self, cls: type[Minion]) -> None:
        """Any class: Ray pickles classes that workers cannot import by value."""

    def stand_in(self, cls: type[Minion]) -> Minion:
        return StandIn.__new__(StandIn)

    def remote(self, cell: Cell) -> _RayRemote:
        return _RayRemote(self, cell)
