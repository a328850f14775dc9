"""Cached scaling-law fits for the analysis pages (fit, planner): all heavy work lives here.

Every function is an ``st.cache_data`` wrapper around :mod:`core` keyed on its inputs and on
the database version (``common.db_version()``); uploaded runs are passed as a DataFrame, which
Streamlit hashes. Results are plain dicts of numbers, arrays and small frames (cheap to copy),
and a failed fit is a cached result too (``{"ok": False, "message": ..., "level": ...}``) so a bad
selection does not refit on every rerun.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import streamlit as st

from scaleplan.core import calibration, fitting, planning, storage, userdata
from scaleplan.core.analysis import analyse, bootstrap_warnings
from scaleplan.core.selection import Selection, SelectionError, target_of
from scaleplan.dashboard import common, sweep

UPLOADED = "your-runs"  # the family value (and URL value) of the session's uploaded runs
N_BOOT = 100
LEVELS = (0.5, 0.8, 0.9, 0.95)  # levels of the calibrated interval offered in the UI
DEFAULT_LEVEL = 0.9
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
    curves["flops"] = 6.0 * curves["num_params"] * curves["tokens_seen"]
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
# One analysis


def _failure(error: Exception) -> dict:
    level = "warning" if isinstance(error, SelectionError) else "error"
    text = str(error).strip() or type(error).__name__
    return {"ok": False, "message": text[:1].upper() + text[1:], "level": level}


def _selection(target_run, run_ids, fraction, final_only, min_tokens) -> Selection:
    return Selection(
        target_run=target_run,
        run_ids=tuple(run_ids),
        fraction=float(fraction),
        final_only=bool(final_only),
        min_tokens=float(min_tokens),
    )


def _analyse(
    curves,
    target_run,
    target_params,
    target_tokens,
    run_ids,
    fraction,
    final_only,
    min_tokens,
    fixed,
    n_boot,
    check_identifiability=False,
    law="chinchilla",
):
    if not run_ids:
        raise SelectionError("choose at least one run to fit on")
    hypothetical = target_params is not None
    if not hypothetical:
        smaller = curves.loc[curves["run_id"].isin(run_ids), "num_params"]
        target_size = curves.loc[curves["run_id"] == target_run, "num_params"]
        if not target_size.empty and not smaller.empty and smaller.min() >= target_size.iloc[0]:
            raise SelectionError(
                "the target is smaller than every run chosen for the fit; pick a larger target or smaller runs"
            )
    elif not curves.empty and (curves["num_params"] >= target_params).all():
        raise SelectionError("the hypothetical target is smaller than every run of the family; give a larger N")
    return analyse(
        curves,
        _selection(None if hypothetical else target_run, run_ids, fraction, final_only, min_tokens),
        target_params=target_params,
        target_tokens=target_tokens,
        fixed=dict(fixed) or None,
        n_boot=n_boot,
        check_identifiability=check_identifiability,
        law=law,
    )


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=256)
def fit_summary(
    version: common.DbVersion | None,
    family: str,
    uploaded: pd.DataFrame | None,
    target_run: str | None,
    target_params: float | None,
    target_tokens: float | None,
    run_ids: tuple[str, ...],
    fraction: float,
    final_only: bool,
    min_tokens: float,
    fixed: tuple[tuple[str, float], ...],
    law: str = "chinchilla",
) -> dict:
    """Fit ``law`` (a name of :func:`core.laws.loss_laws`) on the selection and predict the target (no bootstrap)."""
    curves = curves_of(family, uploaded)
    try:
        result = _analyse(
            curves,
            target_run,
            target_params,
            target_tokens,
            run_ids,
            fraction,
            final_only,
            min_tokens,
            fixed,
            0,
            law=law,
        )
    except (SelectionError, fitting.FitError, ValueError) as error:
        return _failure(error)
    points = result.points
    ev = result.evaluation
    return {
        "ok": True,
        "law": result.fit.law.name,
        "params": dict(result.fit.params),
        "fixed": tuple(result.fit.fixed),
        "objective": result.fit.objective,
        "predicted": result.predicted_loss,
        "target_run": result.target_run,
        "target_params": result.target_params,
        "target_tokens": result.target_tokens,
        "compute_flops": points.compute_flops,
        "compute_share": result.compute_share,
        "points": pd.DataFrame(
            {
                "run_id": points.run_ids.astype(str),
                "num_params": points.num_params,
                "tokens_seen": points.tokens_seen,
                "loss": points.loss,
            }
        ),
        "runs": points.runs.copy(),
        "evaluation": None
        if ev is None
        else {
            "actual_final": ev.actual_final,
            "predicted_final": ev.predicted_final,
            "are_final": ev.are_final,
            "are_mean": ev.are_mean,
            "compute_share": ev.compute_share,
            "checkpoints": ev.num_checkpoints,
            "final_tokens": ev.final_tokens,
        },
    }


def target_grid(summary: dict, curves: pd.DataFrame) -> np.ndarray:
    """Token counts at which the target's curve is drawn: from half the earliest fitted token count to D.

    (Not earlier: the law is not meant for the warm-up region the fit excluded.)
    """
    low = float(summary["points"]["tokens_seen"].min()) / 2
    high = max(float(summary["target_tokens"]), float(summary["points"]["tokens_seen"].max()))
    return np.geomspace(max(low, 1.0), max(high, low * 1.0001), CURVE_POINTS)


@st.cache_data(show_spinner=False, max_entries=2)
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
@st.cache_data(show_spinner=False, max_entries=128)
def checked_fit(
    version: common.DbVersion | None,
    family: str,
    uploaded: pd.DataFrame | None,
    target_run: str | None,
    target_params: float | None,
    target_tokens: float | None,
    run_ids: tuple[str, ...],
    fraction: float,
    final_only: bool,
    min_tokens: float,
    fixed: tuple[tuple[str, float], ...],
    law: str = "chinchilla",
) -> dict:
    """The prediction, the design's calibration features and the fit's identifiability warnings
    (the flat-direction profile: 7 refits); no interval.

    Cached apart from the interval, which :func:`interval_summary` reads off these for any level
    without refitting.
    """
    curves = curves_of(family, uploaded)
    try:
        result = _analyse(
            curves,
            target_run,
            target_params,
            target_tokens,
            run_ids,
            fraction,
            final_only,
            min_tokens,
            fixed,
            0,
            check_identifiability=True,
            law=law,
        )
    except (SelectionError, fitting.FitError, ValueError) as error:
        return _failure(error)
    return {
        "ok": True,
        "predicted": result.predicted_loss,
        "features": result.features,
        "warnings": [(w.kind, w.message) for w in result.warnings],
    }


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=128)
def interval_summary(
    version: common.DbVersion | None,
    family: str,
    uploaded: pd.DataFrame | None,
    target_run: str | None,
    target_params: float | None,
    target_tokens: float | None,
    run_ids: tuple[str, ...],
    fraction: float,
    final_only: bool,
    min_tokens: float,
    fixed: tuple[tuple[str, float], ...],
    law: str,
    level: float,
    meta_key: tuple,
    _calibration: calibration.Calibration | None,
) -> dict:
    """The calibrated interval of the predicted final loss and the fit's identifiability warnings.

    ``meta_key`` identifies the sweep results ``_calibration`` was learned on (the cache key).
    The fit and its warnings are :func:`checked_fit` (one fit and one profile for every
    level); the interval is the calibration's lookup at ``level``. The bootstrap's parameter
    intervals are :func:`bootstrap_summary`, computed after this is shown.
    """
    checked = checked_fit(
        version,
        family,
        uploaded,
        target_run,
        target_params,
        target_tokens,
        run_ids,
        fraction,
        final_only,
        min_tokens,
        fixed,
        law,
    )
    if not checked["ok"]:
        return checked
    out = {
        "ok": True,
        "level": level,
        "interval": None,
        "refused": None,
        "warnings": checked["warnings"],
        "method": calibration.METHOD,
    }
    if law != "chinchilla":
        # the sweep measured the errors of Chinchilla fits; they are not another law's
        out["refused"] = f"no calibrated interval: the calibration is learned on Chinchilla fits, not {law}"
        return out
    interval = None if _calibration is None else _calibration.interval(checked["predicted"], checked["features"], level)
    if isinstance(interval, calibration.PredictionInterval):
        out["interval"] = interval.as_dict()
    elif isinstance(interval, calibration.Refusal):
        out["refused"] = str(interval)
    return out


def no_bootstrap() -> dict:
    """The bootstrap fields of a summary without replicates (one run, or a bootstrap that failed)."""
    return {"intervals": {}, "replicates": 0, "failed": 0, "failures": {}, "scheme": None}


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=128)
def bootstrap_summary(
    version: common.DbVersion | None,
    family: str,
    uploaded: pd.DataFrame | None,
    target_run: str | None,
    target_params: float | None,
    target_tokens: float | None,
    run_ids: tuple[str, ...],
    fraction: float,
    final_only: bool,
    min_tokens: float,
    fixed: tuple[tuple[str, float], ...],
    law: str = "chinchilla",
    n_boot: int = N_BOOT,
) -> dict:
    """The run bootstrap's 90% parameter intervals, its failed-replicate count and its warnings.

    Without the calibration or the identifiability profile, which :func:`interval_summary` has
    already computed. ``replicates`` is 0 when there is nothing to resample (one run).
    """
    curves = curves_of(family, uploaded)
    try:
        result = _analyse(
            curves,
            target_run,
            target_params,
            target_tokens,
            run_ids,
            fraction,
            final_only,
            min_tokens,
            fixed,
            n_boot,
            check_identifiability=False,
            law=law,
        )
    except (SelectionError, fitting.FitError, ValueError) as error:
        return _failure(error)
    out = {"ok": True, **no_bootstrap(), "warnings": []}
    boot = result.bootstrap
    if boot is not None:
        free = [n for n in boot.param_names if n not in result.fit.fixed]
        out.update(
            intervals={n: boot.param_interval(n, 0.9) for n in free} if result.band else {},
            replicates=int(boot.n_boot),
            failed=int(boot.n_failed),
            failures=dict(boot.failures),
            scheme=boot.scheme,
            warnings=[
                (w.kind, w.message)
                for w in bootstrap_warnings(boot, result.target_params, result.target_tokens, result.target_unique)
            ],
        )
    return out


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=64)
def borrowable(
    version: common.DbVersion | None, family: str, uploaded: pd.DataFrame | None = None, law: str = "chinchilla"
) -> dict:
    """A family's law fitted with the default protocol (largest run = target), for borrowing or
    as a reference law; ``family == UPLOADED`` fits the uploaded runs."""
    curves = curves_of(family, uploaded) if family == UPLOADED else family_curves(version, family)
    selection = Selection(min_tokens=userdata.default_min_tokens(uploaded)) if family == UPLOADED else Selection()
    try:
        result = analyse(curves, selection, law=law)
    except (SelectionError, fitting.FitError, ValueError) as error:
        return _failure(error)
    return {"ok": True, "params": dict(result.fit.params), "target_run": result.target_run}


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
