"""Plotly figures of the analysis pages (fit, planner, reliability): drawing only.

Same look as :mod:`dashboard.charts` (large fonts, white background, units in every axis title,
one colour per model size on the shared sequential scale). User-provided names (run names of an
upload) are HTML-escaped before they reach a trace name or hover text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from scaleplan.core import laws, units
from scaleplan.dashboard import charts

TARGET_COLOR = "#c5221f"
TARGET_BAND = "rgba(197, 34, 31, 0.16)"
ACTUAL_COLOR = "#1a1d24"
LOSS_COLOR = "#1f5fbf"
ERROR_COLOR = "#e8710a"


def plotly_config(filename: str, image_format: str = "png") -> dict:
    """Chart config: the modebar camera button saves ``image_format`` ("png" at 2x, or "svg")."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {
            "format": image_format,
            "filename": filename,
            "scale": 2,
            "height": 620,
            "width": 1200,
        },
    }


def _padded_range(values: Sequence[float], pad: float = 0.06) -> list[float] | None:
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if data.size == 0:
        return None
    low, high = float(data.min()), float(data.max())
    span = max(high - low, abs(high) * 0.02, 1e-6)
    return [low - pad * span, high + pad * span]


def token_ticks(low: float, high: float) -> tuple[list[float], list[str]] | None:
    """Log-axis ticks labelled as counts (10B, 20B, 50B...): decades over a wide range, 1-2-5 over a narrow one."""
    if high / max(low, 1e-300) > 1e4:
        return charts.decade_ticks(low, high)
    ticks = charts.log_ticks(low, high)
    return None if ticks is None else (ticks[0], [units.format_count(v) for v in ticks[0]])


