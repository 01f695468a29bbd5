"""Durable schedules (``self.schedules``) of persistent minions, in one process: a store
file kept across systems stands for a restart; missed fires are made by moving a stored
row's next due time into the past through the store's public ``save_schedule``."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from minions_actors import ActorSystem, Minion, Workflow
from minions_actors.errors import MinionsError
from minions_actors.persistence import SQLiteStateStore
from minions_actors.runtime.schedules import slot_workflow_id
from tests.conftest import Recorder, wait_until

QUIET: dict[str, Any] = {"metrics_port": None, "file_logs": False, "stderr_logs": False}


class Sched(Minion):
    """Does what it is told with its schedules; records every fire with its slot."""

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec
        self.fires = 0

    def snapshot(self) -> Any:
        return {"fires": self.fires}

    def restore(self, state: Any) -> None:
        self.fires = state["fires"]

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple):
            name, *args = message
            if name == "call":
                method, a, kw = args
                return getattr(self.schedules, method)(*a, **kw)
            return None
        self.fires += 1
        if message == "retry":  # a fire that starts its own key again (a retry later)
            self.schedules.start_single("r", "retried", 60.0)
        firing = self.schedules.firing
        self.rec.add((message, firing.key if firing else None,
                      firing.slot if firing else None))
        return None


class Plain(Minion):
    def on_receive(self, message: Any) -> Any:
        return getattr(self.schedules, message[0])(*message[1:])


def _start(db: Path, **kw: Any) -> ActorSystem:
    return ActorSystem.start(state_store=str(db), **{**QUIET, **kw})


def _call(ref: Any, method: str, *args: Any, **kw: Any) -> Any:
    return ref.ask(("call", method, args, kw), timeout=10)


def _rows(system: ActorSystem) -> dict[str, Any]:
    return {s.key: s for s in system.store.schedules()}  # type: ignore[union-attr]


def test_a_single_schedule_fires_once_and_its_row_goes(tmp_path: Path, rec: Recorder) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_single", "ping", {"n": 1}, 0.05)
        rec.wait_for(lambda evs: len(evs) == 1)
        assert rec.events[0][:2] == ({"n": 1}, "ping")
        wait_until(lambda: not _rows(system), what="the fired row deleted")
        assert _call(ref, "keys") == []
    finally:
        system.shutdown(timeout=10)


def test_a_fire_that_starts_its_key_again_keeps_the_new_row(tmp_path: Path,
                                                            rec: Recorder) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_single", "r", "retry", 0.01)
        rec.wait_for(lambda evs: len(evs) == 1)
        assert _call(ref, "keys") == ["r"]
        assert system.store is not None and system.store.flush(timeout=10)
        (row,) = system.store.schedules()  # type: ignore[attr-defined]
        assert row.key == "r" and json.loads(row.spec_json)["message"] == "retried"
        assert row.next_due - time.time() > 50
    finally:
        system.shutdown(timeout=10)


def test_one_row_write_per_arm_and_per_fire(tmp_path: Path, rec: Recorder) -> None:
    """Counted on a sync store, whose writes are never coalesced (a batched store writes a
    row changed several times in one batch window once)."""
    store = SQLiteStateStore(tmp_path / "m.db", durability="sync")
    system = ActorSystem.start(state_store=store, **QUIET)
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_single", "later", "later", 60.0)
        assert store.schedule_rows_written() == 1  # the arm
        _call(ref, "cancel", "later")
        assert store.schedule_rows_written() == 2  # the cancel
        _call(ref, "start_periodic", "tick", "tick", 0.05)
        rec.wait_for(lambda evs: len(evs) >= 3)
        _call(ref, "cancel", "tick")
        fires = len(rec.events)
        # the arm, one row per fire (its next due time) and the cancel; none else
        assert store.schedule_rows_written() == 2 + 1 + fires + 1
    finally:
        system.shutdown(timeout=10)


def test_a_schedule_survives_a_restart_of_the_system(tmp_path: Path, rec: Recorder) -> None:
    db = tmp_path / "m.db"
    system = _start(db)
    try:
        _call(system.spawn(Sched, rec, name="s"), "start_single", "later", "later", 0.5)
    finally:
        system.shutdown(timeout=10)
    assert rec.events == []
    system = _start(db)
    try:
        ref = system.spawn(Sched, rec, name="s")
        assert _call(ref, "keys") == ["later"]
        rec.wait_for(lambda evs: len(evs) == 1)
        assert rec.events[0][:2] == ("later", "later")
    finally:
        system.shutdown(timeout=10)


def test_starting_the_same_definition_again_keeps_its_progress(tmp_path: Path,
                                                                 rec: Recorder) -> None:
    """on_start may start its schedules at every start: an unchanged definition keeps the
    stored next due time; a changed one replaces it."""
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_periodic", "p", "p", 60.0)
        first = _call(ref, "next_fire", "p")
        wait_until(lambda: datetime.now(UTC) > first - timedelta(seconds=59.9))
        _call(ref, "start_periodic", "p", "p", 60.0)
        assert _call(ref, "next_fire", "p") == first
        _call(ref, "start_periodic", "p", "p", 30.0)
        assert _call(ref, "next_fire", "p") < first
    finally:
        system.shutdown(timeout=10)


def _downtime(db: Path, key: str, intervals_ago: float, interval: float) -> None:
    """Move the stored next due time of ``key`` back as if the process had been down."""
    with SQLiteStateStore(db) as store:
        row = next(s for s in store.schedules() if s.key == key)
        store.save_schedule(row.path, key, row.minion_class, row.spec_json,
                            time.time() - intervals_ago * interval)


@pytest.mark.parametrize(("missed", "extra", "fires"), [
    ("once", {}, 1), ("skip", {}, 0), ("catch_up", {}, 4), ("catch_up", {"max_catch_up": 2}, 2),
])
def test_missed_periodic_fires_follow_the_policy(tmp_path: Path, rec: Recorder, missed: str,
                                                 extra: dict[str, Any], fires: int) -> None:
    db, interval = tmp_path / "m.db", 10.0
    system = _start(db)
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_periodic", "p", "p", interval, missed=missed, **extra)
    finally:
        system.shutdown(timeout=10)
    _downtime(db, "p", 3.5, interval)  # four slots passed: -35 s, -25 s, -15 s, -5 s
    system = _start(db)
    try:
        ref = system.spawn(Sched, rec, name="s")
        wait_until(lambda: _rows(system)["p"].next_due > time.time(), what="rescheduled")
        _call(ref, "keys")  # (any fire is handled before this answer)
        assert len(rec.events) == fires
        slots = [e[2].timestamp() for e in rec.events]
        assert slots == sorted(slots)  # oldest first
        if fires:
            assert time.time() - slots[-1] < interval  # the newest missed slot is in
        nxt = _rows(system)["p"].next_due
        assert 0 < nxt - time.time() <= interval  # back on the grid
    finally:
        system.shutdown(timeout=10)


def test_a_single_schedule_due_while_down_fires_once_late_or_is_skipped(
        tmp_path: Path, rec: Recorder) -> None:
    db = tmp_path / "m.db"
    system = _start(db)
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_single", "a", "a", 60.0)
        _call(ref, "start_single", "b", "b", 60.0, missed="skip")
    finally:
        system.shutdown(timeout=10)
    _downtime(db, "a", 1, 30.0)
    _downtime(db, "b", 1, 30.0)
    system = _start(db)
    try:
        ref = system.spawn(Sched, rec, name="s")
        wait_until(lambda: not _rows(system), what="both rows consumed")
        _call(ref, "keys")
        assert [e[0] for e in rec.events] == ["a"]
    finally:
        system.shutdown(timeout=10)


def test_cron_in_a_time_zone(tmp_path: Path, rec: Recorder) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_cron", "tokyo3am", "x", "0 3 * * *", tz="Asia/Tokyo")
        tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
        want = tokyo.replace(hour=3, minute=0, second=0, microsecond=0)
        if want <= tokyo:
            want += timedelta(days=1)
        assert _call(ref, "next_fire", "tokyo3am") == want.astimezone(UTC)
        _call(ref, "start_cron", "sec", "tick", "* * * * * *", tz="America/New_York")
        rec.wait_for(lambda evs: len(evs) >= 2, timeout=10)
        slot = rec.events[0][2]
        assert slot.tzinfo == ZoneInfo("America/New_York") and slot.microsecond == 0
        assert rec.events[1][2] - slot == timedelta(seconds=1)
    finally:
        system.shutdown(timeout=10)


class Nightly(Minion):
    report = Workflow("run")

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def snapshot(self) -> Any:
        return {}

    def restore(self, state: Any) -> None:
        pass

    def on_receive(self, message: Any) -> Any:
        return getattr(self.schedules, message[0])(*message[1], **message[2])

    def run(self, ctx: dict[str, Any]) -> None:
        self.rec.add(ctx)


def test_a_scheduled_workflow_gets_one_id_per_slot(tmp_path: Path, rec: Recorder) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Nightly, rec, name="n")
        ref.ask(("start_workflow_cron", ("every", "report", "* * * * * *"),
                 {"context": {"x": 1}}), timeout=10)
        rec.wait_for(lambda evs: len(evs) >= 2, timeout=10)
        ctx = rec.events[0]
        assert ctx["x"] == 1 and ctx["schedule"]["key"] == "every"
        slot = datetime.fromisoformat(ctx["schedule"]["slot"]).timestamp()
        info = system.workflow(slot_workflow_id("n", "every", slot))
        assert info is not None and info.status in ("running", "completed")
        with pytest.raises(ValueError, match="declares no workflow 'nope'"):
            ref.ask(("start_workflow_cron", ("w2", "nope", "* * * * *"), {}), timeout=10)
    finally:
        system.shutdown(timeout=10)


@pytest.mark.parametrize(("method", "args", "kw", "error", "match"), [
    ("start_single", ("k", "m", -1), {}, ValueError, "delay must be >= 0"),
    ("start_single", ("k", "m", math.nan), {}, ValueError, "finite"),
    ("start_single", ("k", "m", math.inf), {}, ValueError, "finite"),
    ("start_single", ("k", "m", "5"), {}, TypeError, "number of seconds"),
    ("start_periodic", ("k", "m", 0), {}, ValueError, "interval must be > 0"),
    ("start_periodic", ("k", "m", 1), {"missed": "twice"}, ValueError, "missed must be"),
    ("start_periodic", ("k", "m", 1), {"max_catch_up": 0}, ValueError, "max_catch_up"),
    ("start_cron", ("k", "m", "61 * * * *"), {}, ValueError, "invalid cron expression"),
    ("start_cron", ("k", "m", "* * *"), {}, ValueError, "invalid cron expression"),
    ("start_cron", ("k", "m", "0 3 * * *"), {"tz": "Mars/Olympus"}, ValueError,
     "unknown time zone 'Mars/Olympus'"),
    ("start_cron", ("k", "m", "* * */20 * 1L"), {}, ValueError, "never fires"),
    ("start_single", (7, "m", 1), {}, TypeError, "non-empty str"),
    ("start_single", ("k", {1: "int key"}, 1), {}, TypeError, "stored as JSON"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(
        tmp_path: Path, rec: Recorder, method: str, args: tuple[Any, ...], kw: dict[str, Any],
        error: type[Exception], match: str) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_single", "k", "keep", 60.0)
        before = _rows(system)["k"]
        with pytest.raises(error, match=match):
            _call(ref, method, *args, **kw)
        assert _call(ref, "keys") == ["k"]
        assert _rows(system)["k"] == before
    finally:
        system.shutdown(timeout=10)


def test_without_persistence_or_store_the_error_says_why(tmp_path: Path) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Plain)
        with pytest.raises(MinionsError, match="not persistent"):
            ref.ask(("start_single", "k", "m", 1.0), timeout=10)
    finally:
        system.shutdown(timeout=10)
    system = ActorSystem.start(state_store=None, **QUIET)
    try:
        ref = system.spawn(Sched, Recorder())
        with pytest.raises(MinionsError, match="no state store"):
            _call(ref, "start_single", "k", "m", 1.0)
    finally:
        system.shutdown(timeout=10)


def test_inspect_shows_the_schedules(tmp_path: Path, rec: Recorder) -> None:
    from minions_actors.ops.inspect import format_inspect, read_minions
    from minions_actors.ops.inspect_schedules import with_schedules

    db = tmp_path / "m.db"
    system = _start(db)
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_cron", "nightly", "n", "0 3 * * *", tz="Europe/Paris")
        assert system.store is not None and system.store.flush(timeout=10)
        listing = read_minions(db)
    finally:
        system.shutdown(timeout=10)
    text = format_inspect(listing)
    assert "durable schedules: 1" in text and "cron 0 3 * * * (Europe/Paris)" in text
    (line,) = with_schedules(listing.minions, listing.schedules)
    assert line["path"] == "s" and line["schedules"][0]["key"] == "nightly"
    assert json.dumps(line)


def test_the_gauge_counts_armed_schedules(tmp_path: Path, rec: Recorder) -> None:
    system = _start(tmp_path / "m.db")
    try:
        ref = system.spawn(Sched, rec, name="s")
        _call(ref, "start_single", "a", "a", 60.0)
        _call(ref, "start_periodic", "b", "b", 60.0)
        assert system.timer.stats.schedules == 2
        _call(ref, "cancel", "a")
        assert system.timer.stats.schedules == 1
        ref.stop()
        wait_until(lambda: system.timer.stats.schedules == 0, what="disarmed at the stop")
        assert [s.key for s in system.store.schedules()] == ["b"]  # type: ignore[union-attr]
    finally:
        system.shutdown(timeout=10)


class AsyncSched(Minion):
    """An async minion: its fires run as coroutines on the loop."""

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec

    def snapshot(self) -> Any:
        return {}

    def restore(self, state: Any) -> None:
        pass

    def on_start(self) -> None:
        self.schedules.start_single("a", "async fire", 0.01)

    async def on_receive(self, message: Any) -> Any:
        self.rec.add(message)


def test_an_async_minion_gets_its_fires(tmp_path: Path, rec: Recorder) -> None:
    system = _start(tmp_path / "m.db")
    try:
        system.spawn(AsyncSched, rec, name="a")
        rec.wait_for(lambda evs: evs == ["async fire"])
        wait_until(lambda: not _rows(system), what="the fired row deleted")
    finally:
        system.shutdown(timeout=10)
