"""Fit page charts in Chromium: a family with many sizes (chinchilla, 42 fitted) draws its fit chart with
no text overlapping another (its legend once covered the x axis title) at 1,280 and 1,920 px."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import CHROMIUM, wait_for_app
from tests.dashboard.test_browser_layout import layout_problems
from tests.helpers import dashboard_server

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]

SLOW = 240_000


@pytest.fixture(scope="module")
def fit_server(built_db, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fit-layout-server") / "streamlit.log"
    with dashboard_server(built_db, log=log_path, timeout=120) as (url, _process):
        yield url


@pytest.mark.parametrize("width", (1280, 1920))
def test_many_sizes_fit_chart_has_no_overlapping_text(browser, fit_server, artifacts, width):
    context = browser.new_context(viewport={"width": width, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    try:
        page.goto(f"{fit_server}/fit?family=chinchilla&ckpt=final&p=0.5")
        wait_for_app(page, timeout=SLOW)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1")
        page.wait_for_timeout(1000)  # the chart's responsive re-layout
        problems = layout_problems(page)
        if problems:
            page.screenshot(path=str(artifacts / f"fit-chinchilla-layout-{width}.png"), full_page=True)
    finally:
        context.close()
    assert not problems, problems
