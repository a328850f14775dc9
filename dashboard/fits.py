"""Cached scaling-law fits for the analysis pages (fit, planner): all heavy work lives here.

Every function wraps :mod:`core`, cached on its inputs and on the database version
(``common.db_version()``); uploaded runs are passed as a DataFrame, which Streamlit hashes. The
Fit page's analysis is a :class:`core.analysis.StagedAnalysis` for a frozen
:class:`core.analysis.FitRequest`, kept as the object (its stages are computed once, on first
use; a failure is a typed :class:`core.analysis.AnalysisFailure`, kept too, so a bad selection
does not refit on every rerun).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import streamlit as st

from scaleplan.core import analysis, calibration, fitting, laws, planning, storage, task_prediction, userdata
from scaleplan.core.analysis import Analysis, AnalysisFailure, FitRequest, StagedAnalysis, analyse
from scaleplan.core.selection import Selection, SelectionError, target_of
from scaleplan.dashboard import common, sweep

UPLOADED = "your-runs"  # the family value (and URL value) of the session's uploaded runs
N_BOOT = analysis.DEFAULT_N_BOOT
LEVELS = calibration.LEVELS  # levels of the calibrated interval offered in the UI
DEFAULT_LEVEL = calibration.DEFAULT_LEVEL
CURVE_POINTS = 120


# ---------------------------------------------------------------------------------------------
# Data


@st.cache_data(show_spinner=False, max_entries=64)
def family_curves(version: common.DbVersion | None, family: str, metric: str | None = None) -> pd.DataFrame:
    """A family's points of one metric (default: its loss): run_id, model_name, num_params, tokens_seen, flops, value."""
    with common.db() as con:
        return storage.family_curves(con, family, metric)


def uploaded_curves(table: pd.DataFrame) -> pd.DataFrame:
    """The uploaded runs in the shape of :func:`family_curves` (model_name = the run's name)."""
    curves = table.rename(columns={"run_name": "model_name"})[
        ["run_id", "model_name", "num_params", "tokens_seen", "value"]
    ].copy()
    curves["flops"] = laws.compute_from(curves["num_params"], curves["tokens_seen"])
    return curves.sort_values(["num_params", "run_id", "tokens_seen"], ignore_index=True)


def curves_of(family: str, uploaded: pd.DataFrame | None) -> pd.DataFrame:
    if family == UPLOADED:
        return (
            uploaded_curves(uploaded)
            if uploaded is not None
            else pd.DataFrame(columns=["run_id", "model_name", "num_params", "tokens_seen", "flops", "value"])
        )
    return family_curves(common.db_version(), family)


