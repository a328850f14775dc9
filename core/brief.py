"""A decision brief from one scenario or a comparison: a one-page PDF (with an appendix) and a deck.

The brief states, for each scenario (:mod:`scaleplan.core.scenarios`), the recommendation, the
cost-vs-accuracy frontier of the study designs with the pick marked, the extrapolation of the
target's loss with its interval, the target's predicted 17-task average accuracy with its interval
(next to the loss), the compute-optimal allocation under every law, and the assumptions. Its
appendix lists the picked study's runs (N, D, C = 6 N D, GPU-hours, US$), the selected law's
parameters, the formulas and how the accuracy was obtained (which fit on which runs, how its
interval was measured and whether the target lies beyond that), so a reviewer can recompute the
headline numbers:

    C         = 6 N D                                   (training FLOPs of one run)
    GPU-hours = C / (3600 s/h * peak FLOP/s * MFU)
    cost      = GPU-hours * price per GPU-hour           (US$)
    L(N, D)   = E + A / N^alpha + B / D^beta             (nats/token)
    N*        = G (C/6)^(beta/(alpha+beta)),  G = (alpha A / (beta B))^(1/(alpha+beta)),  D* = C / (6 N*)
    accuracy  = 100 (1 - Err(L_hat)),  Err(L) = eps - k exp(-gamma L)   (points; Gadre et al.)

Every number in the brief is a cell of the comparison's tables (the same formatting functions),
and the recommendation sentence is built from those cells, so the brief and the page agree.

Charts are Plotly figures exported to PNG by kaleido with the machine's Chromium (nothing is
downloaded: kaleido finds ``chromium`` on the PATH or at ``$BROWSER_PATH``). The PDF is written
with fpdf2, the deck with python-pptx.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import io
import math
import os
import secrets
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from scaleplan.core import planning, scenarios
from scaleplan.core.errors import UserError
from scaleplan.core.laws.formulas import FLOPS_PER_PARAM_TOKEN
from scaleplan.core.units import format_count, format_dollars, format_flops, format_level, format_percent

__all__ = [
    "BriefError",
    "FORMULAS",
    "ACCURACY_FORMULA",
    "BriefFigure",
    "StudyRun",
    "Brief",
    "frontier_figure",
    "extrapolation_figure",
    "allocation_figure",
    "study_runs",
    "recommendation_sentence",
    "accuracy_notes",
    "build_brief",
    "render_png",
    "brief_pdf",
    "brief_pptx",
    "blank_figures",
    "pdf_missing_glyphs",
    "MissingGlyphs",
    "PdfBrief",
    "Protected",
    "SameTargetError",
    "check_target",
    "check_targets",
    "write_files",
    "write_new_file",
]

SYSTEM_CHROMIUM = "/usr/bin/chromium"
FIGURE_WIDTH, FIGURE_HEIGHT = 1000, 520  # px of the exported charts
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
DASHES = ("solid", "dash", "dot", "dashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up")
"""Each compared scenario's line dash and marker: two scenarios with the same frontier stay told apart."""

FORMULAS = (
    ("Training compute of one run", "C = 6 N D  (FLOPs; N parameters, D tokens)"),
    ("GPU time", "GPU-hours = C / (3600 s/h x peak FLOP/s per GPU x MFU)"),
    ("Cost", "US$ = GPU-hours x price per GPU-hour"),
    ("A study's cost", "sum over runs and seeds of the cost of each run"),
    ("Loss law", "L(N, D) = E + A / N^alpha + B / D^beta  (nats/token)"),
    (
        "Compute-optimal split",
        "N* = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)); D* = C / (6 N*)",
    ),
    (
        "Expected ARE",
        "ARE = |L_hat - L| / L; p50 and p80: median and 80th percentile of the calibrated error model "
        "for comparable designs of the public collection's meta-analysis",
    ),
)

ACCURACY_FORMULA = (
    "17-task average accuracy",
    "points = 100 (1 - Err(L_hat)), Err(L) = eps - k exp(-gamma L) (Gadre et al.'s average top-1 error of "
    "17 tasks) fitted on the over-training testbed's runs, L_hat = L(C, M) at C = 6 N D, M = D / N (their "
    "loss law, C4 eval loss); 90% interval: +-q, q the conformal quantile of the errors of held-out runs of "
    "the other over-training data sets (one data set left out at a time)",
)
"""How the brief's accuracy is obtained (:func:`scaleplan.core.task_prediction.target_average_accuracy`)."""


class BriefError(UserError):
    """The brief cannot be written (an existing file not to be replaced, no Chromium for the charts)."""


# ---------------------------------------------------------------------------------------------
# Charts


def _available(outcomes: Sequence[object]) -> list[scenarios.ScenarioOutcome]:
    return [o for o in outcomes if isinstance(o, scenarios.ScenarioOutcome)]


