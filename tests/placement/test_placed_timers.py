"""Timers of a minion placed in a child process: its code starts and cancels them there,
they live at home, and their messages reach the placed ``on_receive``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minions_actors import ActorSystem, ChildProcess

from ..apps.placed_minions import TimedPoller
from ..conftest import QUIET, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_a_placed_minions_timers_and_receive_timeout(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    system = ActorSystem.start(**QUIET)
    try:
        system.spawn(TimedPoller, str(log), placement=ChildProcess(call_timeout=20.0))
        wait_until(lambda: log.exists() and "keys-home-only" in log.read_text(), 30,
                   "the placed minion's ticks, probe and receive timeout")
        lines = log.read_text().split()
        events, pids = lines[::2], set(lines[1::2])
        assert events == ["tick"] * 3 + ["probe-after-3-ticks", "idle", "keys-home-only"]
        assert pids != {str(os.getpid())} and len(pids) == 1  # all in the child process
        # (the reply that carries its last set_receive_timeout(None) home may still travel)
        wait_until(lambda: system.timer.stats.active == 0, 10, "no active timer left")
    finally:
        assert system.shutdown(timeout=10)
