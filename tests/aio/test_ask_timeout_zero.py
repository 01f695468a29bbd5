"""``timeout=0`` on an ask does not wait: the reply if it is there when the wait would
begin, else :class:`~minions_actors.AskTimeout` (the message is handled all the same). The
awaitable and the blocking ask follow that one rule, with the same error; an awaited ask
answered in the asker's step (an idle async minion on the asker's loop whose handler never
suspends) has its reply there already."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from minions_actors import ActorSystem, AskTimeout, Minion

from .conftest import Runner, on_minions_loop

pytestmark = pytest.mark.timeout(60)


class Gate(Minion):
    """Answers at once, or (a ``(gate, value)`` message) after awaiting the gate; notes
    what it handled."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: list[Any] = []

    async def on_receive(self, message: Any) -> Any:
        if message == "handled":
            return list(self.handled)
        if isinstance(message, tuple):
            gate, message = message
            await gate.wait()
        self.handled.append(message)
        return message


def test_an_ask_with_timeout_zero_returns_only_a_reply_already_there(run: Runner) -> None:
    async def on_its_loop(system: ActorSystem) -> tuple[Any, ...]:
        ref = system.spawn(Gate, name="gate")
        await asyncio.sleep(0)  # (its start: the loop's next callback)
        at_once = await ref.ask_async("first", timeout=0)  # (answered in this task's step)
        gate = asyncio.Event()
        with pytest.raises(AskTimeout, match="'gate'") as awaited:
            await ref.ask_async((gate, "gated"), timeout=0)
        with pytest.raises(AskTimeout, match="'gate'") as blocking:  # (its turn is queued)
            ref.ask("queued", timeout=0)
        gate.set()
        handled = await ref.ask_async("handled", timeout=10)
        return at_once, awaited.value, blocking.value, handled

    async def body(system: ActorSystem) -> tuple[Any, ...]:  # (on the minions' loop)
        return await on_minions_loop(system, on_its_loop(system))  # type: ignore[no-any-return]

    at_once, awaited, blocking, handled = run(body)
    assert at_once == "first"
    assert type(awaited) is type(blocking) is AskTimeout
    assert str(awaited) == str(blocking)
    assert handled == ["first", "gated", "queued"]  # (given up on, not dropped)