def frontier_figure(outcomes: Sequence[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable]) -> go.Figure:
    """Each scenario's cost-vs-accuracy frontier (study cost in US$, expected ARE p80 in %), pick marked ★."""
    fig = go.Figure()
    goals: set[float] = set()
    costs: list[float] = []
    available = _available(outcomes)
    for i, o in enumerate(available):
        colour = COLOURS[i % len(COLOURS)]
        points = o.frontier
        # Earlier scenarios are drawn wider and with larger markers, so a later one on the same frontier
        # lies inside them and both show (with their own dash and symbol).
        width = 2 + 1.5 * (len(available) - 1 - i)
        if points:
            cost, p80 = zip(*points)
            costs += cost
            fig.add_trace(
                go.Scatter(
                    x=list(cost),
                    y=[100 * p for p in p80],
                    mode="lines+markers",
                    line={"shape": "hv", "color": colour, "dash": DASHES[i % len(DASHES)], "width": width},
                    marker={"size": 5 + 2 * (len(available) - 1 - i), "symbol": SYMBOLS[i % len(SYMBOLS)]},
                    name=f"{o.name}: frontier",
                    hovertemplate="$%{x:,.0f}: p80 %{y:.1f}%<extra>" + o.name + "</extra>",
                )
            )
        pick = o.pick
        if pick is not None and pick.expected is not None:
            costs.append(pick.cost.dollars)
            fig.add_trace(
                go.Scatter(
                    x=[pick.cost.dollars],
                    y=[100 * pick.expected.p80],
                    mode="markers",
                    marker={
                        "symbol": "star",
                        "size": 14 + 4 * (len(available) - 1 - i),
                        "color": colour,
                        "line": {"color": "black", "width": 1},
                    },
                    name=f"{o.name}: pick {format_dollars(pick.cost.dollars)}, p80 {format_percent(pick.expected.p80)}",
                )
            )
        goals.add(100 * o.plan.goal_are)
    for k, goal in enumerate(sorted(goals)):
        # neighbouring goals (3% and 5%) are labelled at opposite ends of their lines, so the labels do not overlap
        fig.add_hline(
            y=goal,
            line={"dash": "dot", "color": "grey"},
            annotation_text=f"goal {goal:g}%",
            annotation_position="top right" if k % 2 == 0 else "top left",
        )
    ticks = _dollar_ticks(costs)
    fig.update_layout(
        title={"text": "Study cost against expected accuracy: the frontier of each scenario (★ = pick)"},
        xaxis={
            "title": {"text": "Study cost (US$, log scale)"},
            "type": "log",
            "tickvals": ticks,
            "ticktext": [format_dollars(v) if v >= 100 else f"${v:g}" for v in ticks],  # $1, $10, $100, $1k
        },
        yaxis={"title": {"text": "Expected ARE of the target, 80th percentile (%)"}, "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"t": 60, "b": 120, "l": 70, "r": 20},
        template="plotly_white",
    )
    return fig


def _dollar_ticks(costs: Sequence[float]) -> list[float]:
    """Powers of ten (US$) covering ``costs``, labelled in one format by :func:`format_dollars` ($1k, $10k)."""
    positive = [c for c in costs if c > 0 and math.isfinite(c)]
    if not positive:
        return []
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    return [10.0**k for k in range(low, max(high, low + 1) + 1)]


def _loss_band(law: planning.ReferenceLaw, n: np.ndarray, d: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    p = law.params
    centre = p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]
    if law.samples is None or not len(law.samples):
        return centre, centre, centre
    s = np.asarray(law.samples, dtype=float)
    with np.errstate(all="ignore"):
        values = s[:, [0]] + s[:, [1]] * n[None, :] ** -s[:, [3]] + s[:, [2]] * d[None, :] ** -s[:, [4]]
    tail = (1 - level) / 2
    low, high = np.nanquantile(values, [tail, 1 - tail], axis=0)
    return centre, np.minimum(low, centre), np.maximum(high, centre)


def extrapolation_figure(
    outcomes: Sequence[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable],
) -> go.Figure:
    """The target's predicted loss (nats/token) against compute (FLOPs) along its tokens per
    parameter, under each scenario's law, with the law's 80% parameter interval as a band."""
    fig = go.Figure()
    for i, o in enumerate(_available(outcomes)):
        colour = COLOURS[i % len(COLOURS)]
        ratio = o.target_tokens / o.target_params
        compute = np.logspace(math.log10(o.target_flops) - 5, math.log10(o.target_flops) + 0.5, 60)
        n = np.sqrt(compute / (FLOPS_PER_PARAM_TOKEN * ratio))
        centre, low, high = _loss_band(o.selected_law, n, ratio * n, o.loss.level)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([compute, compute[::-1]]),
                y=np.concatenate([high, low[::-1]]),
                fill="toself",
                fillcolor=colour,
                opacity=0.15,
                line={"width": 0},
                name=f"{o.name}: {format_level(o.loss.level)} parameter interval ({o.selected_law.name})",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=compute, y=centre, mode="lines", line={"color": colour}, name=f"{o.name}: {o.selected_law.name}"
            )
        )
        error = {}
        if o.loss.has_interval:
            assert o.loss.low is not None and o.loss.high is not None
            error = {
                "type": "data",
                "symmetric": False,
                "array": [o.loss.high - o.loss.value],
                "arrayminus": [o.loss.value - o.loss.low],
            }
        fig.add_trace(
            go.Scatter(
                x=[o.target_flops],
                y=[o.loss.value],
                mode="markers",
                marker={"symbol": "diamond", "size": 12, "color": colour},
                error_y=error or None,
                name=f"{o.name}: target {scenarios.loss_text(o.loss)}",
            )
        )
    fig.update_layout(
        title={"text": "Extrapolation: the target's predicted loss with its interval"},
        xaxis={
            "title": {"text": "Training compute C = 6ND (FLOPs, log scale)"},
            "type": "log",
            "exponentformat": "power",
        },
        yaxis={"title": {"text": "Predicted loss (nats/token)"}},
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"t": 60, "b": 140, "l": 70, "r": 20},
        template="plotly_white",
    )
    return fig


