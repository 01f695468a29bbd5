"""The pool's linger (a worker that finished a minion's turn waits a moment on its mailbox):
it must not split two minions that message each other over two workers."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET


class Rally(Minion):
    """Plays ``rounds`` exchanges with a peer, noting the thread of each turn in ``seen``
    and whether another of its turns ran at the same time in ``overlaps``."""

    def __init__(self, seen: list[int], rounds: int, done: threading.Event,
                 overlaps: list[int]) -> None:
        super().__init__()
        self.seen, self.rounds, self.done, self.overlaps = seen, rounds, done, overlaps
        self.peer: Any = None
        self.inside = False
        self.last = -1

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple):
            self.peer = message[0]
            return "ready"
        if self.inside:
            self.overlaps.append(message)
        self.inside = True
        try:
            assert message > self.last, f"{message} after {self.last}: out of order"
            self.last = message
            self.seen.append(threading.get_ident())
            if message >= self.rounds:
                self.done.set()
            else:
                self.peer.tell(message + 1)
        finally:
            self.inside = False
        return None


@pytest.mark.parametrize("mailbox_size", [None, 1_000])
def test_a_pair_asked_from_outside_then_messaging_each_other_shares_one_worker(
        mailbox_size: int | None) -> None:
    # each minion answered an ask from this thread, so each worker lingered on its
    # minion's mailbox; the peers' messages must not keep both lingerers busy (a thread
    # hand-off per message) when one worker can run the pair in turn (runnext)
    rounds = 2_000
    system = ActorSystem.start(**QUIET, pool_size=2)
    try:
        seen: list[int] = []
        overlaps: list[int] = []
        done = threading.Event()
        a, b = (system.spawn(Rally, seen, rounds, done, overlaps, mailbox_size=mailbox_size)
                for _ in range(2))
        assert a.ask((b,), timeout=10) == "ready" and b.ask((a,), timeout=10) == "ready"
        a.tell(0)
        assert done.wait(60)
        assert overlaps == []  # one at a time (and in order: the handler asserts it)
        assert a.ask((b,), timeout=10) == "ready"  # (an assert in a handler crashed it)
        late = seen[len(seen) // 2:]
        switches = sum(1 for x, y in itertools.pairwise(late) if x != y)
        assert switches <= len(late) // 10, f"{switches} thread switches in {len(late)} turns"
    finally:
        system.shutdown(timeout=10)


class Tally(Minion):
    """Records (sender, n) and replies with its count; ``("fwd", ref, sender, n)`` tells
    ``(sender, n)`` on to ``ref`` (a message sent from a worker's turn)."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    def on_receive(self, message: Any) -> Any:
        if message[0] == "fwd":
            message[1].tell(message[2:])
            return None
        self.log.append(message)
        return len(self.log)


def test_order_per_sender_holds_when_outside_asks_and_worker_tells_meet_a_lingerer() -> None:
    system = ActorSystem.start(**QUIET, pool_size=2)
    try:
        log: list[Any] = []
        target = system.spawn(Tally, log)
        relay = system.spawn(Tally, [])
        n = 500

        def outside() -> None:
            for i in range(n):
                target.ask(("outside", i), timeout=10)

        thread = threading.Thread(target=outside)
        thread.start()
        for i in range(n):
            relay.tell(("fwd", target, "relay", i))
        thread.join(30)
        assert not thread.is_alive()
        assert target.ask(("end", 0), timeout=10) == 2 * n + 1
        for sender in ("outside", "relay"):
            assert [i for s, i in log if s == sender] == list(range(n))
    finally:
        system.shutdown(timeout=10)
