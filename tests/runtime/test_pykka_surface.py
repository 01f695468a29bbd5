"""The pykka surface ``MinionRef`` imitates: ``pykka.ActorProxy`` over a ref.

``MinionRef`` provides the attributes pykka's proxy reads from an ``ActorRef`` (some of them
private to pykka), so setup.cfg pins ``pykka>=4.0,<5``; this test fails first when a pykka
release changes what the proxy needs.
"""

from __future__ import annotations

from typing import Any

import pykka
import pytest

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET


class Engine:
    def __init__(self) -> None:
        self.rpm = 800

    def rev(self, by: int) -> int:
        self.rpm += by
        return self.rpm


class Car(Minion):
    engine = pykka.traversable(Engine())  # nested: calls reach the engine on the car's thread

    def __init__(self) -> None:
        super().__init__()
        self.speed = 0
        self.name_plate = "K-ITT"

    def accelerate(self, by: int) -> int:
        self.speed += by
        return self.speed

    def crash(self) -> None:
        raise RuntimeError("into a wall")


@pytest.fixture
def car() -> Any:
    system = ActorSystem.start(**QUIET)
    try:
        yield system.spawn(Car, name="car")
    finally:
        system.shutdown()


def test_proxy_over_a_ref(car: Any) -> None:
    proxy = car.proxy()
    assert isinstance(proxy, pykka.ActorProxy)
    assert proxy.actor_ref is car
    # attribute access and method calls return pykka futures
    assert proxy.speed.get(timeout=5) == 0
    assert proxy.accelerate(30).get(timeout=5) == 30
    assert proxy.speed.get(timeout=5) == 30
    # setting an attribute goes through the minion's mailbox too
    proxy.speed = 5
    assert proxy.speed.get(timeout=5) == 5
    # nested attributes of a traversable object
    assert proxy.engine.rpm.get(timeout=5) == 800
    assert proxy.engine.rev(200).get(timeout=5) == 1000
    # introspection sees the minion's public members
    assert {"accelerate", "speed", "engine"} <= set(dir(proxy))
    # a future can be combined the pykka way
    assert pykka.get_all([proxy.speed, proxy.name_plate], timeout=5) == [5, "K-ITT"]


def test_proxy_errors_follow_pykka(car: Any) -> None:
    proxy = car.proxy()
    with pytest.raises(AttributeError):
        proxy.no_such_attribute  # noqa: B018
    with pytest.raises(RuntimeError, match="into a wall"):
        proxy.crash().get(timeout=5)
    # the crashed car is restarted by Gru: the same proxy keeps working
    assert proxy.accelerate(1).get(timeout=5) == 1
