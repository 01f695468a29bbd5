"""Pipelines: delivery to subscribers, back-pressure with a bounded mailbox, crash and
restart from the committed position, metrics, clear errors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Batch, FileTail, Hooks, Minion, Pipeline
from tests.conftest import QUIET, Recorder, wait_until


class Numbers(Pipeline):
    """Produces 0..total-1 in batches; ``fail_at``: produce() raises once on that batch."""

    poll_interval = 0.02

    def __init__(self, total: int, batch: int, subscribers: list[str], rec: Recorder,
                 fail_at: list[int] | None = None) -> None:
        super().__init__()
        self.total, self.batch, self.rec = total, batch, rec
        self.subscribers = subscribers
        self.fail_at = fail_at if fail_at is not None else []

    def open(self, position: Any) -> None:
        self.rec.add(("open", position))
        self.next = position or 0

    def produce(self) -> Batch | None:
        if self.next >= self.total:
            return None
        end = min(self.total, self.next + self.batch)
        if self.fail_at and self.next <= self.fail_at[0] < end:
            self.fail_at.clear()
            raise OSError("the source broke")
        events, self.next = list(range(self.next, end)), end
        return Batch(events, end)

    def close(self) -> None:
        self.rec.add(("close", self.position))


class Collect(Minion):
    def __init__(self, rec: Recorder, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.rec, self.gate = rec, gate

    def on_receive(self, message: Any) -> Any:
        if self.gate is not None:
            self.gate.wait(10)
        self.rec.add((self.name, message))


def got(rec: Recorder, name: str) -> list[Any]:
    return [e[1] for e in rec.only(lambda e: e[0] == name)]


def test_every_subscriber_gets_every_event_in_order(system: ActorSystem, rec: Recorder) -> None:
    system.spawn(Collect, rec, name="a")
    system.spawn(Collect, rec, name="b")
    pipe = system.spawn(Numbers, 25, 10, ["a", "b"], rec, name="numbers")
    rec.wait_for(lambda _: len(got(rec, "a")) == 25 and len(got(rec, "b")) == 25)
    assert got(rec, "a") == got(rec, "b") == list(range(25))
    wait_until(lambda: pipe.proxy().position.get(timeout=1) == 25)
    assert pipe.stop(timeout=2)
    assert ("close", 25) in rec.events


def test_a_full_mailbox_makes_the_pipeline_wait_without_dropping(rec: Recorder) -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    gate = threading.Event()
    try:
        slow = system.spawn(Collect, rec, gate, name="slow", mailbox_size=3,
                            mailbox_put_timeout=0.05)
        pipe = system.spawn(Numbers, 40, 10, ["slow"], rec, name="numbers")
        assert system.metrics is not None
        sample = system.metrics.registry.get_sample_value
        wait_until(lambda: (sample("minions_pipeline_backpressure_seconds_total",
                                   {"pipeline": "numbers"}) or 0) > 0.1,
                   what="the pipeline waiting for room")
        for _ in range(20):  # while blocked: never more than the bound in the mailbox
            assert sample("minions_mailbox_depth", {"minion_class": "Collect"}) <= 3
            time.sleep(0.005)
        assert got(rec, "slow") == []
        assert slow.is_alive()
        gate.set()
        rec.wait_for(lambda _: len(got(rec, "slow")) == 40)
        assert got(rec, "slow") == list(range(40))  # nothing dropped, in order
        wait_until(lambda: pipe.proxy().position.get(timeout=1) == 40)
        assert sample("minions_pipeline_events_total", {"pipeline": "numbers"}) == 40
        assert sample("minions_dead_letters_total", {"minion_class": "Collect"}) == 0
    finally:
        gate.set()
        assert system.shutdown()


def test_a_blocked_pipeline_still_stops_promptly(rec: Recorder) -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0})
    gate = threading.Event()
    try:
        system.spawn(Collect, rec, gate, name="slow", mailbox_size=1, mailbox_put_timeout=0.2)
        pipe = system.spawn(Numbers, 1000, 100, ["slow"], rec, name="numbers")
        assert system.metrics is not None
        sample = system.metrics.registry.get_sample_value
        wait_until(lambda: (sample("minions_pipeline_backpressure_seconds_total",
                                   {"pipeline": "numbers"}) or 0) > 0,
                   what="the pipeline waiting for room")
        t0 = time.monotonic()
        assert pipe.stop(timeout=3)
        assert time.monotonic() - t0 < 1.5  # a turn never waits in a send: the stop is next
    finally:
        gate.set()
        system.shutdown()


class DeadLetters(Hooks):
    def __init__(self) -> None:
        self.rec = Recorder()

    def dead_letter(self, cell: Any, message: Any, first: bool) -> None:
        self.rec.add((cell.path, type(message).__name__))

    def messages_dropped(self, cell: Any, count: int) -> None:
        self.rec.add((cell.path, count))


class Endless(Numbers):
    """Always has events: its next turn is in its mailbox whenever it stops."""

    def produce(self) -> Batch | None:
        self.next += 1
        return Batch([self.next], self.next)


def test_a_stopped_pipeline_reports_no_dead_letter_for_its_own_turns(rec: Recorder) -> None:
    # The turn queued behind the stop is the runtime's, not a message anyone sent: an
    # operator must not read "dead letter: a _Turn message reached stopped minion".
    hooks = DeadLetters()
    system = ActorSystem.start(**QUIET, hooks=[hooks])
    try:
        system.spawn(Collect, rec, name="sink")
        pipe = system.spawn(Endless, 0, 1, ["sink"], rec, name="ticks")
        rec.wait_for(lambda _: len(got(rec, "sink")) >= 20)
        assert pipe.stop(timeout=5)  # its next turn is always queued: dropped by the stop
        assert ("close", None) not in rec.events  # closed with a position, after turns
        assert hooks.rec.only(lambda e: e[0] == "ticks") == []
    finally:
        system.shutdown()


class Crashes(Hooks):
    def __init__(self) -> None:
        self.rec = Recorder()

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add((cell.path, phase, repr(exc)))


def test_an_exception_while_producing_is_a_crash_and_the_restart_resumes(rec: Recorder) -> None:
    crashes = Crashes()
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, hooks=[crashes])
    try:
        system.spawn(Collect, rec, name="sink")
        system.spawn(Numbers, 30, 10, ["sink"], rec, [15], name="numbers")
        rec.wait_for(lambda _: len(set(got(rec, "sink"))) == 30)
        assert crashes.rec.events == [("numbers", "message", "OSError('the source broke')")]
        opens = [e[1] for e in rec.events if isinstance(e, tuple) and e[0] == "open"]
        assert opens == [None, 10]  # the restart resumed at the committed position
        received = got(rec, "sink")
        assert sorted(set(received)) == list(range(30))  # at least once, nothing lost
        assert system.metrics is not None
        sample = system.metrics.registry.get_sample_value
        assert sample("minions_pipeline_produce_errors_total", {"pipeline": "numbers"}) == 1
        assert sample("minions_restarts_total", {"minion_class": "Numbers"}) == 1
    finally:
        system.shutdown()


def test_missing_subscriber_is_a_clear_crash(system: ActorSystem, rec: Recorder) -> None:
    crashes = Crashes()
    system.hooks.add(crashes)
    system.spawn(Numbers, 3, 1, ["nobody"], rec, name="numbers", restart="temporary")
    path, phase, err = crashes.rec.wait_for(lambda evs: evs)[0]
    assert (path, phase) == ("numbers", "on_start")
    assert "subscriber 'nobody' of pipeline 'numbers' is not running" in err
    system.spawn(Numbers, 3, 1, [], rec, name="none", restart="temporary")
    _, _, err = crashes.rec.wait_for(lambda evs: len(evs) == 2 and evs)[1]
    assert "has no subscribers" in err


ROOT = Path(__file__).resolve().parents[2]


def _child(db: Path, source: Path, ledger: Path, epoch: int, last: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.pipeline_child", str(db), str(source), str(ledger),
         str(epoch), str(last)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _ledger(path: Path) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in
            (line.split() for line in path.read_text().splitlines())]


def test_position_resumes_after_kill_9(tmp_path: Path) -> None:
    total = 4000
    source, ledger, db = tmp_path / "input.txt", tmp_path / "ledger", tmp_path / "state.db"
    source.write_text("".join(f"{n}\n" for n in range(total)))
    first = _child(db, source, ledger, 1, total - 1)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().split() == ["OPEN", "0"]
        wait_until(lambda: ledger.exists() and len(ledger.read_text().splitlines()) >= 1000,
                   timeout=30, what="the first run to handle 1000 lines")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        first.kill()
        first.communicate()
    before = _ledger(ledger)
    assert len(before) < total, "the first run finished before the kill: nothing to resume"
    second = _child(db, source, ledger, 2, total - 1)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    lines = out.split("\n")
    assert lines[0].startswith("OPEN ") and "DONE" in lines
    resumed_at = int(lines[0].split()[1])
    assert resumed_at > 0  # resumed, not read again from the start
    after = [n for epoch, n in _ledger(ledger) if epoch == 2]
    # the committed position is a byte offset: line n starts at len(lines before n)
    assert _offset(after[0]) == resumed_at
    assert after == list(range(after[0], total))
    # at least once: the second run starts at or before the first line the first run
    # had not handled yet, so nothing is lost (lines in between are delivered twice)
    handled_first = {n for _, n in before}
    assert set(range(after[0])) <= handled_first


@pytest.mark.slow
def test_kill_9_campaign_loses_no_line(tmp_path: Path) -> None:
    """Ten runs killed at random points, then one that finishes: every line is delivered
    (at least once), and each run resumes at or before the first line not yet handled."""
    total = 6000
    source, ledger, db = tmp_path / "input.txt", tmp_path / "ledger", tmp_path / "state.db"
    source.write_text("".join(f"{n}\n" for n in range(total)))
    rng = random.Random(13)
    for epoch in range(1, 11):
        proc = _child(db, source, ledger, epoch, total - 1)
        try:
            assert proc.stdout is not None
            resumed = int(proc.stdout.readline().split()[1])
            handled = {n for _, n in _ledger(ledger)} if ledger.exists() else set()
            assert resumed <= _offset(min(set(range(total)) - handled, default=total))
            time.sleep(rng.uniform(0.05, 0.4))  # a random point in the stream
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
            proc.communicate()
    final = _child(db, source, ledger, 99, total - 1)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert {n for _, n in _ledger(ledger)} == set(range(total))


def _offset(line: int) -> int:
    """The byte offset where line number ``line`` starts in the campaign's input."""
    return sum(len(f"{k}\n") for k in range(line))