def allocation_figure(
    outcomes: Sequence[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable],
) -> go.Figure:
    """Compute-optimal N* (parameters) under every law at each scenario's target compute, with the
    laws' 80% intervals."""
    fig = go.Figure()
    for i, o in enumerate(_available(outcomes)):
        rows = o.compute_optimal
        fig.add_trace(
            go.Scatter(
                x=[r.num_params for r in rows],
                y=[r.law for r in rows],
                mode="markers",
                marker={"size": 10, "color": COLOURS[i % len(COLOURS)]},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.num_params_high - r.num_params for r in rows],
                    "arrayminus": [r.num_params - r.num_params_low for r in rows],
                },
                name=f"{o.name}: at {format_flops(o.target_flops)}",
            )
        )
    fig.update_layout(
        title={"text": "Compute-optimal model size under each law (80% intervals)"},
        xaxis={"title": {"text": "Compute-optimal parameters N* (log scale)"}, "type": "log", "exponentformat": "SI"},
        yaxis={"title": {"text": "Law"}, "automargin": True},
        legend={"orientation": "h", "y": -0.25, "x": 0},
        margin={"t": 60, "b": 120, "l": 140, "r": 20},
        template="plotly_white",
    )
    return fig


def render_png(figures: Sequence[go.Figure], *, width: int = FIGURE_WIDTH, height: int = FIGURE_HEIGHT) -> list[bytes]:
    """PNG images of ``figures`` through kaleido with the machine's Chromium (one browser for all).

    Raises :class:`BriefError` when no Chromium can be started (kaleido never downloads one here).
    """
    import kaleido
    import plotly.io as pio

    if "BROWSER_PATH" not in os.environ and Path(SYSTEM_CHROMIUM).exists():
        os.environ["BROWSER_PATH"] = SYSTEM_CHROMIUM
    started = False
    try:
        try:
            kaleido.start_sync_server(silence_warnings=True)
            started = True
        except Exception:  # noqa: BLE001 - a server already running is fine; to_image then starts its own
            started = False
        with warnings.catch_warnings():
            # plotly passes its browser options again on each call; with one server they are already set
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")
            return [
                pio.to_image(go.Figure(f).update_layout(font={"size": 15}), format="png", width=width, height=height)
                for f in figures
            ]
    except (RuntimeError, OSError, ValueError) as error:
        raise BriefError(
            f"the brief's charts need Chromium for kaleido ({error}); install it (apt-get install chromium) "
            "or set $BROWSER_PATH to a Chrome or Chromium binary"
        ) from error
    finally:
        if started:
            kaleido.stop_sync_server(silence_warnings=True)


# ---------------------------------------------------------------------------------------------
# The brief's content


@dataclass(frozen=True)
class BriefFigure:
    """A titled chart as a PNG image."""

    title: str
    png: bytes


@dataclass(frozen=True)
class StudyRun:
    """One run of a picked study: ``num_params`` (N), ``tokens`` (D), ``seeds``, ``flops`` = 6 N D
    (one seed), ``gpu_hours`` and ``dollars`` for all its seeds."""

    scenario: str
    num_params: float
    tokens: float
    seeds: int
    flops: float
    gpu_hours: float
    dollars: float


def study_runs(outcome: scenarios.ScenarioOutcome) -> tuple[StudyRun, ...]:
    """The picked design's runs with their cost under the scenario's GPU cost model."""
    pick = outcome.pick
    if pick is None:
        return ()
    cost = outcome.inputs.cost_model
    out = []
    for n, d in zip(pick.design.sizes, pick.design.tokens):
        flops = planning.training_flops(n, d)
        each = cost.of(flops * pick.design.seeds)
        out.append(StudyRun(outcome.name, n, d, pick.design.seeds, flops, each.gpu_hours, each.dollars))
    return tuple(out)


@dataclass(frozen=True)
class Brief:
    """Everything a brief shows, as text and images (rendered to PDF and PPTX by :func:`brief_pdf`
    and :func:`brief_pptx`)."""

    title: str
    recommendation: tuple[str, ...]
    comparison: scenarios.Comparison
    assumptions: tuple[tuple[str, tuple[str, ...]], ...]
    figures: tuple[BriefFigure, ...]
    runs: tuple[StudyRun, ...]
    parameters: tuple[tuple[str, str, str], ...]
    footer: str
    accuracy: tuple[tuple[str, str], ...] = ()
    """(scenario, how its predicted 17-task average accuracy was obtained): :func:`accuracy_notes`."""

    @property
    def names(self) -> tuple[str, ...]:
        return self.comparison.names


def _cell(comparison: scenarios.Comparison, label: str, column: int) -> str:
    row = next(r for r in comparison.outcomes if r.label == label)
    return row.values[column]


PICK_COST = "Pick's cost (US$, GPU-hours)"
ACCURACY_HEADING = "The predicted 17-task average accuracy: how it was obtained"


def recommendation_sentence(comparison: scenarios.Comparison) -> tuple[str, ...]:
    """One sentence per scenario, built from the comparison's own cells (the same numbers as the tables)."""
    out = []
    for column, o in enumerate(comparison.scenarios):
        if not isinstance(o, scenarios.ScenarioOutcome):
            out.append(f"{o.name}: cannot be planned now: {o.reason}.")
            continue
        if o.pick is None:
            why = o.plan.message or "no well-supported study design fits the budget"
            out.append(
                f"{o.name}: no study to recommend within {_cell(comparison, 'Study budget (US$)', column)}: {why}."
            )
            continue
        goal = f"{o.inputs.accuracy_percent:g}%"
        meets = "meets" if o.plan.meets_goal else "does not meet"
        out.append(
            f"{o.name}: train {_cell(comparison, 'Pick (study design)', column)} for "
            f"{_cell(comparison, PICK_COST, column)}; its expected ARE is "
            f"{_cell(comparison, 'Expected ARE p50 (%)', column)} (median) and "
            f"{_cell(comparison, 'Expected ARE p80 (%)', column)} (80th percentile), which {meets} the {goal} goal; "
            f"predicted target loss {_cell(comparison, scenarios.LOSS_LABEL, column)} (the law's training data); "
            f"predicted 17-task average accuracy {_cell(comparison, scenarios.AVERAGE_ACCURACY_LABEL, column)}."
        )
    return tuple(out)


