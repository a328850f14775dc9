"""The analysis pages in headless Chromium: the served app, real clicks, numbers read off the page.

A module-scoped server (``scaleplan serve``) runs on the session's database with
SCALEPLAN_META pointing at the session's small sweep (``meta_db``). Screenshots go to
tests/artifacts/<page>.png.
"""

from __future__ import annotations

import re

import pytest

from scaleplan.core import units
from tests.dashboard.conftest import CHROMIUM, exceptions, full_page_screenshot, wait_for_app
from tests.helpers import dashboard_server

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]

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
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stMain\"]').innerText.toLowerCase()"
        ".includes('calibrated interval')",
        timeout=SLOW,
    )
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


_PLAN_CHART = """() => {
    const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.meta
                                                                       && 'budget' in g.layout.meta);
    if (!gd) return null;
    const star = gd.data.find(t => (t.name || '').startsWith('★'));
    const line = (gd.layout.shapes || []).find(s => s.type === 'line' && s.x0 === s.x1);
    const front = gd.data.find(t => (t.name || '').startsWith('Pareto'));
    return {budget: gd.layout.meta.budget, star_cost: star ? star.x[0] : null, star_p80: star ? star.y[0] : null,
            line_x: line ? line.x0 : null, frontier: front ? Array.from(front.x) : []};
}"""


def _plan_chart(page) -> dict:
    page.wait_for_function(_PLAN_CHART, timeout=SLOW)
    return page.evaluate(_PLAN_CHART)


def test_planner_page(page, analysis_url, artifacts):
    _open(page, f"{analysis_url}/planner?amount=2000&are=1")
    _wait_for_charts(page, 3)
    assert exceptions(page) == 0
    assert _metric(page, "Study budget") == "$2k"
    before = _plan_chart(page)
    assert before["budget"] == pytest.approx(2000) and before["line_x"] == pytest.approx(2000)
    assert before["star_cost"] is not None and before["star_cost"] <= 2000
    main = page.get_by_test_id("stMain").inner_text()
    assert "To predict the loss of a 70B-parameter model" in main and "★" in main

    # Lower the budget below the pick's cost, between it and the next cheaper point of the Pareto frontier:
    # the ★ must move to that cheaper design (or vanish when the pick was the cheapest well-supported one).
    cheaper = [c for c in before["frontier"] if c < before["star_cost"]]
    lower = float(int((max(cheaper) + before["star_cost"]) / 2)) if cheaper else float(int(before["star_cost"] / 2))
    assert 1 <= lower < before["star_cost"]
    box = page.locator('input[aria-label="Study budget ($)"]')
    box.fill(f"{lower:g}")
    box.press("Enter")
    wait_for_app(page, timeout=SLOW)
    page.wait_for_function(
        _PLAN_CHART.replace(
            "return {budget", f"if (Math.abs(gd.layout.meta.budget - {lower}) > 1e-6) return null; return {{budget"
        ),
        timeout=SLOW,
    )
    after = _plan_chart(page)
    assert after["budget"] == pytest.approx(lower) and after["line_x"] == pytest.approx(lower)  # the line moved
    if cheaper:
        assert after["star_cost"] == pytest.approx(max(cheaper))  # the ★ moved to the cheaper frontier design
        assert after["star_p80"] >= before["star_p80"]  # less money never buys a better pick
    else:
        assert after["star_cost"] is None
        assert "No well-supported study design fits" in page.get_by_test_id("stMain").inner_text()
    assert _metric(page, "Study budget") == units.format_dollars(lower)
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "planner.png")
    with page.expect_download(timeout=SLOW) as info:
        page.get_by_role("button", name=re.compile("Download report")).click()
    html_text = open(info.value.path(), encoding="utf-8").read()
    assert "Recommendation" in html_text and units.format_dollars(lower) in html_text


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