def test_file_tail_waits_for_whole_lines_and_restarts_a_truncated_file(
    system: ActorSystem, rec: Recorder, tmp_path: Path,
) -> None:
    class Tail(FileTail):
        poll_interval = 0.01

    path = tmp_path / "log.txt"
    system.spawn(Collect, rec, name="sink")
    tail = system.spawn(Tail, path, ["sink"], name="tail")  # the file does not exist yet
    path.write_text("first\nsecond, half")
    rec.wait_for(lambda _: got(rec, "sink") == ["first"])
    with path.open("a") as f:
        f.write(" and the rest\n")
    rec.wait_for(lambda _: got(rec, "sink") == ["first", "second, half and the rest"])
    wait_until(lambda: _offset_of(tail.proxy().position.get(timeout=1)) == path.stat().st_size)
    path.write_text("new\n")  # replaced by a shorter file: read from the start
    rec.wait_for(lambda _: got(rec, "sink")[-1:] == ["new"])


# ---------------------------------------------------------------- FileTail: rotation (tail -F)

class FastTail(FileTail):
    poll_interval = 0.01


def _offset_of(position: Any) -> int:
    """The byte offset in a committed position (a bare int before positions named the file)."""
    return position if isinstance(position, int) else int(position["offset"])


def _lines(*words: str) -> str:
    return "".join(f"{w}\n" for w in words)


