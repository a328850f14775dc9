"""Interaction latency of the dashboard in a real browser: widget change -> updated chart.

Starts ``python -m core.cli --db DB serve --port P --address 127.0.0.1 --headless`` (with
$SCALEPLAN_META pointing at ``--meta`` when given), drives headless Chromium (/usr/bin/chromium)
with Playwright and, for each page, flips one widget back and forth. Each change is timed from
the input event until the Streamlit script run has finished (the app's "running" state is gone)
*and* the chart's data differ from before (a signature of every Plotly chart's traces). The
first two changes warm the caches and are not counted; the median of the rest is printed.

    python benchmarks/bench_dashboard.py --db data/scaleplan.duckdb [--meta data/meta.duckdb] [--repeats 10]

Pages and changes:
    explore   x axis: tokens <-> compute (segmented control)         target < 300 ms
    fit       fraction of training used: 1.00 <-> 0.95 (slider keys)  target < 1 s
    planner   target parameters N: 70B <-> 35B (text input)           target < 1 s

Cold Fit page (``--cold``, on by default): a fresh server process per repeat, the browser
opens ``/fit?family=pythia`` and the time is taken from navigation until the page shows its
fit chart (the trace FIT_CHART_TRACE drawn; not the observed-points chart the page shows while it
fits) and the calibrated interval ("90% interval 1.23-1.45"), i.e. database, fit, calibration and
interval all cold in a server that has imported its modules (as ``scaleplan serve`` does before it
answers its health check). Target < 1 s. The time until the server answers its
health check is printed apart (it is the same for every page).

The stack's floor (``--floor``, on by default), measured the same way in the same run: a fresh
Streamlit server per repeat for a page with nothing but one line of text ("90% interval
1.93-2.20") and one three-point Plotly chart, under this repository's .streamlit/config.toml; the
server imports Plotly and builds one figure before it serves (FLOOR_LAUNCHER), as the dashboard's
server warms what its first page needs (CONDITIONS, printed with the results).
No page built on Streamlit and Plotly shows a chart sooner on this machine; the difference
between it and the cold Fit page is what the Fit page itself costs. Beside it, the multipage floor
(FLOOR_NAV_APP): the same page as the second page of an ``st.navigation`` app, opened at /fit as the
Fit page is, i.e. what being a multipage app costs before the page draws anything of its own; the
target stays relative to the plain floor. ``--mock N``: a static copy of the Fit page's first view
with its options in popovers and no computation (FIT_MOCK_APP), how close the page could come.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import dashboard_server, free_port, streamlit_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

# Trace arrays may be plain arrays or Plotly's {dtype, bdata} typed-array encoding: hash their JSON ends.
SIGNATURE_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
    const data = el.data || [];
    const tail = (a) => { const s = JSON.stringify(a === undefined ? null : a); return s.length + s.slice(-48); };
    return data.map(t => [t.name, tail(t.x), tail(t.y)].join(',')).join(';');
}).join('|')"""
IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') !== 'running'
        && document.querySelectorAll('.js-plotly-plot').length > 0;
}"""
CHANGED_JS = (
    """(old) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') === 'running') return false;
    const sig = ("""
    + SIGNATURE_JS
    + """)();
    return sig !== old && sig.length > 0;
}"""
)


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(IDLE_JS, timeout=180_000)
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE_JS, timeout=180_000)


def timed(page, action) -> float:
    old = page.evaluate(SIGNATURE_JS)
    t0 = time.perf_counter()
    action()
    page.wait_for_function(CHANGED_JS, arg=old, timeout=180_000, polling="raf")
    return time.perf_counter() - t0


def bench_explore(page, base: str, repeats: int) -> list[float]:
    open_page(page, f"{base}/explore?family=pythia")
    control = page.get_by_test_id("stButtonGroup").filter(has_text="Tokens")
    labels = ["Compute (FLOPs)", "Tokens"]
    return [
        timed(page, lambda i=i: control.get_by_text(labels[i % 2], exact=True).click()) for i in range(repeats + 2)
    ][2:]


def bench_fit(page, base: str, repeats: int) -> list[float]:
    open_page(page, f"{base}/fit?family=pythia")
    slider = page.get_by_role("slider").first
    keys = ["ArrowLeft", "ArrowRight"]
    times = []
    for i in range(repeats + 2):
        slider.focus()
        times.append(timed(page, lambda i=i: slider.press(keys[i % 2])))
    return times[2:]


def bench_planner(page, base: str, repeats: int) -> list[float]:
    open_page(page, f"{base}/planner")
    box = page.locator('input[aria-label="Target parameters N"]')
    values = ["35B", "70B"]

    def change(value: str) -> None:
        box.fill(value)
        box.press("Enter")

    return [timed(page, lambda i=i: change(values[i % 2])) for i in range(repeats + 2)][2:]


# The page is ready when it shows the interval text and a drawn Plotly chart with a trace named
# ``trace`` (any trace when empty): the Fit page's own chart, not the observed-points chart it shows
# while it fits.
INTERVAL_JS = """(trace) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const main = document.querySelector('[data-testid="stMain"]');
    const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
    return !!app && !!main && /\\d+% interval \\d/.test(main.innerText)
        && charts.some(el => !trace || (el.data || []).some(t => t.name === trace));
}"""
CHART_JS = "() => document.querySelectorAll('.js-plotly-plot').length > 0"
FLOOR_RATIO_TARGET = 1.3  # issue 20: the cold Fit page at most 1.3x the floor of the same run
FIT_CHART_TRACE = "Prediction at the target's D"  # dashboard.analysis_charts.fit_figure's target marker
# the app's script has started (or already drew): what comes before is loading the page's JavaScript
RUNNING_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && (app.getAttribute('data-test-script-state') === 'running'
                     || document.querySelectorAll('.js-plotly-plot').length > 0);
}"""


FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st

st.set_page_config(layout="wide")
st.markdown("90% interval 1.93-2.20")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1.0, 3.0, 2.0])))
"""

# The same page as the second of two pages of an st.navigation app, opened at its own URL (/fit) as the
# cold Fit page is: what the dashboard's being a multipage app costs by itself (the frontend first asks
# /fit/_stcore/health, gets 404 and retries at /, and draws the navigation), printed beside the floor.
FLOOR_NAV_APP = """import plotly.graph_objects as go
import streamlit as st

st.set_page_config(layout="wide")


def home():
    st.markdown("home")


def fit():
    st.markdown("90% interval 1.93-2.20")
    st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1.0, 3.0, 2.0])))


st.navigation([st.Page(home, title="Home", default=True), st.Page(fit, title="Fit", url_path="fit")]).run()
"""

# A static copy of the Fit page's first view at /fit of a multipage app (``--mock``, off by default): the
# family, target and law selectors, the fit options and the borrowing in popovers (their widgets are
# drawn only when opened), four metric cards, the interval line, a chart of the fit chart's size (22
# traces, ~900 points, legend, log x axis, error bar), the bootstrap toggle and a small Markdown table;
# no database, no fit. How close the page could come to the floor with its options on demand.
FIT_MOCK_APP = """import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(layout="wide")


def home():
    st.markdown("home")


def fit():
    c = st.columns([3, 3, 2])
    c[0].selectbox("Family", ["pythia", "opt"])
    c[1].selectbox("Target", ["pythia-12b", "pythia-6.9b"])
    c[2].selectbox("Law", ["chinchilla"])
    o = st.columns(3)
    with o[0].popover("Fit options"):
        st.multiselect("Small runs to fit on", ["a", "b"], default=["a"])
        st.slider("Fraction of training used", 0.1, 1.0, 1.0, step=0.05)
        st.number_input("Drop checkpoints", 0.0, 100.0, 10.0)
    with o[1].popover("Borrow parameters"):
        st.multiselect("Parameters to borrow", ["E", "A"])
    cards = st.columns(4)
    for i, card in enumerate(cards):
        card.metric(f"Card {i}", "1.234")
        card.caption("note")
    st.markdown("90% interval 1.93-2.20")
    tokens = np.geomspace(1e10, 3e11, 14)
    figure = go.Figure()
    for k, n in enumerate(np.geomspace(7e7, 7e9, 6)):
        loss = 1.7 + 400 / n**0.34 + 1500 / tokens**0.3
        name = f"{n:.2g} (fit)"
        figure.add_scatter(x=tokens, y=loss, mode="markers", name=name, legendgroup=name)
        figure.add_scatter(x=tokens[:12], y=loss[:12], mode="markers", name=name, legendgroup=name, showlegend=False)
        grid = np.geomspace(1e10, 3e11, 80)
        figure.add_scatter(x=grid, y=1.7 + 400 / n**0.34 + 1500 / grid**0.3, mode="lines", name=name,
                           legendgroup=name, showlegend=False, line={"dash": "dash"})
    grid = np.geomspace(1e10, 3e11, 120)
    figure.add_scatter(x=grid, y=1.7 + 400 / 1.2e10**0.34 + 1500 / grid**0.3, mode="lines", name="target (predicted)")
    figure.add_scatter(x=tokens[:26], y=1.7 + 400 / 1.2e10**0.34 + 1500 / tokens**0.3, mode="markers", name="actual")
    figure.add_scatter(x=[3e11], y=[2.0], mode="markers", name="Prediction at the target's D")
    figure.add_scatter(x=[3e11], y=[2.0], mode="markers", name="90% calibrated interval",
                       error_y={"type": "data", "array": [0.1], "arrayminus": [0.1]})
    figure.update_layout(height=680, xaxis_type="log", legend={"orientation": "h"})
    st.plotly_chart(figure)
    st.toggle("Parameter intervals by bootstrap")
    st.markdown("| Parameter | Value |\\n|---|---|\\n| E | 1.7 |")


