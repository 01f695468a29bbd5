"""A misspelt spawn option or a stray constructor argument is an error the caller sees,
not a minion started with the option silently dropped."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, SpawnError


class NoInit(Minion):
    def on_receive(self, message: Any) -> Any:
        return message


class TakesOptions(Minion):
    def __init__(self, size: int = 0, **options: Any) -> None:
        super().__init__()
        self.options = {"size": size, **options}

    def on_receive(self, message: Any) -> Any:
        return self.options


class Strict(Minion):
    def __init__(self, size: int = 0) -> None:
        super().__init__()
        self.size = size


def test_a_misspelt_spawn_option_is_refused_with_a_hint(system: ActorSystem) -> None:
    with pytest.raises(SpawnError) as caught:
        system.spawn(NoInit, name="typo", mailbox_sise=3)  # type: ignore[call-arg]
    text = str(caught.value)
    assert isinstance(caught.value, TypeError)
    assert "NoInit" in text and "'mailbox_sise'" in text
    assert "did you mean 'mailbox_size'?" in text
    assert system.find("typo") is None  # nothing was started
    system.spawn(NoInit, name="typo")  # the name is free


def test_an_unknown_keyword_far_from_any_option_is_refused_without_a_hint(
    system: ActorSystem,
) -> None:
    with pytest.raises(SpawnError, match="'colour'") as caught:
        system.spawn(NoInit, colour="red")  # type: ignore[call-arg]
    assert "did you mean" not in str(caught.value)


def test_positional_arguments_to_a_class_without_init_are_refused(
    system: ActorSystem,
) -> None:
    with pytest.raises(SpawnError, match="NoInit takes no constructor arguments"):
        system.spawn(NoInit, 1, 2)


class Parent(Minion):
    def on_receive(self, message: Any) -> Any:
        if message == "typo":
            return self.spawn(NoInit, name="kid", dedicated_thred=True)  # type: ignore[call-arg]
        return sorted(self.children)


def test_a_misspelt_option_in_minion_spawn_reaches_the_caller(system: ActorSystem) -> None:
    parent = system.spawn(Parent, name="parent")
    with pytest.raises(SpawnError, match=r"did you mean 'dedicated_thread'\?"):
        parent.ask("typo", timeout=5)
    assert parent.ask("children", timeout=5) == []
    assert system.find("parent/kid") is None


def test_a_constructor_with_its_own_kwargs_receives_unknown_keywords(
    system: ActorSystem,
) -> None:
    ref = system.spawn(TakesOptions, 2, mailbox_sise=3, colour="red")  # type: ignore[call-arg]
    assert ref.ask("get", timeout=5) == {"size": 2, "mailbox_sise": 3, "colour": "red"}


def test_a_strict_constructor_refusal_gets_the_hint(system: ActorSystem) -> None:
    with pytest.raises(SpawnError, match=r"'mailbox_overfow'.*did you mean 'mailbox_overflow'\?"):
        system.spawn(Strict, mailbox_overfow="raise")  # type: ignore[call-arg]
    with pytest.raises(SpawnError) as caught:
        system.spawn(Strict, sise=3)  # type: ignore[call-arg]
    assert "did you mean" not in str(caught.value)  # close to the constructor's size, not an option


def test_refused_spawns_leave_no_thread_behind(system: ActorSystem) -> None:
    before = {t.name for t in threading.enumerate()}
    for _ in range(3):
        with pytest.raises(SpawnError):
            system.spawn(NoInit, mailbox_sise=3)  # type: ignore[call-arg]
    assert {t.name for t in threading.enumerate()} - before == set()
