"""The observer's endpoints over real HTTP on 127.0.0.1: the tree, a minion, events,
workflows, the overview, the actions and their 403s, and the secret rule."""

from __future__ import annotations

import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest

from minions_actors import ActorSystem, StartWorkflow

from ..conftest import QUIET, wait_until
from .observer_apps import (
    SECRET,
    TOKEN,
    Approver,
    Busy,
    Gated,
    Orders,
    Shown,
    ShownTicks,
    Store,
    Team,
    Ticks,
    UsesStore,
    Worker,
    get,
    post,
)


def _start(tmp_path: Any, token: str | None) -> ActorSystem:
    return ActorSystem.start(**{**QUIET, "metrics_port": 0,
                                "state_store": str(tmp_path / "m.db")}, observer_token=token)


@pytest.fixture
def base(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    token = getattr(request, "param", TOKEN)
    system = _start(tmp_path, token)
    try:
        assert system.metrics is not None and system.metrics.url is not None
        yield system.metrics.url.replace("/metrics", "/observer")
    finally:
        system.shutdown(timeout=10)


def _system() -> ActorSystem:
    system = ActorSystem.current()
    assert system is not None
    return system


def test_page_and_static_files_are_served(base: str) -> None:
    page = get(base, "")
    assert b"minions observer" in page and b"/observer/static/observer.js" in page
    assert b"function" in get(base, "/static/observer.js")
    assert b"table" in get(base, "/static/observer.css")
    with pytest.raises(urllib.error.HTTPError) as err:
        get(base, "/static/../app.py")
    assert err.value.code == 404


def test_the_metrics_endpoint_still_serves_beside_it(base: str) -> None:
    assert b"minions_live_minions" in get(base.replace("/observer", ""), "/metrics")


def test_children_are_paged_in_start_order(base: str) -> None:
    _system().spawn(Team, 5, name="team")
    # listed as soon as spawned, but "starting" until built: wait for what is asserted
    wait_until(lambda: [r["state"] for r in get(base, "/api/children?path=team")["rows"]]
               == ["running"] * 5)
    top = get(base, "/api/children?path=")
    assert [r["path"] for r in top["rows"]] == ["team"] and top["rows"][0]["children"] == 5
    page = get(base, "/api/children?path=team&offset=1&limit=2")
    assert page["total"] == 5 and [r["name"] for r in page["rows"]] == ["w1", "w2"]
    row = page["rows"][0]
    assert (row["cls"], row["mode"], row["state"], row["restarts"]) == (
        "Worker", "pooled", "running", 0)


def test_search_is_server_side_and_bounded(base: str) -> None:
    _system().spawn(Team, 30, name="team")
    found = wait_until(lambda: (r := get(base, "/api/search?q=team/w1&limit=5"))["total"] == 11
                       and r)
    assert len(found["rows"]) == 5 and all("team/w1" in r["path"] for r in found["rows"])


def test_a_crash_shows_its_exception_traceback_and_restart(base: str) -> None:
    _system().spawn(Worker, name="w").tell("boom")
    m = wait_until(lambda: (m := get(base, "/api/minion?path=w"))["restarts"] == 1 and m)
    assert m["crash"]["type"] == "ValueError" and m["crash"]["message"] == "injected crash"
    assert "on_receive" in m["crash"]["traceback"] and m["crash"]["phase"] == "message"
    kinds = [e["kind"] for e in get(base, "/api/events?since=0")]
    assert kinds[:2] == ["crash", "restart"]
    last = get(base, "/api/events?since=0")[-1]["seq"]
    assert get(base, f"/api/events?since={last}") == []


def test_a_minion_not_built_yet_reads_starting_and_a_restart_restarting(base: str) -> None:
    # A spawned minion whose first instance was not built yet (no worker free on a loaded
    # machine, a slow __init__ or restore) read "restarting" with no restart: a CI flake.
    entered, gate = threading.Event(), threading.Event()
    try:
        _system().spawn(Gated, entered, gate, name="g")
        assert entered.wait(10)
        m = get(base, "/api/minion?path=g")
        assert (m["state"], m["restarts"], m["crash"]) == ("starting", 0, None)
        assert get(base, "/api/search?q=g")["rows"][0]["state"] == "starting"
        gate.set()
        wait_until(lambda: get(base, "/api/minion?path=g")["state"] == "running")
        entered.clear()
        gate.clear()
        _system().get("g").tell("boom")
        assert entered.wait(10)  # the next incarnation is being built
        m = get(base, "/api/minion?path=g")
        assert (m["state"], m["restarts"], m["crash"]["type"]) == (
            "restarting", 1, "ValueError")
    finally:
        gate.set()
    wait_until(lambda: get(base, "/api/minion?path=g")["state"] == "running")


def state_or_none(base: str, path: str) -> str | None:
    """The minion's state, or None while it is not spawned yet (404)."""
    try:
        return str(get(base, f"/api/minion?path={path}")["state"])
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return None


def test_a_crash_waiting_for_its_busy_supervisor_reads_restarting(base: str) -> None:
    held, release = threading.Event(), threading.Event()
    try:
        _system().spawn(Busy, held, release, name="boss")  # (it spawns w in its on_start)
        wait_until(lambda: state_or_none(base, "boss/w") == "running")
        _system().get("boss").tell("hold")
        assert held.wait(10)
        _system().get("boss/w").tell("boom")  # its report queues behind the boss's handler
        m = wait_until(lambda: (m := get(base, "/api/minion?path=boss/w"))["state"] != "running"
                       and m)
        assert (m["state"], m["restarts"], m["crash"]["type"]) == (
            "restarting", 0, "ValueError")
    finally:
        release.set()
    wait_until(lambda: (m := get(base, "/api/minion?path=boss/w"))["restarts"] == 1
               and m["state"] == "running")


def test_every_state_is_described_and_coloured() -> None:
    from pathlib import Path

    from minions_actors.observer.live import MINION_STATES

    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "observer.md").read_text(encoding="utf-8")
    css = (root / "minions_actors" / "observer" / "static" / "observer.css").read_text()
    for state in MINION_STATES:
        assert f"`{state}`" in docs and f".state-{state.replace(' ', '-')}" in css, state


