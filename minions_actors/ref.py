"""The public home of :class:`MinionRef` and :class:`MinionFuture` (defined in
:mod:`minions_actors.runtime.ref`; this path is the documented one)."""

from minions_actors.runtime.ref import MinionFuture, MinionRef

__all__ = ["MinionFuture", "MinionRef"]
