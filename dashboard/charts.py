"""Plotly figures shared by the pages (drawing only: no fitting, no statistics).

All figures use the same look (large fonts for projectors, white background, units in every
axis title) and the same colour convention: one colour per model size on a sequential scale
by log10(parameters), so small models are dark and large ones bright, on every page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from scaleplan.core import units

COLORSCALE = "Viridis"
COLOR_RANGE = (0.0, 0.88)  # stop before Viridis' pale yellow, which is weak on white
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = (
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "x",
    "star",
    "triangle-down",
    "cross",
    "pentagon",
    "hexagon",
    "star-triangle-up",
    "hourglass",
)
"""Marker symbol per family on the curves chart: runs of one checkpoint have no line to show a dash."""
MAX_LEGEND_SIZES = 12  # more distinct sizes than this: a colour bar instead of a legend
MARKER_RUN_POINTS = 40  # runs with at most this many points also get markers
FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=15, color="#1a1d24")
CATEGORY_COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#a6761d",
)


def size_colors(num_params: Sequence[float]) -> dict[float, str]:
    """A colour for each distinct size, on the sequential scale by log10(size)."""
    sizes = sorted({float(n) for n in num_params if n and n > 0})
    if not sizes:
        return {}
    lo, hi = math.log10(sizes[0]), math.log10(sizes[-1])
    span = hi - lo
    positions = [
        COLOR_RANGE[0] + (COLOR_RANGE[1] - COLOR_RANGE[0]) * ((math.log10(s) - lo) / span if span else 0.5)
        for s in sizes
    ]
    return dict(zip(sizes, sample_colorscale(COLORSCALE, positions)))


MAX_TICKS = 12
_MAX_EXPONENT = 308  # 10.0**308 is the largest power of ten a float holds (10.0**309 overflows)
_MIN_EXPONENT = -323


def _decades(low: float, high: float) -> tuple[int, int] | None:
    """The integer decades spanning [low, high], clamped to what a float holds; None when unusable."""
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= 0:
        return None
    first = max(_MIN_EXPONENT, math.floor(math.log10(low)))
    last = min(_MAX_EXPONENT, math.ceil(math.log10(high)))
    return (first, last) if first <= last else None


def decade_ticks(low: float, high: float, formatter=units.format_count) -> tuple[list[float], list[str]] | None:
    """Tick values at powers of ten between ``low`` and ``high`` (positive), labelled by ``formatter``.

    At most :data:`MAX_TICKS` ticks (every k-th decade over a wide range); safe for any finite
    input (clamped to the float range), None when there is nothing to tick.
    """
    span = _decades(low, high)
    if span is None:
        return None
    first, last = span
    stride = max(1, math.ceil((last - first + 1) / MAX_TICKS))
    values = [10.0**k for k in range(first, last + 1, stride)]
    if len(values) < 2:
        return None
    return values, [formatter(v) for v in values]


def log_ticks(low: float, high: float, formatter=lambda v: f"{v:g}") -> tuple[list[float], list[str]] | None:
    """Readable ticks for a log axis over a narrow range: 1, 2, 3, 5 x powers of ten (fewer if crowded).

    Over more than a few decades this is :func:`decade_ticks`; safe for any finite input.
    """
    span = _decades(low, high)
    if span is None or high <= low:
        return None
    first, last = span
    if last - first > 4:
        return decade_ticks(low, high, formatter)
    values: list[float] = []
    for steps in ((1, 1.5, 2, 3, 4, 5, 7), (1, 2, 3, 5), (1, 2, 5), (1,)):
        values = [
            m * 10.0**k
            for k in range(first, last + 1)
            for m in steps
            if low <= m * 10.0**k <= high and k < _MAX_EXPONENT
        ]
        if len(values) <= 10:
            break
    if len(values) < 2:
        return None
    return values, [formatter(v) for v in values]


def base_layout_dict(*, x_title: str, y_title: str, log_x: bool, log_y: bool, height: int = 560) -> dict:
    """The shared look as a layout dict (for figures built in one go: ``go.Figure(data=..., layout=...)``)."""

    def axis(title: str, log: bool) -> dict:
        return dict(
            title=dict(text=title, font=dict(size=16)),
            type="log" if log else "linear",
            showline=True,
            linecolor="#9aa0a6",
            gridcolor="#e8eaed",
            ticks="outside",
            tickfont=dict(size=14),
        )

    return dict(
        template="plotly_white",
        height=height,
        font=dict(FONT),
        hovermode="closest",
        margin=dict(l=10, r=10, t=30, b=10),
        hoverlabel=dict(font=dict(size=14), bgcolor="white"),
        legend=dict(font=dict(size=14), title=dict(font=dict(size=14)), itemsizing="constant"),
        xaxis=axis(x_title, log_x),
        yaxis=axis(y_title, log_y),
    )


def base_layout(
    fig: go.Figure, *, x_title: str, y_title: str, log_x: bool, log_y: bool, height: int = 560
) -> go.Figure:
    """:func:`base_layout_dict` applied to ``fig`` (its axes styled on every subplot)."""
    layout = base_layout_dict(x_title=x_title, y_title=y_title, log_x=log_x, log_y=log_y, height=height)
    x_axis, y_axis = layout.pop("xaxis"), layout.pop("yaxis")
    fig.update_layout(**layout)
    fig.update_xaxes(**x_axis)
    fig.update_yaxes(**y_axis)
    return fig


def _value_text(values: pd.Series) -> list[str]:
    return [units.MISSING if pd.isna(v) else f"{v:.4g}" for v in values]


def curves_figure(
    curves: pd.DataFrame,
    *,
    x: str,
    x_title: str,
    y_title: str,
    log_x: bool = True,
    log_y: bool = False,
    value_name: str = "Value",
    height: int = 560,
    family_labels: dict[str, str] | None = None,
) -> go.Figure:
    """Training curves, one line per run, coloured by model size.

    ``curves`` has columns run_id, label (shown in the hover), num_params, value and the x
    column (``tokens_seen`` or ``flops``); optional ``family`` (with several families each
    gets a line style and a marker symbol, :data:`SYMBOLS`, so runs of one point, which draw no
    line, are told apart too; the legend groups sizes under a heading per family, e.g. "pythia ·
    LAMBADA last-word loss" from ``family_labels``), ``tokens_seen`` and ``flops`` for the hover text. More
    than MAX_LEGEND_SIZES entries: a colour bar for the sizes, and the legend keeps one line-style
    entry per family.
    """
    traces: list[dict] = []  # built as dicts and validated once by go.Figure (add_trace copies the figure)
    data = curves.dropna(subset=[x, "value"])
    colors = size_colors(data["num_params"].tolist())
    families = list(dict.fromkeys(data["family"])) if "family" in data else []
    dash_of = {f: DASHES[i % len(DASHES)] for i, f in enumerate(families)}
    symbol_of = {f: SYMBOLS[i % len(SYMBOLS)] for i, f in enumerate(families)}
    several = len(families) > 1
    entries = data.drop_duplicates(["family", "num_params"] if several else ["num_params"])
    use_legend = len(entries) <= MAX_LEGEND_SIZES
    shown: set[tuple[str, float]] = set()
    titled: set[str] = set()
    family_names = family_labels or {}
    template = (
        "<b>%{customdata[0]}</b><br>"
        + ("family %{customdata[1]}<br>" if families else "")
        + "parameters %{customdata[2]}<br>tokens %{customdata[3]}<br>"
        + ("compute %{customdata[4]}<br>" if "flops" in data else "")
        + html.escape(value_name)
        + " %{customdata[5]}<extra></extra>"
    )
    for run_id, run in data.groupby("run_id", sort=False):
        size = float(run["num_params"].iloc[0])
        family = str(run["family"].iloc[0]) if "family" in run else ""
        label = str(run["label"].iloc[0]) if "label" in run else str(run_id)
        hover = np.column_stack(
            [
                [html.escape(label)] * len(run),
                [html.escape(family)] * len(run),
                [units.format_params(size, unit=False)] * len(run),
                [units.format_tokens(v, unit=False) for v in run["tokens_seen"]]
                if "tokens_seen" in run
                else [units.MISSING] * len(run),
                [units.format_flops(v) for v in run["flops"]] if "flops" in run else [units.MISSING] * len(run),
                _value_text(run["value"]),
            ]
        )
        few = len(run) <= MARKER_RUN_POINTS
        entry = (family if several else "", size)
        first_of_entry = entry not in shown
        shown.add(entry)
        name = units.format_params(size, unit=False)
        group_title = {}
        if several:
            name = f"{html.escape(family)} · {name}"
            if use_legend and first_of_entry and family not in titled:
                titled.add(family)
                group_title = dict(legendgrouptitle_text=html.escape(family_names.get(family, family)))
        traces.append(
            dict(
                type="scatter",
                x=run[x],
                y=run["value"],
                mode="lines+markers" if few else "lines",
                line=dict(color=colors.get(size, "#1f5fbf"), width=2.4, dash=dash_of.get(family, "solid")),
                marker=dict(
                    size=8 if len(run) > 1 else 11,
                    color=colors.get(size, "#1f5fbf"),
                    symbol=symbol_of.get(family, "circle"),
                ),
                name=name,
                legendgroup=family if several else f"|{size:.6g}",
                showlegend=use_legend and first_of_entry,
                customdata=hover,
                hovertemplate=template,
                **group_title,
            )
        )
    if several and not use_legend:  # sizes on a colour bar; the legend still tells the families apart
        for family in families:
            traces.append(
                dict(
                    type="scatter",
                    x=[None],
                    y=[None],
                    mode="lines+markers",
                    hoverinfo="skip",
                    legendgroup=family,
                    line=dict(color="#5f6368", width=2.4, dash=dash_of[family]),
                    marker=dict(color="#5f6368", size=9, symbol=symbol_of[family]),
                    name=html.escape(family_names.get(family, family)),
                )
            )
    if colors and not use_legend:
        traces += size_colorbar_traces(list(colors))
    layout = base_layout_dict(x_title=x_title, y_title=y_title, log_x=log_x, log_y=log_y, height=height)
    if use_legend and colors:
        single = family_names.get(families[0]) if len(families) == 1 else None
        title = (
            "Family · parameters" if several else (f"{html.escape(single)} · parameters" if single else "Parameters")
        )
        layout["legend"].update(title_text=title, traceorder="grouped" if several else "normal")
    elif several:
        layout["legend"].update(title_text="Family", traceorder="normal")
    if log_x and not data.empty:
        formatter = (lambda v: units.format_flops(v, unit=False, decimals=0)) if x == "flops" else units.format_count
        low, high = float(data[x].min()), float(data[x].max())
        ticks = (
            decade_ticks(low, high, formatter)
            if high > 300 * low
            else log_ticks(low, high, formatter) or decade_ticks(low, high, formatter)
        )
        if ticks:
            layout["xaxis"].update(tickvals=ticks[0], ticktext=ticks[1])
    if log_y and not data.empty and float(data["value"].min()) > 0:
        low, high = float(data["value"].min()), float(data["value"].max())
        ticks = log_ticks(low, high) if high / low < 100 else decade_ticks(low, high, lambda v: f"{v:g}")
        if ticks:
            layout["yaxis"].update(tickvals=ticks[0], ticktext=ticks[1])
    return go.Figure(data=traces, layout=layout)


def size_colorbar_traces(sizes: list[float]) -> list[dict]:
    """An invisible trace that carries the size colour bar (log10 parameters, labelled 1B etc.); none for one size."""
    lo, hi = math.log10(min(sizes)), math.log10(max(sizes))
    if hi == lo:
        return []
    stride = max(1, math.ceil((math.floor(hi) - math.ceil(lo) + 1) / MAX_TICKS))
    ticks = [k for k in range(math.ceil(lo), math.floor(hi) + 1, stride)] or [lo, hi]
    scale = [
        [p, c]
        for p, c in zip(np.linspace(0, 1, 11), sample_colorscale(COLORSCALE, list(np.linspace(*COLOR_RANGE, 11))))
    ]
    return [
        dict(
            type="scatter",
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker=dict(
                colorscale=scale,
                cmin=lo,
                cmax=hi,
                color=[lo],
                showscale=True,
                colorbar=dict(
                    title=dict(text="Parameters", font_size=14),
                    tickvals=ticks,
                    ticktext=[units.format_count(10.0**t) for t in ticks],
                    thickness=16,
                    tickfont_size=13,
                ),
            ),
        )
    ]


def coverage_figure(runs: pd.DataFrame, *, height: int = 520) -> go.Figure:
    """Every run as a point: parameters (x) against tokens seen (y), coloured by source."""
    fig = go.Figure()
    data = runs.dropna(subset=["num_params", "max_tokens_seen"])
    for i, (source, group) in enumerate(data.groupby("source", sort=True)):
        hover = np.column_stack(
            [
                [html.escape(str(v)) for v in group["model_name"].fillna(group["run_id"])],
                [html.escape(str(v)) for v in group["family"]],
                [units.format_params(v, unit=False) for v in group["num_params"]],
                [units.format_tokens(v, unit=False) for v in group["max_tokens_seen"]],
            ]
        )
        fig.add_trace(
            go.Scatter(
                x=group["num_params"],
                y=group["max_tokens_seen"],
                mode="markers",
                name=html.escape(str(source)),
                marker=dict(
                    size=9,
                    color=CATEGORY_COLORS[i % len(CATEGORY_COLORS)],
                    opacity=0.8,
                    line=dict(width=0.5, color="white"),
                ),
                customdata=hover,
                hovertemplate=(
                    "<b>%{customdata[0]}</b><br>family %{customdata[1]}<br>parameters %{customdata[2]}"
                    "<br>tokens seen %{customdata[3]}<extra></extra>"
                ),
            )
        )
    base_layout(
        fig,
        x_title=units.axis_title("Model size", "parameters", log=True),
        y_title=units.axis_title("Training tokens seen", "tokens", log=True),
        log_x=True,
        log_y=True,
        height=height,
    )
    if not data.empty:
        for axis, column in (("x", "num_params"), ("y", "max_tokens_seen")):
            ticks = decade_ticks(float(data[column].min()), float(data[column].max()))
            if ticks:
                fig.update_layout({f"{axis}axis": dict(tickvals=ticks[0], ticktext=ticks[1])})
    fig.update_layout(legend=dict(title_text="Source"))
    return fig


TITLE_LINE_PX = 24  # an 18 px bold title line
CAPTION_LINE_PX = 16  # a 12 px caption line
TOP_LEGEND_PX = 30  # one row of a horizontal legend above the plot


def add_context(fig: go.Figure, *, title: str, inputs: str, source: str = "scaleplan", wrap: int = 110) -> go.Figure:
    """Give a figure what it needs outside the page (PNG/SVG download): a title and, under it, the
    inputs that produced it (escaped; Plotly text is HTML), both above the plot so that no legend
    or axis below it can cover them. The caption wraps at ``wrap`` characters and the title at 0.6
    of that (an 18 px bold character is ~1.6 times as wide as a 12 px one): 110 fits a full-width
    chart at a 1,280 px window, 60 a chart in one of two columns. The top margin is computed from
    the line counts (Plotly does not make room for a multi-line title), with one legend row more
    when the legend sits above the plot."""
    caption = html.escape(f"{inputs} · {source}" if source else inputs)
    lines = _wrap(caption, wrap)
    title_lines = _wrap(html.escape(title), max(30, round(wrap * 0.6)))
    legend = fig.layout.legend
    legend_px = TOP_LEGEND_PX if legend.orientation == "h" and legend.y is not None and legend.y >= 1 else 0
    caption_px = CAPTION_LINE_PX * len(lines)
    top = TITLE_LINE_PX * len(title_lines) + caption_px + legend_px + 30
    height = fig.layout.height or 450  # Plotly's default height
    fig.update_layout(
        title=dict(
            text="<br>".join(f"<b>{line}</b>" for line in title_lines),
            x=0.0,
            xanchor="left",
            xref="paper",
            # Plotly sets a multi-line title's first line about 12 px above a "top" anchor
            yref="container",
            y=1 - 24 / height,
            yanchor="top",
            font_size=18,
        ),
        margin=dict(t=top),
    )
    fig.add_annotation(
        text="<br>".join(lines),
        xref="paper",
        yref="paper",
        x=0.0,
        y=1.0,
        yshift=legend_px + 4,
        xanchor="left",
        yanchor="bottom",
        align="left",
        showarrow=False,
        font=dict(size=12, color="#5f6368"),
    )
    return fig


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])
