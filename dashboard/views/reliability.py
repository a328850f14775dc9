"""How reliable are scaling laws? The meta-analysis of the collection, against the paper's findings.

Reads the sweep results (``common.meta_path()``): heatmaps of family-averaged ARE by compute
share x number of runs, matched comparisons (intermediate checkpoints vs final losses, the 10B
cutoff vs none) and the table of the paper's guidance with "holds on our data?" from
:func:`core.findings.check_findings`.

URL state: ``?family=pythia&ckpt=all&cutoff=on``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from scaleplan.core import calibration, findings, fitting, meta, reproduce, units
from scaleplan.core.selection import DEFAULT_MIN_TOKENS
from scaleplan.dashboard import analysis_charts, charts, common, state, sweep

log = logging.getLogger("scaleplan.dashboard")
KEY = "reliability."
ALL = "all"
CHECKPOINTS = {"all": "Intermediate checkpoints", "final": "Final losses only"}
CUTOFF = {"on": "Drop ≤ 10B tokens", "off": "Keep all checkpoints"}


def _family_label(family: str) -> str:
    return "All families (averaged)" if family == ALL else family


RUN_BINS = (0, 3, 4, 5, 6, 8, 16, np.inf)  # right-closed: 3, 4, 5, 6, 7-8, 9-16, 17+
RUN_LABELS = ("3", "4", "5", "6", "7–8", "9–16", "17+")


@st.cache_data(show_spinner=False, max_entries=8)
def _heat_table(meta_key: tuple, family: str, final_only: bool, cutoff: bool, _results: pd.DataFrame) -> pd.DataFrame:
    rows = _results[
        (_results["final_only"] == final_only)
        & (np.isclose(_results["min_tokens"].astype(float), DEFAULT_MIN_TOKENS) == cutoff)
    ]
    if family != ALL:
        rows = rows[rows["family"] == family]
    if rows.empty or not (rows["status"] == "ok").any():
        return pd.DataFrame(columns=["compute_bin", "runs_bin", "are_mean", "families"])
    binned = meta.with_compute_bins(rows)
    binned["runs_bin"] = pd.cut(binned["num_runs"], RUN_BINS, labels=RUN_LABELS, right=True)
    return meta.family_averaged(binned, by=["compute_bin", "runs_bin"])


@st.cache_data(show_spinner=False, max_entries=8)
def _comparisons(meta_key: tuple, family: str, _results: pd.DataFrame) -> dict:
    rows = _results if family == ALL else _results[_results["family"] == family]
    return {name: findings.paired_comparison(rows, name) for name in ("checkpoints", "cutoff")}


@st.cache_data(show_spinner=False, max_entries=4)
def _findings(meta_key: tuple, version: common.DbVersion | None, _results: pd.DataFrame) -> pd.DataFrame:
    """The findings table, with the partial-target and borrowing experiments run on the database."""
    measured: tuple[findings.Finding, ...] = ()
    try:
        with common.db() as con:
            measured = reproduce.hitchhiker_report(_results, con).findings
    except (fitting.FitError, ValueError, KeyError) as error:  # the sweep-based rows still stand
        log.warning("findings experiments failed: %s", error)
    return findings.check_findings(_results, measured=measured)


@st.cache_data(show_spinner=False, max_entries=4)
def _calibration_report(meta_key: tuple, _results: pd.DataFrame) -> calibration.CalibrationReport | str:
    """Coverage of the calibrated interval leaving one whole source group out at a time, as a new lab's
    runs are new (``scaleplan reproduce calibration``'s default), or why it cannot be measured. Leaving
    one family out lets its siblings from the same source calibrate it, which flatters the interval."""
    try:
        return calibration.summarise(calibration.leave_one_source_out(_results), holdout="source")
    except calibration.CalibrationError as error:
        return str(error)


def calibration_figure(report: calibration.CalibrationReport) -> go.Figure:
    """Nominal vs realised coverage, ours and the baseline's, with the diagonal (perfect calibration)."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="Perfect calibration", line={"color": "#9aa0a6", "dash": "dash"}
        )
    )
    for levels, name, color in (
        (report.levels, "Calibrated interval (ours)", "#1f5fbf"),
        (report.baseline, "Baseline: one global quantile", "#e37400"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[s.nominal for s in levels],
                y=[s.realised for s in levels],
                mode="lines+markers",
                name=name,
                line={"color": color},
                marker={"size": 9},
                customdata=[[s.median_rel_width, s.cells] for s in levels],
                hovertemplate="nominal %{x:.0%}<br>realised %{y:.1%}<br>median relative width %{customdata[0]:.3f}"
                "<br>%{customdata[1]:,} designs<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis={"title": "Nominal level (stated coverage)", "tickformat": ".0%", "range": [0.4, 1.0]},
        yaxis={"title": "Realised coverage (held-out source groups)", "tickformat": ".0%", "range": [0.4, 1.0]},
        height=460,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        # inside the empty upper-left triangle: below the plot is the inputs caption
        legend={"x": 0.02, "y": 0.98, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255,255,255,0.8)"},
    )
    return fig


def calibration_reading(report: calibration.CalibrationReport) -> str:
    """A plain-language reading of the calibration plot (numbers from ``report``)."""
    ours = {round(s.nominal * 100): s for s in report.levels}
    base = {round(s.nominal * 100): s for s in report.baseline}
    o90, b90 = ours.get(90), base.get(90)
    lines = []
    if o90 is not None and b90 is not None:
        lines.append(
            f"Each source group (every family one source provides, as a new lab's runs would be) was left out "
            f"in turn and its designs predicted with a calibration learned on the other groups. The 90% "
            f"intervals contained the real loss for {o90.realised:.0%} of "
            f"{o90.cells:,} designs (a single global quantile: {b90.realised:.0%}), and were "
            f"{b90.median_rel_width / o90.median_rel_width:.1f}× narrower (median width "
            f"{o90.median_rel_width:.1%} of the prediction vs {b90.median_rel_width:.1%})."
        )
    off = [f"{k}%" for k, s in ours.items() if abs(s.realised - s.nominal) > 0.05]
    lines.append(
        "Points on the dashed diagonal mean an interval keeps its stated level; above it, intervals are "
        "wider than needed; below it, they promise more than they deliver. "
        + (
            "Ours stays within 5 points of the diagonal at every level."
            if not off
            else f"Ours is more than 5 points off the diagonal at {', '.join(off)}."
        )
    )
    groups = report.per_group if report.per_group is not None else pd.DataFrame(columns=["designs", "covered_90"])
    worst = groups[groups["designs"] >= 10].sort_values("covered_90").head(1)
    if not worst.empty:
        w = worst.iloc[0]
        lines.append(
            f"Worst held-out source group at 90%: {w['group']} ({w['covered_90']:.0%} of {int(w['designs'])} designs). "
        )
    lines.append(
        f"{report.refused:,} of {report.cells:,} designs ({report.refused / max(report.cells, 1):.1%}) got "
        "no interval because they lie outside what the collection covers (an extrapolation or a fit "
        "residual beyond any design of the other source groups)."
    )
    return " ".join(lines)


def _show_calibration(meta_key: tuple, results: pd.DataFrame) -> None:
    st.subheader("Do the prediction intervals keep their level?")
    with st.spinner("Leaving each source group out of the calibrated intervals..."):
        report = _calibration_report(meta_key, results)
    if isinstance(report, str):
        st.info(
            f"The calibration cannot be measured on these results: {common.escape_md(report)}", icon=":material/info:"
        )
        return
    left, right = st.columns([3, 2], gap="large")
    figure = charts.add_context(
        calibration_figure(report),
        title="Prediction intervals: nominal against realised coverage",
        inputs=f"Leaving each source group out: {report.cells:,} designs of {report.families} families in "
        f"{report.groups} source groups · {calibration.METHOD}",
        wrap=60,  # the left of two columns (3:2)
    )
    left.plotly_chart(figure, key=KEY + "calibration", config=analysis_charts.plotly_config("scaleplan-calibration"))
    table = pd.DataFrame(
        {
            "Nominal": [f"{s.nominal:.0%}" for s in report.levels],
            "Realised (ours)": [f"{s.realised:.1%}" for s in report.levels],
            "Median width (ours)": [f"{s.median_rel_width:.1%}" for s in report.levels],
            "Realised (baseline)": [f"{s.realised:.1%}" for s in report.baseline],
            "Median width (baseline)": [f"{s.median_rel_width:.1%}" for s in report.baseline],
        }
    )
    right.dataframe(table, hide_index=True, width="stretch")
    right.caption(
        f"Method: {calibration.METHOD}. Width: (high − low) / predicted loss. "
        f"{report.cells:,} designs of {report.families} families in {report.groups} source groups."
    )
    st.markdown(common.escape_md(calibration_reading(report), 2000))
    _show_groups(report)


def _show_groups(report: calibration.CalibrationReport) -> None:
    """The 90% interval's coverage and the planner's p80 per held-out source group (an average hides
    the groups where the level does not hold)."""
    groups = report.per_group
    if groups is None or groups.empty:
        return

    def share(value: float) -> str:
        return units.MISSING if pd.isna(value) else f"{value:.0%}"

    table = pd.DataFrame(
        {
            "Source group": groups["group"].astype(str),
            "Families": groups["families"].astype(int),
            "Designs": groups["designs"].astype(int),
            "90% interval: realised": groups["covered_90"].map(share),
            "Median width": groups["width_90"].map(lambda w: units.MISSING if pd.isna(w) else f"{w:.1%}"),
            "Refused": groups["refused"].astype(int),
            "Planner p80: realised": groups["planner_80"].map(share),
        }
    )
    st.markdown("**Per held-out source group**")
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        "Realised: share of the group's answered designs whose real loss fell inside the 90% interval "
        "(or, for the planner, at or under its predicted 80th-percentile ARE), learned without the group. "
        "A group whose designs are all refused has no realised coverage."
    )