def fit_figure(
    *,
    curves: pd.DataFrame,
    fit_runs: pd.DataFrame,
    used: pd.DataFrame,
    params: dict,
    target_label: str,
    target_params: float,
    target_tokens: float,
    target_run: str | None,
    predicted: float,
    band: dict | None,
    grid: np.ndarray,
    y_title: str,
    min_tokens: float,
    height: int = 680,
    law: str = "chinchilla",
) -> go.Figure:
    """Observed points, the fitted law per run size and the target's extrapolated curve with its band.

    ``law`` names the fitted law (:func:`core.laws.get`); a law that takes unique tokens reads each
    run's from ``curves``' ``unique_tokens`` column.

    ``curves``: the family's points (run_id, num_params, tokens_seen, value); ``fit_runs``: the runs
    chosen for the fit (run_id, label, num_params); ``used``: the points the fit used (run_id,
    tokens_seen); ``band``: {tokens, lo, hi} of the 90% bootstrap band, or None.
    """
    fitted_law = laws.get(law)
    unique = curves.groupby("run_id")["unique_tokens"].first() if "unique_tokens" in curves else None

    def unique_of(run_id: str | None) -> float | None:
        return None if unique is None or run_id is None or run_id not in unique.index else float(unique[run_id])

    traces: list[dict] = []  # built as dicts and validated once by go.Figure: ~5x faster than add_trace
    sizes = sorted({float(n) for n in fit_runs["num_params"]} | {float(target_params)})
    colors = charts.size_colors(sizes)
    # A checkpoint is "used" when the fit's points hold exactly its (run, tokens): both come from the
    # same rows of ``curves``, so no rounding (a rounding on one side only misses points).
    used_keys = set(zip(used["run_id"].astype(str), used["tokens_seen"].astype(float)))
    used_sizes = {float(n) for n in used["num_params"]} if "num_params" in used else None
    y_values: list[float] = list(used["loss"]) if "loss" in used else []
    # Visible x range: a little before the first checkpoint used, to a little past the target.
    used_low, used_high = float(used["tokens_seen"].min()), float(used["tokens_seen"].max())
    x_low = max(used_low / 4, float(grid[0]) / 4, 1.0)
    x_high = max(float(grid[-1]), target_tokens) * 1.3
    fit_sizes = sorted({float(n) for n in fit_runs["num_params"]})
    # One legend entry per size, named so no two read the same; more sizes than a legend can list: a colour bar.
    size_legend = len(fit_sizes) <= charts.MAX_LEGEND_SIZES
    size_names = _size_names(fit_sizes)
    per_run = [
        (run, curves[curves["run_id"] == run["run_id"]].sort_values("tokens_seen")) for _, run in fit_runs.iterrows()
    ]
    if used_sizes is None:  # which sizes have points in the fit, from the matched checkpoints
        used_sizes = {
            float(run["num_params"])
            for run, points in per_run
            if any((str(run["run_id"]), float(t)) in used_keys for t in points["tokens_seen"])
        }
    legend_given: set[float] = set()
    lines: dict[tuple[float, float | None], list[float]] = {}  # (size, unique tokens) -> token span drawn
    for run, points in per_run:
        size = float(run["num_params"])
        color = colors.get(size, "#1f5fbf")
        if points.empty:
            continue
        run_id = str(run["run_id"])
        mask = np.array([(run_id, float(t)) in used_keys for t in points["tokens_seen"]], dtype=bool)
        label = html.escape(str(run["label"]))
        group = f"size{size:.6g}"
        name = f"{size_names[size]} (fit)" if size in used_sizes else f"{size_names[size]} (not used)"
        hover = "<b>%{customdata}</b><br>tokens %{x:.3s}<br>loss %{y:.4f}<extra>%{meta}</extra>"
        # The size's legend entry: its filled marker when any run of the size has points in the fit.
        for part, filled in ((mask, True), (~mask, False)):
            if not part.any():
                continue
            show = size_legend and size not in legend_given and filled == (size in used_sizes)
            if show:
                legend_given.add(size)
            traces.append(
                dict(
                    type="scatter",
                    x=points["tokens_seen"][part],
                    y=points["value"][part],
                    mode="markers",
                    name=name,
                    legendgroup=group,
                    showlegend=show,
                    marker=dict(color=color, size=7)
                    if filled
                    else dict(color=color, size=6, symbol="circle-open", opacity=0.45),
                    customdata=[label] * int(part.sum()),
                    meta="used in the fit" if filled else "not used",
                    hovertemplate=hover,
                )
            )
        span = lines.setdefault((size, unique_of(run_id)), [math.inf, 0.0])
        span[0] = min(span[0], float(points["tokens_seen"].min()))
        span[1] = max(span[1], float(points["tokens_seen"].max()))
    for (size, run_unique), (low, high) in lines.items():
        # The fitted law at the size, over its runs' checkpoints; a span narrower than MIN_LINE_SPAN (one
        # checkpoint per run) is drawn over the fit's used tokens instead, so that it is a visible line.
        if high < low * MIN_LINE_SPAN:
            low, high = min(low, used_low), max(high, used_high)
        if high < low * MIN_LINE_SPAN:
            low, high = low / math.sqrt(MIN_LINE_SPAN), high * math.sqrt(MIN_LINE_SPAN)
        start = max(low, x_low)
        tokens = np.geomspace(start, max(high, start * 1.001), 80)
        fitted = fitted_law.predict_at(params, size, tokens, run_unique)
        traces.append(
            dict(
                type="scatter",
                x=tokens,
                y=fitted,
                mode="lines",
                name=f"{size_names[size]} (fitted law)",
                legendgroup=f"size{size:.6g}",
                showlegend=False,
                line=dict(color=colors.get(size, "#1f5fbf"), width=2, dash="dash"),
                hoverinfo="skip",
            )
        )
        y_values += list(fitted[tokens >= max(start, used_low)])
    if not size_legend and fit_sizes:
        traces += charts.size_colorbar_traces(sizes)
    # The target: band, predicted curve, prediction, actual points.
    if band is not None:
        traces.append(
            dict(
                type="scatter",
                x=np.concatenate([band["tokens"], band["tokens"][::-1]]),
                y=np.concatenate([band["hi"], band["lo"][::-1]]),
                fill="toself",
                fillcolor=TARGET_BAND,
                line=dict(width=0),
                hoverinfo="skip",
                name="90% band (bootstrap over runs)",
                legendgroup="target",
            )
        )
        y_values += [float(band["lo"][-1]), float(band["hi"][-1])]
    predicted_curve = fitted_law.predict_at(params, target_params, grid, unique_of(target_run))
    target_name = html.escape(target_label)
    traces.append(
        dict(
            type="scatter",
            x=grid,
            y=predicted_curve,
            mode="lines",
            name=f"{target_name} (predicted)",
            legendgroup="target",
            line=dict(color=TARGET_COLOR, width=3.5),
            hovertemplate="predicted<br>tokens %{x:.3s}<br>loss %{y:.4f}<extra></extra>",
        )
    )
    y_values += list(predicted_curve[grid >= min(max(target_tokens * 0.1, x_low), grid[-1])])
    if target_run is not None:
        actual = curves[curves["run_id"] == target_run].sort_values("tokens_seen")
        if not actual.empty:
            traces.append(
                dict(
                    type="scatter",
                    x=actual["tokens_seen"],
                    y=actual["value"],
                    mode="markers",
                    name=f"{target_name} (actual)",
                    marker=dict(color=ACTUAL_COLOR, size=8, symbol="diamond"),
                    legendgroup="actual",
                    hovertemplate="actual<br>tokens %{x:.3s}<br>loss %{y:.4f}<extra></extra>",
                )
            )
            late = actual[actual["tokens_seen"] >= max(x_low, 0.1 * actual["tokens_seen"].max())]
            y_values += list(late["value"])
    traces.append(
        dict(
            type="scatter",
            x=[target_tokens],
            y=[predicted],
            mode="markers",
            name="Prediction at the target's D",
            marker=dict(color=TARGET_COLOR, size=17, symbol="star", line=dict(color="white", width=1.5)),
            legendgroup="target",
            hovertemplate=f"prediction<br>tokens %{{x:.3s}}<br>loss %{{y:.4f}}<extra>{target_name}</extra>",
        )
    )
    y_values.append(predicted)
    layout = charts.base_layout_dict(
        x_title=units.axis_title("Tokens seen", "tokens", log=True),
        y_title=y_title,
        log_x=True,
        log_y=False,
        height=height,
    )
    if min_tokens > x_low:
        layout["shapes"] = [
            dict(
                type="rect",
                x0=x_low,
                x1=min_tokens,
                xref="x",
                y0=0,
                y1=1,
                yref="y domain",
                fillcolor="#9aa0a6",
                opacity=0.14,
                line_width=0,
                layer="below",
            )
        ]
    ticks = token_ticks(x_low, x_high)
    if ticks:
        layout["xaxis"].update(tickvals=ticks[0], ticktext=ticks[1])
    layout["xaxis"]["range"] = [math.log10(x_low), math.log10(x_high)]
    y_range = _padded_range(y_values)
    if y_range:
        layout["yaxis"]["range"] = y_range
    _legend_below(layout)
    layout["margin"].update(r=10, b=10)
    return go.Figure(data=traces, layout=layout)


