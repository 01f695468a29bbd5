"""The layering seams stay complete: a minion's ``self.system`` (typed as the protocol
``runtime.host.SystemAPI``, so that the runtime does not import the system) lists every public
name of ``ActorSystem``, and the records every layer reads are one set of classes wherever
users import them from."""

from __future__ import annotations

from typing import Any

import minions_actors
from minions_actors import ActorSystem, Minion, persistence, records, workflows
from minions_actors.runtime.host import SystemAPI


def _members(proto: type) -> set[str]:
    names: set[str] = set()
    for klass in proto.__mro__:
        if klass.__module__ == "minions_actors.runtime.host":
            names.update(vars(klass))
            names.update(getattr(klass, "__annotations__", {}))
    return {n for n in names if not n.startswith("_")}


def test_system_api_lists_every_public_name_of_actor_system() -> None:
    system = ActorSystem.start(state_store=None, metrics_port=None, handle_signals=False,
                               file_logs=False, stderr_logs=False)
    try:
        public = {n for n in [*dir(ActorSystem), *vars(system)] if not n.startswith("_")}
        public -= {"start", "start_async", "current"}  # class-level: a running minion calls none
        missing = sorted(public - _members(SystemAPI))
        assert missing == [], (
            f"add {missing} to minions_actors.runtime.host.SystemAPI: a minion's self.system "
            "is typed by it")
    finally:
        system.shutdown()


def test_minion_system_is_the_running_actor_system() -> None:
    class Asker(Minion):
        def on_receive(self, message: Any) -> Any:
            return self.system

    system = ActorSystem.start(state_store=None, metrics_port=None, handle_signals=False,
                               file_logs=False, stderr_logs=False)
    try:
        assert system.spawn(Asker).ask("system", timeout=5) is system
    finally:
        system.shutdown()


def test_workflow_records_are_one_set_of_classes() -> None:
    assert workflows.WorkflowInfo is records.WorkflowInfo is minions_actors.WorkflowInfo
    assert persistence.WorkflowRecord is records.WorkflowRecord
    assert persistence.WORKFLOW_STATUSES is records.WORKFLOW_STATUSES is workflows.STATUSES
