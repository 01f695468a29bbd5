"""What an open observer page costs: tell throughput over 10,000 busy minions with and
without a client polling ``/observer`` as the page does (overview, events and the first page
of the tree, once a second; ``--hz`` polls faster, to make a cost visible).

``python -m bench.observer_cost [--minions 10000] [--msgs 1000000] [--reps 5] [--hz 1]``
prints one row per mode (median msg/s and the min-max range of the repetitions, which
alternate the two modes) and the ratio; the issue's target is within 5 %.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import urllib.request
from time import perf_counter
from typing import Any

from bench.common import Latch
from minions_actors import ActorSystem, Minion

_PAGE_POLL = ("/api/overview", "/api/events?since=0", "/api/children?path=&limit=200")


class Fin:
    """The last message of a round: count down its latch."""

    def __init__(self, done: Latch) -> None:
        self.done = done


class Counter(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def on_receive(self, message: Any) -> None:
        if type(message) is Fin:
            message.done.count_down()
        else:
            self.total += 1


def _poll(base: str, hz: float, stop: threading.Event, count: list[int]) -> None:
    while not stop.wait(1 / hz):
        for path in _PAGE_POLL:
            with urllib.request.urlopen(base + path, timeout=30) as r:
                r.read()
        count[0] += 1


def one_round(base: str, tells: list[Any], msgs: int, page: bool, hz: float) -> float:
    """One round of ``msgs`` tells round-robin (and a Fin each), the page polling or not."""
    done = Latch(len(tells))
    stop, polls = threading.Event(), [0]
    poller = threading.Thread(target=_poll, args=(base, hz, stop, polls), daemon=True)
    if page:
        poller.start()
    t0 = perf_counter()
    for tell, i in zip(itertools.cycle(tells), range(msgs)):
        tell(i)
    fin = Fin(done)
    for tell in tells:
        tell(fin)
    done.wait()
    elapsed = perf_counter() - t0
    stop.set()
    if page:
        poller.join()
    return (msgs + len(tells)) / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minions", type=int, default=10_000)
    p.add_argument("--msgs", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--hz", type=float, default=1.0)
    args = p.parse_args(argv)
    system = ActorSystem.start(state_store=None, metrics_port=0, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    rates: dict[bool, list[float]] = {False: [], True: []}
    try:
        tells = [system.spawn(Counter).tell for _ in range(args.minions)]
        assert system.metrics is not None and system.metrics.url is not None
        base = system.metrics.url.replace("/metrics", "/observer")
        one_round(base, tells, args.minions, False, args.hz)  # warm up: every cell ran once
        for rep in range(args.reps):
            for page in ((False, True) if rep % 2 == 0 else (True, False)):
                rates[page].append(one_round(base, tells, args.msgs, page, args.hz))
    finally:
        system.shutdown(timeout=60)
    for page in (False, True):
        r = rates[page]
        label = f"page polling at {args.hz:g} Hz" if page else "no page"
        print(f"observer_cost  {args.minions:,} busy minions, {label:<24} "
              f"{statistics.median(r):>12,.0f} msg/s  ({min(r):,.0f}-{max(r):,.0f})")
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(f"observer_cost  with / without the page: {ratio:.3f} (target >= 0.95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
