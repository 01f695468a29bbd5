"""A pykka program moved to minions_actors.

In pykka this would be ``Crawler.start(urls, finished)`` and, at the end,
``pykka.ActorRegistry.stop_all()``. Here the supervisor builds the crawler on its own thread
(and would rebuild it after a crash), and the ref ``spawn`` returns is still a
``pykka.ActorRef`` for code typed against pykka. The crawler defers work to itself through a
proxy made in ``__init__``, pykka's recommended pattern, and a ``sys.exit()`` inside a handler
stops the whole system cleanly, as it stops every actor in pykka. Run it:
``python examples/from_pykka.py``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pykka

from minions_actors import ActorSystem, Minion


class Crawler(Minion):
    def __init__(self, urls: list[str], finished: threading.Event) -> None:
        super().__init__()
        self._later = self.actor_ref.proxy()  # a proxy to itself: keep it private
        self._finished = finished
        self.total = len(urls)
        self.todo = list(urls)
        self.done: list[str] = []

    def on_start(self) -> None:
        self._later.crawl_next()

    def crawl_next(self) -> None:
        """One page per message, so other messages (and stops) interleave."""
        self.done.append(self.todo.pop(0))
        if self.todo:
            self._later.crawl_next()
        else:
            self._finished.set()

    def on_receive(self, message: Any) -> Any:
        if message == "quit":
            sys.exit(0)  # stops every minion, each on_stop runs: a clean exit
        return len(self.done)

    def on_stop(self) -> None:
        print(f"on_stop: crawled {self.done}")


def pages_crawled(ref: pykka.ActorRef[Any]) -> int:
    """Code written for pykka refs works with minion refs."""
    return ref.ask("count?", timeout=5)  # type: ignore[no-any-return]


def main() -> int:
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    finished = threading.Event()
    crawler = system.spawn(Crawler, ["a", "b", "c"], finished, name="crawler")
    proxy = crawler.proxy()  # usable at once, even while __init__ still runs
    print("pages to crawl:", proxy.total.get(timeout=5))
    finished.wait(5)
    print("a pykka ActorRef:", isinstance(crawler, pykka.ActorRef))
    print("pages crawled:", pages_crawled(crawler))
    crawler.tell("quit")
    system.wait(10)
    print("exit code:", system.exit_code)
    return system.exit_code


if __name__ == "__main__":
    sys.exit(main())
