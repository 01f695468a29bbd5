"""Proxies that follow a minion across restarts and work before its first instance exists.

pykka's :class:`~pykka.ActorProxy` introspects one actor object, kept for the proxy's life.
A minion is a succession of instances built on the minion's own thread, so a proxy is given
:class:`CurrentInstance`, a stand-in that resolves to whichever instance is current each
time the proxy looks an attribute up. :class:`MinionProxy` adds the one wait pykka never
needs (its ``start()`` builds the actor in the caller's thread): an attribute that only
``__init__`` creates is looked up again once the instance is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import pykka
from pykka._introspection import introspect_attrs

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion
    from minions_actors.runtime.ref import MinionRef

M = TypeVar("M", bound="Minion")


class CurrentInstance:
    """Stands for the minion's current instance: the live one, else the newest one built
    or being built (on the minion's thread, inside ``__init__``), else the class itself."""

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        object.__setattr__(self, "_cell", cell)

    def _target(self) -> Any:
        cell = self._cell
        if cell.instance is not None:
            return cell.instance
        return cell.cls if cell.last_instance is None else cell.last_instance

    # pykka's introspection reads obj.__class__.mro() and obj.__dict__, then getattr()
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return self._cell.cls  # type: ignore[no-any-return]

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        target = self._target()
        return {} if isinstance(target, type) else _snapshot(vars(target))

    def __dir__(self) -> list[str]:
        return dir(self._target())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return repr(self._target())

    __str__ = __repr__


def _snapshot(attrs: dict[str, Any]) -> dict[str, Any]:
    """A private copy of an instance's attributes, for pykka to merge: the instance's own
    dict may grow meanwhile (``__init__`` or a handler on the minion's thread), and on
    3.13t merging it raced that (``RuntimeError: dict mutated during update``, also raised
    falsely by CPython before 3.13.6 when another instance of the class adds a key)."""
    for _ in range(100):
        try:
            return dict(list(attrs.items()))  # items are listed under the dict's lock
        except RuntimeError:  # changed size during the copy: copy again
            continue
    return dict(list(attrs.items()))


class MinionProxy(pykka.ActorProxy[M]):
    """A pykka :class:`~pykka.ActorProxy` for a minion (what ``ref.proxy()`` returns).

    It works at once after ``spawn()``: methods and class attributes resolve from the class,
    and their calls wait in the mailbox like any message (``future.get(timeout=...)`` bounds
    the wait). An attribute that only ``__init__`` creates waits until the instance is built,
    and so does ``dir(proxy)``, which then lists it. After a restart it reaches the new
    instance. On a stopped minion it raises :class:`~minions_actors.MinionStopped`.
    """

    actor_ref: MinionRef[M]

    def __init__(self, *, actor_ref: MinionRef[M], attr_path: Any = None) -> None:
        cell = actor_ref._cell
        if cell.terminated:
            raise cell.stopped_error()
        super().__init__(actor_ref=actor_ref, attr_path=attr_path)

    def __getattr__(self, name: str) -> Any:
        seen = self.actor_ref._cell.instance  # read before the lookup: see _missed_live
        try:
            return super().__getattr__(name)
        except AttributeError:
            # private names are never proxied; nor is a miss on a live instance
            if name.startswith("_") or self._missed_live(seen) or not self._await_instance():
                raise
        self._known_attrs = introspect_attrs(root=self._actor, proxy=self)
        return super().__getattr__(name)

    def __dir__(self) -> list[str]:
        # pykka lists the attributes known when the proxy was made: those of the class
        # while __init__ runs, so wait for the instance as an attribute lookup does (a
        # stopped minion's proxy lists what it knew: dir() does not raise)
        cell = self.actor_ref._cell
        if cell.instance is None and not cell.on_own_thread() and cell.wait_for_instance():
            self._known_attrs = introspect_attrs(root=self._actor, proxy=self)
        return super().__dir__()

    def _missed_live(self, seen: Minion | None) -> bool:
        """Did the failed lookup look at the live instance (a real miss)? Only if that
        instance was live before it began and still is: an instance that came up meanwhile
        (its ``__init__`` ran during the lookup) must be looked at again."""
        return seen is not None and self.actor_ref._cell.instance is seen

    def _await_instance(self) -> bool:
        """Wait for an instance when none is live yet; True when there is one now (False
        on the minion's own thread, where waiting would deadlock)."""
        cell = self.actor_ref._cell
        if cell.instance is not None:
            return True
        if cell.on_own_thread():
            return False
        if not cell.wait_for_instance():
            raise cell.stopped_error()
        return True
