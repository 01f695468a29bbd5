"""The cell extension interface (runtime.extensions): a feature registered through it gets
its part attached, run at each incarnation and after each message, and its messages."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minions_actors import ActorSystem, Minion
from minions_actors.runtime.extensions import Handler, register
from tests.conftest import Recorder, wait_until


@dataclass(frozen=True)
class Ping:
    """A message only the fake extension handles (told or asked)."""

    text: str


class Tracked(Minion):
    """Uses the fake extension (it declares ``uses_fake_extension = True``)."""

    uses_fake_extension = True

    def __init__(self, log: Recorder) -> None:
        super().__init__()
        self.log = log
        log.add("init")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash on request")
        self.log.add(("handled", message))
        return message


class Part:
    """The fake extension's part of one cell: records what the runtime calls."""

    def __init__(self, log: Recorder) -> None:
        self.log = log
        self.incarnations = 0

    @property
    def after(self) -> Callable[[Minion], None]:
        return lambda inst: self.log.add("after")

    def incarnation(self, inst: Minion) -> bool | None:
        self.incarnations += 1
        self.log.add(("incarnation", self.incarnations))
        # the first one asks for a fresh instance (as a quarantined snapshot does)
        return None if self.incarnations == 1 else True


def _told(cell: Any, inst: Minion, msg: Ping) -> bool:
    cell.parts["fake"].log.add(("told", msg.text))
    return True


def _asked(cell: Any, inst: Minion, msg: Any) -> bool:
    msg.future.set(f"pong {msg.message.text}")
    return True


class Fake:
    key = "fake"
    told: dict[type, Handler] = {Ping: _told}
    asked: dict[type, Handler] = {Ping: _asked}
    checked: list[type] = []

    @staticmethod
    def used_by(cls: type) -> bool:
        return bool(getattr(cls, "uses_fake_extension", False))

    @classmethod
    def check_class(cls, minion_class: type) -> None:
        cls.checked.append(minion_class)

    @staticmethod
    def attach(cell: Any) -> Part:
        part = Part(cell.args[0])
        part.log.add("attach")
        return part


register(Fake())


def test_the_runtime_calls_a_registered_extensions_hooks(system: ActorSystem) -> None:
    class Checked(Minion):
        pass

    assert Checked in Fake.checked  # every new minion class is shown to each extension
    log = Recorder()
    ref = system.spawn(Tracked, log)
    assert ref.ask("a", timeout=5) == "a"
    ref.tell(Ping("told"))
    assert ref.ask(Ping("asked"), timeout=5) == "pong asked"
    # the first incarnation's instance was replaced by a fresh one (not shown again)
    assert log.events == ["init", "attach", ("incarnation", 1), "init", ("handled", "a"),
                          "after", ("told", "told")]
    ref.tell("crash")  # no "after" for a failed message; a restart is a new incarnation
    wait_until(lambda: ("incarnation", 2) in log.events, what="the restart")
    assert log.count("attach") == 1 and log.count("after") == 1


def test_a_minion_that_uses_no_extension_gets_no_part(system: ActorSystem) -> None:
    log = Recorder()

    class Plain(Tracked):
        uses_fake_extension = False

    ref = system.spawn(Plain, log)
    assert ref.ask("b", timeout=5) == "b"
    assert log.events == ["init", ("handled", "b")]  # no attach, no incarnation, no after


def test_importing_the_package_registers_timers_then_snapshots_then_workflows() -> None:
    """Schedules come after snapshots: an incarnation restores its state, then arms its
    durable schedules."""
    code = ("import minions_actors\n"
            "from minions_actors.runtime.extensions import registered\n"
            "print([e.key for e in registered()])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    # (the timers' extensions come with Minion: attached on first use, never by class)
    assert out.stdout.split() == ["['timers',", "'receive_timeout',", "'snapshots',",
                                  "'schedules',", "'workflows']"], out.stderr
