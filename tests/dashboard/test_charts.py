"""scaleplan.dashboard.charts: colours by log size, hover text, units in axis titles."""

from __future__ import annotations

import math as _math
import sys as _sys

import pandas as pd
import pytest

from scaleplan.dashboard import charts


def _curves(sizes, points=3, families=("f",)):
    rows = []
    for family in families:
        for size in sizes:
            for i in range(points):
                rows.append(
                    {
                        "run_id": f"{family}/{size:g}",
                        "label": f"<b>{family}-{size:g}</b>",
                        "family": family,
                        "num_params": size,
                        "tokens_seen": 1e9 * 2**i,
                        "flops": 6 * size * 1e9 * 2**i,
                        "value": 3.0 - 0.1 * i,
                    }
                )
    return pd.DataFrame(rows)


def test_one_trace_per_run_with_units_and_hover():
    fig = charts.curves_figure(
        _curves([7e7, 1.4e9]),
        x="tokens_seen",
        x_title="Tokens seen (tokens, log scale)",
        y_title="Loss (nats/token)",
        value_name="val/loss",
    )
    assert len(fig.data) == 2
    assert [t.name for t in fig.data] == ["70M", "1.4B"]
    assert fig.layout.xaxis.type == "log" and "tokens" in fig.layout.xaxis.title.text
    assert "nats/token" in fig.layout.yaxis.title.text
    hover = fig.data[0].customdata[0]
    assert hover[0] == "&lt;b&gt;f-7e+07&lt;/b&gt;"  # names are escaped for Plotly's HTML labels
    assert hover[3] == "1B" and hover[5] == "3"
    assert "tokens %{customdata[3]}" in fig.data[0].hovertemplate and "val/loss" in fig.data[0].hovertemplate


def test_colours_follow_size_order():
    colors = charts.size_colors([1.4e9, 7e7, 4e8, 1.4e9])
    assert list(colors) == [7e7, 4e8, 1.4e9] and len(set(colors.values())) == 3
    assert charts.size_colors([]) == {}
    assert len(charts.size_colors([5e8])) == 1


def test_many_sizes_get_a_colour_bar():
    sizes = [1e7 * 1.5**k for k in range(20)]
    fig = charts.curves_figure(_curves(sizes, points=2), x="tokens_seen", x_title="x", y_title="y")
    assert not any(t.showlegend for t in fig.data if t.name)
    assert fig.data[-1].marker.showscale


def test_several_families_name_family_and_size():
    fig = charts.curves_figure(_curves([7e7], families=("a", "b")), x="flops", x_title="x", y_title="y")
    assert [t.name for t in fig.data] == ["a · 70M", "b · 70M"]
    assert fig.data[0].line.dash != fig.data[1].line.dash


def test_ticks():
    values, labels = charts.decade_ticks(3e7, 2e11)
    assert labels == ["10M", "100M", "1B", "10B", "100B", "1T"]
    values, labels = charts.log_ticks(1.3, 20)
    assert "2" in labels and "10" in labels and len(values) <= 10
    assert charts.log_ticks(0, 1) is None and charts.decade_ticks(-1, 5) is None


def test_several_families_get_legend_headings_with_their_metric():
    fig = charts.curves_figure(
        _curves([7e7, 4e8], families=("a", "b")),
        x="tokens_seen",
        x_title="x",
        y_title="y",
        family_labels={"a": "a · Validation loss", "b": "b · Training loss"},
    )
    titles = [t.legendgrouptitle.text for t in fig.data if t.legendgrouptitle.text]
    assert titles == ["a · Validation loss", "b · Training loss"]
    assert {t.legendgroup for t in fig.data} == {"a", "b"}


def test_many_sizes_and_several_families_keep_a_family_legend():
    sizes = [1e7 * 1.5**k for k in range(10)]
    fig = charts.curves_figure(
        _curves(sizes, points=2, families=("a", "b")),
        x="tokens_seen",
        x_title="x",
        y_title="y",
        family_labels={"a": "a · loss"},
    )
    entries = [t for t in fig.data if t.showlegend is not False and t.name in ("a · loss", "b")]
    assert [t.name for t in entries] == ["a · loss", "b"]
    assert entries[0].line.dash != entries[1].line.dash  # the same dashes as the families' curves
    assert fig.data[-1].marker.showscale  # sizes on the colour bar


