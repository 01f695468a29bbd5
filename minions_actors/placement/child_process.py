"""``ChildProcess`` placement: a whole minion in a child process, still supervised at home.

A segfault, ``abort()`` or the OOM killer there ends only that child: the minion crashes
with :class:`~minions_actors.errors.ChildProcessCrashed`, and its supervisor restarts it in
a fresh process, restored from its last snapshot (taken after each successful message and
stored at home). Requests travel over the same pipe mechanism as a
:class:`~minions_actors.Sidecar` (:mod:`minions_actors.placement.process`).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from minions_actors.errors import ChildProcessCrashed, PlacementError, SpawnError
from minions_actors.placement.away import Away
from minions_actors.placement.process import (
    ChildChannel,
    child_setup,
    error_reply,
    next_request,
    ok_reply,
)
from minions_actors.placement.standin import StandIn, check_max_batch, check_seconds
from minions_actors.placement.watch import sentinels
from minions_actors.runtime.placement import CheckPlaced

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion


def _serve(conn: Connection, parent_pid: int) -> None:
    """The child process: build the instance on the first request, then run requests until
    told to stop, until the pipe closes or until the parent process is gone."""
    child_setup()
    conn.send_bytes(ok_reply(None, "the child"))
    away: Away | None = None
    while True:
        alive, request = next_request(conn, parent_pid, "a placed minion")
        if not alive or request is None:
            return
        if not request:  # could not be unpickled: answered already
            continue
        try:
            if away is None:
                cls, args, kwargs, identity = request
                away = Away(cls, args, kwargs, identity)
                reply = ok_reply(away.public_names(), cls.__qualname__)
            else:
                reply = away.reply(request)
        except Exception as exc:
            reply = error_reply(exc)
        conn.send_bytes(reply)


class _ChildRemote:
    """One incarnation in one child process."""

    def __init__(self, placement: ChildProcess, cell: Cell) -> None:
        self.placement = placement
        self.cell = cell
        self.channel = ChildChannel(
            f"minion {cell.path!r} ({cell.cls_name}) in a child process",
            f"{cell.cls.__module__}:{cell.cls.__qualname__}", lambda: cell.stopping,
            crashed=ChildProcessCrashed, start_method=placement.start_method,
            stop_timeout=placement.stop_timeout,
        )
        self.who = self.channel.who
        self.watched = False  # its process's sentinel, while the process runs

    def open(self, cell: Cell, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        timeout = self.placement.start_timeout
        self.channel.start(_serve, (), f"minion:{cell.path}", timeout)
        identity = (cell.path, cell.name, cell.urn)
        names: list[str] = self.channel.call((cell.cls, args, kwargs, identity), timeout,
                                             f"while building {cell.cls_name}")
        proc = self.channel.proc
        if proc is not None:  # an idle child's death is a crash at once, not at the next call
            incarnation, self.watched = cell.incarnation, True
            sentinels().watch(self, proc.sentinel,
                              lambda: cell.send_system(CheckPlaced(incarnation)))
        return names

    def request(self, data: bytes, doing: str, *, stopping: bool = False) -> Any:
        if stopping:  # on_stop at shutdown: bounded by stop_timeout, not cut short
            return self.channel.call_pickled(data, self.placement.stop_timeout, doing,
                                             interruptible=False)
        return self.channel.call_pickled(data, self.placement.call_timeout, doing)

    def check(self) -> None:
        self.channel.check("while idle")

    def close(self, graceful: bool) -> None:
        if self.watched:
            self.watched = False
            sentinels().unwatch(self)
        self.channel.stop(None if graceful else 0.0)


@dataclass(frozen=True)
class ChildProcess:
    """Run the minion in a child process: ``system.spawn(Cls, ..., placement=ChildProcess())``.

    The same class, unchanged: it is pickled by reference and built in the child with the
    spawn arguments (which, like messages and replies, must be picklable). ``call_timeout``
    bounds each handler call (None: no limit): a child that does not answer is killed, a
    crash. ``start_method`` is the :mod:`multiprocessing` start method (``"spawn"``, the
    default, needs the ``if __name__ == "__main__":`` guard in the main script);
    ``start_timeout`` bounds the start and the constructor, ``stop_timeout`` the
    ``on_stop`` and the clean exit. Up to ``max_batch`` consecutive tells waiting in the
    mailbox travel in one call (1: one call per message).
    """

    call_timeout: float | None = None
    start_timeout: float = 30.0
    stop_timeout: float = 2.0
    start_method: str = "spawn"
    max_batch: int = 256

    def __post_init__(self) -> None:
        check_max_batch(self.max_batch, "ChildProcess")
        methods = multiprocessing.get_all_start_methods()
        if self.start_method not in methods:
            raise PlacementError(
                f"ChildProcess(start_method=...) must be one of {methods}, got "
                f"{self.start_method!r}"
            )
        check_seconds("ChildProcess", call_timeout=self.call_timeout,
                      start_timeout=self.start_timeout, stop_timeout=self.stop_timeout)

    @property
    def dedicated_thread(self) -> bool:
        return True  # each call waits on the pipe

    def check(self, cls: type[Minion]) -> None:
        if "<locals>" in cls.__qualname__:
            raise SpawnError(
                f"{cls.__qualname__} is defined inside a function, so a child process "
                f"cannot import it: define the class at module level to place it in a "
                f"child process"
            )

    def stand_in(self, cls: type[Minion]) -> Minion:
        return StandIn.__new__(StandIn)

    def remote(self, cell: Cell) -> _ChildRemote:
        return _ChildRemote(self, cell)
