"""Shared fixtures: a quiet system per test, and tools to wait for asynchronous outcomes."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from minions_actors import ActorSystem


def scrape_samples(system: ActorSystem) -> dict[str, float]:
    """One real scrape of ``system``'s /metrics: each sample's value, keyed by its name and
    sorted labels (e.g. ``"minions_timers_active[]"``)."""
    from prometheus_client.parser import text_string_to_metric_families

    assert system.metrics is not None and system.metrics.url is not None
    with urllib.request.urlopen(system.metrics.url, timeout=5) as response:
        text = response.read().decode()
    return {s.name + str(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.002)


class Recorder:
    """A thread-safe event log that minions write to and tests wait on."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def add(self, event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], Any], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self.events)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; events so far: {self.events!r}")
                self._cond.wait(left)

    def wait_count(self, event: Any, n: int, timeout: float = 5.0) -> None:
        self.wait_for(lambda evs: evs.count(event) >= n, timeout)

    def count(self, event: Any) -> int:
        with self._cond:
            return self.events.count(event)

    def only(self, pred: Callable[[Any], bool]) -> list[Any]:
        with self._cond:
            return [e for e in self.events if pred(e)]


class Gate:
    """A message that holds the handler it reaches: ``entered`` is set once the handler
    runs, ``opened`` lets it return. Wait on ``entered``, not on an empty mailbox: a mailbox
    is empty as soon as the message is taken out, before a bounded mailbox frees its slot
    and before the handler starts."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self, timeout: float = 10.0) -> None:
        """In the handler: say it runs, then wait to be let go."""
        self.entered.set()
        self.opened.wait(timeout)

    def wait_entered(self, timeout: float = 5.0) -> None:
        """In the test: wait until a handler holds the gate."""
        assert self.entered.wait(timeout), f"no handler took the gate in {timeout}s"

    def open(self) -> None:
        self.opened.set()


QUIET: dict[str, Any] = dict(
    state_store=None, metrics_port=None, file_logs=False, stderr_logs=False,
    handle_signals=False,
)


def runtime_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate()
        if (t.name.startswith("minions-") or "(minion:" in t.name) and t.is_alive()
    ]


@pytest.fixture(params=["pooled", "dedicated"])
def execution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test under both execution modes: the default mode of every system it starts
    (also in child processes) is set through ``MINIONS_EXECUTION``. Suites opt in with
    ``pytestmark = pytest.mark.usefixtures("execution")``."""
    monkeypatch.setenv("MINIONS_EXECUTION", request.param)
    return str(request.param)


@pytest.hookimpl(tryfirst=True)  # before -m deselects what is slow
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``pooled_by_default`` test's dedicated run is marked slow: the default suite keeps
    one run of each costly subprocess campaign, CI's slow step runs the other."""
    for item in items:
        params = getattr(item, "callspec", None)
        if (item.get_closest_marker("pooled_by_default") and params is not None
                and params.params.get("execution") == "dedicated"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    """A running system with no store, metrics, logs or signal handlers."""
    sys_ = ActorSystem.start(**QUIET)
    try:
        yield sys_
    finally:
        sys_.shutdown(timeout=10)
    assert runtime_threads() == [], f"threads left behind: {runtime_threads()}"


@pytest.fixture(autouse=True)
def _no_system_left() -> Iterator[None]:
    yield
    current = ActorSystem.current()
    if current is not None:
        current.shutdown(timeout=10)
        raise AssertionError("a test left an ActorSystem running")