def accuracy_notes(outcomes: Sequence[object]) -> tuple[tuple[str, str], ...]:
    """Per planned scenario, how its predicted 17-task average accuracy was obtained: the fits and the
    runs they were made on, why that data set, and how the interval was calibrated (the coverage
    measured leaving one over-training data set out, and whether the target lies beyond those runs),
    the texts of :class:`scaleplan.core.task_prediction.TargetAccuracy`."""
    rows = []
    for o in _available(outcomes):
        a = o.average_accuracy
        if a is None:
            rows.append((o.name, "not computed (the scenario was planned without the collection's database)"))
            continue
        fitted = f"{a.fitted_on}; {a.source}" if a.fitted_on else a.source
        if a.refused or a.predicted_points is None:
            text = f"No prediction: {a.message} ({fitted})."
        else:
            loss = (
                f" at the target's predicted loss {a.predicted_loss:.3f} ({a.loss_metric})" if a.predicted_loss else ""
            )
            interval = f"{a.interval_label}: " if a.interval_label else "no interval: "
            text = f"{a.predicted_points:.1f} points{loss}, from {fitted}. {interval}{a.interval_basis}."
        rows.append((o.name, text))
    return tuple(rows)


def _parameters(outcomes: Sequence[object]) -> tuple[tuple[str, str, str], ...]:
    rows = []
    for o in _available(outcomes):
        p = o.selected_law.params
        values = ", ".join(f"{k} = {p[k]:.6g}" for k in planning.CHINCHILLA_NAMES)
        rows.append((o.name, o.selected_law.name, values))
    return tuple(rows)


def build_brief(
    comparison: scenarios.Comparison,
    *,
    scaleplan_version: str,
    data_version: str,
    date: _dt.date | None = None,
    render: Callable[[Sequence[go.Figure]], list[bytes]] = render_png,
) -> Brief:
    """The brief of ``comparison`` (one scenario or up to four), its charts rendered by ``render``."""
    outcomes = comparison.scenarios
    day = (date or _dt.datetime.now(_dt.UTC).date()).isoformat()
    titled = [
        ("Study cost against expected accuracy (frontier, pick marked)", frontier_figure(outcomes)),
        ("Extrapolation of the target's loss with its interval", extrapolation_figure(outcomes)),
        ("Compute-optimal allocation under the laws", allocation_figure(outcomes)),
    ]
    images = render([fig for _, fig in titled])
    rows = _all_input_rows(outcomes)
    name = comparison.names[0] if len(outcomes) == 1 else " vs ".join(comparison.names)
    return Brief(
        title=f"Decision brief: {name}",
        recommendation=recommendation_sentence(comparison),
        comparison=comparison,
        assumptions=tuple((r.label, r.values) for r in rows)
        + (("GPU cost model", tuple(_cost_text(o.inputs) for o in outcomes)),),
        figures=tuple(BriefFigure(t, png) for (t, _), png in zip(titled, images)),
        runs=tuple(run for o in _available(outcomes) for run in study_runs(o)),
        parameters=_parameters(outcomes),
        footer=f"scaleplan {scaleplan_version} · data version {data_version} · {day}",
        accuracy=accuracy_notes(outcomes),
    )


def _all_input_rows(outcomes: Sequence[object]) -> tuple[scenarios.ComparisonRow, ...]:
    per = [o.inputs.rows() for o in outcomes]  # type: ignore[attr-defined]
    return tuple(
        scenarios.ComparisonRow(label, tuple(rows[i][1] for rows in per)) for i, (label, _) in enumerate(per[0])
    )


def _cost_text(inputs: scenarios.PlanInputs) -> str:
    per_gpu_hour = inputs.peak_flops_per_gpu * inputs.mfu * 3600
    return (
        f"{format_flops(per_gpu_hour)} per GPU-hour ({inputs.peak_flops_per_gpu / 1e12:g} TFLOP/s x "
        f"{format_percent(inputs.mfu, 0)} MFU x 3600 s); ${inputs.dollars_per_gpu_hour:g}/GPU-hour"
    )


def run_rows(runs: Sequence[StudyRun]) -> list[list[str]]:
    """The appendix's study runs as text rows (header first), written as the planner's run table writes
    them: counts with a suffix (2.5B), compute in FLOPs, dollars (:mod:`core.units`)."""
    head = ["Scenario", "N (params)", "D (tokens)", "Seeds", "C = 6ND per seed (FLOPs)", "GPU-hours", "Cost"]
    rows = [head] + [
        [
            r.scenario,
            format_count(r.num_params),
            format_count(r.tokens),
            str(r.seeds),
            format_flops(r.flops, unit=False),
            format_count(r.gpu_hours),
            format_dollars(r.dollars),
        ]
        for r in runs
    ]
    for name in dict.fromkeys(r.scenario for r in runs):
        mine = [r for r in runs if r.scenario == name]
        rows.append(
            [
                f"{name}: total",
                "",
                "",
                "",
                f"{format_flops(sum(r.flops * r.seeds for r in mine), unit=False)} (all seeds)",
                format_count(sum(r.gpu_hours for r in mine)),
                format_dollars(sum(r.dollars for r in mine)),
            ]
        )
    return rows


