"""Small input checks: ask/get/stop timeouts, and minion names that could forge log lines."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion


class Echo(Minion):
    def on_receive(self, message: Any) -> Any:
        return message

    def echo(self, value: Any) -> Any:
        return value


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, -math.inf])
def test_negative_or_nan_timeouts_are_rejected_before_sending(
    system: ActorSystem, bad: float
) -> None:
    ref = system.spawn(Echo, name="echo")
    with pytest.raises(ValueError, match=r"timeout must be None or a number >= 0 seconds"):
        ref.ask("hi", timeout=bad)
    future = ref.ask("hi", block=False)
    with pytest.raises(ValueError, match="timeout"):
        future.get(timeout=bad)
    assert future.get(timeout=5) == "hi"  # the bad call did not consume or break the future
    with pytest.raises(ValueError, match="timeout"):
        ref.proxy().echo(1).get(timeout=bad)
    with pytest.raises(ValueError, match="timeout"):
        ref.stop(timeout=bad)
    assert ref.is_alive()


@pytest.mark.parametrize("bad", ["1", [1]])
def test_a_timeout_that_is_not_a_number_is_a_type_error(system: ActorSystem, bad: Any) -> None:
    ref = system.spawn(Echo, name="echo")
    with pytest.raises(TypeError, match="timeout must be None or a number"):
        ref.ask("hi", timeout=bad)


def test_an_infinite_timeout_waits_like_none(system: ActorSystem) -> None:
    ref = system.spawn(Echo, name="echo")
    assert ref.ask("hi", timeout=math.inf) == "hi"
    assert ref.proxy().echo(2).get(timeout=math.inf) == 2
    gate = threading.Event()
    future = ref.ask(gate, block=False)
    threading.Timer(0.05, gate.set).start()
    assert future.get(timeout=math.inf) is gate
    assert ref.stop(timeout=math.inf) is True


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "nul\x00", "cr\r", "del\x7f",
                                  "line\u2028sep", "esc\x1b[31m"])
def test_names_with_control_characters_are_rejected(system: ActorSystem, name: str) -> None:
    with pytest.raises(ValueError, match="printable"):
        system.spawn(Echo, name=name)
    assert system.spawn(Echo, name="caf\u00e9 ok").ask("fine", timeout=5) == "fine"