def test_unknown_minion_and_endpoint_are_404_with_a_reason(base: str) -> None:
    for path in ("/api/minion?path=nobody", "/api/nothing", "/api/workflow?id=x"):
        with pytest.raises(urllib.error.HTTPError) as err:
            get(base, path)
        assert err.value.code == 404 and b"no " in err.value.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        get(base, "/api/children?offset=abc")
    assert err.value.code == 400


def test_overview_reads_the_pool(base: str) -> None:
    _system().spawn(Worker, name="w")
    o = wait_until(lambda: (o := get(base, "/api/overview"))["minions"] == 1 and o)
    assert o["live"] is True and o["pool"]["workers"] >= 1
    assert get(base, "/api/parts") == {"resources": [], "pipelines": []}


def test_workflows_by_status_then_retried_with_the_token(base: str) -> None:
    Orders.ok = False
    ref = _system().spawn(Orders, name="orders")
    ref.ask(StartWorkflow("fulfil", "o-1", {"card": SECRET}), timeout=10)
    wait_until(lambda: get(base, "/api/workflows?status=failed")["total"] == 1)
    listed = get(base, "/api/workflows?status=failed")
    assert listed["counts"]["failed"] == 1 and listed["rows"][0]["id"] == "o-1"
    one = get(base, "/api/workflow?id=o-1")
    assert (one["steps"], one["step"], one["attempts"]) == (["charge"], "charge", 1)
    assert SECRET not in str(listed) and SECRET not in str(one)
    assert post(base, "retry", {"id": "o-1"}, token=None)[0] == 403
    assert get(base, "/api/workflow?id=o-1")["status"] == "failed"  # nothing changed
    Orders.ok = True
    status, _ = post(base, "retry", {"id": "o-1"})
    assert status == 200
    wait_until(lambda: get(base, "/api/workflow?id=o-1")["status"] == "completed")
    assert post(base, "discard", {"id": "o-1"}) == (200, {"discarded": True})


def test_wrong_or_missing_token_is_403_and_nothing_changes(base: str) -> None:
    _system().spawn(Worker, name="w")
    # (not the search total: a minion is listed from its spawn, "starting" until built)
    wait_until(lambda: get(base, "/api/minion?path=w")["state"] == "running")
    for token in (None, "", "wrong-token-wrong-token"):
        for action in ("stop", "restart"):
            status, body = post(base, action, {"path": "w"}, token=token)
            assert status == 403 and "Token" in body["error"]
    m = get(base, "/api/minion?path=w")
    assert (m["state"], m["restarts"], m["failed"]) == ("running", 0, 0)


def test_restart_and_stop_with_the_token(base: str) -> None:
    _system().spawn(Worker, name="w")
    wait_until(lambda: get(base, "/api/search?q=w")["total"] == 1)
    assert post(base, "restart", {"path": "w"}) == (200, {"requested": True})
    m = wait_until(lambda: (m := get(base, "/api/minion?path=w"))["restarts"] == 1 and m)
    assert m["crash"]["type"] == "RestartedByObserver"
    assert post(base, "stop", {"path": "w"}) == (200, {"stopped": True})
    assert get(base, "/api/search?q=w")["total"] == 0
    assert post(base, "stop", {"path": "w"})[0] == 404
    assert post(base, "stop", {"id": "w"})[0] == 400


@pytest.mark.parametrize("base", [None], indirect=True)
def test_actions_are_off_without_a_token(base: str) -> None:
    _system().spawn(Worker, name="w")
    assert get(base, "/api/config") == {"live": True, "actions": False}
    status, body = post(base, "stop", {"path": "w"}, token=TOKEN)
    assert status == 403 and "observer_token" in body["error"]
    assert _system().find("w") is not None


