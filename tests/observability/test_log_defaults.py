"""What a plain script sees on stderr and in the log file, through a real subprocess.

loguru's default handler (id 0) is installed, as in any script: the runtime's options
(``stderr_logs``, ``log_level``, ``log_diagnose``) must still decide what the runtime prints,
and crash tracebacks must not carry local variables (message contents) unless asked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2"

SCRIPT = f"""
import json, sys
from loguru import logger
from minions_actors import ActorSystem, Minion

class Vault(Minion):
    def on_receive(self, message):
        password = message["password"]          # a local holding message content
        raise RuntimeError("login rejected")

options = json.loads(sys.argv[1])
system = ActorSystem.start(state_store="state.db", metrics_port=None, handle_signals=False,
                           **options)
logger.info("app line while running")
vault = system.spawn(Vault, name="vault")
for _ in range(2):
    try:
        vault.ask({{"user": "bob", "password": "{SECRET}"}}, timeout=5)
    except RuntimeError:
        pass
assert system.shutdown()
logger.debug("app line after shutdown")
"""


def run_script(tmp_path: Path, **options: Any) -> tuple[str, str]:
    """Run SCRIPT with ``options`` for ActorSystem.start(); (stderr, log file text)."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(options)], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    log_file = tmp_path / "logs" / "minions.log"
    return out.stderr, log_file.read_text(encoding="utf-8") if log_file.exists() else ""


def test_defaults_print_runtime_info_and_up_without_locals(tmp_path: Path) -> None:
    err, log = run_script(tmp_path)
    assert "crashed in message: RuntimeError('login rejected')" in err
    assert "Traceback" in err  # the crash keeps its traceback, once per crash
    assert "minion vault started" not in err  # runtime DEBUG stays off stderr at log_level INFO
    debug = [line for line in err.splitlines() if "| DEBUG" in line]
    assert debug and all("app line after shutdown" in line for line in debug)
    assert SECRET not in err and SECRET not in log  # loguru diagnose is off
    assert "app line while running" in err and "app line after shutdown" in err
    assert "migrated schema" not in err + log  # creating a store is not migrating it
    # not twice per crash (no duplicate sink); the second, the same crash, is one short line
    assert err.count("crashed in message") == 1 and err.count("crashed again") == 1


def test_stderr_logs_false_silences_the_runtime_but_not_the_app(tmp_path: Path) -> None:
    err, log = run_script(tmp_path, stderr_logs=False)
    assert "crashed" not in err and "Traceback" not in err
    assert "app line while running" in err and "app line after shutdown" in err
    assert "crashed in message" in log  # the file still has it


def test_log_level_governs_runtime_stderr(tmp_path: Path) -> None:
    err, _log = run_script(tmp_path, log_level="ERROR")
    assert "crashed in message" in err
    assert "restarting in" not in err  # WARNING is below the runtime's level
    assert "minions system started" not in err


def test_log_diagnose_turns_locals_back_on(tmp_path: Path) -> None:
    _err, log = run_script(tmp_path, log_diagnose=True, stderr_logs=False)
    assert SECRET in log


def test_creating_a_store_is_not_logged_as_a_migration(tmp_path: Path) -> None:
    from loguru import logger

    from minions_actors.persistence import SQLiteStateStore, schema_version

    from ..persistence.test_store_workflows import make_v1_file

    records: list[Any] = []
    handler = logger.add(lambda m: records.append(m.record), level="DEBUG")
    try:
        with SQLiteStateStore(tmp_path / "new.db"):
            pass
        make_v1_file(tmp_path / "v1.db")
        with SQLiteStateStore(tmp_path / "v1.db"):
            pass
    finally:
        logger.remove(handler)
    about = [(r["level"].name, r["message"]) for r in records if "schema" in r["message"]]
    new = schema_version()
    assert about == [
        ("DEBUG", f"state store {str(tmp_path / 'new.db')!r}: created with schema version {new}"),
        ("INFO", f"state store {str(tmp_path / 'v1.db')!r}: migrated schema from version 1 "
                 f"to {new}"),
    ]