st.navigation([st.Page(home, title="Home", default=True), st.Page(fit, title="Fit", url_path="fit")]).run()
"""

Server = Callable[[], AbstractContextManager[tuple[str, object]]]


def bench_cold(
    browser, server: Server, path: str, repeats: int, trace: str = ""
) -> list[tuple[float, float, float, float]]:
    """Per fresh server: (start to healthy, navigation to the script's start, to the first chart, to the interval)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with server() as (base, _process):
            healthy = time.perf_counter() - t0
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(180_000)
            t1 = time.perf_counter()
            page.goto(f"{base}{path}")
            page.wait_for_function(RUNNING_JS, polling="raf")
            running = time.perf_counter() - t1
            page.wait_for_function(CHART_JS, polling="raf")
            chart = time.perf_counter() - t1
            page.wait_for_function(INTERVAL_JS, arg=trace, polling="raf")
            out.append((healthy, running, chart, time.perf_counter() - t1))
            context.close()
    return out


# The floor's server warms what its page needs before it serves, as ``scaleplan serve`` does for the
# dashboard (its modules before the health check, Plotly's first figure, the database and the
# calibration in a thread from then on: dashboard.warmup): Plotly imported and one figure built
# and serialised, so the floor page's own figure is not the process's first.
FLOOR_LAUNCHER = """import sys

import plotly.graph_objects as go
import plotly.io as pio

pio.to_json(go.Figure(go.Scatter(x=[1, 2], y=[1.0, 2.0])), validate=False)
from streamlit.web import cli

sys.argv = ["streamlit", "run", *sys.argv[1:]]
sys.exit(cli.main())
"""
CONDITIONS = (
    "cold = a fresh server per repeat, its first page opened as soon as the server answers its health "
    "check; each server warms what its first page needs when it starts (the floor: Plotly and one "
    "figure; scaleplan serve: its modules, then Plotly's first figure, the database and the calibration "
    "in a background thread)"
)


def floor_server(app: Path) -> Server:
    """A fresh Streamlit server for the floor page ``app`` (see the module docstring)."""
    launcher = app.with_name("floor_launcher.py")
    launcher.write_text(FLOOR_LAUNCHER)

    def start():
        port = free_port()
        return streamlit_server(
            [
                sys.executable,
                str(launcher),
                str(app),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            port,
        )

    return start


def report_cold(label: str, cold: list[tuple[float, float, float, float]], target: float | None) -> list[float]:
    med = [statistics.median(c[i] for c in cold) for i in range(4)]
    verdict = f" (target < {target * 1000:.0f} ms: {'ok' if med[3] < target else 'SLOW'})" if target else ""
    print(
        f"{label} (fresh server each, n={len(cold)}): server healthy after {med[0]:.2f} s; from navigation: "
        f"script starts {med[1] * 1000:.0f} ms (page JavaScript loaded), first chart {med[2] * 1000:.0f} ms, "
        f"interval and its chart {med[3] * 1000:.0f} ms{verdict}; from the script's start to the interval "
        f"{(med[3] - med[1]) * 1000:.0f} ms"
    )
    return med


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="database (default: from the settings)")
    parser.add_argument("--meta", type=Path, default=None, help="meta-analysis results (default: from the settings)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pages", nargs="*", default=["explore", "fit", "planner"])
    parser.add_argument("--cold", type=int, default=3, help="fresh servers for the cold Fit page (0: skip)")
    parser.add_argument(
        "--floor",
        type=int,
        default=3,
        help="fresh servers for the stack's floor page (one text line, one Plotly chart; 0: skip)",
    )
    parser.add_argument(
        "--mock",
        type=int,
        default=0,
        help="fresh servers for a static copy of the Fit page's first view, options in popovers (FIT_MOCK_APP)",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"bench_dashboard: needs Debian's Chromium at {CHROMIUM} (apt-get install chromium).", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    benches = {"explore": (bench_explore, 0.3), "fit": (bench_fit, 1.0), "planner": (bench_planner, 1.0)}
    from scaleplan.core.settings import resolve_settings

    settings = resolve_settings(db=args.db, meta=args.meta)
    if not settings.db_path.exists():
        if settings.db_explicit:  # a mistyped --db is not built over (scaleplan's rule too)
            print(
                f"bench_dashboard: no database at {settings.db_path}; build it with `scaleplan --db "
                f"{settings.db_path} data build`.",
                file=sys.stderr,
            )
            return 2
        from scaleplan.core import storage

        print(f"bench_dashboard: building the database at {settings.db_path} first", file=sys.stderr)
        storage.ensure_database(settings.db_path, mirror=settings.mirror, progress=False)
    meta = settings.meta_path if settings.meta_path.exists() else None
    with (
        dashboard_server(settings.db_path, meta=meta, port=args.port or None) as (base, _process),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(180_000)
        print(f"{'page':<10}{'median':>10}{'min':>10}{'max':>10}{'target':>10}  n={args.repeats}, warm cache")
        for name in args.pages:
            bench, target = benches[name]
            times = bench(page, base, args.repeats)
            median = statistics.median(times)
            print(
                f"{name:<10}{median * 1000:>8.0f}ms{min(times) * 1000:>8.0f}ms{max(times) * 1000:>8.0f}ms"
                f"{target * 1000:>8.0f}ms  {'ok' if median < target else 'SLOW'}"
            )
        if args.cold or args.floor:
            print(CONDITIONS)
        cold: list[tuple[float, float, float, float]] = []
        floor_runs: list[tuple[float, float, float, float]] = []
        nav_runs: list[tuple[float, float, float, float]] = []
        mock_runs: list[tuple[float, float, float, float]] = []
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as folder:
            app = Path(folder) / "floor_app.py"
            app.write_text(FLOOR_APP)
            nav_app = Path(folder) / "floor_nav_app.py"
            nav_app.write_text(FLOOR_NAV_APP)
            mock_app = Path(folder) / "fit_mock_app.py"
            mock_app.write_text(FIT_MOCK_APP)
            # One of each in turn: on a shared machine a load that changes during the run falls on both alike.
            for i in range(max(args.cold, args.floor, args.mock)):
                if i < args.cold:
                    cold += bench_cold(
                        browser,
                        lambda: dashboard_server(settings.db_path, meta=meta),
                        "/fit?family=pythia",
                        1,
                        trace=FIT_CHART_TRACE,
                    )
                if i < args.floor:
                    floor_runs += bench_cold(browser, floor_server(app), "/", 1)
                    nav_runs += bench_cold(browser, floor_server(nav_app), "/fit", 1)
                if i < args.mock:
                    mock_runs += bench_cold(browser, floor_server(mock_app), "/fit", 1)
        # its target is relative to the floor of the same run (FLOOR_RATIO_TARGET), printed below
        fit_page = report_cold("cold Fit page", cold, target=None) if cold else None
        floor = (
            report_cold("stack floor: Streamlit + one Plotly chart", floor_runs, target=None) if floor_runs else None
        )
        nav_floor = (
            report_cold("multipage floor: the floor page at /fit of a two-page app", nav_runs, target=None)
            if nav_runs
            else None
        )
        if floor and nav_floor:
            print(f"multipage floor: {nav_floor[3] / floor[3]:.2f}x the floor (what st.navigation and a page URL cost)")
        if fit_page and nav_floor:
            print(f"cold Fit page: {fit_page[3] / nav_floor[3]:.2f}x the multipage floor")
        mock = report_cold("static copy of the Fit page's first view", mock_runs, target=None) if mock_runs else None
        if mock and floor:
            print(f"static copy of the Fit page's first view: {mock[3] / floor[3]:.2f}x the floor")
        if fit_page and floor:
            pairs = [c[3] / f[3] for c, f in zip(cold, floor_runs)]
            print(
                f"cold Fit page above the stack's floor: {(fit_page[3] - floor[3]) * 1000:.0f} ms to the interval "
                f"({fit_page[3] / floor[3]:.2f}x the floor; per pair of runs "
                f"{', '.join(f'{r:.2f}' for r in pairs)}x; target <= {FLOOR_RATIO_TARGET:g}x: "
                f"{'ok' if fit_page[3] / floor[3] <= FLOOR_RATIO_TARGET else 'SLOW'})"
            )
        if cold or floor_runs or mock_runs:
            print(
                f"load average (1 min) {load:.1f} at the start of the cold runs, {os.getloadavg()[0]:.1f} at their end"
            )
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
