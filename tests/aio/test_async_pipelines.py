"""Async pipelines: an async generator on the event loop feeds the pipeline's steps with the
same back-pressure (the generator awaits room; the loop stays free), the same committed
position (a crash or another run resumes there) and a stop that cancels it, its
``finally`` run, nothing left pending. The source is a real TCP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, AsyncPipeline, Batch, Hooks, Minion
from tests.conftest import QUIET, Recorder, runtime_threads, wait_until


class NumberServer:
    """On 127.0.0.1: a client sends ``FROM n`` and reads ``n``, ``n+1``, ... ``total-1``,
    one per line, then EOF. Runs on a loop of its own (a thread), apart from the runtime's."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            start = int((await reader.readline()).split()[1])
            for n in range(start, self.total):
                writer.write(f"{n}\n".encode())
                await writer.drain()  # a reader that pauses pauses this writer
        except (ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def server() -> Any:
    srv = NumberServer(100_000)
    yield srv
    srv.close()


class Feed(AsyncPipeline):
    """Reads numbers from the server; each is one event, its position the next number."""

    poll_interval = 0.05

    def __init__(self, port: int, subscribers: list[str], rec: Recorder,
                 fail_after: list[int] | None = None, batch: int = 1) -> None:
        super().__init__()
        self.port, self.rec, self.batch = port, rec, batch
        self.fail_after = fail_after if fail_after is not None else []  # shared: fails once
        self.subscribers = subscribers

    async def stream(self, position: Any) -> AsyncGenerator[Batch, None]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self.rec.add(("stream", position))
            writer.write(f"FROM {position or 0}\n".encode())
            events: list[int] = []
            while line := await reader.readline():
                n = int(line)
                if self.fail_after and n >= self.fail_after[0]:
                    self.fail_after.clear()
                    raise ConnectionResetError("the feed broke")
                self.rec.add(("yield", n))
                events.append(n)
                if len(events) == self.batch:
                    yield Batch(events, n + 1)
                    events = []
        finally:
            writer.close()
            self.rec.add(("finally", position))


class Sink(Minion):
    """An async subscriber; ``gate``: each event waits for it (a slow consumer)."""

    def __init__(self, rec: Recorder, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.rec, self.gate = rec, gate

    async def on_receive(self, message: Any) -> Any:
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait, 30)
        self.rec.add(("got", message))


class Echo(Minion):
    async def on_receive(self, message: Any) -> Any:
        return message


def got(rec: Recorder) -> list[int]:
    return [e[1] for e in rec.only(lambda e: e[0] == "got")]


def yielded(rec: Recorder) -> list[int]:
    return [e[1] for e in rec.only(lambda e: e[0] == "yield")]


def test_events_stream_in_order_and_a_stop_cancels_the_generator(rec: Recorder) -> None:
    srv = NumberServer(40)
    system = ActorSystem.start(**QUIET)
    try:
        system.spawn(Sink, rec, name="sink")
        feed = system.spawn(Feed, srv.port, ["sink"], rec, name="feed")
        rec.wait_for(lambda _: len(got(rec)) >= 40, timeout=30)
        assert got(rec) == list(range(40))
        wait_until(lambda: feed.proxy().position.get(timeout=5) == 40, timeout=10)
        # the server's EOF ended the stream: it starts again from the last position
        rec.wait_for(lambda evs: ("stream", 40) in evs, timeout=10)
        assert feed.stop(timeout=10)
        assert rec.events[-1][0] == "finally"  # cancelled: its finally ran before the stop
    finally:
        assert system.shutdown(timeout=15)
        srv.close()
    assert runtime_threads() == []


def test_a_slow_subscriber_pauses_the_generator_and_the_loop_stays_free(
        rec: Recorder, server: NumberServer) -> None:
    gate = threading.Event()
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    try:
        system.spawn(Sink, rec, gate, name="sink", mailbox_size=3)
        echo = system.spawn(Echo, name="echo")
        system.spawn(Feed, server.port, ["sink"], rec, None, 10, name="feed")
        assert system.metrics is not None
        sample = system.metrics.registry.get_sample_value
        wait_until(lambda: (sample("minions_pipeline_backpressure_seconds_total",
                                   {"pipeline": "feed"}) or 0) > 0.2,
                   timeout=20, what="the pipeline waiting for room")
        assert echo.ask("free", timeout=10) == "free"  # the loop is not held by the wait
        # one batch of 10 in the subscriber's hands, mailbox and the outbox, one in the
        # hand-off: the generator awaits room, far from the server's 100,000
        assert len(yielded(rec)) <= 20, yielded(rec)
        assert got(rec) == []
        gate.set()
        rec.wait_for(lambda _: len(got(rec)) >= 200, timeout=30)
        assert got(rec)[:200] == list(range(200))  # nothing dropped, in order
    finally:
        gate.set()
        assert system.shutdown(timeout=15)


class Crashes(Hooks):
    def __init__(self) -> None:
        self.rec = Recorder()

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add((cell.path, type(exc).__name__))


def test_a_generator_error_restarts_it_from_the_committed_position(
        rec: Recorder, server: NumberServer) -> None:
    crashes = Crashes()
    system = ActorSystem.start(**QUIET, hooks=[crashes])
    try:
        system.spawn(Sink, rec, name="sink")
        system.spawn(Feed, server.port, ["sink"], rec, [25], name="feed")
        assert crashes.rec.wait_for(lambda evs: evs, timeout=20)[0] == (
            "feed", "ConnectionResetError")
        rec.wait_for(lambda _: set(range(60)) <= set(got(rec)), timeout=30)
    finally:
        assert system.shutdown(timeout=15)
    starts = [e[1] for e in rec.only(lambda e: e[0] == "stream")]
    assert starts[0] is None and starts[1] is not None and 0 < starts[1] <= 25
    numbers = got(rec)
    first_run = next((i for i, n in enumerate(numbers) if n != i), starts[1])
    # at least once: the second stream starts at the committed position, at or before
    # the first event the subscriber had not handled, and goes on in order from there
    assert starts[1] <= first_run
    assert numbers[first_run:] == list(range(starts[1], starts[1] + len(numbers) - first_run))


def test_the_position_persists_and_the_next_run_continues(
        tmp_path: Path, server: NumberServer) -> None:
    db = str(tmp_path / "state.db")
    first = Recorder()
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    try:
        system.spawn(Sink, first, name="sink")
        system.spawn(Feed, server.port, ["sink"], first, name="feed")
        first.wait_for(lambda _: len(got(first)) >= 30, timeout=30)
    finally:
        assert system.shutdown(timeout=15)
    second = Recorder()
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    try:
        system.spawn(Sink, second, name="sink")
        system.spawn(Feed, server.port, ["sink"], second, name="feed")
        second.wait_for(lambda _: len(got(second)) >= 10, timeout=30)
    finally:
        assert system.shutdown(timeout=15)
    resumed = next(e[1] for e in second.only(lambda e: e[0] == "stream"))
    before = got(first)
    assert before == list(range(len(before)))
    assert 30 <= resumed <= len(before)  # committed: handled by the subscriber, none skipped
    assert got(second)[0] == resumed


ROOT = Path(__file__).resolve().parents[2]


def _run_app(db: Path, ledger: Path, epoch: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minions_actors", "run", "tests.apps.async_stream_app:main"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "APP_DB": str(db), "APP_LEDGER": str(ledger),
             "APP_EPOCH": str(epoch)})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def _events(ledger: Path, epoch: int) -> list[str]:
    return [line.split(" ", 1)[1] for line in ledger.read_text().splitlines()
            if line.startswith(f"{epoch} ")]