# ---------------------------------------------------------------------------------------------
# PDF (fpdf2)

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


PDF_MISSING_GLYPH = "\u25a1"  # WHITE SQUARE: drawn with DejaVu Sans in place of a character it lacks
PDF_FALLBACK_MISSING_GLYPH = "?"  # what Helvetica (latin-1 only) draws in place of any other character
PDF_FALLBACK_FONT = "Helvetica"


@dataclass(frozen=True)
class MissingGlyphs:
    """The characters of a PDF brief its font cannot draw, and what is drawn in their place."""

    characters: tuple[str, ...]
    """Each character once, in the order first drawn (whitespace is never counted)."""
    drawn_as: str
    """The character drawn in place of each: :data:`PDF_MISSING_GLYPH` with DejaVu Sans,
    :data:`PDF_FALLBACK_MISSING_GLYPH` with the Helvetica fallback."""
    font: str
    """The font the PDF is set in: ``"DejaVu Sans"`` or ``"Helvetica"`` (DejaVu Sans not installed)."""

    @property
    def warning(self) -> str | None:
        """A sentence for the user (no prefix, no Markdown), or None when every character is drawn."""
        if not self.characters:
            return None
        shown = "".join(self.characters)
        shown = shown if len(shown) <= 40 else shown[:39] + "\u2026"
        font = (
            self.font
            if self.font != PDF_FALLBACK_FONT
            else (f"{PDF_FALLBACK_FONT}, as DejaVu Sans is not installed (apt-get install fonts-dejavu-core)")
        )
        return (
            f"the PDF brief's font ({font}) has no glyphs for {shown!r}: the PDF draws each as "
            f"{self.drawn_as!r}; the PowerPoint deck shows them"
        )


@dataclass(frozen=True)
class PdfBrief:
    """A rendered PDF brief (:func:`brief_pdf`): its bytes and the characters its font could not draw."""

    data: bytes
    missing: MissingGlyphs


def _pdf_text(
    text: str, unicode_font: bool, glyphs: Collection[int] = (), missing: dict[str, None] | None = None
) -> str:
    """``text`` as the PDF font can draw it: a character the font lacks (with DejaVu Sans: not in
    ``glyphs``, its code points; with Helvetica: beyond latin-1 after the usual swaps) becomes
    :data:`PDF_MISSING_GLYPH` (DejaVu) or :data:`PDF_FALLBACK_MISSING_GLYPH` (Helvetica) and is
    added to ``missing`` (in the order first met)."""
    if unicode_font:
        if not glyphs:
            return text
        lacking = dict.fromkeys(c for c in text if ord(c) not in glyphs and not c.isspace())
        if missing is not None:
            missing.update(lacking)
        return "".join(PDF_MISSING_GLYPH if c in lacking else c for c in text)
    swaps = {"★": "*", "–": "-", "—": "-", "·": "-", "≤": "<=", "×": "x", "α": "alpha", "β": "beta", "’": "'"}
    for a, b in swaps.items():
        text = text.replace(a, b)
    lacking = dict.fromkeys(c for c in text if ord(c) > 0xFF and not c.isspace())
    if missing is not None:
        missing.update(lacking)
    return "".join(
        PDF_FALLBACK_MISSING_GLYPH if c in lacking else " " if ord(c) > 0xFF else c
        for c in text  # wide spaces
    )


