"""Snapshot values that JSON cannot store unchanged are rejected with the path of the field."""

from __future__ import annotations

import collections
import enum
import json
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, StartWorkflow, Workflow
from minions_actors.errors import SnapshotError
from minions_actors.runtime.snapshots import from_json
from minions_actors.workflows import WorkflowError

from ..persistence.test_persistence import QUIET, Events, stored


class Holder(Minion):
    """Persistent; its snapshot is whatever the last message set."""

    def __init__(self) -> None:
        super().__init__()
        self.state: Any = {"v": 0}

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.state
        self.state = message() if callable(message) else message
        return None

    def snapshot(self) -> Any:
        return self.state

    def restore(self, state: Any) -> None:
        self.state = state


def _circular() -> Any:
    inner: dict[str, Any] = {"name": "loop"}
    inner["self"] = inner
    return {"ok": 1, "items": [inner]}


def _deep_circular() -> Any:
    items: list[Any] = []
    items.append({"back": items})
    return {"a": {"b": items}}


class Color(enum.IntEnum):
    RED = 1


CASES = [
    (_circular, "'items[0].self'", "circular reference to an enclosing dict"),
    (_deep_circular, "'a.b[0].back'", "circular reference to an enclosing list"),
    ({"counts": {1: "a"}}, "'counts[1]'",
     "int key (JSON object keys are str: it would come back as '1')"),
    ({"k": {("a", "b"): 1}}, "\"k[('a', 'b')]\"", "tuple key (JSON object keys are str)"),
    ({"point": (1, 2)}, "'point'", "tuple (it would come back as a list)"),
    ({"rows": [[1], (2, 3)]}, "'rows[1]'", "tuple"),
    ({"flags": {True: 1}}, "'flags[True]'", "bool key"),
    ({"x": float("nan")}, "'x'", "float nan"),
    ({"when": {1, 2}}, "'when'", "set"),
]


@pytest.mark.parametrize(("value", "where", "what"), CASES)
def test_values_that_do_not_round_trip_are_rejected_with_their_path(
    tmp_path: Path, value: Any, where: str, what: str
) -> None:
    db = tmp_path / "m.db"
    events = Events()
    system = ActorSystem.start(state_store=db, hooks=[events], **QUIET)
    try:
        ref = system.spawn(Holder, name="h")
        ref.ask({"v": 1}, timeout=5)
        ref.ask(value, timeout=5)  # the minion keeps running; the snapshot is refused
        errors = events.rec.wait_for(lambda evs: [e for e in evs if e[0] == "snapshot_error"])
        text = errors[0][2]
        assert f"at {where}" in text and what in text, text
        assert "RecursionError" not in text
        assert system.flush(5)
        assert stored(db, "h") == {"v": 1}  # the previous snapshot is kept
    finally:
        system.shutdown()


def test_values_that_round_trip_are_stored(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    system = ActorSystem.start(state_store=db, **QUIET)
    ordered = collections.OrderedDict(b=1, a=[1, 2.5, None, True, "é"])
    try:
        ref = system.spawn(Holder, name="h")
        ref.ask({"o": ordered, "c": Color.RED, "deep": [[[{"x": []}]]]}, timeout=5)
        assert system.flush(5)
        assert stored(db, "h") == {"o": {"b": 1, "a": [1, 2.5, None, True, "é"]}, "c": 1,
                                   "deep": [[[{"x": []}]]]}
    finally:
        system.shutdown()


def test_snapshot_error_is_a_type_error_for_callers() -> None:
    assert issubclass(SnapshotError, TypeError)


class Flow(Minion):
    flow = Workflow("one")

    def one(self, context: dict[str, Any]) -> None:
        return None


def test_workflow_contexts_are_checked_the_same_way(tmp_path: Path) -> None:
    system = ActorSystem.start(state_store=None, **QUIET)
    try:
        ref = system.spawn(Flow, name="f")
        with pytest.raises(WorkflowError, match=r"at 'ids\[7\]': int key"):
            ref.ask(StartWorkflow("flow", "w1", {"ids": {7: "x"}}), timeout=5)
        with pytest.raises(WorkflowError, match="circular reference"):
            ref.ask(StartWorkflow("flow", "w2", _circular()), timeout=5)
    finally:
        system.shutdown()


@pytest.mark.parametrize("text", [
    '{"a":[1,2.5,null,true],"b":{"c":"\\u00e9"}}', '[]', '"x"', "3", ' {"a": 1} ', '{"a":1}\n',
    "", "   ", '{"a":1} x', '{"a":', "-Infinity", "\ufeff{}",
])
def test_from_json_matches_json_loads(text: str) -> None:
    """The workflow context decoder: json's scanner when it takes the whole text, else
    json.loads itself (same value, or the same error)."""
    try:
        expected: Any = ("value", json.loads(text))
    except json.JSONDecodeError as exc:
        expected = ("error", str(exc))
    try:
        got: Any = ("value", from_json(text))
    except json.JSONDecodeError as exc:
        got = ("error", str(exc))
    assert got == expected