def test_no_secret_of_a_class_that_did_not_opt_in(base: str) -> None:
    system = _system()
    system.spawn(Worker, name="hidden").tell("boom")
    system.spawn(Shown, name="shown").tell("ping")
    wait_until(lambda: get(base, "/api/minion?path=hidden")["restarts"] == 1)
    system.flush(10)
    system.get("hidden").stop()
    shown = wait_until(lambda: (m := get(base, "/api/minion?path=shown")).get("snapshot") and m)
    assert SECRET in shown["snapshot"]  # the class opted in
    everything = b"".join(get(base, p) if isinstance(get(base, p), bytes) else
                          str(get(base, p)).encode() for p in (
        "", "/static/observer.js", "/api/children?path=", "/api/events?since=0",
        "/api/search?q=hidden", "/api/overview", "/api/workflows"))
    assert SECRET.encode() not in everything


def test_a_short_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="observer_token must be"):
        ActorSystem.start(**{**QUIET, "metrics_port": 0}, observer_token="short")


def test_resources_and_pipelines(base: str) -> None:
    system = _system()
    system.resources.add(Store())
    assert system.spawn(UsesStore, name="user").ask("x", timeout=10) == "data"
    system.spawn(Worker, name="sink")
    system.spawn(Ticks, 5, ["sink"], name="ticks")
    system.spawn(ShownTicks, 3, ["sink"], name="shown")
    parts = wait_until(lambda: (p := get(base, "/api/parts"))["pipelines"] and all(
        r["events"] for r in p["pipelines"]) and len(p["pipelines"]) == 2 and p, 30)
    assert parts["resources"] == [{"name": "kv", "state": "open", "calls": 1, "errors": 0}]
    rows = {r["path"]: r for r in parts["pipelines"]}
    assert rows["ticks"]["events"] == 5 and rows["ticks"]["position"] is None  # not opted in
    assert rows["shown"]["events"] == 3 and rows["shown"]["state"] == "running"
    wait_until(lambda: get(base, "/api/parts")["pipelines"][0]["position"] == "3", 30)


def test_the_page_is_served_on_loopback_only_unless_asked() -> None:
    from minions_actors.hosting.options import StartOptions

    assert StartOptions().serves_observer and StartOptions(metrics_host="::1").serves_observer
    assert not StartOptions(metrics_host="0.0.0.0").serves_observer  # a scraper's address
    assert StartOptions(metrics_host="0.0.0.0", observer=True).serves_observer
    assert not StartOptions(observer=False).serves_observer
    assert not StartOptions(metrics_port=None, observer=True).serves_observer
    with pytest.raises(TypeError, match="observer must be True, False or None"):
        StartOptions(observer="yes")  # type: ignore[arg-type]


def test_observer_false_serves_only_the_metrics() -> None:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0}, observer=False)
    try:
        assert system.metrics is not None and system.metrics.url is not None
        body = get(system.metrics.url.replace("/metrics", ""), "/observer")
        assert b"minions observer" not in body and b"minions_live_minions" in body
    finally:
        system.shutdown(timeout=10)


class Aio(Worker):
    async def on_receive(self, message: Any) -> Any:  # an async minion
        return message


def test_modes_and_a_restart_of_each(base: str) -> None:
    system = _system()
    system.spawn(Worker, name="pooled")
    system.spawn(Worker, name="dedicated", dedicated_thread=True)
    system.spawn(Aio, name="aio")
    rows = wait_until(lambda: (r := get(base, "/api/children?path="))["total"] == 3 and r)
    assert {r["path"]: r["mode"] for r in rows["rows"]} == {
        "pooled": "pooled", "dedicated": "dedicated", "aio": "async"}
    for path in ("pooled", "dedicated", "aio"):
        assert post(base, "restart", {"path": path})[0] == 200
        wait_until(lambda p=path: get(base, f"/api/minion?path={p}")["restarts"] == 1, 30)


def test_a_running_workflow_is_cancelled_with_the_token_and_the_record_says_by_whom(
        base: str) -> None:
    ref = _system().spawn(Approver, name="approver")
    ref.ask(StartWorkflow("approve", "a-1", {}), timeout=10)
    wait_until(lambda: get(base, "/api/workflow?id=a-1")["status"] == "running")
    assert post(base, "cancel", {"id": "a-1"}, token=None)[0] == 403
    assert get(base, "/api/workflow?id=a-1")["status"] == "running"  # nothing changed
    status, row = post(base, "cancel", {"id": "a-1"})
    assert status == 200 and row["status"] == "cancelled"
    assert _system().workflow("a-1").cancelled_by == "observer"
    status, body = post(base, "cancel", {"id": "a-1"})  # finished: refused, unchanged
    assert status == 409 and "cancelled" in body["error"]
