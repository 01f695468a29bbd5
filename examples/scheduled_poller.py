"""A persisted poller with durable schedules: it polls a source on a cron schedule (every
second here, to keep the run short) and starts a nightly digest workflow at 03:00 Paris
time. Its schedules live in the state store beside its snapshot, so a second run (a
restart, a new process) arms them again: nothing is started twice, and the poll count
goes on from the snapshot.

Run: python examples/scheduled_poller.py   (writes poller.db in the current directory)

Prints:
    first run: 2 polls
    stored schedules: ['digest', 'poll']
    next digest: 03:00 Europe/Paris
    second run: 4 polls (the count came back with the snapshot)
    the digest is still due at the same time: True
"""

from __future__ import annotations

import threading
from typing import Any
from zoneinfo import ZoneInfo

from minions_actors import ActorSystem, Minion, Workflow

QUIET: dict[str, Any] = dict(state_store="poller.db", metrics_port=None, file_logs=False,
                             stderr_logs=False)


class Poller(Minion):
    digest = Workflow("summarise")

    def __init__(self, polled: threading.Event, want: int) -> None:
        super().__init__()
        self.polled, self.want = polled, want
        self.polls = 0

    def snapshot(self) -> Any:
        return {"polls": self.polls}

    def restore(self, state: Any) -> None:
        self.polls = state["polls"]

    def on_start(self) -> None:
        # Started at every start: an unchanged definition keeps its stored progress.
        self.schedules.start_cron("poll", "poll", "* * * * * *")  # (seconds first: each s)
        self.schedules.start_workflow_cron("digest", "digest", "0 3 * * *",
                                           tz="Europe/Paris", context={"source": "demo"})

    def on_receive(self, message: Any) -> Any:
        if message == "poll":
            self.polls += 1  # (fetch the source here)
            if self.polls >= self.want:
                self.polled.set()
        elif message == "status":
            return self.polls, self.schedules.keys(), self.schedules.next_fire("digest")
        return None

    def summarise(self, context: dict[str, Any]) -> None:
        print("digest for", context["schedule"]["slot"])


def run(want: int) -> tuple[int, list[str], Any]:
    polled = threading.Event()
    system = ActorSystem.start(**QUIET)
    try:
        ref = system.spawn(Poller, polled, want, name="poller")
        polled.wait(30)
        polls, keys, digest = ref.ask("status", timeout=10)
        return min(polls, want), sorted(keys), digest
    finally:
        system.shutdown()


polls, keys, digest = run(2)
print(f"first run: {polls} polls")
print("stored schedules:", keys)
print(f"next digest: {digest.astimezone(ZoneInfo('Europe/Paris')):%H:%M} Europe/Paris")
polls, _keys, again = run(4)
print(f"second run: {polls} polls (the count came back with the snapshot)")
print("the digest is still due at the same time:", again == digest)
