"""End to end in real headless Chromium (Playwright): the served dashboard as a person uses it.

Fixtures (tests/dashboard/conftest.py): ``server_url`` serves the app on a free local port with
the session's database, ``page`` is a fresh 1600x1000 tab, ``open_page`` navigates and waits
for the script run to finish. Full-page screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from scaleplan.core import userdata
from tests.dashboard.conftest import exceptions, full_page_screenshot, wait_for_app

pytestmark = [
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium"),
    pytest.mark.browser,
]

CHART = ".js-plotly-plot"


def _families_box(page):
    return page.get_by_test_id("stMultiSelect").filter(has_text="Families")


def _set_families(page, names: list[str]) -> None:
    """Replace the chosen families, the way a person does: remove the tags, pick from the list."""
    box = _families_box(page)
    remove = box.get_by_role("button", name=re.compile(r"^Remove "))
    while remove.count():
        remove.first.click()
        wait_for_app(page)
    for name in names:
        box.locator("input").click()
        box.locator("input").fill(name)
        page.get_by_role("option", name=name, exact=True).click()
        page.keyboard.press("Escape")
        wait_for_app(page)


def test_overview(page, open_page, artifacts):
    open_page(page)
    assert page.get_by_role("heading", name="scaleplan").is_visible()
    page.wait_for_selector(CHART)
    # The table is drawn after the chart: wait for it (a count taken at once failed once in CI, 0 tables).
    expect(page.get_by_test_id("stMetric")).to_have_count(4, timeout=30_000)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=30_000)
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "overview.png")


@pytest.mark.parametrize("path", ["", "overview"])
def test_overview_at_root_and_at_its_name(page, open_page, path):
    """/ and /overview both show the Overview (no "Page not found"), marked in the menu."""
    open_page(page, path)
    expect(page).to_have_url(re.compile(r":\d+/overview$"))
    assert page.get_by_role("heading", name="scaleplan").is_visible()
    assert page.get_by_text("Page not found").count() == 0
    current = page.get_by_test_id("stSidebarNav").locator('a[aria-current="page"]')
    expect(current).to_have_text(re.compile("Overview"))
    assert exceptions(page) == 0


def test_navigation_links(page, open_page):
    open_page(page)
    nav = page.get_by_test_id("stSidebarNav")
    for title, url in (
        ("Explore the collection", r"/explore(\?.*)?$"),
        ("Your runs", r"/your-runs$"),
        ("Overview", r":\d+/overview$"),
    ):
        nav.get_by_role("link", name=title).click()
        expect(page).to_have_url(re.compile(url))
        wait_for_app(page)
        assert exceptions(page) == 0


def test_explore_main_path(page, open_page, artifacts):
    open_page(page, "explore")
    page.wait_for_selector(CHART)
    _set_families(page, ["gpt3"])
    page.wait_for_selector(CHART)
    assert "family=gpt3" in page.url
    expect(page.locator(CHART).locator("text=175B").first).to_be_visible()  # the legend names the sizes
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "explore.png")

    page.get_by_test_id("stButtonGroup").get_by_text("Compute (FLOPs)").click()
    wait_for_app(page)
    expect(page).to_have_url(re.compile(r"x=flops"))
    expect(page.locator(CHART)).to_have_count(1)
    expect(page.locator(CHART).locator("text=Training compute (FLOPs, log scale)")).to_have_count(1)
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "explore-flops.png")


def test_explore_x_axis_redraws_only_the_charts(page, server_url):
    """Flipping the x axis reruns the charts' fragment: the server sends the charts again, not the filters,
    the runs table or its download."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    sent: list[str] = []

    def on_socket(ws) -> None:
        def on_frame(payload) -> None:
            if isinstance(payload, (bytes, bytearray)):
                message = ForwardMsg.FromString(bytes(payload))
                if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
                    sent.append(message.delta.new_element.WhichOneof("type"))

        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    page.goto(f"{server_url}/explore?family=pythia")
    page.wait_for_selector(CHART)
    wait_for_app(page)
    assert "dataframe" in sent and "multiselect" in sent  # a full run sends the table and the filters
    sent.clear()
    page.get_by_test_id("stButtonGroup").get_by_text("Compute (FLOPs)").click()
    expect(page).to_have_url(re.compile(r"x=flops"))
    wait_for_app(page)
    assert "plotly_chart" in sent and "button_group" in sent
    assert "dataframe" not in sent and "multiselect" not in sent and "selectbox" not in sent
    expect(page.locator(CHART).locator("text=Training compute (FLOPs, log scale)")).to_have_count(1)
    expect(page.get_by_text("Selected runs")).to_have_count(1)  # the table above stays on the page
    assert exceptions(page) == 0


def test_explore_link_and_empty_selection(page, open_page, artifacts):
    open_page(page, "explore", family=["overtrain-c4", "no-such-family"])
    page.wait_for_selector(CHART)
    expect(page.get_by_test_id("stAlert").filter(has_text="Unknown family")).to_have_count(1)
    full_page_screenshot(page, artifacts / "explore-link.png")

    _set_families(page, [])
    assert page.get_by_text("Choose at least one family").is_visible()
    expect(page.locator(CHART)).to_have_count(0)
    assert exceptions(page) == 0


