"""Fit page, downstream task (issue 23): pick a task in Chromium and read the predicted accuracy and interval."""

from __future__ import annotations

import json
import re

import pytest

from tests.dashboard.conftest import CHROMIUM, exceptions, full_page_screenshot, wait_for_app
from tests.helpers import dashboard_server

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]

SLOW = 180_000  # ms: a cold server fits the loss law and runs the held-out reproduction once


@pytest.fixture(scope="module")
def server_url(built_db, meta_db, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fit-task-server") / "streamlit.log"
    with dashboard_server(built_db, meta=meta_db, log=log_path, timeout=90) as (url, _process):
        yield url


def _card(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first


def test_pick_a_task_and_read_its_predicted_accuracy_and_interval(page, server_url, artifacts, mirror):
    page.set_default_timeout(SLOW)
    page.goto(f"{server_url}/fit?family=pythia")
    wait_for_app(page, timeout=SLOW)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=SLOW)
    page.get_by_test_id("stSelectbox").filter(has_text="Predict the target's accuracy on a task").first.click()
    page.keyboard.type("zero-shot/arc_easy")
    page.get_by_role("option", name="zero-shot/arc_easy", exact=True).first.click()
    wait_for_app(page, timeout=SLOW)
    _card(page, "Predicted accuracy").wait_for(timeout=SLOW)
    assert exceptions(page) == 0

    card = _card(page, "Predicted accuracy")
    value = card.get_by_test_id("stMetricValue").inner_text().strip()
    predicted = float(value.removesuffix(" points"))
    text = page.get_by_test_id("stMain").inner_text()
    found = re.search(r"90% interval ([\d.]+)–([\d.]+) points", text)
    assert found, text[-3000:]
    low, high = float(found.group(1)), float(found.group(2))
    assert 25.0 < low < predicted < high <= 100.0  # above ARC-Easy's chance (4 choices)

    # the actual card is the 12B run's final lm-eval file, read here from the mirror
    results = json.loads((mirror / "pythia/evals/pythia-v1/pythia-12b/zero-shot/12b_step143000.json").read_text())
    actual = _card(page, "Actual accuracy").get_by_test_id("stMetricValue").inner_text().strip()
    assert float(actual.removesuffix(" points")) == pytest.approx(100 * results["results"]["arc_easy"]["acc"], abs=0.05)
    assert "held-out errors of overtrain" in text  # the interval's basis: the other source group
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=SLOW)
    full_page_screenshot(page, artifacts / "fit_task.png")
