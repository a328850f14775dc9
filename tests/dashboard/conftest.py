"""Fixtures for dashboard tests, reusable by every page's tests.

AppTest (in-process, fast):
    ``app_test``      factory: ``app_test(page="explore.py", query_params={...})`` returns an
                      AppTest of dashboard/app.py that has run once (switched to ``page``),
                      with SCALEPLAN_DB pointing at the session's built database.
    ``dashboard_db``  sets SCALEPLAN_DB to the built database for one test; returns its path.

Browser (real headless Chromium via Playwright, needs /usr/bin/chromium):
    ``server_url``    session: ``python -m core.cli --db <built_db> serve --headless`` on a free
                      port of 127.0.0.1, stopped at the end; e.g. "http://127.0.0.1:8765".
    ``browser``       session: the Chromium browser.
    ``page``          a fresh 1600x1000 page (new context per test).
    ``open_page``     ``open_page(page, "explore", family="gpt3")``: go to a dashboard URL and wait
                      until the script run has finished.
    ``artifacts``     tests/artifacts/ (git-ignored), for screenshots.

Helpers: ``wait_for_app(page)`` waits for a script run to finish; ``exceptions(page)`` counts
exception elements.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.helpers import dashboard_server

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APPTEST_TIMEOUT = 30
VIEWPORT = {"width": 1600, "height": 1000}


# ---------------------------------------------------------------------------------------------
# AppTest


@pytest.fixture()
def dashboard_db(built_db, monkeypatch) -> Path:
    monkeypatch.setenv("SCALEPLAN_DB", str(built_db))
    return built_db


@pytest.fixture()
def app_test(dashboard_db):
    from streamlit.testing.v1 import AppTest

    def make(
        page: str | None = None,
        *,
        query_params: dict | None = None,
        session_state: dict | None = None,
        timeout: float = APPTEST_TIMEOUT,
    ):
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        for key, value in (session_state or {}).items():
            at.session_state[key] = value
        at.run()
        if page is not None:
            at.switch_page(f"views/{page}")
            if query_params:
                at.query_params.update(query_params)
            at.run()
        return at

    return make


@pytest.fixture()
def store(tmp_path, monkeypatch, meta_db):
    """An empty user store for one test (SCALEPLAN_USER_DB), with the shipped-format results (SCALEPLAN_META)."""
    path = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(path))
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    return path


# ---------------------------------------------------------------------------------------------
# Browser


@pytest.fixture(scope="session")
def server_url(built_db, tmp_path_factory):
    """The dashboard served by `scaleplan serve` on a free local port."""
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    with dashboard_server(built_db, log=log_path, timeout=90) as (url, _process):
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def wait_for_app(page, timeout: float = 30_000) -> None:
    """Wait until the app has drawn and no script run is in progress."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            if (!app || app.getAttribute('data-test-script-state') === 'running') return false;
            const main = document.querySelector('[data-testid="stMain"]');
            return !!main && main.innerText.trim().length > 0;
        }""",
        timeout=timeout,
    )
    page.wait_for_timeout(400)  # let the last deltas paint (charts, tables)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state') !== 'running'",
        timeout=timeout,
    )


def exceptions(page) -> int:
    return page.locator('[data-testid="stException"]').count()


@pytest.fixture()
def open_page(server_url):
    def go(page, path: str = "", **query) -> None:
        params = urlencode(query, doseq=True)
        page.goto(f"{server_url}/{path}" + (f"?{params}" if params else ""))
        wait_for_app(page)

    return go


def full_page_screenshot(page, path: Path) -> Path:
    """Screenshot the whole page: Streamlit scrolls inside its main container, so the viewport is
    made as tall as the content first (capped at 8000 px) and restored afterwards."""
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        const block = document.querySelector('[data-testid="stMainBlockContainer"]');
        return Math.max(main ? main.scrollHeight : 0, block ? block.scrollHeight : 0, document.body.scrollHeight);
    }""")
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 20, 8000))})
    page.wait_for_timeout(600)  # charts and tables re-layout to the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path
