"""The Explore page's curves chart tells families apart when their runs draw no line (one checkpoint each)."""

from __future__ import annotations

import json

import pandas as pd

from scaleplan.dashboard import charts


def _single_point_runs(families, sizes) -> pd.DataFrame:
    """Runs of one checkpoint each, the same sizes in every family (as the over-training testbed's data sets)."""
    rows = [
        {
            "run_id": f"{family}/{size:g}",
            "label": f"{family}-{size:g}",
            "family": family,
            "num_params": size,
            "tokens_seen": 20 * size,
            "flops": 120 * size * size,
            "value": 4.0 - 0.1 * k - 0.05 * f,
        }
        for f, family in enumerate(families)
        for k, size in enumerate(sizes)
    ]
    return pd.DataFrame(rows)


def _marks(fig, families):
    """(family, colour, symbol) of every trace that draws points, read back from the figure's JSON."""
    marks = []
    for trace in json.loads(fig.to_json())["data"]:
        if trace.get("x") in (None, [None]) or "markers" not in trace.get("mode", ""):
            continue
        family = next(f for f in families if trace["name"].startswith(f))
        marker = trace.get("marker", {})
        marks.append((family, marker.get("color"), marker.get("symbol", "circle")))
    return marks


def test_families_of_single_point_runs_have_their_own_marks():
    """Two families of single-checkpoint runs of the same sizes: every point of one family looks different
    from every point of the other (before: the same colour per size and the same circle, told apart only by a
    dash style that one-point runs never draw)."""
    for sizes in ([1.1e7, 7.9e7, 1.54e8, 4.11e8], [1e7 * 1.5**k for k in range(14)]):  # legend, colour bar
        families = ["overtrain-rpj", "overtrain-c4"]
        fig = charts.curves_figure(_single_point_runs(families, sizes), x="flops", x_title="x", y_title="y")
        marks = _marks(fig, families)
        assert {family for family, _, _ in marks} == set(families)
        looks = {family: {(color, symbol) for f, color, symbol in marks if f == family} for family in families}
        assert not looks[families[0]] & looks[families[1]], looks
        # the legend says which mark is which family
        legend = [t for t in fig.data if t.showlegend is not False]
        assert {t.marker.symbol for t in legend if t.name.startswith(families[0])}.isdisjoint(
            {t.marker.symbol for t in legend if t.name.startswith(families[1])}
        )
