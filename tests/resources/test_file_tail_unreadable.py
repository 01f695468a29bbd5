"""FileTail on a path it cannot read (a directory, permission denied): it waits and tries
again like for a missing file, with one WARNING naming the path and the error, instead of
crash-looping until its supervisor gives up and the system stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from minions_actors import ActorSystem, FileTail
from tests.conftest import QUIET, Recorder
from tests.resources.test_pipelines import ROOT, Collect, Crashes, got

polls = threading.Semaphore(0)


class CountingTail(FileTail):
    def produce(self) -> Any:
        polls.release()
        return super().produce()


def test_a_directory_at_the_path_is_waited_for_with_one_warning(
        tmp_path: Path, rec: Recorder) -> None:
    path = tmp_path / "x.log"
    path.mkdir()
    warnings: list[str] = []
    crashes = Crashes()
    system = ActorSystem.start(**QUIET, hooks=[crashes], log_sinks=[
        (lambda m: warnings.append(m.record["message"]), {"level": "WARNING"})])
    try:
        system.spawn(Collect, rec, name="sink")
        tail = system.spawn(CountingTail, path, ["sink"], name="tail")
        assert all(polls.acquire(timeout=10) for _ in range(5))  # 5 polls, 0.2 s apart
        assert tail.is_alive()
        assert crashes.rec.events == []
        assert len(warnings) == 1, warnings  # once, not at every poll
        assert str(path) in warnings[0] and "IsADirectoryError" in warnings[0]
        path.rmdir()
        path.write_text("a\nb\n")
        rec.wait_for(lambda _: got(rec, "sink") == ["a", "b"])
    finally:
        system.shutdown()


def test_a_file_it_may_not_read_is_waited_for_until_it_may() -> None:
    # root reads any file: the app drops to nobody when run as root (as in CI)
    out = subprocess.run([sys.executable, "-m", "tests.apps.tail_unreadable"], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["retried"] and result["alive"] and result["crashes"] == []
    assert result["lines"] == ["a", "b"]
    assert len(result["warnings"]) == 1, result["warnings"]
    assert result["path"] in result["warnings"][0]
    assert "PermissionError: Permission denied" in result["warnings"][0]