def test_sigterm_through_run_loses_nothing_acknowledged_and_the_next_run_continues(
        tmp_path: Path) -> None:
    db, ledger = tmp_path / "state.db", tmp_path / "ledger"
    for epoch in (1, 2):
        proc = _run_app(db, ledger, epoch)
        try:
            wait_until(lambda: len(_events(ledger, epoch)) >= 300, timeout=60,  # noqa: B023
                       what=f"run {epoch} to handle 300 events")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            took = time.monotonic() - t0
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert "pending" not in err and "never awaited" not in err, err  # nothing left
        assert took < 15, took  # stop_timeout 5 s per minion at most; far less in practice
        lines = _events(ledger, epoch)
        assert lines[0].startswith("stream-from ") and lines[-1] == "closed", lines[-3:]
    first, second = _events(ledger, 1), _events(ledger, 2)
    handled_first = [int(n) for n in first[1:-1]]
    assert handled_first == list(range(len(handled_first)))  # in order, none skipped
    resumed = int(second[0].split()[1])
    # the committed position: only past what the subscriber handled in the first run
    assert 0 < resumed <= len(handled_first)
    assert int(second[1]) == resumed  # the second run continues there


class Gated(Minion):
    """A sync subscriber whose first event waits for ``gate``."""

    def __init__(self, rec: Recorder, gate: threading.Event) -> None:
        super().__init__()
        self.rec, self.gate = rec, gate

    def on_receive(self, message: Any) -> Any:
        self.gate.wait(30)
        self.rec.add(("got", message))


class Threes(AsyncPipeline):
    """Batches of three numbers; a turn waits up to 30 s for the batch to be handled."""

    max_wait = 30.0
    subscribers = ["sink"]

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    async def stream(self, position: Any) -> AsyncGenerator[Batch, None]:
        self.rec.add(("stream", position))
        n = position or 0
        while True:
            yield Batch([n, n + 1, n + 2], n + 3)
            n += 3