def test_file_tail_follows_a_rename_and_recreate_rotation(
    system: ActorSystem, rec: Recorder, tmp_path: Path,
) -> None:
    path = tmp_path / "x.log"
    path.write_text(_lines("a1", "a2"))
    system.spawn(Collect, rec, name="sink")
    tail = system.spawn(FastTail, path, ["sink"], name="tail")
    rec.wait_for(lambda _: got(rec, "sink") == ["a1", "a2"])
    with path.open("a") as old:  # the writer keeps its descriptor across the rename
        old.write(_lines("a3"))
        old.flush()
        path.rename(tmp_path / "x.log.1")  # logrotate "create": rename, then a new file
        old.write(_lines("a4") + "a5 without its newline")  # before the writer reopens
    path.write_text(_lines("b1", "b2", "b3"))
    rec.wait_for(lambda _: len(got(rec, "sink")) >= 8)
    with path.open("a") as new:
        new.write(_lines("b4"))
    rec.wait_for(lambda _: got(rec, "sink")[-1:] == ["b4"])
    assert got(rec, "sink") == ["a1", "a2", "a3", "a4", "a5 without its newline",
                                "b1", "b2", "b3", "b4"]
    wait_until(lambda: _offset_of(tail.proxy().position.get(timeout=1)) == path.stat().st_size)


