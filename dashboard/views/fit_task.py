"""Fit page: the target's accuracy on a downstream task (two steps: the loss fit, then a link to accuracy).

Called once from ``dashboard/views/fit.py`` with the page's fit summary; gathers the task choice,
calls :mod:`core.task_prediction` and draws the card and the loss -> accuracy chart. Thin: every
number comes from core.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from scaleplan.core import downstream, task_prediction
from scaleplan.core.analysis import Analysis
from scaleplan.core.metrics import MetricLabel
from scaleplan.core.units import format_level
from scaleplan.dashboard import charts, common, fits

KEY = "fit-task-"
NONE = "(none: loss only)"


@st.cache_data(show_spinner=False, max_entries=32)
def _tasks(version: common.DbVersion | None, family: str) -> list[str]:
    with common.db() as con:
        return task_prediction.family_tasks(con, family)


@st.cache_data(show_spinner=False, max_entries=8)
def _quantile(version: common.DbVersion | None, family: str, level: float) -> tuple[float, str]:
    with common.db() as con:
        return task_prediction.held_out_quantile(con, family, level)


@st.cache_data(show_spinner=False, max_entries=64)
def _prediction(
    version: common.DbVersion | None,
    family: str,
    task: str,
    points: pd.DataFrame,
    predicted_loss: float,
    target_run: str | None,
    level: float,
) -> task_prediction.TaskPrediction | str:
    """The prediction (cached), or why the task is refused (the refusal's message)."""
    args = (
        family,
        task,
        points["run_id"].to_numpy(dtype=object),
        points["tokens_seen"].to_numpy(dtype=float),
        points["loss"].to_numpy(dtype=float),
        float(predicted_loss),
    )
    try:
        with common.db() as con:
            task_prediction.predict_task(con, *args, target_run=target_run, level=level)  # a refusal is cheap
        q, basis = _quantile(version, family, level)
        with common.db() as con:
            return task_prediction.predict_task(
                con, *args, target_run=target_run, quantile=q, level=level, quantile_basis=basis
            )
    except (downstream.TaskRefused, task_prediction.TaskNotFound) as error:
        return str(error)


def _figure(
    result: task_prediction.TaskPrediction,
    target_name: str,
    actual_loss: float | None,
    loss: MetricLabel,
    loss_title: str,
) -> go.Figure:
    """Accuracy against the fitted loss (``loss``: the family's metric and its unit, ``loss_title`` its axis title)."""
    study, link = result.study, result.link
    grid = np.linspace(min(float(link.x.min()), result.predicted_loss) - 0.1, float(link.x.max()) + 0.1, 120)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=study["loss"],
            y=100 * study["accuracy"],
            mode="markers",
            name="study checkpoints",
            marker={"color": "#1f77b4", "size": 6},
            hovertemplate=f"loss %{{x:.3f}} {html.escape(loss.unit)}<br>accuracy %{{y:.1f}} points<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=grid,
            y=100 * link.predict(grid),
            mode="lines",
            name="link: c + (a − c)/(1 + exp(−k (L0 − L)))",
            line={"color": "#7f7f7f", "dash": "dash"},
        )
    )
    error = {}
    if result.lower_points is not None and result.upper_points is not None:
        error = {
            "type": "data",
            "symmetric": False,
            "array": [result.upper_points - result.predicted_points],
            "arrayminus": [result.predicted_points - result.lower_points],
            "color": "#d62728",
        }
    figure.add_trace(
        go.Scatter(
            x=[result.predicted_loss],
            y=[result.predicted_points],
            mode="markers",
            name=f"{target_name}: predicted",
            marker={"color": "#d62728", "size": 11, "symbol": "star"},
            error_y=error or None,
        )
    )
    if result.actual_points is not None and actual_loss is not None:
        figure.add_trace(
            go.Scatter(
                x=[actual_loss],
                y=[result.actual_points],
                mode="markers",
                name=f"{target_name}: actual (at its actual loss)",
                marker={"color": "black", "size": 9, "symbol": "diamond"},
            )
        )
    chance = 100 * result.chance
    figure.add_hline(y=chance, line={"color": "#bbbbbb", "dash": "dot"})
    figure.update_layout(
        xaxis_title=f"{html.escape(loss_title)}; the target at its predicted loss",
        yaxis_title="accuracy (points, %)",
        xaxis={"autorange": "reversed"},
        height=420,
    )
    charts.add_context(
        figure,
        title=f"{result.task}: accuracy against loss, the study runs and the target",
        inputs=f"{result.shots}-shot · chance {chance:.0f} points (dotted) · link k = "
        f"{link.k:.3g} per nat, L0 = {link.x0:.3g} {loss.unit}, ceiling a = {100 * link.ceiling:.1f} points"
        f"{' (fitted)' if link.ceiling_fitted else ''} · fitted by binomial likelihood",
    )
    return figure


