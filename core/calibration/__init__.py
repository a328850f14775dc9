"""Calibrated prediction intervals for extrapolated losses, learned from the meta-analysis.

A run bootstrap measures only parameter uncertainty; most of an extrapolation's error is
misspecification of the law far from the data plus seed noise of the target. The meta-analysis
sweep (:mod:`core.meta`) holds thousands of designs whose target loss is known, so the
extrapolation error itself can be sampled: the score of a design is

    r = |log(L_pred / L_actual)|                         (dimensionless)

and a calibration turns the scores of designs *like the one at hand* into an interval

    [L_pred * exp(-q), L_pred * exp(+q)],   q = a conformal quantile of r at the chosen level.

Method (normalised split conformal, Vovk et al.; Angelopoulos & Bates 2021): a difficulty
``sigma(x) = exp(w . phi(x))`` is regressed (weighted ridge least squares on log |r|) on design
features ``x`` that transfer between sources rather than identify a family (number of sizes,
extrapolation factor in parameters and in compute, final-only, cutoff, fraction of training and the
fit's in-sample log-residual RMS, how far its exponents lie from the usual ones, and the family's own
evidence: the log of how far a refit without its largest size misses that size,
:func:`core.fitting.largest_size_backtest`), scores are normalised ``s = r / sigma(x)``, and
``q(x) = sigma(x) * Q_level(s)``, Q the weighted conformal quantile at level * (1 + 1/n_eff).
Source groups (everything one source adapter yields, :func:`core.storage.source_group`), not
designs or families, are the exchangeable units: the families of one source share its recipe and
evaluation, and a user's runs are a new source. Each group's designs weigh sqrt(n_g) in total.
Coverage is measured holding out whole source groups (:func:`leave_one_source_out`, what a new
lab's runs are) or single families (:func:`leave_one_family_out`).

A fit also knows how precisely its own points pin its prediction: the delta-method standard error se of
log L_pred (:func:`core.fitting.prediction_log_se`). It is added in quadrature,
``q' = sqrt(q(x)^2 + (z se)^2)`` with z the normal quantile of the level (:func:`with_estimation_error`):
the collection's dense, smooth curves cannot teach how far a sparse, noisy sweep's parameters move under
another draw of its seed noise (synthetic isoFLOP sweeps of known laws, ``benchmarks/bench_user_intervals.py``:
72% realised at 90% without it, 93% with it). Sweep rows carry the same se, so the held-out coverage is
measured with the term.

A plan (the budget planner: no fit yet, so no residual) gets its expected error from the same
model: the level-quantile of |r| averaged over the residuals (and backtest errors) that calibration
designs with the same plan features had (:class:`_ResidualModel`), with the same refusals.

A design gets a :class:`Refusal` instead of an interval when it lies outside what the collection
covers: fewer sizes or a larger extrapolation (in parameters or compute) than any calibration
design, a worse in-sample fit than any, or a target trained on a number of tokens per parameter
more than a factor 3 beyond every calibration target's.

The package: :mod:`.base` (method, levels, error), :mod:`.features` (one feature path for sweep rows and
live fits), :mod:`.results` (interval, refusal, a plan's quantiles), :mod:`.model` (the difficulty model and
:class:`Calibration`), :mod:`.validation` (held-out coverage and its report). Every public name is re-exported
here, so ``from scaleplan.core import calibration`` is the one import callers need.
"""

from __future__ import annotations

from scaleplan.core.calibration.base import (
    CALIBRATED_LAWS,
    DEFAULT_LEVEL,
    LEVELS,
    METHOD,
    NEW_SOURCE_NOTE,
    CalibrationError,
    law_refusal,
)
from scaleplan.core.calibration.features import (
    REFERENCE_EXPONENTS,
    RMSE_FLOOR,
    DesignFeatures,
    _table_of,
    design_table,
    exponent_distance,
    features_table,
    log_rmse,
)
from scaleplan.core.calibration.model import (
    CROSS_FIT,
    CROSS_FIT_SHARE,
    FAMILY_WEIGHT_POWER,
    GROUP_WEIGHT_POWER,
    PLAN_MIN_COMPUTE_RATIO,
    RESIDUAL_GRID,
    TPP_MARGIN,
    Calibration,
    fit_calibration,
    load_calibration,
    source_groups,
    usable_rows,
    with_estimation_error,
)
from scaleplan.core.calibration.results import (
    AREQuantiles,
    PredictionInterval,
    Refusal,
)
from scaleplan.core.calibration.validation import (
    HOLDOUTS,
    PLANNER_LEVELS,
    SCHEDULE_BINS,
    CalibrationReport,
    LevelSummary,
    Mapper,
    PlannerLevel,
    evaluate_held_out,
    held_out_units,
    leave_one_family_out,
    leave_one_out,
    leave_one_source_out,
    plan_table,
    report_json,
    summarise,
)
from scaleplan.core.conformal import conformal_quantile

__all__ = [
    "AREQuantiles",
    "CALIBRATED_LAWS",
    "CROSS_FIT",
    "CROSS_FIT_SHARE",
    "Calibration",
    "CalibrationError",
    "CalibrationReport",
    "DEFAULT_LEVEL",
    "DesignFeatures",
    "FAMILY_WEIGHT_POWER",
    "GROUP_WEIGHT_POWER",
    "HOLDOUTS",
    "LEVELS",
    "LevelSummary",
    "METHOD",
    "NEW_SOURCE_NOTE",
    "Mapper",
    "PLANNER_LEVELS",
    "PLAN_MIN_COMPUTE_RATIO",
    "PlannerLevel",
    "PredictionInterval",
    "REFERENCE_EXPONENTS",
    "RESIDUAL_GRID",
    "RMSE_FLOOR",
    "Refusal",
    "SCHEDULE_BINS",
    "TPP_MARGIN",
    "_table_of",
    "conformal_quantile",
    "design_table",
    "evaluate_held_out",
    "exponent_distance",
    "features_table",
    "fit_calibration",
    "held_out_units",
    "law_refusal",
    "leave_one_family_out",
    "leave_one_out",
    "leave_one_source_out",
    "load_calibration",
    "log_rmse",
    "plan_table",
    "report_json",
    "source_groups",
    "summarise",
    "usable_rows",
    "with_estimation_error",
]