MIN_LINE_SPAN = 2.0  # a size's dashed fitted law spans at least this factor in tokens


def _size_names(sizes: Sequence[float]) -> dict[float, str]:
    """Each size as the legend names it ("1.4B"), with more decimals where two distinct sizes would read the same."""
    for decimals in (1, 2, 3):
        names = {size: units.format_params(size, unit=False, decimals=decimals) for size in sizes}
        if len(set(names.values())) == len(names):
            return names
    return names


def _legend_below(layout: dict) -> None:
    """The Fit page's legend, shared by its fit chart and the preview drawn in its place: below the plot,
    so the plotting area keeps the full width, even in a narrow column."""
    layout["legend"].update(title_text="", orientation="h", yanchor="top", y=-0.16, xanchor="left", x=0, font_size=14)


def observed_figure(
    *, curves: pd.DataFrame, runs: pd.DataFrame, y_title: str, title: str, height: int = 680
) -> go.Figure:
    """The observed losses of ``runs`` (run_id, label, num_params), one colour per size: what the Fit
    page shows while it fits, in the place of :func:`fit_figure` and with its height, axes and colours."""
    colors = charts.size_colors(runs["num_params"])
    traces = []
    for run in runs.itertuples():
        points = curves[curves["run_id"] == run.run_id]
        size = float(run.num_params)
        traces.append(
            dict(
                type="scatter",
                x=points["tokens_seen"],
                y=points["value"],
                mode="markers",
                name=units.format_params(size, unit=False),
                marker=dict(color=colors.get(size, LOSS_COLOR), size=6),
                hovertemplate=f"<b>{html.escape(str(run.label))}</b><br>tokens %{{x:.3s}}<br>loss %{{y:.4f}}<extra></extra>",
            )
        )
    layout = charts.base_layout_dict(
        x_title=units.axis_title("Tokens seen", "tokens", log=True),
        y_title=y_title,
        log_x=True,
        log_y=False,
        height=height,
    )
    layout["title"] = dict(text=html.escape(title), x=0.0, xanchor="left", font_size=16)
    layout["margin"].update(t=60)
    _legend_below(layout)
    return go.Figure(data=traces, layout=layout)


