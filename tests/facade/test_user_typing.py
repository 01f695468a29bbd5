"""Users' type checkers see a minion's ``self.system`` with the system's real signatures
(``runtime.host.SystemAPI``), although the runtime does not import ``ActorSystem``, and the
options of ``spawn()`` and ``ActorSystem.start()`` (each defined once) with their types."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

USER_CODE = textwrap.dedent('''
    from typing import Any

    from minions_actors import ActorSystem, Minion, MinionRef, Workflow, WorkflowInfo


    class Child(Minion):
        pass


    class Parent(Minion):
        flow = Workflow("a")

        def a(self, context: dict[str, Any]) -> None: ...

        def on_receive(self, message: Any) -> Any:
            ref: MinionRef[Any] = self.system.spawn(Child, name="c", mailbox_size=3)
            mine: WorkflowInfo | None = self.workflow("x")
            done: WorkflowInfo = self.system.wait_workflow("x", timeout=1.0)
            self.system.log.info("hi")
            ok: bool = self.system.flush()
            wrong: str = self.system.flush()  # error: bool is not str
            self.system.spawn(Child, mailbox_size="3")  # error: an option of the wrong type
            self.spawn(Child, mailbox_overflow="drop")  # error: not an overflow policy
            return ref, mine, done, ok, wrong


    def main() -> None:
        ActorSystem.start(stop_timeout=1.0, metrics_port=None)
        ActorSystem.start(stop_timout=1.0)  # error: a misspelt start option
''')

EXPECTED = [  # (line of USER_CODE, what mypy says), in order
    ("wrong: str", 'has type "bool", variable has type "str"'),
    ('mailbox_size="3"', 'Argument "mailbox_size"'),
    ('mailbox_overflow="drop"', 'Argument "mailbox_overflow"'),
    ("stop_timout", 'Unexpected keyword argument "stop_timout"'),
]


def test_users_type_checker_sees_the_system_api_and_the_options(tmp_path: Path) -> None:
    # the dev extra has mypy; the interpreter matrix (.ci/matrix.sh) installs only `test`:
    # typing does not depend on the interpreter, and CI runs this test on 3.11
    api = pytest.importorskip("mypy.api")

    user = tmp_path / "user_app.py"
    user.write_text(USER_CODE)
    out, err, _status = api.run(["--strict", "--no-incremental", "--no-error-summary",
                                 "--follow-imports=silent", str(user)])
    errors = [line for line in out.splitlines()
              if line.startswith(str(user)) and ": error: " in line]
    lines = USER_CODE.splitlines()
    assert len(errors) == len(EXPECTED), out + err
    for error, (code, message) in zip(errors, EXPECTED, strict=True):
        lineno = int(error.split(":")[1])
        assert code in lines[lineno - 1] and message in error, out + err