def brief_pdf(brief: Brief) -> PdfBrief:
    """A one-page PDF brief (recommendation, outcome table, frontier and extrapolation charts,
    assumptions) followed by an appendix (allocation chart, study runs, parameters, formulas),
    with the characters its font could not draw (:class:`MissingGlyphs`; nothing is printed)."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    regular, bold = _FONT_DIR / "DejaVuSans.ttf", _FONT_DIR / "DejaVuSans-Bold.ttf"
    unicode_font = regular.exists() and bold.exists()

    class _PDF(FPDF):
        def footer(self) -> None:
            self.set_y(-10)
            self.set_font(family, size=7)
            self.cell(0, 5, t(f"{brief.footer} · page {self.page_no()}"), align="C")

    pdf = _PDF(orientation="portrait", unit="mm", format="A4")
    if unicode_font:
        pdf.add_font("DejaVu", "", str(regular))
        pdf.add_font("DejaVu", "B", str(bold))
        family = "DejaVu"
        # code points both faces draw (fpdf keys a face by family + style)
        faces = [getattr(pdf.fonts[key], "cmap", {}) for key in ("dejavu", "dejavuB")]
        glyphs: Collection[int] = faces[0].keys() & faces[1].keys()
    else:
        family = PDF_FALLBACK_FONT
        glyphs = ()
    missing: dict[str, None] = {}  # the characters the font lacks, in the order first drawn

    def t(text: str) -> str:
        return _pdf_text(text, unicode_font, glyphs, missing)

    pdf.set_auto_page_break(auto=True, margin=14)
    pdf.set_margins(12, 10, 12)
    pdf.add_page()
    pdf.set_title(t(brief.title))
    pdf.set_font(family, "B", 13)
    pdf.multi_cell(0, 6, t(brief.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "B", 9)
    pdf.cell(0, 5, "Recommendation", new_x="LMARGIN", new_y="NEXT")
    many = len(brief.names) > 2  # three or four scenarios: smaller text, so page one holds them
    pdf.set_font(family, size=7 if many else 7.5)
    for sentence in brief.recommendation:
        pdf.multi_cell(0, 3.3 if many else 3.6, t(sentence), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(1)
    heading = FontFace(emphasis="BOLD", fill_color=(230, 235, 245))

    def table(
        rows: Sequence[Sequence[str]], widths: Sequence[float] | None = None, size: float = 6.5, *, merge: bool = False
    ) -> None:
        """``merge``: a row whose values are the same in every column after the first is one cell across them."""
        pdf.set_font(family, size=size)
        with pdf.table(
            col_widths=tuple(widths) if widths else None, headings_style=heading, line_height=3.0, padding=0.6
        ) as tab:
            for i, row in enumerate(rows):
                cells = tab.row()
                if merge and i > 0 and len(row) > 2 and len(set(row[1:])) == 1:
                    cells.cell(t(row[0]), align="L")
                    cells.cell(t(row[1]), align="L", colspan=len(row) - 1)
                    continue
                for value in row:
                    cells.cell(t(value), align="L")
        pdf.ln(1)

    n = len(brief.names)
    first = 40 if n == 1 else 34 if n == 2 else 26
    widths = [first] + [(100 - first) / n] * n
    table([["Outcome", *brief.names]] + [[r.label, *r.values] for r in brief.comparison.outcomes], widths)
    images = brief.figures
    half = (pdf.w - pdf.l_margin - pdf.r_margin - 4) / 2
    y = pdf.get_y()

    def assumptions() -> None:
        pdf.set_font(family, "B", 9)
        pdf.cell(0, 5, "Assumptions", new_x="LMARGIN", new_y="NEXT")
        table([["Input", *brief.names]] + [[label, *values] for label, values in brief.assumptions], widths, merge=True)

    # the charts shrink (down to 60%) so that the assumptions still end page one with four scenarios
    with pdf.offset_rendering():
        page = pdf.page
        assumptions()
        needed = pdf.get_y() - y if pdf.page == page else math.inf
    height = half * FIGURE_HEIGHT / FIGURE_WIDTH
    room = pdf.page_break_trigger - y - needed - 3.5 - 2
    if room < height:
        height = max(0.6 * height, room)
    width = height * FIGURE_WIDTH / FIGURE_HEIGHT
    for i, figure in enumerate(images[:2]):
        x = pdf.l_margin + i * (half + 4)
        pdf.set_xy(x, y)
        pdf.set_font(family, "B", 7)
        pdf.multi_cell(half, 3.2, t(figure.title), new_x="LEFT", new_y="NEXT")
        pdf.image(io.BytesIO(figure.png), x=x + (half - width) / 2, w=width)
    pdf.set_y(y + 3.5 + height + 2)
    assumptions()

    pdf.add_page()
    pdf.set_font(family, "B", 12)
    pdf.cell(0, 6, "Appendix: numbers to recompute by hand", new_x="LMARGIN", new_y="NEXT")
    if len(images) > 2:
        pdf.set_font(family, "B", 8)
        pdf.cell(0, 4, t(images[2].title), new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(images[2].png), w=pdf.w * 0.6)
    pdf.set_font(family, "B", 9)
    pdf.cell(0, 5, "Formulas", new_x="LMARGIN", new_y="NEXT")
    table([["Quantity", "Formula"], *FORMULAS], [30, 70], size=7)
    pdf.set_font(family, "B", 9)
    pdf.cell(0, 5, "Selected law's parameters (Chinchilla form)", new_x="LMARGIN", new_y="NEXT")
    table([["Scenario", "Law", "Parameters"], *brief.parameters], [20, 20, 60], size=7)
    if brief.accuracy:
        pdf.set_font(family, "B", 9)
        pdf.cell(0, 5, ACCURACY_HEADING, new_x="LMARGIN", new_y="NEXT")
        table([["Quantity", "Formula"], ACCURACY_FORMULA], [30, 70], size=7)
        table([["Scenario", "How it was obtained"], *brief.accuracy], [20, 80], size=7)
    pdf.set_font(family, "B", 9)
    pdf.cell(0, 5, "The picked study's runs", new_x="LMARGIN", new_y="NEXT")
    if brief.runs:
        table(run_rows(brief.runs), size=6.5)
    else:
        pdf.set_font(family, size=7)
        pdf.cell(0, 4, "No study was picked.", new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())  # the last page's footer is drawn here
    lacking = MissingGlyphs(
        characters=tuple(missing),
        drawn_as=PDF_MISSING_GLYPH if unicode_font else PDF_FALLBACK_MISSING_GLYPH,
        font="DejaVu Sans" if unicode_font else PDF_FALLBACK_FONT,
    )
    return PdfBrief(data=data, missing=lacking)


def blank_figures(figures: Sequence[go.Figure]) -> list[bytes]:
    """A blank 1 x 1 px PNG for each of ``figures``: the ``render`` of :func:`build_brief` when only
    the brief's text matters (no Chromium, milliseconds)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(out, format="PNG")
    return [out.getvalue()] * len(figures)


def pdf_missing_glyphs(
    comparison: scenarios.Comparison, *, scaleplan_version: str, data_version: str, date: _dt.date | None = None
) -> MissingGlyphs:
    """The characters the PDF brief of ``comparison`` cannot draw, known before it is rendered: the
    PDF made with blank charts (:func:`blank_figures`) has the same text as the real one."""
    text_only = build_brief(
        comparison, scaleplan_version=scaleplan_version, data_version=data_version, date=date, render=blank_figures
    )
    return brief_pdf(text_only).missing


# ---------------------------------------------------------------------------------------------
# PowerPoint (python-pptx)


