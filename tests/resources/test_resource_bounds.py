"""Resources: a hanging ``open()`` holds up no other minion's stop and is bounded by its
``open_timeout``; failures to open or reopen are logged by type only (their text may carry a
password); calls refused while a resource is unavailable are logged at WARNING, rate-limited."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Backoff,
    Minion,
    Resource,
    ResourceError,
    ResourceUnavailable,
    uses,
)
from tests.conftest import QUIET, wait_until
from tests.resources.test_resources import Crashes

SECRET = "hunter2"


class Hang(Resource):
    """open() waits until released."""

    name = "hang"
    open_timeout = 4.0

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def open(self) -> None:
        self.entered.set()
        self.release.wait(30)


class UsesHang(Minion):
    hang = uses("hang")


class Plain(Minion):
    def on_receive(self, message: Any) -> Any:
        return message


def test_a_hanging_open_holds_up_no_other_minions_stop() -> None:
    hang = Hang()
    system = ActorSystem.start(**QUIET, stop_timeout=5.0, resources=[hang])
    try:
        plain = system.spawn(Plain, name="plain")
        system.spawn(UsesHang, name="user", restart="temporary")
        assert hang.entered.wait(5)
        t0 = time.monotonic()
        assert plain.stop(timeout=3)  # it uses no resource: nothing to wait for
        assert time.monotonic() - t0 < 2.0  # not the open_timeout (4 s)
    finally:
        hang.release.set()
        system.shutdown()


def test_open_is_bounded_by_open_timeout() -> None:
    class Quick(Hang):
        open_timeout = 0.5

    hang, crashes = Quick(), Crashes()
    system = ActorSystem.start(**QUIET, resources=[hang], hooks=[crashes])
    try:
        t0 = time.monotonic()
        user = system.spawn(UsesHang, name="user", restart="temporary")
        path, phase, err = crashes.rec.wait_for(lambda evs: evs, timeout=10)[0]
        assert time.monotonic() - t0 < 4.0  # 0.5 s, on a loaded machine
        assert (path, phase, type(err)) == ("user", "init", ResourceError)
        assert "resource 'hang' failed to open" in str(err)
        assert "did not return within 0.5s (open_timeout)" in str(err)
        assert "minions-resource-hang" in str(err)
        wait_until(lambda: not user.is_alive())
        assert system.resources.state("hang") == "closed"
    finally:
        hang.release.set()
        system.shutdown()


class Counted(Hang):
    """Counts the open() calls running at once and the closes; the first open hangs."""

    open_timeout = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.running = self.most = self.opened = self.closed = 0

    def open(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if not self.entered.is_set():
                super().open()  # the first one hangs until released
        finally:
            with self.lock:
                self.running -= 1
                self.opened += 1

    def close(self) -> None:
        with self.lock:
            self.closed += 1


def test_an_open_past_its_timeout_is_never_run_twice_at_once_and_is_closed_late() -> None:
    counted = Counted()
    system = ActorSystem.start(**QUIET, resources=[counted])
    try:
        system.spawn(UsesHang, name="user")  # permanent: restarted, so open() is tried again
        assert counted.entered.wait(5)
        # while the first open() hangs, the restarts (every ~0.1-1 s with Gru's backoff)
        # must not call open() again beside it: watch a window of a few of them
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert counted.most == 1, "a second open() ran beside the one past its timeout"
            counted.release.wait(0.01)  # never set here: a pause between looks
        counted.release.set()  # the late open() returns: the runtime gave up on it
        wait_until(lambda: system.resources.state("hang") == "open", timeout=10)
        wait_until(lambda: counted.closed >= 1, timeout=10)  # the late one was closed
        assert counted.most == 1
    finally:
        counted.release.set()
        system.shutdown()


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, "5", True, None])
def test_open_timeout_must_be_a_positive_finite_number(bad: Any) -> None:
    bad_class = type("Bad", (Resource,), {"open_timeout": bad})
    system = ActorSystem.start(**QUIET)
    try:
        with pytest.raises((TypeError, ValueError), match=r"Bad\.open_timeout must be"):
            system.resources.add(bad_class())
    finally:
        system.shutdown()


class Leaky(Resource):
    """Its errors carry a password, as a driver's connection error may."""

    name = "leaky"
    health_interval = 0.02
    reopen_backoff = Backoff(initial=0.02, maximum=0.02, jitter=0)

    def __init__(self, fail_open: bool) -> None:
        self.fail_open = fail_open
        self.healthy = threading.Event()
        self.healthy.set()

    def open(self) -> None:
        if self.fail_open or not self.healthy.is_set():
            raise ConnectionError(f"login failed for postgres://app:{SECRET}@db")

    def health_check(self) -> bool:
        if not self.healthy.is_set():
            raise ConnectionError(f"ping failed for postgres://app:{SECRET}@db")
        return True

    def fetch(self) -> str:
        return "data"


