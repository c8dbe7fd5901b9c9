"""The web page in a real headless Chromium: search, build a playlist, see the next songs."""

from __future__ import annotations

import shutil
from pathlib import Path

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
