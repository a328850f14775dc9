"""dashboard.analysis_charts.fit_figure on the collection's families: which checkpoints are drawn as used,
the dashed fitted law of every size, and one legend entry per size.

Truths are read from the data and the fit's own points (the rows the fit used), never from the chart code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import storage
from scaleplan.core.analysis import FitRequest, StagedAnalysis
from scaleplan.dashboard import analysis_charts, charts


def _fit(con, family: str, **request):
    curves = storage.family_curves(con, family)
    runs = curves.groupby("run_id").agg(num_params=("num_params", "first"), label=("model_name", "first"))
    runs = runs.reset_index().sort_values(["num_params", "run_id"], ignore_index=True)
    target = runs.iloc[-1]
    chosen = runs[runs["num_params"] < target["num_params"]]
    result = StagedAnalysis(
        curves, FitRequest(run_ids=tuple(sorted(chosen["run_id"])), target_run=target["run_id"], **request), n_boot=0
    ).fitted
    points = result.points
    used = pd.DataFrame(
        {
            "run_id": points.run_ids.astype(str),
            "num_params": points.num_params,
            "tokens_seen": points.tokens_seen,
            "loss": points.loss,
        }
    )
    figure = analysis_charts.fit_figure(
        curves=curves,
        fit_runs=chosen,
        used=used,
        params=dict(result.fit.params),
        target_label=str(target["run_id"]),
        target_params=result.target_params,
        target_tokens=result.target_tokens,
        target_run=str(target["run_id"]),
        predicted=result.predicted_loss,
        band=None,
        grid=np.geomspace(1e9, result.target_tokens, 20),
        y_title="loss (nats/token)",
        min_tokens=10e9,
    )
    return figure, used


def _markers(figure, filled: bool):
    hollow = "circle-open"
    return [
        t
        for t in figure.data
        if t.mode == "markers"
        and t.legendgroup
        and t.legendgroup.startswith("size")
        and (t.marker.symbol == hollow) != filled
    ]


def test_every_checkpoint_the_fit_used_is_drawn_filled(con):
    # chinchilla: 161 points in the fit (all checkpoints above 10B tokens of the 42 smaller runs);
    # chinchilla-117M's 15.4B-token checkpoint was drawn hollow by a rounding mismatch.
    figure, used = _fit(con, "chinchilla")
    curves = storage.family_curves(con, "chinchilla")
    target = curves.loc[curves["num_params"].idxmax(), "run_id"]
    shown = int((curves["num_params"] < curves.loc[curves["run_id"] == target, "num_params"].iloc[0]).sum())
    filled = sum(len(t.x) for t in _markers(figure, filled=True))
    assert filled == len(used)
    drawn = {(t.customdata[0], float(x)) for t in _markers(figure, filled=True) for x in t.x}
    assert len(drawn) == len(used)
    hollow = sum(len(t.x) for t in _markers(figure, filled=False))
    assert filled + hollow == shown  # every other checkpoint of the chosen runs is hollow


def test_one_checkpoint_per_run_still_draws_each_sizes_fitted_law_as_a_line(con):
    # overtrain-rpj: one (final) checkpoint per run; the dashed law of every fitted size spans a visible range.
    figure, used = _fit(con, "overtrain-rpj")
    lines = [t for t in figure.data if t.mode == "lines" and t.line.dash == "dash"]
    sizes_used = set(used["num_params"].astype(float))
    assert len(lines) >= len(sizes_used)
    for line in lines:
        assert float(np.max(line.x)) >= 2 * float(np.min(line.x)), line.name


def test_legend_entry_of_a_size_with_fitted_points_is_filled(con):
    # overtrain-rpj's 79M, 154M and 412M have used points, though their first runs (below the cutoff) do not.
    figure, used = _fit(con, "overtrain-rpj")
    sizes_used = set(used["num_params"].astype(float))
    entries = [t for t in figure.data if t.showlegend and t.legendgroup and t.legendgroup.startswith("size")]
    by_size = {float(t.legendgroup.removeprefix("size")): t for t in entries}
    assert len(entries) == len(by_size)  # one entry per size
    for size in sizes_used:
        key = min(by_size, key=lambda s: abs(s - size) / size)
        assert by_size[key].marker.symbol != "circle-open", by_size[key].name
        assert by_size[key].name.endswith("(fit)")


def test_many_sizes_get_a_colour_bar_and_no_two_legend_entries_read_the_same(con):
    # chinchilla's 42 fitted sizes (1.424B and 1.429B among them): a legend of 42 entries covered the x axis title.
    figure, _used = _fit(con, "chinchilla", final_only=True, fraction=0.5)
    names = [t.name for t in figure.data if t.showlegend is not False and t.name]
    assert len(names) == len(set(names)), names
    size_entries = [t for t in figure.data if t.showlegend and t.legendgroup and t.legendgroup.startswith("size")]
    assert not size_entries  # more sizes than charts.MAX_LEGEND_SIZES: the colour bar says them
    assert any(getattr(t.marker, "showscale", False) for t in figure.data)
    assert len(names) <= charts.MAX_LEGEND_SIZES


@pytest.mark.parametrize(
    ("sizes", "expected"), [((1.424e9, 1.429e9), ("1.42B", "1.43B")), ((7e7, 1.6e8), ("70M", "160M"))]
)
def test_size_names_tell_distinct_sizes_apart(sizes, expected):
    assert tuple(analysis_charts._size_names(sizes).values()) == expected
