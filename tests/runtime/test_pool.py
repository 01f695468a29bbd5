"""The shared worker pool: fairness, blocking compensation, starvation detection, scale,
shutdown, configuration, and the choice of a dedicated thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from minions_actors import ActorSystem, Backoff, Hooks, Minion, OneForOne
from minions_actors.runtime.pool import KEEPALIVE

from ..conftest import QUIET, Recorder, runtime_threads, wait_until
from ..observability.test_observability import scrape


class Logger(Minion):
    """Appends (name, message) to a shared list; an Event message blocks until set."""

    def __init__(self, name: str, log: list[Any]) -> None:
        super().__init__()
        self.label, self.log = name, log

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):
            assert message.wait(10)
        self.log.append((self.label, message))
        return message


def test_a_flooded_minion_does_not_starve_a_quiet_one_beyond_one_turn() -> None:
    turn = 8
    system = ActorSystem.start(**QUIET, pool_size=1, pool_throughput=turn)
    try:
        log: list[Any] = []
        flooded = system.spawn(Logger, "flooded", log)
        quiet = system.spawn(Logger, "quiet", log)
        hold = threading.Event()
        flooded.tell(hold)  # its first turn waits until everything is queued
        wait_until(lambda: system.worker_pool.busy() == 1, what="the one worker is busy")
        for i in range(10 * turn):
            flooded.tell(i)
        quiet.tell("hello")
        hold.set()
        assert quiet.ask("sync", timeout=10) == "sync"
        # the turn in progress ends after `turn` messages (the held one first), then the
        # quiet minion, queued meanwhile, gets the worker before the flooded one again
        assert log.index(("quiet", "hello")) <= turn
        flooded.ask("sync", timeout=10)
        assert [m for n, m in log if n == "flooded"][1:-1] == list(range(10 * turn))  # FIFO
    finally:
        system.shutdown(timeout=10)


class Chain(Minion):
    """Asks the next minion of the chain from inside its handler (a blocking call)."""

    def __init__(self, nxt: Any, ask_timeout: float = 10) -> None:
        super().__init__()
        self.nxt = nxt
        self.ask_timeout = ask_timeout

    def on_receive(self, message: Any) -> Any:
        if self.nxt is None:
            return message + 1
        return self.nxt.ask(message, timeout=self.ask_timeout) + 1


def test_every_worker_asking_does_not_deadlock_the_pool() -> None:
    # a high starvation threshold: the compensation for ask(), not the detection of stuck
    # handlers, must keep the pool going
    system = ActorSystem.start(**QUIET, pool_size=2, starvation_threshold=60)
    try:
        pool = system.worker_pool
        # several chains longer than the pool, all asking at once: every worker waits in
        # ask() while the minions it waits for still need a worker
        heads = []
        for c in range(3):
            ref = None
            for i in range(6):
                ref = system.spawn(Chain, ref, name=f"c{c}-{i}")
            heads.append(ref)
        futures = [head.ask(0, block=False) for head in heads]  # type: ignore[union-attr]
        assert [f.get(timeout=20) for f in futures] == [6, 6, 6]
        assert pool.workers() > 2  # compensating workers were added while they waited
        assert pool.workers() <= pool.max_workers
        # the extra workers leave once idle: back to the configured size
        wait_until(lambda: pool.workers() == 2, timeout=10, what="pool back to its size")
    finally:
        system.shutdown(timeout=10)


class Recording(Hooks):
    def __init__(self) -> None:
        self.starved: list[tuple[str, str, float]] = []

    def worker_starved(self, cell: Any, seconds: float) -> None:
        self.starved.append((cell.path, cell.cls_name, seconds))


def test_a_handler_blocking_beyond_the_threshold_is_reported_and_compensated() -> None:
    hooks = Recording()
    records: list[Any] = []
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, pool_size=1,
                               starvation_threshold=0.2, hooks=[hooks],
                               log_sinks=[(records.append, {"level": "WARNING"})])
    try:
        log: list[Any] = []
        stuck = system.spawn(Logger, "stuck", log, name="stuck")
        other = system.spawn(Logger, "other", log, name="other")
        gate = threading.Event()
        stuck.tell(gate)  # holds the only worker (time.sleep, a socket... the same)
        # the other minion is still served: a worker was added for the stuck one (at
        # once: it is reported only at the threshold)
        assert other.ask("ping", timeout=10) == "ping"
        wait_until(lambda: hooks.starved, what="the report at the threshold")
        assert hooks.starved[0][:2] == ("stuck", "Logger")
        assert hooks.starved[0][2] >= 0.2
        warning = [str(r) for r in records if "blocked a pool worker" in str(r)]
        assert len(warning) == 1 and "stuck" in warning[0] and "Logger" in warning[0]
        assert system.metrics is not None and system.metrics.url is not None
        metrics = scrape(system.metrics.url)
        assert metrics[("minions_pool_starvation_events_total", ())] == 1
        assert metrics[("minions_pool_workers", ())] == 2
        assert metrics[("minions_pool_busy_workers", ())] >= 1
        assert ("minions_pool_run_queue", ()) in metrics
        time.sleep(0.5)  # still stuck: reported once per stuck handler, not once per check
        assert len(hooks.starved) == 1
        gate.set()
        assert stuck.ask("after", timeout=10) == "after"
    finally:
        system.shutdown(timeout=10)


class Crasher(Minion):
    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        return message


class SlowBackoff(Minion):
    strategy = OneForOne(max_restarts=5, within=10, backoff=Backoff(initial=1.0, jitter=0))

    def on_receive(self, message: Any) -> Any:
        return self.spawn(Crasher, name="c") if message == "spawn" else message


def test_restart_backoff_holds_no_worker() -> None:
    system = ActorSystem.start(**QUIET, pool_size=1)
    try:
        sup = system.spawn(SlowBackoff, name="sup")
        child = sup.ask("spawn", timeout=5)
        other = system.spawn(Crasher, name="other")
        t0 = time.monotonic()
        with pytest.raises(RuntimeError):
            child.ask("crash", timeout=5)
        # during the child's 1 s backoff the one worker still serves everyone else
        assert other.ask("ping", timeout=5) == "ping"
        assert time.monotonic() - t0 < 0.9
        assert system.worker_pool.workers() == 1
        assert child.ask("again", timeout=5) == "again"  # restarted after the backoff
        assert time.monotonic() - t0 >= 0.9
    finally:
        system.shutdown(timeout=10)


class Echo(Minion):
    def on_receive(self, message: Any) -> Any:
        return message


def others() -> int:
    """Threads that are not the pool's workers (those may grow by compensation)."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith("minions-worker-"))


