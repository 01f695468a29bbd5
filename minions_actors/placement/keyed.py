"""Keyed groups: one minion per key (an entity: a customer, a device, a session), spread
over a set of placements by consistent hashing, so a per-entity design moves from one
process to child processes or a Ray cluster by changing the list of placements, not the
entity's class.

The members are children of one group minion (``<name>/<key>``), spawned on first use and
supervised by it; their snapshots are keyed by that path, so after a restart of the home
process a key comes back with its state wherever the ring puts it.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from minions_actors.errors import PlacementError
from minions_actors.runtime.minion import Minion
from minions_actors.runtime.spawning import check_name, check_spawn

if TYPE_CHECKING:
    from minions_actors.runtime.placement import Placement
    from minions_actors.runtime.ref import MinionRef


def _point(text: str) -> int:
    """A stable 64-bit position (the same in every process, unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Ring:
    """A consistent-hash ring over ``count`` slots with ``vnodes`` points each: adding a
    slot moves only the keys that land on the new slot's points (about 1/(count+1))."""

    def __init__(self, count: int, vnodes: int = 128) -> None:
        points = sorted((_point(f"slot-{i}#{v}"), i) for i in range(count) for v in range(vnodes))
        self._keys = [p for p, _ in points]
        self._slots = [s for _, s in points]

    def slot(self, key: str) -> int:
        i = bisect.bisect(self._keys, _point(key)) % len(self._keys)
        return self._slots[i]


class _Group(Minion):
    """The group's supervisor: spawns a member on its own thread when a key is first used."""

    def __init__(self, spec: tuple[type[Minion], tuple[Any, ...], dict[str, Any], str]) -> None:
        super().__init__()
        self._spec = spec

    def member(self, key: str, placement: Placement | None) -> MinionRef[Any]:
        found = self.children.get(key)
        if found is not None:
            return found
        cls, args, kwargs, restart = self._spec
        return self.spawn(cls, *args, name=key, restart=restart, placement=placement, **kwargs)


class KeyedGroup:
    """One minion of class ``cls`` per key, over ``placements`` by consistent hashing.

    ``spawner`` is the system (or a minion, to nest the group under it); ``name`` names the
    group minion; ``args``/``kwargs`` go to every member's constructor; ``placements`` is
    a list of :class:`~minions_actors.Placement` (``None`` for this process), for example
    ``[Ray(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=True)) for n in
    nodes]``. :meth:`ref` returns a key's minion, spawning it on first use; ``tell`` and
    ``ask`` are shortcuts.
    """

    def __init__(self, spawner: Any, cls: type[Minion], *args: Any, name: str,
                 placements: Sequence[Placement | None] = (None,),
                 restart: str = "permanent", **kwargs: Any) -> None:
        if not placements:
            raise PlacementError("KeyedGroup(placements=...) needs at least one placement "
                                 "(None places members in this process)")
        check_spawn(cls, args, kwargs, None, restart)  # a bad member spec fails here, not later
        self.placements = list(placements)
        for placement in self.placements:
            if placement is not None:
                placement.check(cls)
        self.ring = Ring(len(self.placements))
        self.group: MinionRef[Any] = spawner.spawn(_Group, (cls, args, kwargs, restart),
                                                   name=name)
        self._refs: dict[str, MinionRef[Any]] = {}
        self._lock = threading.Lock()

    def placement_for(self, key: str) -> Placement | None:
        return self.placements[self.ring.slot(key)]

    def ref(self, key: str, timeout: float = 30.0) -> MinionRef[Any]:
        """The minion for ``key`` (spawned on first use, at ``<group>/<key>``)."""
        check_name(key)  # the key names the member
        with self._lock:
            ref = self._refs.get(key)
            if ref is None or not ref.is_alive():
                placement = self.placement_for(key)
                ref = self.group.proxy().member(key, placement).get(timeout=timeout)
                self._refs[key] = ref
        return ref

    def tell(self, key: str, message: Any) -> None:
        self.ref(key).tell(message)

    def ask(self, key: str, message: Any, timeout: float | None = None) -> Any:
        return self.ref(key).ask(message, timeout=timeout)
