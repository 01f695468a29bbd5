"""Every message the runtime puts in a mailbox says the same way that it bypasses a bounded
mailbox (it derives from runtime.mailbox.RuntimeMessage), and a full mailbox still takes it."""

from __future__ import annotations

import inspect
import queue

import pytest

from minions_actors.runtime import mailbox, messages
from minions_actors.runtime.mailbox import BoundedMailbox, RuntimeMessage


def _runtime_messages() -> list[object]:
    return [mailbox.WAKE, mailbox.HALT_MARK, messages.EXIT, messages.StopRequest(),
            messages.RunStep("wf", 1)]


def test_every_message_that_bypasses_the_bound_is_a_runtime_message() -> None:
    declared = [cls for module in (mailbox, messages)
                for _, cls in inspect.getmembers(module, inspect.isclass)
                if cls.__module__ == module.__name__ and "bypass_bound" in vars(cls)]
    assert declared == [RuntimeMessage]  # no class repeats the attribute on its own
    assert all(isinstance(m, RuntimeMessage) for m in _runtime_messages())


@pytest.mark.parametrize("overflow", ["raise", "block"])
def test_a_full_mailbox_takes_runtime_messages_and_refuses_user_ones(overflow: str) -> None:
    box = BoundedMailbox(1, overflow=overflow, put_timeout=0.01)  # type: ignore[arg-type]
    box.put("user message")
    with pytest.raises(queue.Full):
        box.put("one too many")
    sent = _runtime_messages()
    for message in sent:
        box.put(message)  # does not wait, does not raise
    assert box.qsize() == 1 + len(sent)
    assert box.get() == "user message"
    for message in sent:
        assert box.get() is message
    box.put("room again")  # the user message's slot was released, the runtime ones took none
    with pytest.raises(queue.Full):
        box.put("one too many")
