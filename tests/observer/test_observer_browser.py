"""The observer page in a real browser: Playwright driving Debian's Chromium on 127.0.0.1.

Skipped, with the reason, only when Playwright or /usr/bin/chromium is missing (.ci/run
installs both: the ``browser`` extra (part of ``dev``) and ``apt-get install chromium``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from minions_actors import ActorSystem, Minion, StartWorkflow

from ..conftest import QUIET, wait_until
from .observer_apps import SECRET, TOKEN, Orders, Team, Worker, get

CHROMIUM = os.environ.get("MINIONS_CHROMIUM", "/usr/bin/chromium")
# CI sets MINIONS_REQUIRE_BROWSER=1 after installing both: there a missing one fails
_REQUIRED = os.environ.get("MINIONS_REQUIRE_BROWSER") == "1"
try:
    from playwright import sync_api
except ImportError:
    if _REQUIRED:
        raise
    pytest.skip("Playwright is not installed: pip install -e '.[browser]'",
                allow_module_level=True)
if not os.path.exists(CHROMIUM):
    if _REQUIRED:
        raise RuntimeError(f"no Chromium at {CHROMIUM} and MINIONS_REQUIRE_BROWSER=1")
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium",
                allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


def _start(token: str | None = None, **more: Any) -> tuple[ActorSystem, str]:
    system = ActorSystem.start(**{**QUIET, "metrics_port": 0, **more}, observer_token=token)
    assert system.metrics is not None and system.metrics.url is not None
    return system, system.metrics.url.replace("/metrics", "/observer")


def _row(page: Any, path: str) -> Any:
    return page.locator(f'tr[data-path="{path}"]')


def test_the_tree_appears_and_expands(page: Any) -> None:
    system, base = _start()
    try:
        system.spawn(Team, 3, name="team")
        wait_until(lambda: get(base, "/api/children?path=team")["total"] == 3)
        page.goto(base)
        _row(page, "team").wait_for()
        assert "Team" in _row(page, "team").inner_text()
        _row(page, "team").locator(".toggle").click()
        _row(page, "team/w2").wait_for()
        assert "Worker" in _row(page, "team/w2").inner_text()
        assert system.stop("team/w2")  # the next poll lists the node again, without it
        _row(page, "team/w2").wait_for(state="detached", timeout=30_000)
        # the poll takes the node's rows away and lists them again: w2 may be gone while w1
        # is not back yet, so wait for w1 rather than look once
        _row(page, "team/w1").wait_for(timeout=30_000)
        assert _row(page, "team/w2").count() == 0
    finally:
        system.shutdown(timeout=10)


def test_a_crash_shows_with_its_exception_and_the_restarts_move_without_reload(
        page: Any) -> None:
    system, base = _start()
    try:
        ref = system.spawn(Worker, name="w")
        page.goto(base)
        _row(page, "w").wait_for()
        restarts = _row(page, "w").locator("td").nth(7)
        assert restarts.inner_text() == "0"
        _row(page, "w").click()
        ref.tell("boom")
        page.wait_for_function(
            "document.querySelector('tr[data-path=\"w\"] td:nth-child(8)').textContent === '1'",
            timeout=30_000)
        assert "ValueError: injected crash" in _row(page, "w").inner_text()
        page.locator("#detail pre.traceback").wait_for(timeout=30_000)
        assert "on_receive" in page.locator("#detail pre.traceback").inner_text()
        page.locator("#events li.ev-crash").first.wait_for(timeout=30_000)
        ref.tell("boom")  # a second crash moves the count again, still without reload
        page.wait_for_function(
            "document.querySelector('tr[data-path=\"w\"] td:nth-child(8)').textContent === '2'",
            timeout=30_000)
    finally:
        system.shutdown(timeout=10)


def _failed_workflow(system: ActorSystem, base: str) -> None:
    Orders.ok = False
    system.spawn(Orders, name="orders").ask(StartWorkflow("fulfil", "o-1", {}), timeout=10)
    wait_until(lambda: get(base, "/api/workflows?status=failed")["total"] == 1, 30)


def test_a_failed_workflow_is_retried_from_the_page_when_actions_are_on(page: Any) -> None:
    system, base = _start(TOKEN)
    try:
        _failed_workflow(system, base)
        page.goto(base)
        page.wait_for_selector("body[data-ready]")
        page.fill("#token", TOKEN)
        page.click("nav button[data-tab=workflows]")
        button = page.locator('tr[data-id="o-1"] .retry-btn')
        button.wait_for(timeout=30_000)
        Orders.ok = True
        button.click()
        wait_until(lambda: get(base, "/api/workflow?id=o-1")["status"] == "completed", 30)
    finally:
        system.shutdown(timeout=10)


def test_no_retry_button_when_actions_are_off(page: Any) -> None:
    system, base = _start(None)
    try:
        _failed_workflow(system, base)
        page.goto(base)
        page.wait_for_selector("body[data-ready]")
        page.click("nav button[data-tab=workflows]")
        page.locator('tr[data-id="o-1"]').wait_for(timeout=30_000)
        assert page.locator(".retry-btn, .discard-btn, #stop-btn").count() == 0
        assert page.locator("#token-box").is_hidden()
    finally:
        system.shutdown(timeout=10)


class Idle(Minion):
    pass


# the 100,000 in the slow step; 10,000 (the same paging, 10x fewer spawns) by default
@pytest.mark.parametrize("count", [10_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_a_big_tree_renders_the_first_view_in_under_2_s(page: Any, count: int) -> None:
    system, base = _start(None)
    try:
        for i in range(count):
            system.spawn(Idle, name=f"m{i}")
        wait_until(lambda: get(base, "/api/overview")["minions"] == count, 120)
        t0 = time.monotonic()
        page.goto(base)
        page.wait_for_selector("body[data-ready]", timeout=30_000)
        elapsed = time.monotonic() - t0
        print(f"{count:,} minions: first view in {elapsed:.2f} s")
        assert _row(page, "m0").is_visible() and _row(page, "m199").count() == 1
        assert _row(page, "m200").count() == 0  # one page of rows, never the whole tree
        assert f"show more (200 of {count})" in page.locator("tr.more").inner_text()
        assert elapsed < 2.0, f"the first view took {elapsed:.2f} s"
    finally:
        system.shutdown(timeout=60)


def test_a_wrong_token_is_refused_on_the_page_and_no_secret_shows(
        page: Any, tmp_path: Any) -> None:
    system, base = _start(TOKEN, state_store=str(tmp_path / "m.db"))
    try:
        system.spawn(Worker, name="w").tell("boom")
        wait_until(lambda: (m := get(base, "/api/minion?path=w"))["restarts"] == 1
                   and m["state"] == "running", 30)  # (counted before the new one is built)
        system.flush(10)
        page.goto(base)
        page.wait_for_selector("body[data-ready]")
        _row(page, "w").click()
        page.locator("#stop-btn").wait_for(timeout=30_000)
        page.fill("#token", "not-the-token-at-all")
        messages: list[str] = []
        page.on("dialog", lambda d: (messages.append(d.message), d.dismiss()))
        page.click("#stop-btn")
        for _ in range(300):  # the handler runs only while Playwright is called: wait in it
            if messages:
                break
            page.wait_for_timeout(100)
        assert messages and "403" in messages[0]
        assert system.find("w") is not None and get(base, "/api/minion?path=w")["state"] == \
            "running"
        page.locator("#detail pre.traceback").wait_for(timeout=30_000)
        assert SECRET not in page.content()  # Worker did not opt in: its snapshot stays hidden
    finally:
        system.shutdown(timeout=10)
