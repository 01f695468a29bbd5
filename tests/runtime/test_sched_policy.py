"""With MINIONS_SCHED_BATCH=1, threads that run handlers (pool workers, dedicated minion
threads) run under Linux's SCHED_BATCH with the GIL, so a caller that wakes one does not get
preempted by it while it still holds the GIL (see minions_actors.support.sched_policy);
without it, and in a thread already under another policy, they keep the policy they
inherit. Both execution modes."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion

from ..conftest import QUIET, wait_until

pytestmark = [
    pytest.mark.usefixtures("execution"),
    pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies"),
]
GIL = getattr(sys, "_is_gil_enabled", lambda: True)()


class Policy(Minion):
    """Answers with the scheduling policy of the thread its handler runs on."""

    def on_receive(self, message: Any) -> Any:
        return os.sched_getscheduler(0)


def handler_policy() -> int:
    system = ActorSystem.start(**QUIET)
    try:
        return int(system.spawn(Policy).ask("policy", timeout=30))
    finally:
        system.shutdown(timeout=10)


@pytest.fixture
def batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask for SCHED_BATCH (read when each worker or minion thread starts)."""
    monkeypatch.setenv("MINIONS_SCHED_BATCH", "1")


def test_by_default_handlers_keep_the_policy_they_inherit(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.delenv("MINIONS_SCHED_BATCH", raising=False)
    assert handler_policy() == os.SCHED_OTHER


@pytest.mark.usefixtures("batch")
def test_handlers_run_under_sched_batch_with_the_gil_and_default_policy_without() -> None:
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # (the caller's own is untouched)
    expected = os.SCHED_BATCH if GIL else os.SCHED_OTHER
    assert handler_policy() == expected
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_minions_sched_batch_0_keeps_the_default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIONS_SCHED_BATCH", "0")
    assert handler_policy() == os.SCHED_OTHER


@pytest.mark.usefixtures("batch")
def test_a_thread_under_another_policy_keeps_it() -> None:
    """Workers started from a SCHED_IDLE thread inherit SCHED_IDLE and keep it (the runtime
    never raises or lowers a policy it did not choose)."""
    got: list[Any] = []

    def run() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            got.append(handler_policy())
        except BaseException as exc:  # (handed to the test)
            got.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert got == [os.SCHED_IDLE]


@pytest.mark.skipif(not GIL, reason="the policy is only changed under the GIL")
@pytest.mark.usefixtures("batch")
def test_workers_take_the_default_policy_while_handlers_spin(execution: str) -> None:
    """While the pool sees handlers spin in pure Python (the switch interval shortened), the
    GIL changes hands every millisecond among many threads, and woken workers that waited
    for a tick each time made the others' asks slower: every worker takes the default
    policy until the spinners end, then SCHED_BATCH again."""
    if execution == "dedicated":
        pytest.skip("spinners on dedicated threads hold no pool worker")
    from .test_pool_blocked import Blocked

    system = ActorSystem.start(**QUIET, pool_size=2, starvation_threshold=60)
    blocked = Blocked(system, "spin", 8)
    try:
        probe = system.spawn(Policy)
        assert probe.ask("policy", timeout=10) == os.SCHED_BATCH
        blocked.block()
        wait_until(lambda: len(blocked.began) == 8, timeout=10, what="eight spinners")
        wait_until(lambda: sys.getswitchinterval() == 0.001, timeout=10,
                   what="the pool to see the spinners")
        assert probe.ask("policy", timeout=10) == os.SCHED_OTHER
        workers = [t.native_id for t in system.worker_pool.threads() if t.is_alive()]
        assert {os.sched_getscheduler(tid) for tid in workers if tid} == {os.SCHED_OTHER}
        blocked.release()
        wait_until(lambda: probe.ask("policy", timeout=10) == os.SCHED_BATCH, timeout=10,
                   what="the workers back under SCHED_BATCH once the spinners ended")
    finally:
        blocked.release()
        system.shutdown(timeout=10)
