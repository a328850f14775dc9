"""The analysis pages in headless Chromium: the served app, real clicks, numbers read off the page.

A module-scoped server (``scaleplan serve``) runs on the session's database with
SCALEPLAN_META pointing at the session's small sweep (``meta_db``). Screenshots go to
tests/artifacts/<page>.png.
"""

from __future__ import annotations

import re

import pytest

from tests.dashboard.conftest import CHROMIUM, exceptions, full_page_screenshot, wait_for_app
from tests.helpers import dashboard_server

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]

SLOW = 120_000  # ms: first fits and bootstraps of a cold server


@pytest.fixture(scope="module")
def analysis_url(built_db, meta_db, tmp_path_factory):
    """`scaleplan serve` with the small meta-analysis sweep, on a free local port."""
    log_path = tmp_path_factory.mktemp("analysis-server") / "streamlit.log"
    with dashboard_server(built_db, meta=meta_db, log=log_path, timeout=90) as (url, _process):
        yield url


def _open(page, url: str) -> None:
    page.set_default_timeout(SLOW)
    page.goto(url)
    wait_for_app(page, timeout=SLOW)


def _metric(page, label: str) -> str:
    card = page.get_by_test_id("stMetric").filter(has_text=label).first
    return card.get_by_test_id("stMetricValue").inner_text().strip()


def _wait_for_charts(page, count: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {count}", timeout=SLOW)
    wait_for_app(page, timeout=SLOW)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in a selectbox: type to filter the (virtualised) list, then click the match."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=re.compile("^" + re.escape(option) + r"\b")).first.click()
    wait_for_app(page, timeout=SLOW)


def test_fit_page(page, analysis_url, artifacts):
    _open(page, f"{analysis_url}/fit")
    _wait_for_charts(page, 1)
    assert exceptions(page) == 0
    first = float(_metric(page, "Predicted loss"))
    assert 1.0 < first < 2.0
    # the calibrated interval, or why there is none
    assert "calibrated interval" in page.get_by_test_id("stMain").inner_text().lower()

    _choose(page, "Family", "pythia-deduped")
    page.wait_for_function("() => location.search.includes('pythia-deduped')", timeout=SLOW)
    _wait_for_charts(page, 1)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stMain\"]').innerText.toLowerCase()"
                           ".includes('calibrated interval')", timeout=SLOW)
    assert exceptions(page) == 0
    second = float(_metric(page, "Predicted loss"))
    assert 1.0 < second < 2.5
    assert _metric(page, "ARE (last 30%)").endswith("%")
    text = page.get_by_test_id("stMain").inner_text()
    assert "Tokens seen (tokens, log scale)" in page.locator(".js-plotly-plot").first.inner_html() or "Tokens" in text
    full_page_screenshot(page, artifacts / "fit.png")

    # The HTML report is generated on click (deferred) and is self-contained.
    with page.expect_download(timeout=SLOW) as info:
        page.get_by_role("button", name=re.compile("Download report")).click()
    html_text = open(info.value.path(), encoding="utf-8").read()
    assert html_text.startswith("<!DOCTYPE html>") and "pythia-deduped" in html_text
    assert f"{second:.3f}" in html_text and "plotly-graph-div" in html_text


def test_planner_page(page, analysis_url, artifacts):
    _open(page, f"{analysis_url}/planner")
    _wait_for_charts(page, 2)
    assert exceptions(page) == 0
    assert _metric(page, "Study budget") == "1.4e22 FLOPs"  # $20k at $2/h, 989 TFLOP/s, 40% MFU
    box = page.locator('input[aria-label="Study budget ($)"]')
    box.fill("50000")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('amount=50000')", timeout=SLOW)
    wait_for_app(page, timeout=SLOW)
    assert _metric(page, "Study budget") == "3.6e22 FLOPs"
    main = page.get_by_test_id("stMain").inner_text()
    assert "To predict the loss of a 70B-parameter model" in main
    assert page.get_by_test_id("stDataFrame").count() >= 1
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "planner.png")
    with page.expect_download(timeout=SLOW) as info:
        page.get_by_role("button", name=re.compile("Download report")).click()
    html_text = open(info.value.path(), encoding="utf-8").read()
    assert "Recommendation" in html_text and "3.6e22 FLOPs" in html_text


def test_planner_impossible_budget_in_browser(page, analysis_url):
    _open(page, f"{analysis_url}/planner?amount=0")
    assert exceptions(page) == 0
    assert "Impossible study budget" in page.get_by_test_id("stMain").inner_text()


def test_reliability_page(page, analysis_url, artifacts):
    _open(page, f"{analysis_url}/reliability")
    _wait_for_charts(page, 3)
    assert exceptions(page) == 0
    assert "Holds on our data?" in page.get_by_test_id("stMain").inner_text()
    full_page_screenshot(page, artifacts / "reliability.png")