def tradeoff_figures(
    table: pd.DataFrame, *, optimal_multiplier: float | None = None, height: int = 520
) -> tuple[go.Figure, go.Figure]:
    """(loss and downstream error vs M, inference cost per token vs M) for an over-training table.

    The first figure has two panels sharing the x axis (loss on top, average downstream error
    below, when known); the second is a bar per multiplier of inference FLOPs per token relative
    to the compute-optimal model, labelled with the change.
    """
    M = table["multiplier"].to_numpy(dtype=float)
    ticks = [f"{m:g}" for m in M]
    has_error = bool(table["downstream_error"].notna().any())
    sizes = np.column_stack(
        [
            [units.format_params(n, unit=False) for n in table["num_params"]],
            [units.format_tokens(d, unit=False) for d in table["tokens"]],
        ]
    )
    fig = make_subplots(rows=2 if has_error else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(
        go.Scatter(
            x=M,
            y=table["loss"],
            mode="lines+markers",
            name="Predicted loss",
            line=dict(color=LOSS_COLOR, width=3),
            marker=dict(size=10),
            customdata=sizes,
            hovertemplate="M = %{x:g}<br>N %{customdata[0]}, D %{customdata[1]}<br>loss %{y:.4f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if has_error:
        fig.add_trace(
            go.Scatter(
                x=M,
                y=100 * table["downstream_error"],
                mode="lines+markers",
                name="Avg. downstream error (17 tasks)",
                line=dict(color=ERROR_COLOR, width=3),
                marker=dict(size=10, symbol="square"),
                customdata=sizes,
                hovertemplate="M = %{x:g}<br>N %{customdata[0]}, D %{customdata[1]}<br>error %{y:.2f}%<extra></extra>",
            ),
            row=2,
            col=1,
        )
    charts.base_layout(fig, x_title="", y_title="", log_x=True, log_y=False, height=height)
    x_values = list(M) + ([optimal_multiplier] if optimal_multiplier and np.isfinite(optimal_multiplier) else [])
    x_range = [math.log10(min(x_values) / 1.35), math.log10(max(x_values) * 1.35)]
    fig.update_xaxes(type="log", tickvals=list(M), ticktext=ticks, range=x_range)
    fig.update_xaxes(
        # two lines: one would be wider than a chart in one of two columns at a 1,280 px window
        title_text="Token multiplier M = D/N<br>(tokens per parameter, log scale)",
        row=2 if has_error else 1,
        col=1,
    )
    fig.update_yaxes(title_text="Loss (nats/token)", tickformat=".3f", row=1, col=1)
    if has_error:
        fig.update_yaxes(title_text="Avg. error (%)", ticksuffix="%", tickformat=".1f", row=2, col=1)
    if optimal_multiplier and np.isfinite(optimal_multiplier):
        fig.add_vline(x=optimal_multiplier, line=dict(color="#5f6368", dash="dot", width=2))
        fig.add_annotation(
            x=math.log10(optimal_multiplier),
            y=1.0,
            xref="x",
            yref="paper",
            yanchor="top",  # inside the plot: above it are the chart's title and caption
            xanchor="left",
            xshift=4,
            text=f"compute-optimal M ≈ {optimal_multiplier:.0f}",
            showarrow=False,
            font=dict(size=13, color="#5f6368"),
        )
    fig.update_layout(showlegend=False, margin=dict(t=40))

    cost = go.Figure(
        go.Bar(
            x=ticks,
            y=100 * table["inference_relative"],
            marker_color=[LOSS_COLOR if s > 0 else "#9aa0a6" for s in table["inference_saved"]],
            text=[f"{-100 * s:+.0f}%" for s in table["inference_saved"]],
            textposition="outside",
            customdata=[units.format_params(n, unit=False) for n in table["num_params"]],
            hovertemplate="M = %{x}<br>N %{customdata}<br>inference cost %{y:.0f}% of compute-optimal<extra></extra>",
        )
    )
    charts.base_layout(
        cost,
        x_title="Token multiplier M = D/N<br>(tokens per parameter)",
        y_title=units.axis_title("Inference FLOPs per token", "% of compute-optimal"),
        log_x=False,
        log_y=False,
        height=height,
    )
    cost.update_xaxes(type="category")
    cost.update_traces(textfont_size=14, cliponaxis=False)
    cost.add_hline(y=100, line=dict(color="#5f6368", dash="dot", width=1.5))
    cost.update_yaxes(range=[0, max(110.0, float(100 * table["inference_relative"].max()) * 1.15)], ticksuffix="%")
    cost.update_layout(showlegend=False, margin=dict(t=40))
    return fig, cost


def heatmap_figure(table: pd.DataFrame, *, row: str = "num_runs", height: int = 430, max_are: float = 0.3) -> go.Figure:
    """Family-averaged ARE by compute-share bin (x) and number of runs (y).

    ``table`` has compute_bin (categorical), ``row`` (number of runs, or a categorical bin of it),
    are_mean and families.
    """
    grid = table.pivot_table(index=row, columns="compute_bin", values="are_mean", observed=False, aggfunc="mean")
    fams = table.pivot_table(
        index=row, columns="compute_bin", values="families", observed=False, aggfunc="max"
    ).reindex_like(grid)
    grid = grid.dropna(axis=1, how="all").dropna(axis=0, how="all")
    fams = fams.reindex_like(grid)
    z = 100 * grid.to_numpy(dtype=float)
    text = np.where(np.isfinite(z), np.char.add(np.round(np.nan_to_num(z), 1).astype(str), "%"), "")
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in grid.columns],
            y=[str(r) for r in grid.index],
            text=text,
            texttemplate="%{text}",
            textfont=dict(size=14),
            colorscale="YlOrRd",
            zmin=0,
            zmax=100 * max_are,
            customdata=np.nan_to_num(fams.to_numpy(dtype=float)),
            colorbar=dict(title=dict(text="ARE (%)", font_size=14), ticksuffix="%", thickness=16),
            hovertemplate=(
                "compute share %{x}<br>%{y} runs<br>mean ARE %{z:.1f}%<br>families %{customdata:.0f}<extra></extra>"
            ),
            xgap=2,
            ygap=2,
        )
    )
    charts.base_layout(
        fig,
        x_title="Fit compute as a share of the target's compute (6ND)",
        y_title="Number of runs in the fit (runs)",
        log_x=False,
        log_y=False,
        height=height,
    )
    fig.update_xaxes(type="category", showgrid=False)
    fig.update_yaxes(type="category", showgrid=False)
    return fig


