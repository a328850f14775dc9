"""Design features: what the difficulty model conditions on, computed by one function for sweep rows
(:func:`features_table`) and live fits (:meth:`DesignFeatures.from_points`), and its design matrix."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from scaleplan.core.fitting import BACKTEST_MIN_SIZES
from scaleplan.core.laws.formulas import FLOPS_PER_PARAM_TOKEN
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, FitPoints


@dataclass(frozen=True)
class DesignFeatures:
    """What the calibration conditions on; every field is computable for a hypothetical plan.

    ``param_ratio`` = target N / largest fitted N (>= 1 for an extrapolation);
    ``compute_ratio`` = target 6 N D / sum over fitted runs of 6 N D_max_used;
    ``fraction`` = share of the longest fitted run's tokens the fit may use (0, 1];
    ``min_tokens`` = checkpoints at or below this many tokens are dropped (the cutoff).
    """

    num_sizes: int
    param_ratio: float
    compute_ratio: float
    final_only: bool = False
    fraction: float = 1.0
    min_tokens: float = DEFAULT_MIN_TOKENS
    fit_log_rmse: float | None = None  # RMS of log(L_fit / L_obs) on the fitted points; None for a plan
    tokens_per_param: float | None = None  # target D / N (20 ~ compute-optimal); None if not given
    exponent_distance: float | None = None  # of the fitted (alpha, beta), :func:`exponent_distance`; None for a plan
    # the fit's own standard error of log L at the target (:func:`core.fitting.prediction_log_se`); None for a plan
    prediction_log_se: float | None = None
    # |log ratio| by which a refit without the largest size misses it (:func:`core.fitting.largest_size_backtest`);
    # None for a plan or a fit too small to backtest
    backtest_log_error: float | None = None

    @classmethod
    def from_points(
        cls,
        points: FitPoints,
        target_params: float,
        target_tokens: float,
        *,
        final_only: bool = False,
        fraction: float = 1.0,
        min_tokens: float = DEFAULT_MIN_TOKENS,
        fitted_loss: np.ndarray | None = None,
        exponents: tuple[float, float] | None = None,
        prediction_log_se: float | None = None,
        backtest_log_error: float | None = None,
    ) -> DesignFeatures:
        """Features of fitting ``points`` to predict a target of ``target_params`` x ``target_tokens``.

        ``fitted_loss`` (the fitted law at the points, once a fit exists) adds ``fit_log_rmse``;
        ``exponents`` (the fit's alpha, beta) add ``exponent_distance``; ``prediction_log_se`` is the
        fit's own standard error of log L at the target (:func:`core.fitting.prediction_log_se`);
        ``backtest_log_error`` how far a refit without the largest size misses it
        (:func:`core.fitting.largest_size_backtest`).
        """
        rmse = math.nan if fitted_loss is None else log_rmse(fitted_loss, points.loss)
        row = design_table(
            num_sizes=np.unique(points.num_params).size,
            target_params=target_params,
            max_params_used=np.max(points.num_params),
            target_tokens=target_tokens,
            fit_compute_flops=points.compute_flops,
            final_only=final_only,
            fraction=fraction,
            min_tokens=min_tokens,
            fit_log_rmse=rmse,
            alpha=math.nan if exponents is None else exponents[0],
            beta=math.nan if exponents is None else exponents[1],
            prediction_log_se=math.nan if prediction_log_se is None else prediction_log_se,
            backtest_log_error=math.nan if backtest_log_error is None else backtest_log_error,
        ).iloc[0]

        def optional(name: str) -> float | None:
            value = float(row[name])
            return None if math.isnan(value) else value

        return cls(
            num_sizes=int(row["num_sizes"]),
            param_ratio=float(row["param_ratio"]),
            compute_ratio=float(row["compute_ratio"]),
            final_only=bool(row["final_only"]),
            fraction=float(row["fraction"]),
            min_tokens=float(row["min_tokens"]),
            fit_log_rmse=optional("fit_log_rmse"),
            tokens_per_param=optional("tokens_per_param"),
            exponent_distance=optional("exponent_distance"),
            prediction_log_se=optional("prediction_log_se"),
            backtest_log_error=optional("backtest_log_error"),
        )


def log_rmse(fitted_loss: npt.ArrayLike, observed_loss: npt.ArrayLike) -> float:
    """Root mean square of log(L_fit / L_obs) over a fit's points (dimensionless): ``fit_log_rmse``,
    the same for a sweep row (core.meta) and a live fit."""
    ratio = np.asarray(fitted_loss, dtype=float) / np.asarray(observed_loss, dtype=float)
    return float(np.sqrt(np.mean(np.log(ratio) ** 2)))


def design_table(
    *,
    num_sizes: npt.ArrayLike,
    target_params: npt.ArrayLike,
    max_params_used: npt.ArrayLike,
    target_tokens: npt.ArrayLike,
    fit_compute_flops: npt.ArrayLike,
    final_only: npt.ArrayLike,
    fraction: npt.ArrayLike,
    min_tokens: npt.ArrayLike,
    fit_log_rmse: npt.ArrayLike,
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    prediction_log_se: npt.ArrayLike = math.nan,
    backtest_log_error: npt.ArrayLike = math.nan,
) -> pd.DataFrame:
    """The one definition of the design features (columns named as :class:`DesignFeatures`' fields),
    vectorised: sweep rows (:func:`features_table`) and a live fit (:meth:`DesignFeatures.from_points`,
    a one-row call) both go through it, so the model is learned and applied on the same features.

    param_ratio = N_target / max fitted N; compute_ratio = 6 N_t D_t / fit compute (FLOPs, the sum over
    fitted runs of 6 N D_max_used); tokens_per_param = D_t / N_t; exponent_distance of (alpha, beta)
    (NaN where unknown, as fit_log_rmse); prediction_log_se and backtest_log_error as given (NaN where
    unknown: rows stored before them, plans, fits too small to backtest)."""

    def column(values: npt.ArrayLike) -> np.ndarray:
        return np.atleast_1d(np.asarray(values, dtype=float))

    n_t, d_t = column(target_params), column(target_tokens)
    alpha_values, beta_values = column(alpha), column(beta)
    known = np.isfinite(alpha_values) & np.isfinite(beta_values)
    distance = np.full(np.broadcast(alpha_values, beta_values).shape, np.nan)
    distance[known] = exponent_distance(alpha_values[known], beta_values[known])
    return pd.DataFrame(
        {
            "num_sizes": column(num_sizes),
            "param_ratio": n_t / column(max_params_used),
            "compute_ratio": FLOPS_PER_PARAM_TOKEN * n_t * d_t / column(fit_compute_flops),
            "final_only": np.atleast_1d(np.asarray(final_only, dtype=bool)),
            "fraction": column(fraction),
            "min_tokens": column(min_tokens),
            "fit_log_rmse": column(fit_log_rmse),
            "tokens_per_param": d_t / n_t,
            "exponent_distance": distance,
            "prediction_log_se": np.broadcast_to(column(prediction_log_se), n_t.shape).astype(float),
            "backtest_log_error": np.broadcast_to(column(backtest_log_error), n_t.shape).astype(float),
        }
    )


REFERENCE_EXPONENTS = (0.34, 0.28)
"""Hoffmann et al.'s (2022) alpha and beta: the reference a fit's exponents are measured from."""


def exponent_distance(alpha: object, beta: object) -> np.ndarray:
    """|log(alpha / 0.34)| + |log(beta / 0.28)| (exponents floored at 1e-3): how far a fit's exponents
    lie from the usual ones. A fit that needs exponents near 0 or near their upper bound is a law
    straining to follow its data, and extrapolates worse in every source of the collection."""
    a = np.maximum(np.asarray(alpha, dtype=float), 1e-3)
    b = np.maximum(np.asarray(beta, dtype=float), 1e-3)
    distance: np.ndarray = np.abs(np.log(a / REFERENCE_EXPONENTS[0])) + np.abs(np.log(b / REFERENCE_EXPONENTS[1]))
    return distance


def features_table(results: pd.DataFrame) -> pd.DataFrame:
    """Design features of sweep rows (:func:`design_table` of their columns; the fit compute from
    ``compute_share`` = fit compute / target compute)."""

    def numeric(name: str) -> np.ndarray:
        if name not in results:
            return np.full(len(results), np.nan)
        return np.asarray(pd.to_numeric(results[name]), dtype=float)

    target_params = numeric("target_params")
    target_tokens = numeric("target_tokens")
    table = design_table(
        num_sizes=numeric("num_sizes") if "num_sizes" in results else numeric("num_runs"),
        target_params=target_params,
        max_params_used=numeric("max_params_used"),
        target_tokens=target_tokens,
        fit_compute_flops=numeric("compute_share") * FLOPS_PER_PARAM_TOKEN * target_params * target_tokens,
        final_only=results["final_only"].astype(bool).to_numpy(),
        fraction=numeric("fraction"),
        min_tokens=numeric("min_tokens"),
        fit_log_rmse=numeric("fit_log_rmse"),
        alpha=numeric("alpha"),
        beta=numeric("beta"),
        prediction_log_se=numeric("prediction_log_se"),
        backtest_log_error=numeric("backtest_log_error"),
    )
    if "target_tokens" not in results:  # rows written before target tokens were stored
        table["compute_ratio"] = 1.0 / numeric("compute_share")
    table.index = results.index
    return table


RMSE_FLOOR = 1e-4  # log-space residual below which a fit is "exact" (3 runs, final only)


BACKTEST_FLOOR = 1e-3  # a backtest error below 0.1% (log ratio) is seed noise: floored before its log
BACKTEST_SIZES = BACKTEST_MIN_SIZES
"""A plan with this many sizes or more will have a backtest (:func:`core.fitting.hold_out_largest_size`):
95% of the shipped sweep's designs follow the rule (every 3-size design has none; 162 of 2,289 with more
have too few points)."""


def log_backtest_error(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """log(max(backtest_log_error, :data:`BACKTEST_FLOOR`)) of each row, and whether the row has one (where
    it has none the log is 0, a placeholder)."""
    backtest = table["backtest_log_error"].to_numpy(float)
    known = np.isfinite(backtest)
    return np.log(np.maximum(np.where(known, backtest, 1.0), BACKTEST_FLOOR)), known


def _design_matrix(
    table: pd.DataFrame,
    with_rmse: bool = False,
    with_exponents: bool = False,
    log_compute_floor: float = -math.inf,
    with_backtest: bool = False,
) -> np.ndarray:
    """phi(x): intercept, log extrapolation factors, size-count indicators, final-only, cutoff, log
    fraction, and the fit's own features: (``with_rmse``) log of the fit's in-sample log-residual RMS,
    (``with_exponents``) the distance of its exponents from the usual ones and (``with_backtest``) the
    log of its largest-size backtest error (floored at :data:`BACKTEST_FLOOR`) with an indicator for a
    fit too small to backtest (its log term then 0).

    ``log_compute_floor`` (the smallest log compute ratio the model was learned on) clamps a target
    cheaper than every calibration design's to that floor: such a design extrapolates less in compute
    than any measured one, and the regression is not extended below its data."""
    sizes = table["num_sizes"].to_numpy(float)
    extra = [np.log(np.maximum(table["fit_log_rmse"].to_numpy(float), RMSE_FLOOR))] if with_rmse else []
    if with_rmse and with_exponents:
        extra.append(table["exponent_distance"].to_numpy(float))
    if with_rmse and with_backtest:
        log_backtest, known = log_backtest_error(table)
        extra.append(np.where(known, log_backtest, 0.0))
        extra.append((~known).astype(float))
    return np.column_stack(
        [
            np.ones(len(table)),
            np.log(table["param_ratio"].to_numpy(float)),
            np.maximum(np.log(table["compute_ratio"].to_numpy(float)), log_compute_floor),
            (sizes <= 3).astype(float),
            ((sizes > 3) & (sizes <= 5)).astype(float),
            table["final_only"].to_numpy(bool).astype(float),
            (table["min_tokens"].to_numpy(float) > 0).astype(float),
            np.log(table["fraction"].to_numpy(float)),
            *extra,
        ]
    )


def _table_of(features: DesignFeatures) -> pd.DataFrame:
    row = {
        k: getattr(features, k)
        for k in ("num_sizes", "param_ratio", "compute_ratio", "final_only", "fraction", "min_tokens")
    }
    row["fit_log_rmse"] = np.nan if features.fit_log_rmse is None else float(features.fit_log_rmse)
    row["tokens_per_param"] = np.nan if features.tokens_per_param is None else float(features.tokens_per_param)
    row["exponent_distance"] = np.nan if features.exponent_distance is None else float(features.exponent_distance)
    row["prediction_log_se"] = np.nan if features.prediction_log_se is None else float(features.prediction_log_se)
    row["backtest_log_error"] = np.nan if features.backtest_log_error is None else float(features.backtest_log_error)
    return pd.DataFrame([row])
