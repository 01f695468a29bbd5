"""What an idle pooled minion carries (issue 22): few objects for the cyclic GC to walk,
and the pykka attributes still there, read from what survives restarts."""

from __future__ import annotations

import gc
import threading
import uuid
from collections import Counter
from typing import Any

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET

N = 2_000


class Idle(Minion):
    """Counts its start on a shared countdown, then waits."""

    def __init__(self, started: list[Any]) -> None:
        super().__init__()
        self.started = started

    def on_start(self) -> None:
        lock, done = self.started[0], self.started[2]
        with lock:
            self.started[1] -= 1
            if self.started[1] == 0:
                done.set()


def _tracked() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects())


def test_an_idle_pooled_minion_gives_the_cyclic_gc_at_most_eight_objects() -> None:
    system = ActorSystem.start(**QUIET, execution="pooled")
    try:
        started: list[Any] = [threading.Lock(), N, threading.Event()]
        before = _tracked()
        refs = [system.spawn(Idle, started) for _ in range(N)]
        assert started[2].wait(60), f"{started[1]} minions did not start"
        grown = _tracked() - before
        per_minion = sum(grown.values()) / N
        # cell, ref, mailbox (and its list), instance, the sched lock, the runtime-message
        # list and the spawn's args tuple: no lock for children or watches, no bound method,
        # no per-stop list, no stopped event until asked for, no instance dict object (14
        # before issue 22, 10 before its seventh session)
        assert per_minion <= 8.1, f"{per_minion:.2f} tracked objects per minion: {grown}"
        assert refs[0].is_alive()
    finally:
        system.shutdown(timeout=30)


def test_pykka_attributes_of_refs_and_instances_are_read_from_the_cell(
        system: ActorSystem) -> None:
    class Echo(Minion):
        def on_receive(self, message: Any) -> Any:
            return (self.actor_urn, self.actor_inbox, self.actor_stopped, self.actor_ref,
                    self._actor_ref)

    ref = system.spawn(Echo)
    urn, inbox, stopped, actor_ref, private_ref = ref.ask("who", timeout=10)
    assert uuid.UUID(urn).version == 4 and urn == ref.actor_urn
    assert inbox is ref.actor_inbox and stopped is ref.actor_stopped
    assert actor_ref is ref and private_ref is ref and ref.actor_class is Echo
    assert hash(ref) == hash(system.get(ref.path)) and ref == system.get(ref.path)
    assert not stopped.is_set()
    ref.stop(timeout=10)
    assert ref.actor_stopped.is_set()


def test_a_minion_with_children_keeps_them_apart_from_a_leaf(system: ActorSystem) -> None:
    class Parent(Minion):
        def on_receive(self, message: Any) -> Any:
            if message == "spawn":
                return self.spawn(Leaf, name="leaf").path
            return sorted(self.children)

    class Leaf(Minion):
        def on_receive(self, message: Any) -> Any:
            return message

    parent = system.spawn(Parent, name="parent")
    leaf = system.spawn(Leaf, name="other")
    assert parent.ask("spawn", timeout=10) == "parent/leaf"
    assert system.get("parent/leaf").ask("hi", timeout=10) == "hi"
    assert leaf.ask("hi", timeout=10) == "hi"
    assert parent.ask("list", timeout=10) == ["leaf"]
    assert system.get("other") == leaf
    assert leaf.ask("hi", timeout=10) == "hi"
    leaf.stop(timeout=10)  # (its parent's children, not the shared empty ones, lose it)
    assert parent.ask("list", timeout=10) == ["leaf"]