def render(
    family: str,
    result: Analysis,
    target_run: str | None,
    target_name: str,
    latest: dict[str, Any],
    loss: MetricLabel,
    loss_title: str,
) -> None:
    """The task selector, the predicted accuracy with its interval, and the two-step chart.

    ``result``: the page's loss analysis (its study points and predicted loss); ``latest``: what the
    page's headline drew (its interval ``level``); ``loss``: the loss the page fits (its name and unit,
    as the page's own chart states them) and ``loss_title`` its axis title."""
    if family == fits.UPLOADED:
        return
    version = common.db_version()
    level = float(latest.get("level", fits.DEFAULT_LEVEL))
    points = result.points
    study = pd.DataFrame({"run_id": points.run_ids.astype(str), "tokens_seen": points.tokens_seen, "loss": points.loss})
    tasks = _tasks(version, family)
    if not tasks:
        return
    st.subheader("Downstream task")
    task = st.selectbox(
        "Predict the target's accuracy on a task",
        [NONE, *tasks],
        key=KEY + "task",
        help="Two steps: the fitted loss law gives the target's loss; a sigmoid from the task's chance level "
        "(its floor) to 1 (or a fitted ceiling when the study runs ask for one), fitted on the study runs' "
        "accuracy against their loss, turns it into accuracy. Tasks the study runs cannot predict are refused "
        "with the reason.",
    )
    if task == NONE:
        return
    with st.spinner("Fitting the loss -> accuracy link..."):
        prediction = _prediction(version, family, task, study, result.predicted_loss, target_run, level)
    if isinstance(prediction, str):
        st.warning(f"No prediction: {common.escape_md(prediction, 400)}", icon=":material/block:")
        return
    actual_loss = None if result.evaluation is None else float(result.evaluation.actual_final)
    _show(prediction, target_name, actual_loss, level, loss, loss_title)


def _show(
    result: task_prediction.TaskPrediction,
    target_name: str,
    actual_loss: float | None,
    level: float,
    loss: MetricLabel,
    loss_title: str,
) -> None:
    cards = st.columns(3)
    low, high = result.lower_points, result.upper_points
    interval = (
        f"{format_level(level)} interval {low:.1f}–{high:.1f} points"
        if low is not None and high is not None
        else "no calibrated interval"
    )
    cards[0].metric(
        "Predicted accuracy",
        f"{result.predicted_points:.1f} points",
        help="The link at the target's predicted loss, in percentage points of accuracy.",
    )
    cards[0].caption(interval)
    actual = result.actual_points
    cards[1].metric("Actual accuracy", "—" if actual is None else f"{actual:.1f} points")
    cards[1].caption("the target's final checkpoint" if actual is not None else "hypothetical target")
    cards[2].metric("Chance level", f"{100 * result.chance:.0f} points")
    cards[2].caption(f"{result.shots}-shot")
    st.caption(common.escape_md(result.interval_note, 500))
    st.plotly_chart(_figure(result, target_name, actual_loss, loss, loss_title), key=KEY + "chart")
