"""The seam where a minion's code may run somewhere else (``spawn(..., placement=...)``).

The cell keeps the mailbox, the supervision, the snapshots and the metrics; a placement
only decides what object the cell drives as the minion's instance. With no placement it is
the user's class, built here. With one, :meth:`Placement.stand_in` returns a *stand-in*:
a :class:`~minions_actors.Minion` whose ``__init__`` builds the real instance where the
placement runs it and whose handlers (``on_receive``, ``snapshot``/``restore``, ``on_start``,
``on_stop``, workflow steps) forward there; proxy calls go through
:meth:`PlacedInstance._minion_forward`. The implementations live in
:mod:`minions_actors.placement`, above the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from minions_actors.observability.hooks import PHASE_PLACEMENT

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion


class Placement(Protocol):
    """Where a minion's handler code runs."""

    @property
    def dedicated_thread(self) -> bool:
        """True when each handler call blocks its thread on I/O (a pipe, a remote call),
        so the minion needs a thread of its own rather than a shared worker."""
        ...

    def check(self, cls: type[Minion]) -> None:
        """Raise a clear error at ``spawn()`` when ``cls`` cannot be placed here."""
        ...

    def stand_in(self, cls: type[Minion]) -> Minion:
        """A blank (``__new__`` only) stand-in for a new incarnation of ``cls``."""
        ...


class PlacedInstance(Protocol):
    """What the cell calls on a stand-in besides a minion's own methods."""

    def _minion_forward(self, message: Any) -> Any:
        """Carry out a proxy message (call, get or set an attribute) where the code runs."""
        ...

    def _minion_check(self) -> None:
        """Raise the crash error when where the instance runs is gone."""
        ...


class CheckPlaced:
    """To a placed minion's cell, from its placement's watcher (a thread that sees a child
    process end, or a Ray actor stop answering pings): where ``incarnation`` runs may be
    gone, so check it now rather than at the next message."""

    __slots__ = ("incarnation",)

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation


def check_placed(cell: Cell, msg: CheckPlaced) -> None:
    """Handle :class:`CheckPlaced` on the minion's thread: if the incarnation it names is
    still the live one and its remote is gone, that is a crash (phase ``placement``), so
    the supervisor's strategy applies at once, as for a crash in a handler."""
    inst = cell.instance
    if inst is None or msg.incarnation != cell.incarnation:
        return  # stale: the crash was seen by a call meanwhile, or the minion stopped
    try:
        cast("PlacedInstance", inst)._minion_check()
    except Exception as exc:
        cell._crash(exc, PHASE_PLACEMENT)
