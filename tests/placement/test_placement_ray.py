"""Ray placement on a real local Ray (``ray.init(num_cpus=2)``): the same minion class as a
Ray actor, supervised and persisted at home. Run with ``pytest -m ray`` (CI does)."""

from __future__ import annotations

import importlib.util
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    MinionStopped,
    PlacementError,
    Ray,
    RayActorLost,
    UnpicklableMessage,
)

from ..apps.placed_minions import Ledger, Where
from ..conftest import QUIET, Recorder, wait_until
from .test_placed_failures import Watcher
from .test_sidecar import Events

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="ray is not installed: pip install -e '.[ray]'"),
    pytest.mark.timeout(180),
]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before import: loopback only
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def system(ray_local: Any, events: Events) -> Iterator[ActorSystem]:
    sys_ = ActorSystem.start(hooks=[events], **QUIET)
    try:
        yield sys_
    finally:
        assert sys_.shutdown(timeout=20)


@pytest.fixture(scope="module")
def on_ray(ray_local: Any) -> Ray:
    """Built in a fixture, not at import: Ray() imports ray, and the module must be
    collectable (and skipped) where ray is not installed."""
    return Ray(num_cpus=0, call_timeout=60)


def test_the_same_class_runs_as_a_ray_actor(on_ray: Ray, system: ActorSystem) -> None:
    ref = system.spawn(Ledger, 5, name="ledger", placement=on_ray)
    assert ref.ask("pid", timeout=60) != os.getpid()
    assert ref.ask(1, timeout=30) == 6
    assert ref.proxy().add(10).get(timeout=30) == 16
    assert ref.proxy().total.get(timeout=30) == 16


def test_ten_thousand_tells_keep_their_order(on_ray: Ray, system: ActorSystem) -> None:
    ref = system.spawn(Ledger, name="ordered", placement=on_ray)
    for i in range(10_000):
        ref.tell(i)
    assert ref.ask("seen", timeout=120) == list(range(10_000))


def test_a_crash_reaches_the_asker_and_the_state_rolls_back(
    on_ray: Ray, system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Where, name="crashy", placement=on_ray)
    assert ref.ask(4, timeout=60) == 4
    first = ref.ask("where", timeout=30)
    with pytest.raises(KeyError, match="boom on ray"):
        ref.ask("boom", timeout=30)
    events.wait_crashes("crashy")
    assert ref.ask("count", timeout=60) == 4  # the last good snapshot, not -1
    assert ref.ask("where", timeout=30)["actor"] != first["actor"]  # a new actor


def test_an_idle_actors_death_is_a_crash_at_once_and_it_restarts_with_its_last_state(
    on_ray: Ray, system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Where, name="victim", placement=on_ray)
    assert ref.ask(3, timeout=60) == 3
    first = ref.ask("where", timeout=30)
    os.kill(first["pid"], signal.SIGKILL)  # the actor's worker; no message follows
    events.rec.wait_for(lambda evs: events.crashes("victim"), timeout=60)
    [(phase, exc)] = events.crashes("victim")
    assert phase == "placement" and isinstance(exc, RayActorLost)
    assert "died while idle" in str(exc)
    assert ref.ask("count", timeout=60) == 3
    assert ref.ask("where", timeout=30)["actor"] != first["actor"]


def test_a_watcher_sees_an_idle_temporary_actors_death(
    on_ray: Ray, system: ActorSystem,
) -> None:
    ref = system.spawn(Where, name="brief", restart="temporary", placement=on_ray)
    pid = ref.ask("where", timeout=60)["pid"]
    rec = Recorder()
    system.spawn(Watcher, ref, rec, name="watcher")
    os.kill(pid, signal.SIGKILL)
    rec.wait_for(lambda evs: ("terminated", "brief") in evs, timeout=60)


def test_a_message_that_cannot_be_pickled_is_the_senders_error(
    on_ray: Ray, system: ActorSystem, events: Events,
) -> None:
    ref = system.spawn(Where, name="picky", placement=on_ray)
    actor = ref.ask("where", timeout=60)["actor"]
    for _ in range(5):
        with pytest.raises(UnpicklableMessage, match="function"):
            ref.ask(lambda: 1, timeout=30)
    assert ref.ask("where", timeout=30)["actor"] == actor and events.crashes("picky") == []


def _urn(system: ActorSystem, path: str) -> str:
    return system.get(path).actor_urn[-12:]


def test_shutdown_kills_every_actor_it_placed(
    on_ray: Ray, ray_local: Any, events: Events,
) -> None:
    system = ActorSystem.start(hooks=[events], **QUIET)
    names = []
    for i in range(3):
        ref = system.spawn(Where, name=f"w{i}", placement=on_ray)
        ref.ask(1, timeout=60)
        names.append(f"minion w{i} #1 {_urn(system, f'w{i}')}")
    assert all(ray_local.get_actor(n) for n in names)
    assert system.shutdown(timeout=20)

    def none_left() -> bool:
        for name in names:
            try:
                ray_local.get_actor(name)
            except ValueError:
                continue
            return False
        return True

    wait_until(none_left, timeout=30, what="the placed Ray actors to be gone")
    with pytest.raises(MinionStopped):
        ref.ask(1, timeout=1)


def test_ray_options_that_bypass_supervision_are_refused() -> None:
    with pytest.raises(PlacementError, match="max_restarts"):
        Ray(max_restarts=3)
    with pytest.raises(PlacementError, match=r"Ray\(name=\.\.\.\).*spawn\(\.\.\., name=\.\.\.\)"):
        Ray(name="x")  # each incarnation is a new actor, named after the minion
    with pytest.raises(PlacementError, match="num_cpuz"):
        Ray(num_cpuz=1)  # not a Ray option: refused here, not at the first spawn
    with pytest.raises(PlacementError, match="call_timeout"):
        Ray(call_timeout=-1)
