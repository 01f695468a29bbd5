"""The snapshot encoder: CPython's private C encoder when present, the public
``json.JSONEncoder`` otherwise, with the same output and the same errors."""

from __future__ import annotations

import json.encoder
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from minions_actors.testing import snapshot_encoders

ROOT = Path(__file__).resolve().parents[2]

VALUES: list[Any] = [
    {"count": 3, "name": "zoë", "ratio": 0.1, "ok": True, "none": None},
    [1, -2.5, 1e300, "tab\there", "\u2028", {"nested": [[], {}]}],
    "plain", 0, 2**70, -0.0,
]
CIRCULAR: list[Any] = []
CIRCULAR.append(CIRCULAR)
BAD: list[Any] = [{"when": {1, 2}}, {"x": float("nan")}, [object()], CIRCULAR]


def test_both_encoders_agree() -> None:
    c_encode, fallback = snapshot_encoders()
    assert c_encode is not None  # CPython has the accelerator: the fast path is in use
    for value in VALUES:
        assert c_encode(value) == fallback(value) == json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    for value in BAD:  # encode_snapshot turns each of these into a SnapshotError
        for encode in (c_encode, fallback):
            with pytest.raises((TypeError, ValueError, RecursionError)):
                encode(value)


def test_missing_accelerator_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)  # what json sets without _json
    assert snapshot_encoders()[0] is None


FALLBACK_APP = """
import sys
sys.modules["_json"] = None  # a Python without the C accelerator: json.encoder falls back
import json.encoder
assert json.encoder.c_make_encoder is None
from minions_actors import ActorSystem, Minion
from minions_actors.testing import snapshot_encoder_in_use
assert snapshot_encoder_in_use() == "stdlib"

class Notes(Minion):
    def __init__(self):
        self.notes = []
    def on_receive(self, message):
        self.notes.append(message)
        return len(self.notes)
    def snapshot(self):
        return {"notes": self.notes}
    def restore(self, state):
        self.notes = state["notes"]

system = ActorSystem.start(state_store="notes.db", metrics_port=None, file_logs=False,
                           stderr_logs=False, handle_signals=False)
notes = system.spawn(Notes, name="notes")
print(notes.ask("zoë", timeout=5))
notes.ask({1, 2}, timeout=5)   # not JSON: a snapshot error, the last good state is kept
assert system.shutdown()
"""


def test_fallback_encoder_runs_a_persistent_minion(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for expected in ("1", "2"):  # the second run restores what the fallback encoder wrote
        out = subprocess.run([sys.executable, "-c", FALLBACK_APP], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [expected]
