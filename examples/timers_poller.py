"""A poller on minion timers: poll every 0.2 s, retry a failed fetch 0.05 s later, and
notice when nothing has happened for a while.

- ``self.timers.start_periodic("poll", "poll", 0.2)``: a "poll" message every 0.2 s (fixed
  rate), started in ``on_start``; a restart or a stop cancels it.
- A failed fetch starts a single timer, ``self.timers.start_single("retry", "retry", 0.05)``;
  starting the same key again would replace it, ``cancel("retry")`` would drop it (its
  message is not delivered even if already queued).
- After four values the poller cancels "poll" and sets a receive timeout: a
  ``ReceiveTimeout`` message once it has had no message for 0.3 s.

Run: python examples/timers_poller.py
"""

import threading
from typing import Any

from minions_actors import ActorSystem, Minion, ReceiveTimeout


class Source:
    """A remote source whose second fetch fails (busy)."""

    def __init__(self) -> None:
        self.calls = 0

    def fetch(self) -> str:
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("source busy")
        return f"v{self.calls}"


class Poller(Minion):
    def __init__(self, source: Source, done: threading.Event) -> None:
        super().__init__()
        self.source, self.done = source, done
        self.values: list[str] = []
        self.polls = 0

    def on_start(self) -> None:
        self.timers.start_periodic("poll", "poll", 0.2)

    def on_receive(self, message: Any) -> None:
        if message == "poll":
            self.polls += 1
            self.fetch(f"poll {self.polls}")
        elif message == "retry":
            self.fetch("retry")
        elif isinstance(message, ReceiveTimeout):
            print(f"idle for {self.receive_timeout} s: {message!r}")
            self.set_receive_timeout(None)
            self.done.set()

    def fetch(self, what: str) -> None:
        try:
            value = self.source.fetch()
        except ConnectionError as exc:
            print(f"{what}: fetch failed ({exc}), retry in 0.05 s")
            self.timers.start_single("retry", "retry", 0.05)
            return
        self.values.append(value)
        print(f"{what}: fetched {value!r}")
        if len(self.values) == 4:
            self.timers.cancel("poll")
            print(f"{len(self.values)} values, polling stopped; timers left: "
                  f"{self.timers.keys()}")
            self.set_receive_timeout(0.3)


def main() -> None:
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    done = threading.Event()
    system.spawn(Poller, Source(), done, name="poller")
    assert done.wait(30), "the poller did not go idle"
    print(f"clean shutdown: {system.shutdown()}")


if __name__ == "__main__":
    main()
