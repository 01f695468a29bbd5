"""Keyed groups: one minion per key over a set of placements by consistent hashing."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from minions_actors import ActorSystem, ChildProcess, KeyedGroup, PlacementError, SpawnError
from minions_actors.placement.keyed import Ring

from ..apps.placed_minions import Account
from ..conftest import QUIET

KEYS = [f"customer-{i}" for i in range(2000)]


def test_the_ring_spreads_keys_and_a_new_slot_moves_only_its_share() -> None:
    three, four = Ring(3), Ring(4)
    counts = Counter(three.slot(k) for k in KEYS)
    assert set(counts) == {0, 1, 2} and min(counts.values()) > len(KEYS) / 3 * 0.7
    moved = [k for k in KEYS if three.slot(k) != four.slot(k)]
    assert all(four.slot(k) == 3 for k in moved)  # keys only move to the new slot
    assert len(KEYS) / 4 * 0.6 < len(moved) < len(KEYS) / 4 * 1.4
    assert Ring(3).slot("alice") == three.slot("alice")  # stable across instances


def test_members_are_spawned_by_key_over_the_placements_with_their_state(
    tmp_path: Path,
) -> None:
    options = {**QUIET, "state_store": str(tmp_path / "minions.db")}
    system = ActorSystem.start(**options)
    try:
        group = KeyedGroup(system, Account, "EUR", name="accounts",
                           placements=[None, ChildProcess(call_timeout=20)])
        local = next(k for k in KEYS if group.placement_for(k) is None)
        remote = next(k for k in KEYS if group.placement_for(k) is not None)
        for key in (local, remote):
            group.tell(key, 5)
            group.tell(key, 7)
        assert group.ask(local, "where", timeout=20) == os.getpid()
        assert group.ask(remote, "where", timeout=20) != os.getpid()
        assert group.ref(remote) is group.ref(remote)
        assert system.get(f"accounts/{remote}") is group.ref(remote)
        assert group.ask(remote, "balance", timeout=20) == "12 EUR"
    finally:
        assert system.shutdown(timeout=10)
    again = ActorSystem.start(**options)
    try:
        group = KeyedGroup(again, Account, "EUR", name="accounts",
                           placements=[None, ChildProcess(call_timeout=20)])
        assert group.ask(local, "balance", timeout=20) == "12 EUR"
        assert group.ask(remote, "balance", timeout=20) == "12 EUR"
    finally:
        assert again.shutdown(timeout=10)


def test_bad_groups_and_keys_are_clear_errors() -> None:
    system = ActorSystem.start(**QUIET)
    try:
        with pytest.raises(PlacementError, match="at least one placement"):
            KeyedGroup(system, Account, "EUR", name="none", placements=[])
        with pytest.raises(SpawnError, match="cannot construct Account"):
            KeyedGroup(system, Account, name="noargs")
        group = KeyedGroup(system, Account, "EUR", name="ok")
        with pytest.raises(ValueError, match="without '/'"):
            group.ref("a/b")
        assert group.ask("fine", "balance", timeout=5) == "0 EUR"  # the group survived
    finally:
        assert system.shutdown(timeout=10)
