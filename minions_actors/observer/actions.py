"""Restarting a minion from the observer: a told message whose handler raises, so the
minion crashes and its supervisor applies its strategy, as Erlang's observer's "kill"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minions_actors.errors import RestartedByObserver
from minions_actors.runtime.extensions import Handler, OnUse, register

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion


class RestartRequest:
    """Told to a minion: crash now, in its own turn, and let its supervisor decide."""

    __slots__ = ()


def _crash_now(_msg: Any) -> None:
    raise RestartedByObserver("restart requested on the observer page")


def _handle(cell: Cell, inst: Minion, msg: RestartRequest) -> bool:
    return cell._handle_told(inst, _crash_now, msg)


class ObserverExtension(OnUse):
    """Registers :class:`RestartRequest`'s handler; attached to no class."""

    key = "observer"
    told: Mapping[type, Handler] = {RestartRequest: _handle}

    def attach(self, cell: Cell) -> Any:
        return None


register(ObserverExtension())