PPTX_RUN_ROW_HEIGHT = 0.3  # inches a row of the study-runs table
# Rows of runs a slide holds under its header: the table starts 1.1 in down and must end above
# the footer at 7.0 in, so (rows + 1) * 0.3 in <= 5.9 in.
PPTX_RUN_ROWS_PER_SLIDE = 18


def brief_pptx(brief: Brief) -> bytes:
    """A deck: recommendation, frontier, extrapolation, compute-optimal allocation, assumptions,
    appendix (study runs, parameters, formulas); every slide with the footer."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(13.333), Inches(7.5)
    blank = deck.slide_layouts[6]

    def slide(title: str) -> Any:
        s = deck.slides.add_slide(blank)
        box = s.shapes.add_textbox(Inches(0.5), Inches(0.3), Inches(12.3), Inches(0.8))
        box.text_frame.text = title
        box.text_frame.paragraphs[0].runs[0].font.size = Pt(26)
        box.text_frame.paragraphs[0].runs[0].font.bold = True
        foot = s.shapes.add_textbox(Inches(0.5), Inches(7.0), Inches(12.3), Inches(0.4))
        foot.text_frame.text = brief.footer
        foot.text_frame.paragraphs[0].runs[0].font.size = Pt(10)
        return s

    def table(
        s: Any,
        rows: Sequence[Sequence[str]],
        top: float,
        height: float,
        size: int = 11,
        widths: Sequence[float] | None = None,
    ) -> None:
        shape = s.shapes.add_table(len(rows), len(rows[0]), Inches(0.5), Inches(top), Inches(12.3), Inches(height))
        for j, width in enumerate(widths or ()):
            shape.table.columns[j].width = Inches(width)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                cell = shape.table.cell(i, j)
                cell.text = value
                for paragraph in cell.text_frame.paragraphs:
                    for run in paragraph.runs:
                        run.font.size = Pt(size)

    def picture(s: Any, figure: BriefFigure, top: float = 1.2, width: float = 11.0) -> None:
        s.shapes.add_picture(io.BytesIO(figure.png), Inches((13.333 - width) / 2), Inches(top), width=Inches(width))

    s = slide("Recommendation")
    text = s.shapes.add_textbox(Inches(0.5), Inches(1.1), Inches(12.3), Inches(5.6)).text_frame
    text.word_wrap = True
    for i, sentence in enumerate(brief.recommendation):
        paragraph = text.paragraphs[0] if i == 0 else text.add_paragraph()
        paragraph.text = sentence
        paragraph.runs[0].font.size = Pt(16)
    rows = [["Outcome", *brief.names]] + [[r.label, *r.values] for r in brief.comparison.outcomes]
    table(slide("Outcomes side by side"), rows, 1.1, 5.6, size=8 if len(brief.names) <= 2 else 7)
    for figure in brief.figures:
        picture(slide(figure.title), figure)
    s = slide("Assumptions")
    table(s, [["Input", *brief.names]] + [[label, *values] for label, values in brief.assumptions], 1.2, 5.0)
    s = slide("Appendix: numbers to recompute by hand")
    table(s, [["Quantity", "Formula"], *FORMULAS], 1.1, 2.8, size=10)
    table(s, [["Scenario", "Law", "Parameters"], *brief.parameters], 4.2, 1.0, size=10)
    for first in range(0, len(brief.accuracy), 2):  # two scenarios a slide: each note is a paragraph
        s = slide("Appendix: how the 17-task average accuracy was obtained")
        table(s, [("Quantity", "Formula"), ACCURACY_FORMULA], 1.1, 1.0, size=10, widths=(2.5, 9.8))
        notes: list[Sequence[str]] = [("Scenario", "How it was obtained"), *brief.accuracy[first : first + 2]]
        table(s, notes, 2.5, 3.0, size=10, widths=(2.5, 9.8))
    head, *run_body = run_rows(brief.runs) if brief.runs else [[]]
    for first in range(0, len(run_body), PPTX_RUN_ROWS_PER_SLIDE):  # the rest on "(continued)" slides
        title = "Appendix: the picked study's runs" + (" (continued)" if first else "")
        chunk = run_body[first : first + PPTX_RUN_ROWS_PER_SLIDE]
        table(slide(title), [head, *chunk], 1.1, PPTX_RUN_ROW_HEIGHT * (len(chunk) + 1), size=9)
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (after resolving links; or one inode when both exist)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@dataclass(frozen=True)
class Protected:
    """One of scaleplan's own files (or folders of them), which a brief never writes over, even forced.

    ``kind`` says what ``path`` is: ``"file"`` (the file and DuckDB's write-ahead log beside it,
    ``<name>.wal``), ``"folder"`` (anything inside it, at any depth) or ``"names"`` (``path.name`` is a
    glob pattern, e.g. ``scaleplan.duckdb.corrupt-*``: every matching file of ``path.parent``).
    """

    what: str
    """What it is, for the message: "the user store (saved studies and scenarios)"."""
    path: Path
    kind: Literal["file", "folder", "names"] = "file"

    def covers(self, path: Path) -> Path | None:
        """The protected file or folder ``path`` names (after resolving links), or None."""
        target = Path(path).resolve()
        own = Path(self.path)
        if self.kind == "folder":
            folder = own.resolve()
            return folder if target == folder or target.is_relative_to(folder) else None
        if self.kind == "names":
            folder = own.parent.resolve()
            if target.parent == folder and fnmatch.fnmatchcase(target.name, own.name):
                return target
            matches = sorted(own.parent.glob(own.name)) if own.parent.is_dir() else []
            return next((m for m in matches if _same_file(target, m)), None)  # a hard link to one
        return next((c for c in (own, own.with_name(own.name + ".wal")) if _same_file(target, c)), None)


class SameTargetError(BriefError):
    """Two outputs of one brief name the same file (``first`` and ``second``, as given)."""

    def __init__(self, first: Path, second: Path) -> None:
        self.first, self.second = Path(first), Path(second)
        super().__init__(f"{first} and {second} are the same file; give each output its own file name")


def _exists_message(path: Path) -> str:
    return f"{path} exists already; choose another file name or pass --force to replace it"


def check_target(path: Path, *, force: bool = False, protected: Sequence[Protected] = ()) -> None:
    """Raise :class:`BriefError` unless a brief may be written to ``path``; call it for every
    output (:func:`check_targets`: all of a brief's outputs at once) before anything is rendered (a
    refusal then costs nothing and writes nothing).

    Refused: one of scaleplan's own files (``protected``; even with ``force``), a folder, a path
    whose folder does not exist or cannot be written in, anything but a regular file (a device, a
    pipe; even with ``force``), an existing file (or link) without ``force``, and a read-only file
    even with ``force``.
    """
    path = Path(path)
    for own in protected:
        hit = own.covers(path)
        if hit is not None:
            inside = f"inside {own.what} ({hit})" if own.kind == "folder" else f"{own.what} ({hit})"
            raise BriefError(
                f"{path} is {inside}; scaleplan will not write a brief over it, even with --force. "
                "Choose another file name"
            )
    if path.is_dir():
        raise BriefError(f"{path} is a folder; give a file name such as {path / 'brief.pdf'}")
    folder = path.parent
    if not folder.is_dir():
        raise BriefError(f"the folder of {path} ({folder}) does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BriefError(f"cannot write in {folder} (permission denied); choose another folder")
    if path.exists() and not path.is_file():
        raise BriefError(f"{path} is not a regular file (a device or a pipe); choose another file name")
    if os.path.lexists(path) and not force:
        raise BriefError(_exists_message(path))
    if path.is_file() and not path.stat().st_mode & 0o222:  # no write bit (root's os.access says yes)
        # A read-only file says "keep me": --force replaces what may be written, not what is protected.
        raise BriefError(f"{path} is read-only; scaleplan will not replace it, even with --force")


def check_targets(paths: Sequence[Path], *, force: bool = False, protected: Sequence[Protected] = ()) -> None:
    """:func:`check_target` for each of one brief's outputs, and no two of them the same file (after
    resolving links, or one inode: :class:`SameTargetError`), which would leave one output
    overwritten by the other. Call it before anything is rendered; :func:`write_files` calls it too.
    """
    paths = [Path(p) for p in paths]
    for index, path in enumerate(paths):
        for earlier in paths[:index]:
            if _same_file(earlier, path):
                raise SameTargetError(earlier, path)
    for path in paths:
        check_target(path, force=force, protected=protected)


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a new hidden file beside ``path`` (same folder, so a rename is atomic), synced."""
    while True:
        # Cut to 100 bytes of UTF-8 (at a character boundary): the name's 255-byte limit, not characters.
        stem = path.name.encode()[:100].decode(errors="ignore")
        temp = path.with_name(f".{stem}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _commit(temp: Path, path: Path, *, force: bool) -> None:
    """Move ``temp`` to ``path``: replacing a file there only with ``force`` (atomically either way)."""
    if force:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # fails when anything is at path: never clobbers
    except FileExistsError:
        raise BriefError(_exists_message(path)) from None
    except OSError:  # a file system without hard links: create exclusively instead
        try:
            with path.open("xb") as out:
                out.write(temp.read_bytes())
        except FileExistsError:
            raise BriefError(_exists_message(path)) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    finally:
        temp.unlink(missing_ok=True)


def write_files(
    files: Sequence[tuple[Path, bytes]], *, force: bool = False, protected: Sequence[Protected] = ()
) -> None:
    """Write each ``(path, data)``: the paths are checked by :func:`check_targets` again (each may be
    written, no two the same file), then each is written to a temporary file beside it; only when every temporary file is written are they moved into place.
    A failure removes the temporary files and the files this call created. An existing file is
    replaced only with ``force``, atomically (readers see the old file or the new one, never part
    of one); a file replaced before a later move failed stays replaced (the error says which), so
    with ``force`` the set is all-or-none up to the moves themselves.
    """
    check_targets([path for path, _ in files], force=force, protected=protected)
    temps: list[Path] = []
    created: list[Path] = []
    replaced: list[Path] = []
    current = Path()
    try:
        for path, data in files:
            current = Path(path)
            temps.append(_write_temp(current, data))
        for (path, _), temp in zip(files, temps):
            current = Path(path)
            existed = os.path.lexists(current)
            _commit(temp, current, force=force)
            (replaced if existed else created).append(current)
    except BaseException as error:
        for temp in temps:
            temp.unlink(missing_ok=True)
        for path in created:
            Path(path).unlink(missing_ok=True)
        if isinstance(error, OSError):
            done = f"{', '.join(map(str, replaced))} replaced already" if replaced else "nothing was written"
            raise BriefError(f"cannot write {current}: {error.strerror or error}; {done}") from error
        raise


def write_new_file(path: Path, data: bytes, *, force: bool = False, protected: Sequence[Protected] = ()) -> None:
    """Write ``data`` to ``path`` (:func:`write_files` of one file)."""
    write_files([(Path(path), data)], force=force, protected=protected)
