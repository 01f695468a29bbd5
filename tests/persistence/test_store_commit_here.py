"""``save_workflow_here``: a saver that waits for nothing else commits its checkpoint (and
whatever else is pending) on its own thread, with no hand-off to the writer and back; when
a commit is under way, in sync mode or while writes fail, the writer does it as before."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from minions_actors.persistence import SQLiteStateStore
from minions_actors.testing import writer_blocked, writer_queue

from .test_store import LockHolder, wait_for
from .test_store_workflows import Calls, db_rows, rec

pytestmark = pytest.mark.timeout(60)


def test_the_checkpoint_is_committed_on_the_saving_thread_before_it_returns(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, batch_interval=30.0) as s:  # the writer alone would wait 30 s
        s.save("user/other", "Other", '{"n": 1}')  # a snapshot pending meanwhile
        s.save_workflow(rec("plain", step=4))  # a record without a callback, pending
        s.save_workflow_here(rec("w", step=2), on_durable=calls.cb("w"))
        # called before save_workflow_here returned, on this thread, the row on disk
        assert [(k, t) for k, t, _ in calls.calls] == [("w", threading.current_thread().name)]
        assert calls.calls[0][2] is not None and calls.calls[0][2]["next_step"] == 2
        assert db_rows(db).keys() == {"w", "plain"}  # what was pending went in the same commit
        assert s.stats().pending == 0
        assert writer_queue(s).live_workflows == {"w", "plain"}
    assert db_rows(db)["w"]["next_step"] == 2


def test_a_commit_under_way_leaves_the_checkpoint_to_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, batch_interval=30.0) as s:
        with writer_blocked(s):
            s.save_workflow(rec("a"), on_durable=calls.cb("a"))
            wait_for(lambda: "a" in writer_queue(s).in_flight_workflows, what="batch in flight")
            s.save_workflow_here(rec("b", step=1), on_durable=calls.cb("b"))  # does not wait
            assert calls.calls == []
            assert writer_queue(s).pending_workflows == {"b"}
        calls.wait(2)
        assert sorted(calls.keys()) == ["a", "b"]
        assert {t for _, t, _ in calls.calls} == {"minions-store-writer"}
        assert all(seen is not None for _, _, seen in calls.calls)  # each on disk first


def test_a_failing_commit_here_is_retried_by_the_writer_and_called_back_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, busy_timeout=0.05, retry_max=0.1) as s:
        holder = LockHolder(db)  # every commit fails (the file is locked) until released
        try:
            s.save_workflow_here(rec("a", step=1), on_durable=calls.cb("a1", "a"))
            assert calls.calls == []  # not durable: not called
            wait_for(lambda: s.stats().write_errors >= 2, what="the writer's retries")
            s.save_workflow_here(rec("a", step=2), on_durable=calls.cb("a2", "a"))
            assert calls.calls == []
        finally:
            holder.release()
        calls.wait(2)
        assert sorted(calls.keys()) == ["a1", "a2"]
        assert all(seen is not None and seen["next_step"] == 2 for _, _, seen in calls.calls)
        assert s.flush(timeout=5)
    assert len(calls.calls) == 2


def test_sync_mode_commits_as_save_workflow_does(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, durability="sync") as s:
        s.save_workflow_here(rec("w", step=3), on_durable=calls.cb("w"))
        assert [k for k, _, _ in calls.calls] == ["w"]
        assert calls.calls[0][2] is not None and calls.calls[0][2]["next_step"] == 3


def _commit_here_in_flight(s: SQLiteStateStore, calls: Calls) -> threading.Thread:
    """A saver thread whose commit-here has taken its batch and waits at the gate (the
    caller holds ``writer_blocked``)."""
    saver = threading.Thread(
        target=s.save_workflow_here, args=(rec("w", step=5), calls.cb("w")), name="saver")
    saver.start()
    wait_for(lambda: "w" in writer_queue(s).in_flight_workflows, what="commit here in flight")
    return saver


def test_flush_waits_for_a_commit_here_under_way(tmp_path: Path) -> None:
    # A batch a saver took (not pending, not yet durable) is not "changes taken back": the
    # writer must not declare it settled, or flush returns before the checkpoint is on disk.
    db = tmp_path / "m.db"
    calls = Calls(db)
    with SQLiteStateStore(db, batch_interval=30.0) as s:
        with writer_blocked(s):
            saver = _commit_here_in_flight(s, calls)
            assert not s.flush(timeout=1.0), "flush returned before the commit here ended"
            assert "w" not in db_rows(db)
        saver.join(10)
        assert s.flush(timeout=5)
        assert db_rows(db)["w"]["next_step"] == 5
        assert [k for k, _, _ in calls.calls] == ["w"]


def test_close_during_a_failing_commit_here_retries_it(tmp_path: Path) -> None:
    # close() while a saver's commit is under way: the writer must not exit before that
    # commit settles, or a failure puts the batch back into a queue nobody writes (lost,
    # uncounted, unlogged).
    db = tmp_path / "m.db"
    calls = Calls(db)
    s = SQLiteStateStore(db, batch_interval=30.0, busy_timeout=0.05, retry_max=0.1)
    holder = LockHolder(db)  # the saver's commit fails (the file is locked)
    try:
        with writer_blocked(s):
            saver = _commit_here_in_flight(s, calls)
            closer = threading.Thread(target=s.close, args=(30.0,), name="closer")
            closer.start()
            threading.Event().wait(0.5)  # (time for a writer that would exit to do so)
        wait_for(lambda: s.stats().write_errors >= 1, what="the failed commit here")
    finally:
        holder.release()
    saver.join(10)
    closer.join(30)
    assert not closer.is_alive()
    assert s.stats().lost == 0
    assert db_rows(db)["w"]["next_step"] == 5, "the checkpoint was lost at close"
    assert [k for k, _, _ in calls.calls] == ["w"]