def test_events_a_shutdown_drops_unhandled_are_not_committed(tmp_path: Path) -> None:
    """The subscriber's backlog dropped by the shutdown answers the batch's ask with
    MinionStopped: that is not "handled", so the position must not move past it."""
    db, rec, gate = str(tmp_path / "state.db"), Recorder(), threading.Event()
    system = ActorSystem.start(**{**QUIET, "state_store": db, "shutdown_timeout": 30})
    try:
        sink = system.spawn(Gated, rec, gate, name="sink")
        system.spawn(Threes, rec, name="feed")
        wait_until(lambda: sink.actor_inbox.qsize() == 2, timeout=10,  # 1 and 2 (asked)
                   what="the batch handed over, event 0 in the handler")
        stopper = threading.Thread(target=system.shutdown)
        stopper.start()
        wait_until(lambda: sink._cell.closing, timeout=10,
                   what="the shutdown to halt the subscriber")
    finally:
        gate.set()
        stopper.join(30)
    assert [e for e in rec.events if e[0] == "got"] == [("got", 0)]
    again = Recorder()
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    try:
        open_gate = threading.Event()
        open_gate.set()
        system.spawn(Gated, again, open_gate, name="sink")  # (never waits: its gate is open)
        system.spawn(Threes, again, name="feed")
        again.wait_for(lambda evs: any(e[0] == "stream" for e in evs), timeout=10)
    finally:
        assert system.shutdown(timeout=15)  # (a handler still waiting would leave its worker)
    # nothing was committed: events 1 and 2 were never handled
    assert next(e[1] for e in again.events if e[0] == "stream") is None


class HaltsMidBatch(Threes):
    """Threes whose subscriber is halted (as a shutdown halts every minion, the subscriber
    before the pipeline) right after event 1 went to it: the halt's mark lands in the
    middle of the batch, event 1 before it (the backlog it drops), event 2 after it.
    ``in_send``: the halt lands inside the send of event 2, after the pipeline's look."""

    in_send = False

    def _send(self, target: Any, event: Any, last: bool) -> bool:
        if event == 2 and self.in_send:
            target._cell.halt()
        sent = super()._send(target, event, last)
        if event == 1 and not self.in_send:
            target._cell.halt()
        return sent


class HaltsInSend(HaltsMidBatch):
    in_send = True


def test_a_halt_in_the_middle_of_a_batch_skips_no_event_and_commits_nothing(
        tmp_path: Path) -> None:
    """A subscriber halted while a batch goes to it drops the events queued before the
    halt's mark: the pipeline must send it nothing more (an event handled after one dropped
    is out of order, and its answer is no proof that the batch was handled), and the
    position must not move past the dropped events."""
    db, rec, gate = str(tmp_path / "state.db"), Recorder(), threading.Event()
    system = ActorSystem.start(**{**QUIET, "state_store": db, "shutdown_timeout": 30})
    try:
        sink = system.spawn(Gated, rec, gate, name="sink")
        system.spawn(HaltsMidBatch, rec, name="feed")
        wait_until(lambda: sink._cell.closing, timeout=10,
                   what="the subscriber halted in the middle of the batch")
        gate.set()
        wait_until(lambda: sink._cell._mark_passed, timeout=10,
                   what="the subscriber to drop its backlog")
        time.sleep(0.3)  # (what it would handle after the mark: event 2, then more batches)
        got = [e[1] for e in rec.events if e[0] == "got"]
    finally:
        gate.set()
        assert system.shutdown(timeout=15)
    assert got == list(range(len(got))), got  # in order, none skipped
    again = Recorder()
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    try:
        open_gate = threading.Event()
        open_gate.set()
        system.spawn(Gated, again, open_gate, name="sink")
        system.spawn(Threes, again, name="feed")
        again.wait_for(lambda evs: any(e[0] == "stream" for e in evs), timeout=10)
    finally:
        assert system.shutdown(timeout=15)
    assert next(e[1] for e in again.events if e[0] == "stream") is None  # nothing committed


def test_an_answer_after_a_halt_that_dropped_a_backlog_commits_nothing(tmp_path: Path) -> None:
    """The halt lands between the pipeline's look at the subscriber and its send of the
    batch's last event: that event is handled after the dropped backlog and answered, but
    the batch was not all handled, so the position stays."""
    db, rec, gate = str(tmp_path / "state.db"), Recorder(), threading.Event()
    system = ActorSystem.start(**{**QUIET, "state_store": db, "shutdown_timeout": 30})
    try:
        sink = system.spawn(Gated, rec, gate, name="sink")
        feed = system.spawn(HaltsInSend, rec, name="feed")
        wait_until(lambda: sink._cell.closing, timeout=10, what="the subscriber halted")
        gate.set()
        rec.wait_for(lambda evs: ("got", 2) in evs, timeout=10)  # answered after the drop
        time.sleep(0.3)  # (the pipeline's turns that would commit it)
        committed = feed._cell.instance.position  # type: ignore[union-attr]
    finally:
        gate.set()
        assert system.shutdown(timeout=15)
    assert committed is None
