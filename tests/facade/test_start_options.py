"""The options of ``ActorSystem.start()`` and of ``spawn()``: one definition each
(``hosting.options.StartOptions``, ``runtime.spawner.spawn``), the signatures users see, the
configuration reference, and the error for an unknown option."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion
from minions_actors.hosting.options import START_RULES, StartOptions
from minions_actors.runtime.host import SystemAPI
from minions_actors.runtime.spawning import SPAWN_RULES

from ..conftest import QUIET, runtime_threads

CONFIGURATION = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def _section(title: str, next_title: str) -> str:
    return CONFIGURATION[CONFIGURATION.index(title):CONFIGURATION.index(next_title)]


def test_start_takes_exactly_the_start_options_with_their_defaults() -> None:
    params = list(inspect.signature(ActorSystem.start).parameters.values())
    fields = dataclasses.fields(StartOptions)
    assert [(p.name, p.kind, p.default) for p in params] == [
        (f.name, inspect.Parameter.KEYWORD_ONLY, f.default) for f in fields]


def test_spawn_has_one_signature_on_the_system_a_minion_and_the_protocol() -> None:
    system_side = inspect.signature(ActorSystem.spawn)
    assert inspect.signature(Minion.spawn) == system_side
    assert inspect.signature(SystemAPI.spawn) == system_side


def test_every_option_is_in_the_configuration_reference() -> None:
    start = _section("## `ActorSystem.start(...)`", "## `spawn(...)`")
    spawn = _section("## `spawn(...)`", "## On a `Minion` class")
    missing = [f.name for f in dataclasses.fields(StartOptions) if f"| `{f.name}` |" not in start]
    missing += [p.name for p in inspect.signature(ActorSystem.spawn).parameters.values()
                if p.kind is p.KEYWORD_ONLY and f"| `{p.name}` |" not in spawn]
    assert missing == [], "add these options to docs/configuration.md"


def test_a_misspelt_start_option_names_the_one_meant_and_starts_nothing() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'stop_timout'; did you "
                                        "mean 'stop_timeout'"):
        ActorSystem.start(**QUIET, stop_timout=1.0)
    assert ActorSystem.current() is None
    listed = r"'colour' \(the options are listed in docs/configuration\.md\)"
    with pytest.raises(TypeError, match=listed):
        ActorSystem.start(**QUIET, colour="blue")


def _row(option: str) -> str:
    found = re.search(rf"^\| `{option}` \|.*$", CONFIGURATION, re.MULTILINE)
    assert found is not None, option
    return found.group(0)


def test_the_reference_states_the_values_each_option_allows() -> None:
    # the rule that makes the error is the one the docs quote: they cannot drift apart
    rules = {**START_RULES, **SPAWN_RULES}
    missing = [name for name, rule in rules.items()
               if f"Allowed: {rule.allowed}." not in _row(name)]
    assert missing == [], "quote 'Allowed: <rule.allowed>.' in these docs/configuration.md rows"


BAD_START = [
    ("metrics_port", -1, ValueError),
    ("metrics_port", 70000, ValueError),
    ("metrics_port", "8081", TypeError),
    ("metrics_host", "", ValueError),
    ("metrics_host", "no such host.invalid", ValueError),
    ("stop_timeout", "5", TypeError),
    ("stop_timeout", math.inf, ValueError),
    ("shutdown_timeout", math.nan, ValueError),
    ("hooks", [object()], TypeError),
    ("resources", ["db"], TypeError),
    ("pool_size", 10000, ValueError),
    ("handle_signals", "yes", TypeError),
    ("file_logs", 1, TypeError),
    ("log_level", "LOUD", ValueError),
    ("log_dir", "a-file", ValueError),
    ("log_dir", "a-file/logs", ValueError),
]


@pytest.mark.parametrize(("option", "value", "error"), BAD_START,
                         ids=[f"{o}={re.sub(' at 0x[0-9a-f]+', '', repr(v))}"  # the same in
                              for o, v, _ in BAD_START])  # every process (pytest-xdist)
def test_a_bad_start_option_names_the_allowed_values_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: Any,
    error: type[Exception],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory\n")
    options = {**QUIET, "state_store": "m.db", "file_logs": True, "metrics_port": 0,
               option: value}
    with pytest.raises(error) as info:
        ActorSystem.start(**options)
    assert str(info.value).startswith(f"{option} must be {START_RULES[option].allowed}, got ")
    assert ActorSystem.current() is None and runtime_threads() == []
    assert sorted(os.listdir(tmp_path)) == ["a-file"]  # no store, lock or log file made


def test_an_option_that_serves_an_option_that_is_off_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    system = ActorSystem.start(**{**QUIET, "metrics_host": "", "log_dir": tmp_path / "a-file"})
    assert system.shutdown(timeout=10)


def test_hooks_given_as_a_generator_are_all_kept() -> None:
    from minions_actors import Hooks

    seen: list[str] = []

    class Started(Hooks):
        def system_started(self, system: Any) -> None:
            seen.append("started")

    system = ActorSystem.start(**QUIET, hooks=(Started() for _ in range(2)))
    assert system.shutdown(timeout=10)
    assert seen == ["started", "started"]


def test_a_symlink_to_a_store_not_made_yet_is_followed(tmp_path: Path) -> None:
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "data" / "minions.db")
    with pytest.raises(Exception, match=r"directory '.*/data' does not exist \(the symlink "
                                        r"points to '.*/data/minions.db'\)"):
        ActorSystem.start(**{**QUIET, "state_store": str(link)})
    (tmp_path / "data").mkdir()
    system = ActorSystem.start(**{**QUIET, "state_store": str(link)})
    assert system.shutdown(timeout=10)
    assert (tmp_path / "data" / "minions.db").stat().st_size > 0


class Gated(Minion):
    """Takes a message, says so, then waits for the gate."""

    def __init__(self, gate: threading.Event, entered: threading.Event | None = None) -> None:
        super().__init__()
        self.gate, self.entered = gate, entered

    def on_receive(self, message: Any) -> Any:
        if self.entered is not None:
            self.entered.set()
        assert self.gate.wait(30)
        return message


BAD_SPAWN = [
    ("placement", "child", TypeError),
    ("dedicated_thread", "yes", TypeError),
    ("dedicated_thread", 0, TypeError),
    ("mailbox_put_timeout", math.nan, ValueError),
    ("mailbox_put_timeout", -1, ValueError),
    ("mailbox_put_timeout", "1", TypeError),
    ("mailbox_size", 0, ValueError),
    ("mailbox_overflow", "drop", ValueError),
]


@pytest.mark.parametrize(("option", "value", "error"), BAD_SPAWN,
                         ids=[f"{o}={v!r}" for o, v, _ in BAD_SPAWN])
def test_a_bad_spawn_option_names_the_allowed_values_and_spawns_nothing(
    system: ActorSystem, option: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        system.spawn(Gated, threading.Event(), name="g", **{option: value})
    assert str(info.value) == f"{option} must be {SPAWN_RULES[option].allowed}, got {value!r}"
    assert system.find("g") is None


def test_a_class_attribute_dedicated_thread_is_checked_too(system: ActorSystem) -> None:
    class Odd(Minion):
        dedicated_thread = "yes"  # type: ignore[assignment]

    with pytest.raises(TypeError, match=r"Odd\.dedicated_thread must be True, False or None"):
        system.spawn(Odd, name="odd")
    assert system.find("odd") is None


def test_an_infinite_mailbox_put_timeout_waits_for_room(system: ActorSystem) -> None:
    gate, entered, told = threading.Event(), threading.Event(), threading.Event()
    ref = system.spawn(Gated, gate, entered, mailbox_size=1, mailbox_put_timeout=math.inf)
    teller = threading.Thread(target=lambda: (ref.tell("waits"), told.set()))
    try:
        first = ref.ask("busy", block=False)
        assert entered.wait(30)  # the handler holds "busy"
        ref.tell("fills the mailbox")
        teller.start()
        assert not told.wait(0.3)  # the mailbox is full: the tell waits
    finally:
        gate.set()
    assert told.wait(30) and first.get(timeout=30) == "busy"
    teller.join(30)


@pytest.mark.parametrize(("option", "value", "text"), [
    ("stop_timeout", 0, "stop_timeout must be > 0 seconds"),
    ("shutdown_timeout", -1.0, "shutdown_timeout must be > 0 seconds"),
    ("workflow_retention", 0, "workflow_retention must be > 0 seconds"),
])
def test_bad_timeouts_are_refused_before_anything_starts(option: str, value: float,
                                                         text: str) -> None:
    with pytest.raises(ValueError, match=text):
        ActorSystem.start(**QUIET, **{option: value})
    assert ActorSystem.current() is None


def test_a_strategy_that_is_not_one_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="strategy must be OneForOne, OneForAll or RestForOne"):
        ActorSystem.start(**QUIET, strategy="one-for-one")  # type: ignore[arg-type]
