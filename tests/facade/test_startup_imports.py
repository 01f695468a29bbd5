"""Start-up imports no numpy or pandas (sqlite-utils imports both whenever they are
installed, which cost about a second and 45 MiB before the first minion ran), nor the
parts a start does not use: child processes, Ray, sidecars, the file and async pipelines,
cron schedules, metrics when they are off, the observer, the CLI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

needs_numpy = pytest.mark.skipif(importlib.util.find_spec("numpy") is None,
                                 reason="numpy is not installed: nothing could pull it in")

_CHILD = """
import json, sys
import minions_actors
from minions_actors import ActorSystem, Minion
phase = {}
phase["import"] = sorted(m for m in ("numpy", "pandas") if m in sys.modules)
class Echo(Minion):
    def on_receive(self, message):
        return message
store = sys.argv[1] if sys.argv[1] != "-" else None
system = ActorSystem.start(state_store=store, metrics_port=None, file_logs=False)
try:
    assert system.spawn(Echo, name="echo").ask("hi", timeout=30) == "hi"
    phase["start"] = sorted(m for m in ("numpy", "pandas") if m in sys.modules)
finally:
    system.shutdown()
print(json.dumps(phase))
"""


@needs_numpy
@pytest.mark.parametrize("with_store", [True, False], ids=["store", "no-store"])
def test_start_imports_neither_numpy_nor_pandas(tmp_path: Path, with_store: bool) -> None:
    store = str(tmp_path / "app.db") if with_store else "-"
    proc = subprocess.run([sys.executable, "-c", _CHILD, store], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    phase = json.loads(proc.stdout.strip().splitlines()[-1])
    assert phase == {"import": [], "start": []}, (
        f"start-up imported {phase} (sqlite-utils pulls numpy/pandas in when imported)")


#: Imported at first use, never by ``import minions_actors`` nor by a start that does not use
#: them (the modules behind the package's lazy names, and the heavy imports only they make).
LAZY = ("minions_actors.placement", "minions_actors.placement.child_process",
        "minions_actors.placement.on_ray", "minions_actors.sidecar",
        "minions_actors.pipelines.stream", "minions_actors.pipelines.file_tail", "hashlib",
        "cronsim", "zoneinfo", "difflib", "prometheus_client", "minions_actors.observer",
        "minions_actors.ops.cli")

_LAZY_CHILD = """
import json, sys
lazy = sys.argv[2].split(",")
import minions_actors
from minions_actors import ActorSystem, Minion
seen = {"import": [m for m in lazy if m in sys.modules]}
class Echo(Minion):
    def on_receive(self, message):
        return message
store = sys.argv[1] if sys.argv[1] != "-" else None
system = ActorSystem.start(state_store=store, metrics_port=None, file_logs=False,
                           stderr_logs=False, handle_signals=False)
try:
    assert system.spawn(Echo, name="echo").ask("hi", timeout=30) == "hi"
    seen["start"] = [m for m in lazy if m in sys.modules]
finally:
    system.shutdown()
from minions_actors import AsyncPipeline, ChildProcess, FileTail, KeyedGroup, Ray, Sidecar
from minions_actors import SidecarCrashed, SidecarError
from minions_actors.pipelines import AsyncPipeline as again
assert again is AsyncPipeline and AsyncPipeline.__name__ == "AsyncPipeline"
assert {"ChildProcess", "Sidecar", "FileTail"} <= set(dir(minions_actors))
seen["used"] = sorted(m for m in lazy[:6] if m not in sys.modules)  # all imported now
print(json.dumps(seen))
"""


@pytest.mark.parametrize("with_store", [True, False], ids=["store", "no-store"])
def test_start_imports_none_of_what_it_does_not_use(tmp_path: Path, with_store: bool) -> None:
    store = str(tmp_path / "app.db") if with_store else "-"
    proc = subprocess.run([sys.executable, "-c", _LAZY_CHILD, store, ",".join(LAZY)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"import": [], "start": [], "used": []}, seen


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import minions_actors
    import minions_actors.pipelines

    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        minions_actors.NoSuchThing  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        minions_actors.pipelines.NoSuchThing  # noqa: B018
