"""The far side of a placed minion: the user's instance, built and driven where it runs (a
child process, a Ray actor), one request at a time.

The instance is a normal :class:`~minions_actors.Minion` built without a cell: it gets an
:class:`AwayCell` that knows its path and name, and says clearly that what stays home
(``self.spawn``, ``self.system``, ``self.ref``, ``self.stop()``, workflows' own API) is not
available where the code runs.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

from minions_actors.errors import PlacementError
from minions_actors.placement.away_timers import Call, away_parts
from minions_actors.placement.process import PROTOCOL, error_reply, ok_reply
from minions_actors.runtime.cell import proxy_message
from minions_actors.runtime.minion import Minion
from minions_actors.runtime.snapshots import is_persistent


class _NoInbox:
    """``self.stop()`` from placed code: the mailbox is at home."""

    def __init__(self, path: str) -> None:
        self.path = path

    def put(self, *_args: Any, **_kwargs: Any) -> None:
        raise PlacementError(
            f"minion {self.path!r} runs placed outside its home process: self.stop() is not "
            f"available there; stop it from home with ref.stop() or system.stop(path)"
        )


class AwayCell:
    """What a placed instance sees as its cell: its identity, nothing that stays home."""

    def __init__(self, path: str, name: str, urn: str) -> None:
        self.path = path
        self.name = name
        self.urn = urn
        self.inbox = _NoInbox(path)
        self.stopped_event = threading.Event()
        self.ref = None
        self.timer_calls: list[Call] = []  # sent home with the next reply
        self.parts = away_parts(path, self.timer_calls)

    def describe(self) -> str:
        return f"minion {self.path!r} (placed)"

    def count_dead_letter(self, message: Any, count: int = 1) -> None:
        """The default ``on_receive`` ignores unexpected messages (not counted here)."""

    def __getattr__(self, name: str) -> Any:
        raise PlacementError(
            f"minion {self.path!r} runs placed outside its home process, where {name!r} of "
            f"its cell is not available: self.spawn, self.system, self.children, self.watch "
            f"and the workflow methods stay home (spawn children from a home minion)"
        )


class Away:
    """The placed instance and whether its class is persistent."""

    def __init__(self, cls: type[Minion], args: tuple[Any, ...], kwargs: dict[str, Any],
                 identity: tuple[str, str, str]) -> None:
        inst: Minion = cls.__new__(cls)
        inst.__dict__["_minion_cell"] = AwayCell(*identity)
        Minion.__init__(inst)  # the base attributes, for a subclass that forgets super()
        inst.__init__(*args, **kwargs)  # type: ignore[misc]
        self.inst = inst
        self.persistent = is_persistent(cls)

    def public_names(self) -> list[str]:
        return [n for n in vars(self.inst) if not n.startswith("_")]

    def handle_batch(self, messages: list[Any]) -> tuple[int, Any, bytes | None]:
        """Tell each message in order; stop at the first that raises. Returns (how many
        succeeded, the snapshot outcome after the last of them, the error reply of the
        failing one). A persistent class's snapshot is copied after each message, because
        a later handler may change what the previous snapshot refers to."""
        inst, outcome = self.inst, None
        for done, message in enumerate(messages):
            try:
                inst.on_receive(message)
            except Exception as exc:
                return done, outcome, error_reply(exc)
            if self.persistent:
                outcome = self._snapshot(copy=True)
        return len(messages), outcome, None

    def _snapshot(self, copy: bool = False) -> tuple[bool, Any]:
        try:
            state = self.inst.snapshot()
            return True, pickle.loads(pickle.dumps(state, PROTOCOL)) if copy else state
        except Exception as exc:
            return False, f"snapshot() raised {type(exc).__name__}: {exc}"

    def reply(self, request: tuple[str, Any]) -> bytes:
        """Run one request and pickle its reply; what cannot travel back is named: the
        handler's result (its type) or the snapshot."""
        value: Any = self.handle(request)
        calls = self.inst._minion_cell.timer_calls  # type: ignore[attr-defined]
        if calls:  # the handler's timer calls go home with its reply
            value = (*value, list(calls))
            calls.clear()
        try:
            return pickle.dumps(("ok", value), protocol=PROTOCOL)
        except Exception:
            result, outcome = value[0], value[1]
            name = type(self.inst).__qualname__
            sent = ok_reply(result, name)  # an error reply naming the result's type
            if pickle.loads(sent)[0] != "ok":
                return sent
            return ok_reply(outcome and outcome[1], f"{name}.snapshot()")

    def handle(self, request: tuple[str, Any]) -> tuple[Any, Any]:
        """Run one request; return (result, snapshot outcome): ``(True, state)`` or
        ``(False, error text)`` after a message of a persistent class, else None."""
        kind, arg = request
        inst = self.inst
        if kind == "receive":
            result = inst.on_receive(arg)
        elif kind == "batch":
            return self.handle_batch(arg), None
        elif kind == "proxy":
            result = proxy_message(inst, arg)
        elif kind == "restore":
            inst.restore(arg)
            return None, None
        elif kind == "start":
            inst.on_start()
            return None, None
        elif kind == "stop":
            inst.on_stop()
            return None, None
        elif kind == "failure":
            inst.on_failure(type(arg) if arg is not None else None, arg, None)
            return None, None
        else:
            raise PlacementError(f"unknown request {kind!r} for a placed minion")
        return result, self._snapshot() if self.persistent else None