def comparison_figure(table: pd.DataFrame, *, by: str | None = None, height: int = 400) -> go.Figure:
    """Bars of family-averaged mean ARE for the two options of a matched comparison."""
    fig = go.Figure()
    colors = (LOSS_COLOR, "#9aa0a6")
    for i, (option, rows) in enumerate(table.groupby("option", sort=False)):
        x = [f"{int(v)} runs" for v in rows[by]] if by else [html.escape(str(option))]
        fig.add_trace(
            go.Bar(
                x=x,
                y=100 * rows["are_mean"],
                name=html.escape(str(option)),
                marker_color=colors[i % 2],
                text=[units.MISSING if not np.isfinite(v) else f"{100 * v:.1f}%" for v in rows["are_mean"]],
                textposition="outside",
                customdata=np.column_stack([rows["fits"], rows["families"]]),
                hovertemplate=(
                    "%{y:.1f}% mean ARE<br>%{customdata[0]} matched fits, %{customdata[1]} families"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    charts.base_layout(
        fig,
        x_title="Number of runs in the fit" if by else "Fitting option compared",
        y_title=units.axis_title("Mean ARE, family-averaged", "%"),
        log_x=False,
        log_y=False,
        height=height,
    )
    fig.update_xaxes(type="category")
    fig.update_traces(textfont_size=14, cliponaxis=False)
    fig.update_yaxes(ticksuffix="%", rangemode="tozero")
    fig.update_layout(
        barmode="group",
        showlegend=by is not None,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        margin=dict(t=50 if by else 20),
    )
    return fig


PICK_COLOR = "#d62728"
FRONTIER_COLOR = "#1f77b4"
DESIGN_COLOR = "#7f7f7f"
PLAN_Y_HEADROOM = 2.5  # the planner chart's y axis: this times the larger of the goal and the frontier's worst p80


def plan_figure(plan, *, height: int = 460) -> go.Figure:
    """Study cost against expected ARE for every design of a :class:`core.planning.StudyPlan`.

    One statistic per mark: every design, the Pareto frontier and the pick are drawn at their 80th
    percentile of ARE (the number the pick is chosen on; the median is in the hover). Thin-support
    designs are hollow grey. The y axis stops at :data:`PLAN_Y_HEADROOM` x the larger of the goal and
    the frontier's worst 80th percentile; designs beyond it are triangles on the top edge (counted in
    the legend), so nothing is clipped without a marker. The budget is a vertical line, the goal a
    horizontal one; the cost axis is ticked in dollars ($1k, $10k, ...).
    """
    fig = go.Figure()
    rows = [(i, a) for i, a in enumerate(plan.designs) if a.expected is not None]
    frontier = [plan.designs[i] for i in plan.frontier]
    reference = [100 * a.expected.p80 for a in frontier] + [100 * plan.goal_are]
    top = PLAN_Y_HEADROOM * max(reference)

    def trace(items, name, color, symbol, hollow=False):
        if not items:
            return
        cost = [a.cost.dollars for _, a in items]
        median = [100 * a.expected.median for _, a in items]
        p80 = [100 * a.expected.p80 for _, a in items]
        text = [a.design.describe() for _, a in items]
        inside = [v <= top for v in p80]
        for keep, label, shape in (
            (True, name, symbol),
            (False, f"{name}: beyond {top:.0f}% (on the edge)", "triangle-up"),
        ):
            chosen = [k for k, ok in enumerate(inside) if ok == keep]
            if not chosen:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[cost[k] for k in chosen],
                    y=[p80[k] if keep else top for k in chosen],
                    mode="markers",
                    name=label if keep else f"{label} ({len(chosen)})",
                    marker=dict(
                        color="rgba(0,0,0,0)" if hollow else color,
                        size=7,
                        symbol=shape if not hollow or not keep else symbol,
                        line=dict(color=color, width=1),
                    ),
                    customdata=np.column_stack(
                        [[median[k] for k in chosen], [p80[k] for k in chosen], [text[k] for k in chosen]]
                    ),
                    hovertemplate="$%{x:,.0f}<br>ARE p80 %{customdata[1]:.1f}%, median %{customdata[0]:.1f}%"
                    "<br>%{customdata[2]}<extra></extra>",
                    meta={"statistic": "p80"},
                )
            )

    trace([r for r in rows if r[1].rankable], "Design (80th pct.)", DESIGN_COLOR, "circle")
    trace(
        [r for r in rows if not r[1].rankable], "Thin support (never picked)", DESIGN_COLOR, "circle-open", hollow=True
    )
    if frontier:
        fig.add_trace(
            go.Scatter(
                x=[a.cost.dollars for a in frontier],
                y=[100 * a.expected.p80 for a in frontier],
                mode="lines+markers",
                name="Pareto frontier (80th pct.)",
                line=dict(color=FRONTIER_COLOR, width=2, shape="hv"),
                marker=dict(size=6, color=FRONTIER_COLOR),
                hoverinfo="skip",
                meta={"statistic": "p80"},
            )
        )
    picked = plan.picked
    if picked is not None:
        fig.add_trace(
            go.Scatter(
                x=[picked.cost.dollars],
                y=[100 * picked.expected.p80],
                mode="markers",
                name="★ Pick (80th pct.)",
                marker=dict(symbol="star", size=20, color=PICK_COLOR, line=dict(color="white", width=1)),
                hovertemplate="Pick: $%{x:,.0f}, ARE p80 %{y:.1f}%<extra></extra>",
                meta={"statistic": "p80"},
            )
        )
    fig.add_vline(
        x=plan.budget_dollars,
        line=dict(color=PICK_COLOR, dash="dash", width=1.5),
        annotation_text=f"budget {units.format_dollars(plan.budget_dollars)}",
        annotation_position="top",
    )
    fig.add_hline(
        y=100 * plan.goal_are,
        line=dict(color="#2ca02c", dash="dot", width=1.5),
        annotation_text=f"goal {units.format_percent(plan.goal_are)}",
        annotation_position="top right",  # inside the plot: "right" sits on the legend
    )
    charts.base_layout(
        fig,
        x_title=units.axis_title("Study cost", "US$", log=True),
        y_title=units.axis_title("Expected ARE of the target's loss", "%"),
        log_x=True,
        log_y=False,
        height=height,
    )
    fig.update_yaxes(range=[0, top * 1.04])
    costs = [a.cost.dollars for _, a in rows] + [plan.budget_dollars]
    ticks = charts.decade_ticks(min(costs), max(costs), formatter=units.format_dollars)
    if ticks is not None:
        fig.update_xaxes(tickvals=ticks[0], ticktext=ticks[1])
    fig.update_layout(meta={"budget": plan.budget_dollars, "pick": plan.pick, "y_top": top})
    return fig
