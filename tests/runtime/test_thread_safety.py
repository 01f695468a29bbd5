"""Structures shared between threads, hammered by many threads at once: every count must be
exact at the end. On GIL CPython these mostly pass by luck of the switch interval; they exist
for free-threaded CPython (3.13t), where nothing is serialised for us (CI runs them there).

One test per structure: mailboxes (unbounded and bounded), the pool's run queue, the counters
metrics read, the dead-letter counter, the registry of cells, the snapshot writer's queue and
the proxies' attribute caches."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, MinionNotFound, MinionStopped
from minions_actors.persistence import SQLiteStateStore

from ..conftest import QUIET

pytestmark = pytest.mark.usefixtures("execution")

THREADS = 8


def hammer(work: Callable[[int], None], threads: int = THREADS) -> None:
    """Run ``work(i)`` on ``threads`` threads released at once; re-raise the first error."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,), name=f"hammer-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


class Tally(Minion):
    """Counts what it gets, per sender; ``get`` answers the totals."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.by_sender: dict[int, int] = {}

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.total, dict(self.by_sender)
        self.total += 1
        self.by_sender[message] = self.by_sender.get(message, 0) + 1
        return None

    def add(self, n: int) -> int:
        self.total += n
        return self.total


class Persistent(Tally):
    def snapshot(self) -> dict[str, Any]:
        return {"total": self.total}

    def restore(self, state: dict[str, Any]) -> None:
        self.total = state["total"]


@pytest.fixture
def system() -> Any:
    s = ActorSystem.start(**QUIET)
    yield s
    assert s.shutdown(timeout=10)


@pytest.mark.parametrize("mailbox_size", [None, 16])
def test_many_senders_into_one_mailbox_lose_nothing(system: ActorSystem,
                                                    mailbox_size: int | None) -> None:
    ref = system.spawn(Tally, name="tally", mailbox_size=mailbox_size,
                       mailbox_put_timeout=30.0)
    per = 5_000
    hammer(lambda i: [ref.tell(i) for _ in range(per)])
    total, by_sender = ref.ask("get", timeout=30)
    assert total == THREADS * per
    assert by_sender == {i: per for i in range(THREADS)}


def test_the_run_queue_serves_every_minion_exactly(system: ActorSystem) -> None:
    refs = [system.spawn(Tally, name=f"t{n}") for n in range(200)]
    per = 50

    def send(i: int) -> None:
        for _ in range(per):
            for ref in refs:
                ref.tell(i)

    hammer(send)
    for ref in refs:
        total, by_sender = ref.ask("get", timeout=30)
        assert total == THREADS * per and by_sender == {i: per for i in range(THREADS)}


def test_asks_and_proxy_calls_from_many_threads_each_get_their_own_answer(
        system: ActorSystem) -> None:
    ref = system.spawn(Tally, name="tally")
    proxy = ref.proxy()
    answers: list[list[int]] = [[] for _ in range(THREADS)]

    def call(i: int) -> None:
        for _ in range(300):
            answers[i].append(proxy.add(1).get(timeout=30))
            assert proxy.total.get(timeout=30) >= 1  # an attribute, through the same cache

    hammer(call)
    seen = sorted(a for per in answers for a in per)
    assert seen == list(range(1, THREADS * 300 + 1))  # every add saw a distinct total


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = response.read().decode().splitlines()
    samples: dict[str, float] = {}
    for line in lines:
        if line.startswith("minions_") and " " in line:
            name, value = line.rsplit(" ", 1)
            samples[name] = samples.get(name, 0.0) + float(value)
    return samples


def _total(samples: dict[str, float], family: str) -> float:
    return sum(v for k, v in samples.items() if k.split("{")[0] == family)


def test_counters_that_metrics_read_are_exact_after_a_flood() -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        refs = [system.spawn(Tally, name=f"t{n}") for n in range(THREADS)]
        per = 4_000
        hammer(lambda i: [refs[(i + k) % THREADS].tell(i) for k in range(per)])
        for ref in refs:
            ref.ask("get", timeout=30)  # everything before it was handled
        assert system.metrics is not None and system.metrics.url is not None
        samples = _scrape(system.metrics.url)
        # every tell, plus the one ask per minion
        assert _total(samples, "minions_messages_handled_total") == THREADS * per + THREADS
    finally:
        assert system.shutdown(timeout=10)


def test_dead_letters_from_many_threads_are_counted_exactly() -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        ref = system.spawn(Tally, name="gone")
        assert system.stop("gone", timeout=10)
        per = 2_000
        hammer(lambda i: [ref.tell(i) for _ in range(per)])
        assert system.metrics is not None and system.metrics.url is not None
        assert _total(_scrape(system.metrics.url), "minions_dead_letters_total") == THREADS * per
    finally:
        assert system.shutdown(timeout=10)


def test_the_registry_under_concurrent_spawns_stops_and_lookups(system: ActorSystem) -> None:
    rounds = 60

    def churn(i: int) -> None:
        for r in range(rounds):
            name = f"c{i}-{r}"
            ref = system.spawn(Tally, name=name)
            assert system.get(name) == ref
            ref.tell(i)
            if r % 2:
                assert system.stop(name, timeout=10)
                with pytest.raises(MinionNotFound):
                    system.get(name)
            # a look at another thread's minions: present or not, never an error of ours
            system.find(f"c{(i + 1) % THREADS}-{r}")

    hammer(churn)
    kept = {f"c{i}-{r}" for i in range(THREADS) for r in range(rounds) if not r % 2}
    live = {cell.path for cell in system.cells()}
    assert live == kept
    for name in kept:
        assert system.get(name).ask("get", timeout=30)[0] == 1


def test_the_snapshot_writers_queue_keeps_every_minions_last_state(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    per = 1_000
    try:
        refs = [system.spawn(Persistent, name=f"p{n}") for n in range(THREADS)]
        # each thread floods its own minion and sometimes another's: the writer's queue is fed
        # from every worker at once
        hammer(lambda i: [refs[i if k % 4 else (i + 1) % THREADS].tell(i) for k in range(per)])
        for ref in refs:
            ref.ask("get", timeout=30)
        assert system.flush(timeout=30)
    finally:
        assert system.shutdown(timeout=10)
    store = SQLiteStateStore(db)
    try:
        rows = {f"p{n}": store.load(f"p{n}") for n in range(THREADS)}
    finally:
        store.close()
    assert all(row is not None for row in rows.values()), rows
    assert sum(json.loads(row)["total"] for row in rows.values() if row) == THREADS * per


def test_asks_racing_a_stop_are_answered_or_refused_never_lost(system: ActorSystem) -> None:
    ref = system.spawn(Tally, name="tally")
    outcomes: list[str] = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        for k in range(500):
            if i == 0 and k == 250:
                assert system.stop("tally", timeout=10)  # while the others still ask
            try:
                ref.ask(i, timeout=30)
                result = "answered"
            except MinionStopped:
                result = "refused"
            with lock:
                outcomes.append(result)

    hammer(ask)
    assert len(outcomes) == THREADS * 500  # no ask hung or vanished
    assert outcomes.count("refused") >= 250  # thread 0's own asks after its stop, at least


def _builder_class(n: int) -> type[Minion]:
    """A fresh class per try: CPython shares one keys table among a class's instances and
    grows it while the first ones are built, which is when a concurrent read can trip."""

    def __init__(self: Minion) -> None:
        Minion.__init__(self)
        self._me = self.actor_ref.proxy()  # pykka's pattern: a proxy to itself in __init__
        for i in range(25):
            setattr(self, f"a{i}", i)
            self._me = self.actor_ref.proxy()
        self.ready = True

    return type(f"Builder{n}", (Minion,), {"__init__": __init__})


def test_proxies_made_while_init_fills_the_instance_all_work(system: ActorSystem) -> None:
    # ref.proxy() is usable at once, even while __init__ still runs on a worker: pykka
    # introspects the instance's attributes while __init__ (and a second instance of the
    # same class) adds them; on 3.13t that raised "dict mutated during update"
    for n in range(60):
        cls = _builder_class(n)
        refs = [system.spawn(cls, name=f"b{n}-{k}") for k in range(2)]

        def take(i: int, refs: list[Any] = refs) -> None:
            for _ in range(5):
                proxy = refs[i % 2].proxy()
                assert proxy.ready.get(timeout=30) is True
                assert proxy.a24.get(timeout=30) == 24

        hammer(take, threads=4)
        for ref in refs:
            ref.stop()