def test_file_tail_follows_a_delete_and_recreate(
    system: ActorSystem, rec: Recorder, tmp_path: Path,
) -> None:
    path = tmp_path / "x.log"
    path.write_text(_lines("a1", "a2"))
    system.spawn(Collect, rec, name="sink")
    system.spawn(FastTail, path, ["sink"], name="tail")
    rec.wait_for(lambda _: got(rec, "sink") == ["a1", "a2"])
    path.unlink()
    path.write_text(_lines("b1"))  # shorter than the old offset: no size to compare with
    rec.wait_for(lambda _: got(rec, "sink")[-1:] == ["b1"])
    with path.open("a") as new:
        new.write(_lines("b2", "b3 is a longer line than the old file was"))
    rec.wait_for(lambda _: len(got(rec, "sink")) >= 5)
    assert got(rec, "sink") == ["a1", "a2", "b1", "b2",
                                "b3 is a longer line than the old file was"]


def test_file_tail_follows_a_copytruncate(
    system: ActorSystem, rec: Recorder, tmp_path: Path,
) -> None:
    """logrotate "copytruncate": the same file is emptied in place and written again; the
    new content may already be longer than the old offset when the tail looks."""
    path = tmp_path / "x.log"
    path.write_text(_lines("a1", "a2"))
    system.spawn(Collect, rec, name="sink")
    system.spawn(FastTail, path, ["sink"], name="tail")
    rec.wait_for(lambda _: got(rec, "sink") == ["a1", "a2"])
    inode = path.stat().st_ino
    with path.open("r+") as f:  # the writer: O_APPEND, so it goes on at the new end
        f.truncate(0)
    with path.open("a") as f:
        f.write(_lines("b1", "b2", "b3"))
    assert path.stat().st_ino == inode
    rec.wait_for(lambda _: len(got(rec, "sink")) >= 5)
    assert got(rec, "sink") == ["a1", "a2", "b1", "b2", "b3"]


def _tail_until_committed(db: Path, path: Path, rec: Recorder, tail_class: type[FileTail],
                          count: int) -> None:
    """One run of a process: tail ``path`` until ``count`` lines were handled and their
    position committed, then shut down (the position is persisted in ``db``)."""
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    try:
        system.spawn(Collect, rec, name="sink")
        tail = system.spawn(tail_class, path, ["sink"], name="tail")
        rec.wait_for(lambda _: len(got(rec, "sink")) >= count)
        wait_until(lambda: _offset_of(tail.proxy().position.get(timeout=1))
                   == path.stat().st_size, what="the position to be committed")
    finally:
        assert system.shutdown()


def test_file_tail_after_a_rotation_while_down_skips_no_line(
    rec: Recorder, tmp_path: Path,
) -> None:
    path, db = tmp_path / "x.log", tmp_path / "state.db"
    path.write_text(_lines("a1", "a2"))
    _tail_until_committed(db, path, rec, FastTail, 2)
    path.rename(tmp_path / "x.log.1")
    with (tmp_path / "x.log.1").open("a") as old:  # written after the last delivered line
        old.write(_lines("a3"))
    path.write_text(_lines("b1", "b2", "b3", "b4"))  # already longer than the old offset
    _tail_until_committed(db, path, rec, FastTail, 7)
    assert got(rec, "sink") == ["a1", "a2", "a3", "b1", "b2", "b3", "b4"]


def test_file_tail_after_a_copytruncate_while_down_skips_no_line(
    rec: Recorder, tmp_path: Path,
) -> None:
    path, db = tmp_path / "x.log", tmp_path / "state.db"
    path.write_text(_lines("a1", "a2"))
    _tail_until_committed(db, path, rec, FastTail, 2)
    inode = path.stat().st_ino
    with path.open("r+") as f:
        f.truncate(0)
    with path.open("a") as f:
        f.write(_lines("b1", "b2", "b3", "b4"))
    assert path.stat().st_ino == inode  # same file: only its content tells
    _tail_until_committed(db, path, rec, FastTail, 6)
    assert got(rec, "sink") == ["a1", "a2", "b1", "b2", "b3", "b4"]