class UsesLeaky(Minion):
    leaky = uses(Leaky)

    def on_receive(self, message: Any) -> Any:
        try:
            return self.leaky.fetch()
        except ResourceUnavailable as exc:
            return exc


def _logged(records: list[Any]) -> list[tuple[str, str]]:
    return [(m.record["level"].name, str(m)) for m in records]


def test_failures_to_open_are_logged_by_type_only() -> None:
    records: list[Any] = []
    crashes = Crashes()
    system = ActorSystem.start(**QUIET, resources=[Leaky(fail_open=True)], hooks=[crashes],
                               log_sinks=[(records.append, {"level": "DEBUG"})])
    try:
        system.spawn(UsesLeaky, name="user", restart="temporary")
        _, _, err = crashes.rec.wait_for(lambda evs: evs)[0]
        assert "ConnectionError" in str(err)
    finally:
        system.shutdown()
    logged = _logged(records)
    assert [text for _, text in logged if SECRET in text] == []
    assert any("resource leaky failed to open" in text and "ConnectionError" in text
               for _, text in logged)


def test_failed_checks_and_reopens_are_logged_by_type_only() -> None:
    records: list[Any] = []
    leaky = Leaky(fail_open=False)
    system = ActorSystem.start(**QUIET, resources=[leaky],
                               log_sinks=[(records.append, {"level": "DEBUG"})])
    try:
        user = system.spawn(UsesLeaky, name="user")
        assert user.ask("go", timeout=5) == "data"
        leaky.healthy.clear()
        wait_until(lambda: any("could not be reopened (attempt 2)" in text
                               for _, text in _logged(records)))
        refused = user.ask("go", timeout=5)  # what callers get says why, by type only
        assert isinstance(refused, ResourceUnavailable)
        assert "ConnectionError" in str(refused) and SECRET not in str(refused)
        leaky.healthy.set()
        wait_until(lambda: system.resources.state("leaky") == "open")
    finally:
        system.shutdown()
    logged = _logged(records)
    assert [text for _, text in logged if SECRET in text] == []
    assert any(level == "WARNING" and "its health check raised ConnectionError" in text
               for level, text in logged)


def test_calls_refused_while_unavailable_are_warned_about_rate_limited() -> None:
    records: list[Any] = []
    leaky = Leaky(fail_open=False)
    system = ActorSystem.start(**QUIET, resources=[leaky],
                               log_sinks=[(records.append, {"level": "DEBUG"})])
    try:
        user = system.spawn(UsesLeaky, name="user")
        assert user.ask("go", timeout=5) == "data"
        leaky.healthy.clear()
        wait_until(lambda: system.resources.state("leaky") == "unhealthy")
        for _ in range(20):
            assert isinstance(user.ask("go", timeout=5), ResourceUnavailable)
    finally:
        leaky.healthy.set()
        system.shutdown()
    refused = [(level, text) for level, text in _logged(records)
               if "leaky.fetch() called by user raised ResourceUnavailable" in text]
    assert [level for level, _ in refused] == ["WARNING"]  # as documented; once, not 20 times
