"""Start-up imports no numpy or pandas (sqlite-utils imports both whenever they are
installed, which cost about a second and 45 MiB before the first minion ran)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numpy") is None,
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


@pytest.mark.parametrize("with_store", [True, False], ids=["store", "no-store"])
def test_start_imports_neither_numpy_nor_pandas(tmp_path: Path, with_store: bool) -> None:
    store = str(tmp_path / "app.db") if with_store else "-"
    proc = subprocess.run([sys.executable, "-c", _CHILD, store], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    phase = json.loads(proc.stdout.strip().splitlines()[-1])
    assert phase == {"import": [], "start": []}, (
        f"start-up imported {phase} (sqlite-utils pulls numpy/pandas in when imported)")
