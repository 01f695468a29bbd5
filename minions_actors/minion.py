"""The public home of :class:`Minion`, :class:`Gru` and :class:`Terminated` (defined in
:mod:`minions_actors.runtime.minion`; this path is the documented one)."""

from minions_actors.runtime.minion import Gru, Minion, Terminated

__all__ = ["Gru", "Minion", "Terminated"]