def test_file_tail_resumes_from_a_bare_offset_stored_by_an_earlier_version(
    rec: Recorder, tmp_path: Path,
) -> None:
    class EarlierTail(FastTail):
        """Persists its position the way earlier versions did: the bare byte offset."""

        def snapshot(self) -> Any:
            return {"position": _offset_of(self.position) if self.position else None}

    path, db = tmp_path / "x.log", tmp_path / "state.db"
    path.write_text(_lines("a1", "a2"))
    _tail_until_committed(db, path, rec, EarlierTail, 2)
    with path.open("a") as f:
        f.write(_lines("a3"))
    _tail_until_committed(db, path, rec, FastTail, 3)
    assert got(rec, "sink") == ["a1", "a2", "a3"]


def test_file_tail_after_a_delete_and_recreate_while_down_skips_no_line(
    rec: Recorder, tmp_path: Path,
) -> None:
    """The new file may even get the old one's inode number back: its first bytes differ."""
    path, db = tmp_path / "x.log", tmp_path / "state.db"
    path.write_text(_lines("a1", "a2"))
    _tail_until_committed(db, path, rec, FastTail, 2)
    path.unlink()
    path.write_text(_lines("b1", "b2", "b3"))
    _tail_until_committed(db, path, rec, FastTail, 5)
    assert got(rec, "sink") == ["a1", "a2", "b1", "b2", "b3"]


def test_file_tail_finds_the_rotated_file_when_the_new_one_is_not_there_yet(
    rec: Recorder, tmp_path: Path,
) -> None:
    path, db = tmp_path / "x.log", tmp_path / "state.db"
    path.write_text(_lines("a1"))
    _tail_until_committed(db, path, rec, FastTail, 1)
    path.rename(tmp_path / "x.log.1")
    with (tmp_path / "x.log.1").open("a") as old:
        old.write(_lines("a2"))
    system = ActorSystem.start(**{**QUIET, "state_store": db})
    try:
        system.spawn(Collect, rec, name="sink")
        system.spawn(FastTail, path, ["sink"], name="tail")
        rec.wait_for(lambda _: got(rec, "sink") == ["a1", "a2"])  # from x.log.1
        path.write_text(_lines("b1"))
        rec.wait_for(lambda _: got(rec, "sink") == ["a1", "a2", "b1"])
    finally:
        assert system.shutdown()


def test_file_tail_behind_at_a_rotation_reads_the_old_file_to_its_end_first(
    system: ActorSystem, rec: Recorder, tmp_path: Path,
) -> None:
    class SmallBatches(FastTail):
        batch_size = 3

    class Held(Collect):
        def on_receive(self, message: Any) -> Any:
            self.rec.add(("entered", message))
            return super().on_receive(message)

    path = tmp_path / "x.log"
    path.write_text(_lines("a0"))
    gate = threading.Event()
    try:
        system.spawn(Held, rec, gate, name="sink")  # blocked: the tail falls behind
        system.spawn(SmallBatches, path, ["sink"], name="tail")
        rec.wait_for(lambda evs: ("entered", "a0") in evs)  # the tail has the old file open
        with path.open("a") as old:
            old.write(_lines(*(f"a{i}" for i in range(1, 11))))
        path.rename(tmp_path / "x.log.1")
        path.write_text(_lines(*(f"b{i}" for i in range(10))))
        gate.set()
        rec.wait_for(lambda _: len(got(rec, "sink")) >= 21)
        assert got(rec, "sink") == [f"a{i}" for i in range(11)] + [f"b{i}" for i in range(10)]
    finally:
        gate.set()


def test_file_tail_reads_from_the_start_when_the_stored_position_is_not_its_own(
    rec: Recorder, tmp_path: Path,
) -> None:
    class Garbled(FastTail):
        def snapshot(self) -> Any:
            return {"position": {"offset": "not a number"}}

    path, db = tmp_path / "x.log", tmp_path / "state.db"
    path.write_text(_lines("a1", "a2"))
    _tail_until_committed(db, path, rec, Garbled, 2)
    _tail_until_committed(db, path, rec, FastTail, 4)  # a warning, and nothing skipped
    assert got(rec, "sink") == ["a1", "a2", "a1", "a2"]