def test_add_context_gives_a_title_and_the_inputs():
    fig = charts.curves_figure(_curves([7e7]), x="tokens_seen", x_title="x", y_title="y")
    charts.add_context(fig, title="Loss of <b>", inputs="Families a · metric val/loss")
    assert fig.layout.title.text == "<b>Loss of &lt;b&gt;</b>"
    assert "Families a · metric val/loss" in fig.layout.annotations[-1].text


# ---------------------------------------------------------------- issue 25: any finite input


_EXTREMES = [5e-324, 1e-300, 1e-9, 1.0, 7e7, 1e17, 1e300, _sys.float_info.max]


@pytest.mark.parametrize("low", _EXTREMES)
@pytest.mark.parametrize("high", _EXTREMES)
def test_tick_helpers_are_safe_for_any_finite_input(low, high):
    for helper in (charts.decade_ticks, charts.log_ticks):
        ticks = helper(low, high)
        if ticks is not None:
            values, labels = ticks
            assert 2 <= len(values) <= max(charts.MAX_TICKS, 10) and len(labels) == len(values)
            assert all(_math.isfinite(v) and v > 0 for v in values)
    assert charts.decade_ticks(-1e308, 1e308) is None and charts.log_ticks(0.0, 0.0) is None


def test_curves_with_extreme_finite_values_draw_with_few_ticks():
    data = pd.DataFrame(
        {
            "run_id": ["a", "a", "b", "b"],
            "model_name": ["a", "a", "b", "b"],
            "num_params": [7e7, 7e7, _sys.float_info.max, _sys.float_info.max],
            "tokens_seen": [1e9, _sys.float_info.max, 5e-324, 1e9],
            "flops": [1.0, 2.0, 3.0, 4.0],
            "value": [3.0, 1e308, 5e-324, 2.0],
        }
    )
    fig = charts.curves_figure(data, x="tokens_seen", x_title="Tokens", y_title="Loss", log_x=True, log_y=True)
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tickvals is None or len(axis.tickvals) <= charts.MAX_TICKS


def test_observed_figure_shows_each_chosen_run_where_the_fit_chart_will_be():
    """The Fit page's chart while it fits: one trace per chosen run with that run's points, coloured
    by size like the fit chart, with the fit chart's height and axes."""
    from scaleplan.dashboard import analysis_charts

    curves = pd.DataFrame(
        {
            "run_id": ["a", "a", "b", "b", "b"],
            "tokens_seen": [1e9, 2e9, 1e9, 2e9, 4e9],
            "value": [3.2, 3.0, 2.9, 2.7, 2.6],
        }
    )
    runs = pd.DataFrame({"run_id": ["a", "b"], "label": ["<small>", "big"], "num_params": [1e8, 1e9]})
    figure = analysis_charts.observed_figure(curves=curves, runs=runs, y_title="Loss (nats/token)", title="t")
    assert [list(trace.x) for trace in figure.data] == [[1e9, 2e9], [1e9, 2e9, 4e9]]
    assert [list(trace.y) for trace in figure.data] == [[3.2, 3.0], [2.9, 2.7, 2.6]]
    colors = charts.size_colors([1e8, 1e9])
    assert [trace.marker.color for trace in figure.data] == [colors[1e8], colors[1e9]]
    assert "&lt;small&gt;" in figure.data[0].hovertemplate and "<small>" not in figure.data[0].hovertemplate
    assert figure.layout.xaxis.type == "log" and figure.layout.yaxis.title.text == "Loss (nats/token)"
    import inspect

    assert figure.layout.height == inspect.signature(analysis_charts.fit_figure).parameters["height"].default


def test_matched_comparison_bars_title_both_axes():
    import pandas as pd

    from scaleplan.dashboard import analysis_charts

    table = pd.DataFrame(
        {"option": ["with checkpoints", "final only"], "are_mean": [0.04, 0.09], "fits": [10, 10], "families": [3, 3]}
    )
    for by in (None, "runs"):
        rows = table.assign(runs=[4, 4]) if by else table
        figure = analysis_charts.comparison_figure(rows, by=by)
        assert figure.layout.xaxis.title.text, by
        assert "%" in figure.layout.yaxis.title.text