@pytest.mark.parametrize("count", [10_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_many_minions_spawned_messaged_and_stopped_without_thread_growth(count: int) -> None:
    """No thread per minion: the pool's workers serve them all. The monitor may add a
    compensating worker when one looks blocked (on a loaded host, a worker waiting for the
    interpreter looks like one): a few at most, and each leaves once idle (``KEEPALIVE``)."""
    system = ActorSystem.start(**QUIET)
    pool = system.worker_pool
    try:
        system.spawn(Echo).ask("warm", timeout=5)  # the pool is up
        before = others()
        refs = [system.spawn(Echo) for _ in range(count)]
        for ref in refs:
            ref.tell("hello")
        assert others() == before
        assert pool.workers() <= pool.size + 4
        futures = [ref.stop(block=False) for ref in refs]
        assert all(f.get(timeout=60) for f in futures)
        assert others() == before
        assert all(not ref.is_alive() for ref in refs)
        assert pool.workers() <= pool.size + 4
        # the compensating ones leave once idle for KEEPALIVE (no event tells which one)
        wait_until(lambda: pool.workers() == pool.size, KEEPALIVE * 3, "extra workers to leave")
        assert pool.workers() == pool.size
    finally:
        system.shutdown(timeout=30)


def test_shutdown_joins_every_worker() -> None:
    # (no extra worker: on a loaded machine the monitor may see the three as starving)
    system = ActorSystem.start(**QUIET, pool_size=3, pool_max_workers=3)
    refs = [system.spawn(Chain, None) for _ in range(50)]
    assert [r.ask(1, timeout=5) for r in refs] == [2] * 50
    workers = system.worker_pool.threads()
    assert len(workers) == 3 and all(t.name.startswith("minions-worker-") for t in workers)
    assert system.shutdown(timeout=10)
    assert not any(t.is_alive() for t in workers)
    assert runtime_threads() == []


class Holds(Minion):
    """Sets ``entered`` in its handler, then waits for ``gate``."""

    def __init__(self, entered: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        self.entered, self.gate = entered, gate

    def on_receive(self, message: Any) -> None:
        self.entered.set()
        assert self.gate.wait(10)


def test_shutdown_with_a_stuck_handler_is_bounded_and_unclean() -> None:
    system = ActorSystem.start(**QUIET, pool_size=1, starvation_threshold=0.1)
    gate = threading.Event()
    try:
        entered = threading.Event()
        system.spawn(Holds, entered, gate).tell("hold")
        # in the handler, not only in a turn (busy() counts a worker lingering for mail): a
        # message still queued when the shutdown begins is dropped, and nothing is stuck
        assert entered.wait(10)
        t0 = time.monotonic()
        assert system.shutdown(timeout=1) is False
        assert time.monotonic() - t0 < 3
    finally:
        gate.set()
        wait_until(lambda: runtime_threads() == [], what="the stuck worker ends")


class Dedicated(Minion):
    dedicated_thread = True

    def on_receive(self, message: Any) -> Any:
        return threading.current_thread().name


class Where(Minion):
    def on_receive(self, message: Any) -> Any:
        return threading.current_thread().name


def test_dedicated_thread_by_class_attribute_or_spawn_option(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET)
    try:
        assert system.spawn(Dedicated, name="d").ask("x", timeout=5) == "Dedicated (minion:d)"
        assert system.spawn(Where, name="w", dedicated_thread=True).ask(
            "x", timeout=5) == "Where (minion:w)"
        assert system.spawn(Where, name="p").ask("x", timeout=5).startswith("minions-worker-")
        assert system.spawn(Dedicated, name="back", dedicated_thread=False).ask(
            "x", timeout=5).startswith("minions-worker-")
    finally:
        system.shutdown(timeout=10)


def test_execution_dedicated_gives_every_minion_a_thread() -> None:
    system = ActorSystem.start(**QUIET, execution="dedicated")
    try:
        assert system.spawn(Where, name="w").ask("x", timeout=5) == "Where (minion:w)"
        assert system.spawn(Where, name="p", dedicated_thread=False).ask(
            "x", timeout=5).startswith("minions-worker-")
    finally:
        system.shutdown(timeout=10)


@pytest.mark.parametrize(("option", "value", "text", "error"), [
    ("execution", "threads", "execution must be 'pooled'", ValueError),
    ("pool_size", 0, "pool_size must be an int >= 1", ValueError),
    ("pool_throughput", 0, "pool_throughput must be an int >= 1", ValueError),
    ("starvation_threshold", 0, "starvation_threshold must be > 0", ValueError),
    ("pool_max_workers", "8", "pool_max_workers must be an int", TypeError),
])
def test_bad_pool_options_are_clear_errors(option: str, value: Any, text: str,
                                           error: type[Exception]) -> None:
    with pytest.raises(error, match=text):
        ActorSystem.start(**QUIET, **{option: value})
    assert ActorSystem.current() is None


def test_max_workers_below_pool_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"pool_max_workers \(2\) must be >= pool_size \(4\)"):
        ActorSystem.start(**QUIET, pool_size=4, pool_max_workers=2)


class TellThenBlock(Minion):
    """Tells ``peer`` then blocks on ``gate`` (not a runtime wait the pool can see)."""

    def on_receive(self, message: Any) -> Any:
        peer, gate = message
        peer.tell("from a blocked handler")
        assert gate.wait(30)


def test_mail_sent_by_a_handler_that_then_blocks_is_still_delivered() -> None:
    # what a handler sends runs next on its worker (no hand-off between threads); if the
    # handler then blocks, the starvation monitor hands that minion to another worker
    system = ActorSystem.start(**QUIET, pool_size=1, starvation_threshold=0.2)
    gate = threading.Event()
    try:
        log: list[Any] = []
        peer = system.spawn(Logger, "peer", log)
        peer.ask("ready", timeout=5)
        system.spawn(TellThenBlock).tell((peer, gate))
        wait_until(lambda: ("peer", "from a blocked handler") in log, timeout=5,
                   what="the peer got the message while the sender is still blocked")
        assert not gate.is_set()
    finally:
        gate.set()
        system.shutdown(timeout=10)


@pytest.mark.parametrize("blocked", [1, 2])
def test_handlers_blocked_below_the_threshold_do_not_hold_the_queue(blocked: int) -> None:
    # idle workers stay parked while a busy one can serve the run queue; a busy worker
    # blocked outside the runtime (an Event, as time.sleep or a socket would) is not one:
    # the monitor wakes a parked worker, and retakes the blocked one (another worker is
    # added so that pool_size workers can run). The threshold is high so that starvation
    # detection cannot be what rescues the queue.
    system = ActorSystem.start(**QUIET, pool_size=blocked + 1, starvation_threshold=60)
    gate = threading.Event()
    try:
        log: list[Any] = []
        for i in range(blocked):
            system.spawn(Logger, f"blocked-{i}", log).tell(gate)
        wait_until(lambda: system.worker_pool.busy() == blocked, what="handlers blocked")
        quiet = [system.spawn(Logger, f"quiet-{i}", log) for i in range(20)]
        for i in range(200):
            quiet[i % 20].tell(i)
        assert [q.ask("sync", timeout=10) for q in quiet] == ["sync"] * 20
        assert len(log) == 220 and not gate.is_set()
        assert blocked + 1 <= system.worker_pool.workers() <= blocked + blocked + 1
    finally:
        gate.set()
        system.shutdown(timeout=10)