def render() -> None:
    st.title("How reliable are scaling laws?")
    st.caption(
        "Every family of the collection with at least three sizes, refitted on many choices of small runs: "
        "how far does each prediction land from the largest run's real loss? ARE = |predicted − actual| / "
        "actual, averaged over the target's last 30% of training; results are averaged within each family "
        "first, then across families (Choshen et al.'s protocol)."
    )
    results, problem = sweep.results()
    if not sweep.available(results):
        sweep.offer_sweep(KEY + "sweep", reason=problem)
        return
    meta_key = sweep.results_key()
    ok = results[results["status"] == "ok"]
    family_names = sorted(ok["family"].unique())
    options = [ALL] + family_names
    p_family = state.read_param("family", allowed=options, default=ALL, label="family", describe=_family_label)
    p_ckpt = state.read_param(
        "ckpt", allowed=list(CHECKPOINTS), default="all", label="checkpoints", describe=CHECKPOINTS.get
    )
    p_cutoff = state.read_param("cutoff", allowed=list(CUTOFF), default="on", label="cutoff", describe=CUTOFF.get)
    first = state.seed_widget(KEY + "family", p_family)
    if first:
        state.seed_widget(KEY + "ckpt", p_ckpt)
        state.seed_widget(KEY + "cutoff", p_cutoff)
    state.keep_valid(KEY + "family", options)
    st.session_state.setdefault(KEY + "family", ALL)

    tally = meta.sweep_counts(results)
    counts = st.columns(4)
    counts[0].metric("Fits in the sweep", f"{tally.fits:,}")
    counts[1].metric("Succeeded", f"{tally.succeeded:,}")
    counts[2].metric("Families", f"{tally.families:,}", help="Families with at least one successful fit.")
    counts[3].metric("Median ARE (all fits)", f"{ok['are_mean'].median():.1%}")
    _show_calibration(meta_key, results)

    st.subheader("Accuracy by budget and number of runs")
    row = st.columns([3, 2.5, 2.5], vertical_alignment="bottom")
    family = row[0].selectbox("Family", options, key=KEY + "family", format_func=_family_label)
    ckpt = (
        row[1].segmented_control(
            "Checkpoints", list(CHECKPOINTS), key=KEY + "ckpt", format_func=CHECKPOINTS.get, required=True
        )
        or "all"
    )
    cutoff = (
        row[2].segmented_control(
            "Early checkpoints", list(CUTOFF), key=KEY + "cutoff", format_func=CUTOFF.get, required=True
        )
        or "on"
    )
    if first:
        state.show_notices([p_family, p_ckpt, p_cutoff])
    state.write_params({"family": family, "ckpt": ckpt, "cutoff": cutoff})

    table = _heat_table(meta_key, family, ckpt == "final", cutoff == "on", results)
    config = analysis_charts.plotly_config("scaleplan-reliability")
    if table.empty or table["are_mean"].isna().all():
        st.info(
            "No successful fit with these settings"
            + (f" in {common.escape_md(family)}" if family != ALL else "")
            + ". Final-loss fits often fail: a handful of final losses cannot identify five parameters.",
            icon=":material/info:",
        )
    else:
        heatmap = charts.add_context(
            analysis_charts.heatmap_figure(table, row="runs_bin"),
            title="Mean ARE by compute share and number of runs: "
            + ("all families (family-averaged)" if family == ALL else family),
            inputs=f"{CHECKPOINTS[ckpt]} · {CUTOFF[cutoff].lower()} · ARE over the target's last 30% of training",
        )
        st.plotly_chart(heatmap, key=KEY + "heatmap", config=config)
        st.caption(
            "Each cell: the mean ARE of fits using that many runs whose compute (6·N·D of the checkpoints used) "
            "is the given share of the target's compute; lower is better. Hover for the number of families."
        )

    st.subheader("Matched comparisons")
    st.caption(
        "The same family, runs and fraction of training, fitted both ways; only tasks where both fits succeeded "
        "on different points enter the bars (a family whose runs report only a final value has nothing to "
        "compare). The failure rates below the bars are over every task fitted both ways, as in the table of "
        "findings."
    )
    comparisons = _comparisons(meta_key, family, results)
    cols = st.columns(2, gap="medium")
    titles = {
        "checkpoints": "With vs without intermediate checkpoints (10B cutoff on)",
        "cutoff": "With vs without the 10B-token cutoff (intermediate checkpoints)",
    }
    for column, name in zip(cols, ("checkpoints", "cutoff")):
        comparison = comparisons[name]
        column.markdown(f"**{titles[name]}**")
        if comparison.pairs == 0:
            same = (
                f" {comparison.both_same_points:,} tasks fitted both ways on the same points (runs that report "
                "one value each)."
                if comparison.both_same_points
                else ""
            )
            column.info(
                "No task was fitted successfully both ways on different points. "
                + common.escape_md(comparison.failure_sentence(), 600)
                + same
            )
            continue
        bars = charts.add_context(
            analysis_charts.comparison_figure(comparison.frame()),
            title=titles[name],
            wrap=50,  # one of two columns
            inputs=f"{comparison.pairs:,} pairs where both fits succeeded on different points (of "
            f"{comparison.tasks:,} tasks fitted both ways) · "
            + ("all families (family-averaged)" if family == ALL else family),
        )
        column.plotly_chart(bars, key=KEY + "bars-" + name, config=config)
        column.caption(common.escape_md(comparison.failure_sentence(), 600))

    st.subheader("The paper's guidance, checked on our data")
    with st.spinner("Checking the findings (a few extra fits)..."):
        table = _findings(meta_key, common.db_version(), results)
    shown = table.drop(columns="key").assign(
        holds=table["holds"].map({True: "Yes", False: "No"}).fillna("Not testable here")
    )
    st.table(
        shown.rename(
            columns={
                "finding": "Finding",
                "paper": "The paper",
                "ours": "Our sweep",
                "holds": "Holds on our data?",
                "criterion": "How we decide",
            }
        ),
        hide_index=True,
        border="horizontal",
    )
    st.caption(
        "The last two rows come from extra fits on the database (smaller runs plus the first 30% of the "
        "target; one run with A and α borrowed from a similar family), as in `scaleplan reproduce`. "
        f"Results file: {common.escape_md(common.meta_path().name)} · "
        f"{tally.families} families with a successful fit (of {tally.families_tried} tried), "
        f"{tally.succeeded:,} of {tally.fits:,} fits succeeded."
    )


common.run_page(render)
