"""User resources: open/close order, dependencies, failures to open, health-check reopen,
measured calls (scraped over HTTP) and logs without arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from minions_actors import (
    ActorSystem,
    Backoff,
    Hooks,
    Minion,
    OneForOne,
    Resource,
    ResourceError,
    ResourceUnavailable,
    uses,
)
from tests.conftest import QUIET, Recorder, runtime_threads, wait_until


class Store(Resource):
    """A resource that records its lifecycle in a Recorder."""

    def __init__(self, rec: Recorder, label: str) -> None:
        self.rec = rec
        self.label = label

    def open(self) -> None:
        self.rec.add(f"open {self.label}")

    def close(self) -> None:
        self.rec.add(f"close {self.label}")

    def get(self, key: str) -> str:
        return f"{self.label}:{key}"


class Cache(Store):
    name = "cache"
    db = uses("db")  # a resource using another one: opened after it, closed before it

    def get(self, key: str) -> str:
        return f"cache({self.db.get(key)})"


class UsesCache(Minion):
    cache = uses(Cache)

    def __init__(self, rec: Recorder) -> None:
        super().__init__()
        self.rec = rec
        rec.add(f"init {self.path}")

    def on_receive(self, message: Any) -> Any:
        return self.cache.get(message)

    def on_stop(self) -> None:
        self.rec.add(f"stop {self.path}")


class UsesDb(UsesCache):
    cache = None  # type: ignore[assignment]
    db = uses("db")

    def on_receive(self, message: Any) -> Any:
        return self.db.get(message)


def test_open_before_first_user_close_after_last_in_reverse_order(rec: Recorder) -> None:
    system = ActorSystem.start(**QUIET, resources=[Store(rec, "db"), Cache(rec, "cache")])
    assert system.resources.names() == ["store", "cache"]
    system.shutdown()
    # "store" is its default name; register the db under the name the others use
    system = ActorSystem.start(**QUIET)
    system.resources.add(Store(rec, "db"), name="db")
    system.resources.add(Cache(rec, "cache"))
    rec.events.clear()
    assert system.resources.state("db") == "closed"
    a = system.spawn(UsesCache, rec, name="a")
    assert a.ask("k", timeout=2) == "cache(db:k)"
    b = system.spawn(UsesDb, rec, name="b")
    assert b.ask("k", timeout=2) == "db:k"
    assert rec.events == ["open db", "open cache", "init a", "init b"]
    assert system.shutdown()
    # b stops first (reverse start order) but db still has a user (cache); a's stop closes
    # cache, then db
    assert rec.events[4:] == ["stop b", "stop a", "close cache", "close db"]
    assert system.resources.state("db") == "closed"
    # once the system stopped, the same objects can be registered with the next one
    again = ActorSystem.start(**QUIET, resources=[system.resources.get("cache")])
    again.shutdown()


def test_last_user_stopping_closes_and_next_user_reopens(system: ActorSystem,
                                                        rec: Recorder) -> None:
    system.resources.add(Store(rec, "db"), name="db")
    a = system.spawn(UsesDb, rec, name="a")
    b = system.spawn(UsesDb, rec, name="b")
    a.ask("x", timeout=2)
    b.ask("x", timeout=2)
    assert a.stop(timeout=2)
    assert "close db" not in rec.events
    assert b.stop(timeout=2)
    assert rec.events.count("close db") == 1
    c = system.spawn(UsesDb, rec, name="c")
    assert c.ask("y", timeout=2) == "db:y"
    assert rec.events.count("open db") == 2


def test_restart_keeps_the_resource_open(system: ActorSystem, rec: Recorder) -> None:
    class Crashy(UsesDb):
        def on_receive(self, message: Any) -> Any:
            if message == "boom":
                raise ValueError("boom")
            return super().on_receive(message)

    system.resources.add(Store(rec, "db"), name="db")
    ref = system.spawn(Crashy, rec, name="c")
    ref.tell("boom")
    wait_until(lambda: rec.count("init c") == 2)
    assert ref.ask("k", timeout=2) == "db:k"
    assert rec.count("open db") == 1 and rec.count("close db") == 0


class Crashes(Hooks):
    def __init__(self) -> None:
        self.rec = Recorder()

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.rec.add((cell.path, phase, exc))


class Flaky(Resource):
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.opened = 0

    def open(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("connection refused by 127.0.0.1:9")
        self.opened += 1

    def ping(self) -> str:
        return "pong"


class UsesFlaky(Minion):
    flaky = uses(Flaky)

    def on_receive(self, message: Any) -> Any:
        return self.flaky.ping()


def test_failure_to_open_fails_the_start_and_the_supervisor_retries() -> None:
    hooks = Crashes()
    strategy = OneForOne(max_restarts=5, within=10, backoff=Backoff(0.01, 0.01, jitter=0))
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, hooks=[hooks],
                               strategy=strategy, resources=[Flaky(failures=2)])
    try:
        ref = system.spawn(UsesFlaky, name="user")
        assert ref.ask("x", timeout=5) == "pong"
        crashes = hooks.rec.events
        assert [(path, phase) for path, phase, _ in crashes] == [("user", "init")] * 2
        err = crashes[0][2]
        assert isinstance(err, ResourceError)
        assert "resource 'flaky' failed to open" in str(err)
        assert "minion 'user' (UsesFlaky)" in str(err)
        assert "ConnectionRefusedError" in str(err)
        assert system.resources.get("flaky").opened == 1  # type: ignore[attr-defined]
        assert system.metrics is not None
        page = _scrape(system)
        assert 'minions_resource_errors_total{resource="flaky"} 2.0' in page
    finally:
        system.shutdown()


def test_a_resource_that_never_opens_escalates_to_gru() -> None:
    strategy = OneForOne(max_restarts=1, within=10, backoff=Backoff(0.01, 0.01, jitter=0))
    system = ActorSystem.start(**QUIET, strategy=strategy, resources=[Flaky(failures=100)])
    system.spawn(UsesFlaky, name="user")
    assert system.wait(timeout=10)
    assert system.exit_code == 1
    assert "resource 'flaky' failed to open" in str(system.failure.__cause__)


def test_unknown_resource_and_cycles_are_clear_errors(system: ActorSystem) -> None:
    hooks = Crashes()
    system.hooks.add(hooks)

    class A(Resource):
        name = "a"
        b = uses("b")

    class B(Resource):
        name = "b"
        a = uses("a")

    class Needs(Minion):
        a = uses("a")

    class NeedsMissing(Minion):
        x = uses("missing")

    system.spawn(NeedsMissing, name="m", restart="temporary")
    _, _, err = hooks.rec.wait_for(lambda evs: evs)[0]
    assert "uses resource 'missing', which is not registered" in str(err)
    assert "ActorSystem.start(resources=[...])" in str(err)
    system.resources.add(A())
    system.resources.add(B())
    system.spawn(Needs, name="n", restart="temporary")
    _, _, err = hooks.rec.wait_for(lambda evs: len(evs) == 2 and evs)[1]
    assert "cycle: a -> b -> a" in str(err)
    assert system.resources.state("a") == system.resources.state("b") == "closed"
    with pytest.raises(ValueError, match="already registered"):
        system.resources.add(A())
    with pytest.raises(TypeError, match="Resource instance"):
        system.resources.add(object())  # type: ignore[arg-type]


class Remote(Resource):
    """Healthy while ``up`` is set; counts its opens."""

    name = "remote"
    health_interval = 0.02
    reopen_backoff = Backoff(initial=0.02, maximum=0.02, jitter=0)

    def __init__(self) -> None:
        self.up = threading.Event()
        self.up.set()
        self.opens = 0

    def open(self) -> None:
        if not self.up.is_set():
            raise ConnectionError("remote is down")
        self.opens += 1

    def health_check(self) -> bool:
        return self.up.is_set()

    def fetch(self) -> str:
        return "data"


class UsesRemote(Minion):
    remote = uses(Remote)

    def on_receive(self, message: Any) -> Any:
        try:
            return self.remote.fetch()
        except ResourceUnavailable as exc:
            return exc


def test_failed_health_check_reopens_with_backoff_while_users_get_a_clear_error(
    system: ActorSystem,
) -> None:
    remote = Remote()
    system.resources.add(remote)
    ref = system.spawn(UsesRemote, name="u")
    assert ref.ask("go", timeout=2) == "data"
    remote.up.clear()
    wait_until(lambda: system.resources.state("remote") == "unhealthy")
    answer = ref.ask("go", timeout=2)
    assert isinstance(answer, ResourceUnavailable)
    assert "resource 'remote' is unavailable: its health check returned False" in str(answer)
    assert "being reopened" in str(answer)
    time.sleep(0.1)  # several failed reopen attempts (the remote is still down)
    assert system.resources.state("remote") == "unhealthy"
    remote.up.set()
    wait_until(lambda: system.resources.state("remote") == "open")
    assert remote.opens == 2
    assert ref.ask("go", timeout=2) == "data"


class Api(Resource):
    name = "api"

    def get(self, key: str) -> str:
        return key.upper()

    def fail(self, token: str) -> None:
        raise PermissionError(f"bad token {token}")

    def _private(self) -> None:
        pass


class Caller(Minion):
    api = uses(Api)

    def on_receive(self, message: Any) -> Any:
        if message == "fail":
            try:
                self.api.fail("secret-token-123")
            except PermissionError:
                return "failed"
        return self.api.get(message)


def _scrape(system: ActorSystem) -> str:
    assert system.metrics is not None and system.metrics.url is not None
    with urllib.request.urlopen(system.metrics.url, timeout=5) as response:
        return str(response.read().decode())


def test_calls_are_measured_by_resource_and_method_and_logged_without_arguments() -> None:
    records: list[str] = []
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, resources=[Api()],
                               log_sinks=[(lambda m: records.append(str(m)),
                                           {"level": "DEBUG", "format": "{message} {extra}"})])
    try:
        ref = system.spawn(Caller, name="caller")
        assert ref.ask("a", timeout=2) == "A"
        assert ref.ask("b", timeout=2) == "B"
        assert ref.ask("fail", timeout=2) == "failed"
        page = _scrape(system)
    finally:
        system.shutdown()
    lines = page.splitlines()
    assert 'minions_resource_calls_total{method="get",resource="api"} 2.0' in lines
    assert 'minions_resource_calls_total{method="fail",resource="api"} 1.0' in lines
    assert 'minions_resource_call_errors_total{method="fail",resource="api"} 1.0' in lines
    assert 'minions_resource_call_errors_total{method="get",resource="api"} 0.0' in lines
    assert 'minions_resource_call_seconds_count{method="get",resource="api"} 2.0' in lines
    assert 'minions_resource_errors_total{resource="api"} 1.0' in lines
    methods = {line.split('method="')[1].split('"')[0] for line in lines
               if line.startswith("minions_resource_call") and 'method="' in line}
    assert methods == {"get", "fail"}  # bounded: the public methods of the class
    failed = [r for r in records if "api.fail() called by caller raised PermissionError" in r]
    assert failed and "'resource': 'api'" in failed[0] and "'minion': 'caller'" in failed[0]
    assert not [r for r in records if "secret-token-123" in r]


class Stuck(Resource):
    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def close(self) -> None:
        self.release.wait(10)


class UsesStuck(Minion):
    stuck = uses(Stuck)


def test_a_close_that_hangs_is_bounded_by_stop_timeout() -> None:
    records: list[str] = []
    stuck = Stuck()
    system = ActorSystem.start(**QUIET, stop_timeout=0.3, resources=[stuck],
                               log_sinks=[(lambda m: records.append(str(m)),
                                           {"format": "{message}"})])
    system.spawn(UsesStuck, name="u").ask  # noqa: B018 - started below
    wait_until(lambda: system.resources.state("stuck") == "open")
    t0 = time.monotonic()
    system.shutdown(timeout=5)
    assert time.monotonic() - t0 < 3
    assert any("resource stuck failed to close: TimeoutError" in r for r in records)
    stuck.release.set()
    wait_until(lambda: "minions-resource-stuck" not in runtime_threads())


def test_sigterm_closes_resources_after_their_users_in_reverse_order() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "minions_actors", "run", "tests.apps.resource_app:main"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines == ["open db", "open cache (db says 42)", "READY"], proc.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["on_stop user", "close cache", "close db"]


class SlowCheck(Resource):
    name = "slowcheck"
    health_interval = 0.01

    def __init__(self) -> None:
        self.checking = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()

    def health_check(self) -> bool:
        self.checking.set()
        self.release.wait(10)
        return True

    def close(self) -> None:
        self.closed.set()


class UsesSlowCheck(Minion):
    slowcheck = uses(SlowCheck)


def test_a_slow_health_check_does_not_hold_up_its_users(system: ActorSystem) -> None:
    resource = SlowCheck()
    system.resources.add(resource)
    ref = system.spawn(UsesSlowCheck, name="u")
    try:
        assert resource.checking.wait(5)
        t0 = time.monotonic()
        assert ref.stop(timeout=3)  # the last user stops: the resource closes meanwhile
        assert resource.closed.is_set()
        assert time.monotonic() - t0 < 1
    finally:
        resource.release.set()


def test_a_placed_minion_cannot_use_resources_and_says_so(system: ActorSystem) -> None:
    from minions_actors import ChildProcess

    hooks = Crashes()
    system.hooks.add(hooks)
    system.resources.add(Api())
    system.spawn(Caller, name="far", restart="temporary", placement=ChildProcess())
    _, phase, err = hooks.rec.wait_for(lambda evs: evs)[0]
    assert phase == "init"
    assert "minion 'far' (Caller) uses resources (api) but runs placed outside" in str(err)
    assert system.resources.state("api") == "closed"
