"""Users' type checkers see a minion's ``self.system`` with the system's real signatures
(``runtime.host.SystemAPI``), although the runtime does not import ``ActorSystem``."""

from __future__ import annotations

import textwrap
from pathlib import Path

USER_CODE = textwrap.dedent('''
    from typing import Any

    from minions_actors import Minion, MinionRef, Workflow, WorkflowInfo


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
            wrong: str = self.system.flush()  # the one error expected
            return ref, mine, done, ok, wrong
''')


def test_users_type_checker_sees_the_system_api(tmp_path: Path) -> None:
    from mypy import api

    user = tmp_path / "user_app.py"
    user.write_text(USER_CODE)
    out, err, _status = api.run(["--strict", "--no-incremental", "--no-error-summary",
                                 "--follow-imports=silent", str(user)])
    errors = [line for line in out.splitlines() if line.startswith(str(user))]
    assert len(errors) == 1 and "wrong: str" not in errors[0], out + err
    assert 'has type "bool", variable has type "str"' in errors[0], out + err
