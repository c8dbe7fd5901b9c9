"""The web page in a real headless Chromium: search, build a playlist, see the next songs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from segue.serving.app import create_app

from .support import PackageLoader, settings_with

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian chromium not installed (`make browser` or apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, serve, packages):
    url = serve(create_app(settings_with(), PackageLoader(packages, version="4")))
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(url)
        yield tab
    finally:
        context.close()


def test_playlist_to_next_songs(page) -> None:
    page.wait_for_selector("#models li[data-task='next-song']")
    assert "dev.segue-next-song v4 (item-knn)" in page.inner_text("#models")

    page.fill("#song-search", "Coldpl")
    page.wait_for_selector("#suggestions li")
    assert "Coldplay" in page.inner_text("#suggestions")
    page.click("#suggestions li >> nth=0")
    page.fill("#song-search", "아이유 - 밤편지")
    page.click("#add-song")
    page.wait_for_function("document.querySelectorAll('#playlist li').length === 2")

    page.fill("#k", "5")
    page.click("#recommend")
    page.wait_for_selector("#result-table tbody tr")
    rows = page.locator("#result-table tbody tr")
    assert rows.count() == 5
    first = rows.nth(0).locator("td")
    assert first.nth(0).inner_text() == "1"
    assert float(first.nth(3).inner_text()) > 0
    assert "dev.segue-next-song v4" in page.inner_text("#result-meta")
    playlist = page.inner_text("#playlist")
    assert "Coldplay" in playlist and "밤편지" in playlist

    rows.nth(0).locator("button.add").click()  # a recommendation joins the playlist
    page.wait_for_function("document.querySelectorAll('#playlist li').length === 3")


def test_user_mode(page) -> None:
    page.click("#recommend")
    assert "Add at least one song" in page.inner_text("#error")

    page.click("#tab-user")
    page.fill("#user-id", "1")
    page.click("#user-recommend")
    page.wait_for_selector("#result-table tbody tr")
    assert page.locator("#result-table tbody tr").count() == 10
    assert "dev.segue-user-items v4" in page.inner_text("#result-meta")

    page.fill("#user-id", "stranger")
    page.click("#user-recommend")
    page.wait_for_selector("#result-meta .fallback")
    assert "unknown user" in page.inner_text("#result-meta")


def test_api_problems_are_shown_to_the_person(page) -> None:
    page.fill("#song-search", "BTS - Butter")
    page.click("#add-song")
    page.fill("#k", "1000")
    page.click("#recommend")
    page.wait_for_selector("#error:not([hidden])")
    assert "k: must be between 1 and 100" in page.inner_text("#error")


def feedback_counts(url: str) -> dict[str, float]:
    counts = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("segue_feedback_events_total{"):
            kind = line.split('type="', 1)[1].split('"', 1)[0]
            counts[kind] = float(line.rsplit(" ", 1)[1])
    return counts


def wait_for_feedback(url: str, expected: dict[str, float]) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while {kind: feedback_counts(url).get(kind) for kind in expected} != expected:
        assert time.monotonic() < deadline, f"feedback never reached {expected}"
        time.sleep(0.05)


@pytest.fixture
def monitored(browser, serve, packages):
    settings = settings_with(
        "monitoring.event_flush_events=1", "monitoring.summary_cache_seconds=0"
    )
    url = serve(create_app(settings, PackageLoader(packages, version="4")))
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(url)
        yield url, tab
    finally:
        context.close()


def test_shown_lists_send_impressions_and_adding_or_opening_sends_clicks(monitored) -> None:
    url, page = monitored
    page.fill("#song-search", "Coldplay - Yellow")
    page.click("#add-song")
    page.fill("#k", "4")
    page.click("#recommend")
    page.wait_for_selector("#result-table tbody tr")
    wait_for_feedback(url, {"impression": 4, "click": 0})

    page.locator("#result-table tbody tr").nth(1).locator("button.add").click()
    wait_for_feedback(url, {"impression": 4, "click": 1})

    page.locator("#result-table tbody tr").nth(0).locator("button.open").click()
    wait_for_feedback(url, {"impression": 8, "click": 2})  # the opened item's list is shown
    assert page.locator("#result-table tbody tr").count() == 4


def test_the_monitoring_tab_shows_the_recent_window(monitored) -> None:
    url, page = monitored
    page.fill("#song-search", "IU - Palette")
    page.click("#add-song")
    page.click("#recommend")
    page.wait_for_selector("#result-table tbody tr")
    page.fill("#song-search", "Nobody - Nothing")
    page.click("#clear")
    page.click("#add-song")
    page.click("#recommend")
    page.wait_for_selector("#result-meta .fallback")
    page.locator("#result-table tbody tr").nth(0).locator("button.add").click()
    wait_for_feedback(url, {"impression": 20, "click": 1})

    check = {
        "checked_at": "2026-03-01T10:00:00+00:00",
        "status": "alert",
        "checks": [
            {"check": "drift_new_users", "kind": "drift", "value": 0.5, "threshold": 0.2,
             "alert": True, "message": "new users 50% of lists (threshold 20%)"},
            {"check": "drift_history_length", "kind": "drift", "value": 0.05, "threshold": 0.2,
             "alert": False, "message": "ok"},
        ],
    }  # fmt: skip
    Path(".segue/events/check.json").write_text(json.dumps(check))
    page.click("#tab-monitoring")
    page.wait_for_selector("#monitoring-body .task-summary[data-task='next-song']")
    deadline = time.monotonic() + WAIT_MS / 1000
    while "Lists served\t2" not in page.inner_text("#monitoring-body"):
        assert time.monotonic() < deadline, page.inner_text("#monitoring-body")
        page.click("#monitoring-refresh")
        page.wait_for_timeout(100)
    summary = page.inner_text("#monitoring-body")
    assert "Fallback rate\t50.0%" in summary
    assert "Click-through\t5.0%" in summary
    assert "guardrails" in summary
    assert "drift new users\t0.500 (threshold 0.200): alert" in summary
    assert "drift history length\t0.050 (threshold 0.200)" in summary
    alerts = page.inner_text("#monitoring-alerts")
    assert alerts == "drift_new_users: new users 50% of lists (threshold 20%)"
    assert page.is_hidden("#results")