def runs_table(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per run: run_id, label, num_params, max_tokens, points; smallest first."""
    if curves.empty:
        return pd.DataFrame(columns=["run_id", "label", "num_params", "max_tokens", "points"])
    runs = (
        curves.groupby("run_id", sort=False)
        .agg(
            label=("model_name", "first"),
            num_params=("num_params", "first"),
            max_tokens=("tokens_seen", "max"),
            points=("value", "size"),
        )
        .reset_index()
    )
    runs["label"] = runs["label"].where(runs["label"].notna() & (runs["label"].astype(str) != ""), runs["run_id"])
    return runs.sort_values(["num_params", "max_tokens", "run_id"], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# One analysis: a core.analysis.StagedAnalysis per request, kept as the object itself


@st.cache_resource(show_spinner=False, max_entries=128)
def staged_analysis(
    version: common.DbVersion | None,
    family: str,
    uploaded: pd.DataFrame | None,
    request: FitRequest,
    loss_unit: str | None = None,
) -> StagedAnalysis:
    """The analysis of ``request`` on ``family``'s curves (or the uploaded runs), shared by every session;
    ``loss_unit`` (the family's loss unit, None for an upload's) is what its warnings state ranges in.

    Kept as the object (``st.cache_resource``: never copied), so each stage - fit, identifiability
    profile, bootstrap - is computed once on first use (:class:`core.analysis.StagedAnalysis`'s
    per-stage locks make sessions asking at once wait for one computation) and the interval at any
    level is a lookup on the kept fit.
    """
    return StagedAnalysis(curves_of(family, uploaded), request, n_boot=N_BOOT, loss_unit=loss_unit)


def target_grid(result: Analysis, curves: pd.DataFrame) -> np.ndarray:
    """Token counts at which the target's curve is drawn: from half the earliest fitted token count to D.

    (Not earlier: the law is not meant for the warm-up region the fit excluded.)
    """
    low = float(result.points.tokens_seen.min()) / 2
    high = max(float(result.target_tokens), float(result.points.tokens_seen.max()))
    return np.geomspace(max(low, 1.0), max(high, low * 1.0001), CURVE_POINTS)


@st.cache_resource(show_spinner=False, max_entries=2)
def _calibration(meta_key: tuple, _results: pd.DataFrame) -> calibration.Calibration:
    return calibration.fit_calibration(_results)


def calibration_or_reason() -> tuple[calibration.Calibration | None, str, tuple]:
    """The calibration learned on the whole stored sweep, or None and why there is none; and its cache key.

    The one loader of the calibration for every page (Fit, Planner). The reason is a bare clause
    ("the meta-analysis has not been run ..."); pages put it in their own sentence. The cache key
    holds the results file's path and stat *and* the database's data version: the shipped results
    have no file, so a rebuilt database must not reuse a calibration learned for the old data.
    """
    meta_key = sweep.results_key()
    if meta_key[2] is None:
        # without a data version, results of every build would be mixed together
        return None, "the database has no data version; rebuild it with `scaleplan data build --force`", meta_key
    results, problem = sweep.results()
    if not sweep.available(results):
        return (
            None,
            (
                "the meta-analysis has not been run for this database (Reliability page or `scaleplan meta run`)"
                if problem is None
                else problem
            ),
            meta_key,
        )
    try:
        return _calibration(meta_key, results), "", meta_key
    except calibration.CalibrationError as error:
        return None, str(error), meta_key


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=64)
def borrowable(
    version: common.DbVersion | None, family: str, uploaded: pd.DataFrame | None = None, law: str = "chinchilla"
) -> dict[str, float] | AnalysisFailure:
    """A family's law fitted with the default protocol (largest run = target): its parameters, for
    borrowing or as a reference law, or why it cannot be fitted; ``family == UPLOADED`` fits the
    uploaded runs."""
    curves = curves_of(family, uploaded) if family == UPLOADED else family_curves(version, family)
    selection = Selection(min_tokens=userdata.default_min_tokens(uploaded)) if family == UPLOADED else Selection()
    try:
        result = analyse(curves, selection, law=law)
    except (SelectionError, fitting.FitError, ValueError) as error:
        return AnalysisFailure.of(error)
    return dict(result.fit.params)


# ---------------------------------------------------------------------------------------------
# The planner's laws (the fits live in core: core.reproduce.fit_gadre, core.planning.collection_laws)


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=16)
def planner_laws(
    version: common.DbVersion | None, family: str | None, uploaded: pd.DataFrame | None = None
) -> tuple[tuple[planning.ReferenceLaw, ...], dict[str, str]]:
    """Published laws, Gadre et al.'s per data set and ``family``'s Chinchilla fit, with intervals."""
    with common.db() as con:
        collection, problems = planning.collection_laws(
            con,
            family=family,
            curves=uploaded_curves(uploaded) if family == UPLOADED and uploaded is not None else None,
        )
    return planning.all_laws(collection), problems


@st.cache_data(show_spinner=False, max_entries=4)
def tokens_per_param_range(version: common.DbVersion | None) -> tuple[float, float]:
    with common.db() as con:
        return planning.collection_tokens_per_param(con)


def finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def target_label(runs: pd.DataFrame, run_id: str) -> str:
    row = runs[runs["run_id"] == run_id]
    return str(row["label"].iloc[0]) if not row.empty else run_id


def default_target(curves: pd.DataFrame) -> str | None:
    try:
        return target_of(curves)
    except SelectionError:
        return None


def url_number(value: float | None) -> str | None:
    """A compact, URL-safe number: 7e9, 1.4e11, 50000 (no "+", which a URL may read as a space)."""
    return None if value is None else re.sub(r"e\+?0*(\d)", r"e\1", f"{float(value):.6g}")


def friendly_number(value: float) -> str:
    """A count for a text box: "70B" or "1.4T" when that reads back within 0.1%, else "2.369e10"."""
    from scaleplan.core import planning, units

    text = units.format_count(value)
    try:
        if abs(planning.parse_quantity(text) - value) <= 1e-3 * abs(value):
            return text
    except planning.PlanningError:
        pass
    return url_number(value) or ""


@st.cache_data(show_spinner=False, max_entries=64)
def average_accuracy(
    version: common.DbVersion | None, n: float, d: float, law: str
) -> task_prediction.TargetAccuracy | None:
    """The target's predicted 17-task average accuracy (core.task_prediction.target_average_accuracy), which the
    planner's recommendation and the Scenarios page's comparison state alike; None without a database."""
    try:
        with common.db() as con:
            return task_prediction.target_average_accuracy(con, n, d, law)
    except storage.DatabaseError:
        return None
