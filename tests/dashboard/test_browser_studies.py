"""A lab's own isoFLOP sweep on Your runs, end to end in real Chromium: upload, name, read, restart, reopen."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from scaleplan.core import studies
from tests.core.test_isoflop import sweep
from tests.dashboard.conftest import exceptions, full_page_screenshot, wait_for_app
from tests.helpers import dashboard_server

pytestmark = [
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium"),
    pytest.mark.browser,
]

CHART = ".js-plotly-plot"


def _sweep_csv() -> bytes:
    frame = sweep(np.random.default_rng(5)).rename(
        columns={
            "run_id": "run",
            "num_params": "params",
            "tokens_seen": "tokens",
            "value": "loss",
            "compute_flops": "flops",
        }
    )
    return frame.to_csv(index=False).encode()


def _open_your_runs(page, url: str) -> None:
    page.goto(f"{url}/your-runs")
    wait_for_app(page, timeout=90_000)


def _analysis_shown(page) -> None:
    page.get_by_text("Predicted loss (checkpoint fit on").wait_for(timeout=90_000)
    wait_for_app(page, timeout=90_000)
    expect(page.locator(CHART)).to_have_count(3)  # the curves, the isoFLOP curves, N*(C)
    assert page.get_by_text("Compute-optimal split of").last.is_visible()
    assert page.get_by_text("Your runs, approach 2 (isoFLOP minima)").count() >= 1


def test_sweep_saved_survives_a_reload_and_a_restart(page, built_db, tmp_path, monkeypatch, artifacts):
    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    with dashboard_server(built_db, log=tmp_path / "first.log", timeout=90) as (url, _process):
        _open_your_runs(page, url)
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            files=[{"name": "isoflop.csv", "mimeType": "text/csv", "buffer": _sweep_csv()}]
        )
        page.get_by_role("heading", name="Preview").wait_for(timeout=90_000)
        assert page.get_by_text("Columns read from your file (csv)").is_visible()
        _analysis_shown(page)
        assert exceptions(page) == 0
        full_page_screenshot(page, artifacts / "your-runs-isoflop.png")

        name_box = page.get_by_label("Study name")
        name_box.fill("sweep A")
        page.get_by_role("button", name="Save as study").click()
        page.get_by_text("Saved as study").wait_for()
        wait_for_app(page)
        assert [s.name for s in studies.list_studies(store)] == ["sweep A"]

        page.reload()
        wait_for_app(page, timeout=90_000)
        assert page.get_by_text("No file uploaded yet").is_visible()
        page.get_by_role("button", name="Open this study").click()
        page.get_by_text("Opened study").wait_for()
        _analysis_shown(page)
        assert page.get_by_text("Stored study in use").is_visible()

    # A new server (a restart): the study is still there and opens the same way.
    with dashboard_server(built_db, log=tmp_path / "second.log", timeout=90) as (url, _process):
        _open_your_runs(page, url)
        expect(page.get_by_text("35 rows from isoflop.csv")).to_be_visible()
        page.get_by_role("button", name="Open this study").click()
        page.get_by_text("Opened study").wait_for()
        _analysis_shown(page)
        assert exceptions(page) == 0
        full_page_screenshot(page, artifacts / "your-runs-reopened.png")

        # ... and plans its next rung on the Budget planner (a link naming the study, as the page writes it).
        page.goto(f"{url}/planner?from=sweep%20A")
        wait_for_app(page, timeout=120_000)
        page.get_by_role("heading", name="The next rung of a stored study").wait_for(timeout=120_000)
        page.get_by_text("Your study (35 runs").first.wait_for(timeout=120_000)
        assert page.get_by_role("button", name=re.compile("Edit your study's runs")).is_visible()
        assert exceptions(page) == 0
        full_page_screenshot(page, artifacts / "planner-next-rung.png")
