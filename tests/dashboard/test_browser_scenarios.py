"""Scenarios in a real browser: save two on the Budget planner, restart the server, compare them,
download the brief in both formats and check that their numbers are the comparison table's."""

from __future__ import annotations

import io
import os
import re
import subprocess
from contextlib import contextmanager

import pytest

from tests.dashboard.conftest import wait_for_app
from tests.dashboard.test_browser_layout import layout_problems
from tests.helpers import dashboard_server

pytestmark = pytest.mark.browser

# Numbers as the tables print them: $16.8k, 14.1%, 2.173, 7B, 5.9e21
NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?[kMBT%]?")


@contextmanager
def served(built_db, meta_db, user_db, log):
    previous = os.environ.get("SCALEPLAN_USER_DB")
    os.environ["SCALEPLAN_USER_DB"] = str(user_db)
    try:
        with dashboard_server(built_db, meta=meta_db, log=log, timeout=120) as (url, _process):
            yield url
    finally:
        if previous is None:
            os.environ.pop("SCALEPLAN_USER_DB", None)
        else:
            os.environ["SCALEPLAN_USER_DB"] = previous


def _save(page, url: str, name: str, **query: str) -> None:
    params = "&".join(f"{k}={v}" for k, v in {"mode": "size", "n": "7e9", "d": "1.4e11", "are": "5", **query}.items())
    page.goto(f"{url}/planner?{params}")
    wait_for_app(page, timeout=180_000)
    page.get_by_label("Scenario name").fill(name)
    page.get_by_label("Scenario name").press("Enter")
    wait_for_app(page, timeout=180_000)
    page.get_by_role("button", name="Save as scenario").click()
    page.get_by_text(f"Saved scenario {name}").wait_for(timeout=60_000)


def _table(page, index: int) -> list[list[str]]:
    """The cells of the page's ``index``-th static table (st.table), header row first."""
    return page.evaluate(
        """(i) => [...document.querySelectorAll('[data-testid="stTable"] table')][i].querySelectorAll('tr')
            .values().map(r => [...r.querySelectorAll('th,td')].map(c => c.innerText.trim())).toArray()""",
        index,
    )


def _pptx_text(data: bytes) -> list[str]:
    from pptx import Presentation

    cells = []
    for slide in Presentation(io.BytesIO(data)).slides:
        for shape in slide.shapes:
            if shape.has_table:
                cells += [cell.text for row in shape.table.rows for cell in row.cells]
            elif shape.has_text_frame:
                cells.append(shape.text_frame.text)
    return cells


def test_save_two_scenarios_compare_and_download_the_brief(browser, built_db, meta_db, tmp_path):
    user_db = tmp_path / "user.duckdb"
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        with served(built_db, meta_db, user_db, tmp_path / "server1.log") as url:
            _save(page, url, "small", amount="20000")
            _save(page, url, "large", amount="2000000", mfu="50")
        # a new server (a restart) finds both
        with served(built_db, meta_db, user_db, tmp_path / "server2.log") as url:
            page.goto(f"{url}/scenarios?compare=small&compare=large")
            wait_for_app(page, timeout=240_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert layout_problems(page) == []  # the frontier chart's title, legend and ticks are clear
            inputs, outcomes = _table(page, 1), _table(page, 2)  # after the saved list
            assert inputs[0][1:] == ["small", "large"]
            assert {row[0] for row in inputs[1:]} == {"Study budget", "MFU"}
            labels = [row[0] for row in outcomes]
            assert "Pick's cost (US$, GPU-hours)" in labels and "Expected ARE p80 (%)" in labels
            cost_row = outcomes[labels.index("Pick's cost (US$, GPU-hours)")]
            assert all(v.startswith("$") for v in cost_row[1:]), cost_row

            with page.expect_download(timeout=240_000) as pdf_download:
                page.get_by_role("button", name="Download brief (PDF)").click()
            pdf = tmp_path / "brief.pdf"
            pdf_download.value.save_as(pdf)
            with page.expect_download(timeout=240_000) as pptx_download:
                page.get_by_role("button", name="Download deck (PowerPoint)").click()
            pptx = tmp_path / "brief.pptx"
            pptx_download.value.save_as(pptx)
    finally:
        context.close()

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 10_000  # the page renders (charts included)
    pdf_numbers = set(NUMBER.findall(text))
    deck = _pptx_text(pptx.read_bytes())
    for row in outcomes[1:] + inputs[1:]:
        for value in row[1:]:
            # every number of the page's tables is in the PDF, and every cell is a cell of the deck
            missing = [n for n in NUMBER.findall(value) if n not in pdf_numbers]
            assert not missing, (row[0], value, missing)
            assert value in deck, (row[0], value)
    assert "scaleplan 0.1.0" in text and "data version" in text
    assert "C = 6 N D" in text and "GPU-hours = C / (3600" in text


STALE_WATCH = """
() => {
  window.__planning = 0; window.__stale = 0;
  window.__watch = setInterval(() => {
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main || !main.innerText.includes('Planning the scenarios')) return;
    window.__planning++;
    const offered = [...document.querySelectorAll('[data-testid="stDownloadButton"] button')]
      .some(b => b.innerText.includes('Download brief') && b.offsetParent !== null && !b.disabled);
    if (offered) window.__stale++;
  }, 25);
}
"""


def test_no_brief_of_the_previous_selection_is_offered_while_planning(browser, built_db, meta_db, tmp_path):
    """Review: with 'Planning the scenarios...' still running after a fourth scenario was chosen, the
    download gave the brief of the previous three."""
    import dataclasses

    from scaleplan.core import scenarios
    from scaleplan.core.userstore import user_store

    user_db = tmp_path / "user.duckdb"
    base = scenarios.PlanInputs(target_params=7e10, target_tokens=1.4e12, budget_dollars=20_000, accuracy_percent=5)
    with user_store(user_db) as con:
        for name, budget in (("a", 2e4), ("b", 5e4), ("c", 2e5)):
            scenarios.save_scenario(con, name, dataclasses.replace(base, budget_dollars=budget))
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        with served(built_db, meta_db, user_db, tmp_path / "server.log") as url:
            page.goto(f"{url}/scenarios?compare=a&compare=b")
            wait_for_app(page, timeout=240_000)
            assert page.get_by_role("button", name="Download brief (PDF)").is_visible()
            page.evaluate(STALE_WATCH)
            page.get_by_test_id("stMultiSelect").filter(has_text="Compare").first.click()
            page.get_by_role("option", name="c", exact=True).first.click()
            page.keyboard.press("Escape")
            wait_for_app(page, timeout=240_000)
            planning, stale = page.evaluate("() => [window.__planning, window.__stale]")
            assert planning > 0  # the spinner was seen, so the check below looked at the planning time
            assert stale == 0, f"the previous brief was offered in {stale} of {planning} looks while planning"
            with page.expect_download() as download:
                page.get_by_role("button", name="Download brief (PDF)").click()
            pdf = tmp_path / "brief.pdf"
            download.value.save_as(pdf)
            text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
            assert "Decision brief: a vs b vs c" in " ".join(text.split())
    finally:
        context.close()
