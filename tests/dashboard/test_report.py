"""scaleplan.dashboard.report: a self-contained HTML report in which every user string is escaped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scaleplan.dashboard import analysis_charts, report

EVIL = "<script>alert('x')</script>"


def _report(**overrides) -> str:
    figure = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name=EVIL))
    args = dict(
        title=f"Report {EVIL}",
        subtitle=EVIL,
        inputs=[("Family", EVIL), ("Runs", f"a, {EVIL}")],
        metrics=[("Predicted loss", "1.234", f"band {EVIL}")],
        recommendation=f"Train {EVIL}",
        tables=[(f"Runs {EVIL}", pd.DataFrame({"Run": [EVIL], EVIL: [1.0]}))],
        figures=[("Chart", figure), (f"Second {EVIL}", figure)],
        notes=[EVIL],
        link=f"http://localhost/fit?family={EVIL}",
    )
    args.update(overrides)
    return report.build_report(**args)


def test_user_strings_are_escaped():
    text = _report()
    assert EVIL not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<script>alert" not in text


def test_report_is_self_contained():
    text = _report()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("plotly.js v") <= 2  # inlined once (its banner), not loaded from a CDN
    assert 'src="https://cdn.plot.ly' not in text
    assert len(text) > 1_000_000  # plotly.js itself is inside
    assert text.count('class="plotly-graph-div"') == 2


def test_only_web_links():
    text = _report(link="javascript:alert(1)")
    assert 'href="javascript:' not in text and "Reproduce this view" not in text


def test_fit_figure_escapes_run_names():
    curves = pd.DataFrame(
        {
            "run_id": ["r1"] * 3 + ["r2"] * 3,
            "num_params": [1e8] * 3 + [4e8] * 3,
            "tokens_seen": [2e10, 4e10, 8e10] * 2,
            "value": [3.0, 2.9, 2.8, 2.7, 2.6, 2.5],
        }
    )
    fit_runs = pd.DataFrame({"run_id": ["r1", "r2"], "label": [EVIL, "ok"], "num_params": [1e8, 4e8]})
    used = curves.rename(columns={"value": "loss"})
    params = {"E": 1.7, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.28}
    figure = analysis_charts.fit_figure(
        curves=curves,
        fit_runs=fit_runs,
        used=used,
        params=params,
        target_label=EVIL,
        target_params=1e9,
        target_tokens=1e11,
        target_run=None,
        predicted=2.3,
        band=None,
        grid=np.geomspace(1e10, 1e11, 20),
        y_title="Loss (nats/token)",
        min_tokens=10e9,
    )
    text = report.build_report(title="t", inputs=[], figures=[("f", figure)])
    assert EVIL not in text
    for trace in figure.data:
        assert EVIL not in str(trace.name) and EVIL not in str(trace.customdata)


def test_report_shows_identifiability_warnings_escaped():
    from scaleplan.dashboard.report import build_report

    page = build_report(
        title="t",
        inputs=[("a", 1)],
        metrics=[("Predicted loss", "2.000", "90% interval 1.900–2.100")],
        warnings=["Exactly 3 model sizes", "<script>alert(1)</script>"],
    )
    assert "Identifiability warnings" in page and "Exactly 3 model sizes" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.index("Identifiability warnings") < page.index("<h2>Inputs</h2>")  # next to the results