def test_your_runs_upload(page, open_page, artifacts):
    open_page(page, "your-runs")
    assert page.get_by_text("No file uploaded yet").is_visible()
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files(
        files=[{"name": "runs.csv", "mimeType": "text/csv", "buffer": userdata.TEMPLATE_CSV.encode()}]
    )
    page.get_by_role("heading", name="Preview").wait_for()
    wait_for_app(page)
    assert page.get_by_test_id("stAlertContentSuccess").get_by_text("3 runs").is_visible()
    expect(page.locator(CHART)).to_have_count(1)
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "your-runs.png")

    bad = b"name;size;steps\nx;1;2\n"
    uploader.set_input_files(files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}])
    page.get_by_text("This file cannot be used").wait_for()
    wait_for_app(page)
    assert page.get_by_text("Missing required column").is_visible()
    expect(page.locator(CHART)).to_have_count(1)  # the last valid upload stays (and the message says so)
    assert page.get_by_text("Your previous upload, runs.csv, is still in use").is_visible()
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "your-runs-error.png")


def _upload(page, name: str, data: bytes) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": data}]
    )


def test_your_runs_messages_in_plain_words(page, open_page, artifacts):
    """A workbook saved as .csv, a header-only file, and a bad file after a good one: each message in words."""
    open_page(page, "your-runs")
    _upload(page, "runs.csv", b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8)
    alert = page.get_by_test_id("stAlert").filter(has_text="This file cannot be used")
    alert.wait_for()
    wait_for_app(page)
    text = alert.inner_text()
    assert "This is not a text file" in text and "Save your table as CSV" in text
    assert "unquoted" not in text and "new-line" not in text

    _upload(page, "header.csv", b"num_params,tokens_seen,loss\n")
    page.get_by_text("has a header row but no data rows").wait_for()
    wait_for_app(page)
    assert not re.search(r":\s*$", page.get_by_test_id("stAlert").first.inner_text().strip())

    _upload(page, "good.csv", userdata.TEMPLATE_CSV.encode())
    page.get_by_role("heading", name="Preview").wait_for()
    wait_for_app(page)
    _upload(page, "bad.csv", b"name;size;steps\nx;1;2\n")
    page.get_by_text("Your previous upload, good.csv, is still in use").wait_for()
    wait_for_app(page)
    assert (
        page.get_by_test_id("stAlertContentSuccess").get_by_text("3 runs").is_visible()
    )  # the last valid upload is still shown and used
    expect(page.locator(CHART)).to_have_count(1)
    assert page.get_by_text("at or below 4B tokens by default").is_visible()
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "your-runs-kept.png")


def test_explore_two_families_with_different_default_metrics(page, open_page, artifacts):
    open_page(page, "explore", family=["pythia", "gpt3"])
    expect(page.locator(CHART)).to_have_count(2)
    charts_text = " ".join(page.locator(CHART).all_inner_texts())
    assert "LAMBADA last-word loss, zero-shot" in charts_text and "Validation loss" in charts_text
    # What a downloaded image shows: a title and the inputs under the plot, in the chart itself.
    titles = page.locator(f"{CHART} .gtitle").all_text_contents()
    assert any("pythia" in t for t in titles) and any("gpt3" in t for t in titles)
    assert page.locator(f"{CHART} .annotation-text").filter(has_text="Families pythia").count() == 1
    assert exceptions(page) == 0
    full_page_screenshot(page, artifacts / "explore-two-metrics.png")


def test_fit_report_lists_runs_by_size_and_rounds_like_the_page(page, open_page):
    page.set_default_timeout(180_000)
    open_page(page, "fit")
    # the fit first, then the interval (or the reason there is none) replaces "computing..."
    page.wait_for_function(
        "() => { const t = document.querySelector('[data-testid=\"stMain\"]').innerText;"
        " return t.includes('Fit compute share') && !t.includes('interval: computing'); }",
        timeout=180_000,
    )
    wait_for_app(page, timeout=180_000)
    card = page.get_by_test_id("stMetric").filter(has_text="Fit compute share").first
    share = card.get_by_test_id("stMetricValue").inner_text().strip()
    with page.expect_download(timeout=180_000) as info:
        page.get_by_role("button", name=re.compile("Download report")).click()
    text = open(info.value.path(), encoding="utf-8").read()
    assert f'<div class="value">{share}</div>' in text  # the same rounding as the card
    runs = re.search(r"<th>Runs in the fit</th><td>([^<]*)</td>", text).group(1).split(", ")
    sizes = {"70m": 70e6, "160m": 160e6, "410m": 410e6, "1b": 1e9, "1.4b": 1.4e9, "2.8b": 2.8e9, "6.9b": 6.9e9}
    values = [sizes[re.search(r"pythia-([\d.]+[mb])", r).group(1)] for r in runs]
    assert values == sorted(values) and len(values) >= 5
