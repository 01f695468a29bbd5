"""The options of ``ActorSystem.start()`` and of ``spawn()``: one definition each
(``hosting.options.StartOptions``, ``runtime.spawner.spawn``), the signatures users see, the
configuration reference, and the error for an unknown option."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from minions_actors import ActorSystem, Minion
from minions_actors.hosting.options import StartOptions
from minions_actors.runtime.host import SystemAPI

from ..conftest import QUIET

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
