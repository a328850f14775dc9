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
fit's in-sample log-residual RMS and how far its exponents lie from the usual ones), scores are normalised ``s = r / sigma(x)``, and
``q(x) = sigma(x) * Q_level(s)``, Q the weighted conformal quantile at level * (1 + 1/n_eff).
Source groups (everything one source adapter yields, :func:`core.storage.source_group`), not
designs or families, are the exchangeable units: the families of one source share its recipe and
evaluation, and a user's runs are a new source. Each group's designs weigh sqrt(n_g) in total.
Coverage is measured holding out whole source groups (:func:`leave_one_source_out`, what a new
lab's runs are) or single families (:func:`leave_one_family_out`).

A plan (the budget planner: no fit yet, so no residual) gets its expected error from the same
model: the level-quantile of |r| averaged over the residuals that calibration designs with the
same plan features had (:class:`_ResidualModel`), with the same refusals.

A design gets a :class:`Refusal` instead of an interval when it lies outside what the collection
covers: fewer sizes or a larger extrapolation (in parameters or compute) than any calibration
design, a worse in-sample fit than any, or a target trained on a number of tokens per parameter
more than a factor 3 beyond every calibration target's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from scaleplan.core.conformal import conformal_quantile
from scaleplan.core.errors import UserError
from scaleplan.core.laws.formulas import FLOPS_PER_PARAM_TOKEN
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, FitPoints, below_target

METHOD = (
    "normalised split conformal on |log(predicted/actual)|: difficulty regressed on the design's features "
    "and the fit's residual; learned on the meta-analysis sweep, source groups as the exchangeable units"
)
LEVELS = (0.5, 0.8, 0.9, 0.95)
"""Levels of the calibrated interval that are measured (reported and offered on the pages)."""
DEFAULT_LEVEL = 0.9
CALIBRATED_LAWS = ("chinchilla",)
"""Laws whose fits the sweep measured: only their predictions get a calibrated interval."""


def law_refusal(law: str) -> str | None:
    """Why a fit of ``law`` gets no calibrated interval (None when it can get one).

    The sweep measured the extrapolation errors of Chinchilla fits; they say nothing of another law's.
    """
    if law in CALIBRATED_LAWS:
        return None
    return f"no calibrated interval: the calibration is learned on Chinchilla fits, not {law}"


class CalibrationError(UserError, ValueError):
    """The sweep results cannot support a calibration (too few families or designs)."""


# ----------------------------------------------------------------------------- features
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
    ) -> DesignFeatures:
        """Features of fitting ``points`` to predict a target of ``target_params`` x ``target_tokens``.

        ``fitted_loss`` (the fitted law at the points, once a fit exists) adds ``fit_log_rmse``;
        ``exponents`` (the fit's alpha, beta) add ``exponent_distance``.
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
) -> pd.DataFrame:
    """The one definition of the design features (columns named as :class:`DesignFeatures`' fields),
    vectorised: sweep rows (:func:`features_table`) and a live fit (:meth:`DesignFeatures.from_points`,
    a one-row call) both go through it, so the model is learned and applied on the same features.

    param_ratio = N_target / max fitted N; compute_ratio = 6 N_t D_t / fit compute (FLOPs, the sum over
    fitted runs of 6 N D_max_used); tokens_per_param = D_t / N_t; exponent_distance of (alpha, beta)
    (NaN where unknown, as fit_log_rmse)."""

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
    )
    if "target_tokens" not in results:  # rows written before target tokens were stored
        table["compute_ratio"] = 1.0 / numeric("compute_share")
    table.index = results.index
    return table


RMSE_FLOOR = 1e-4  # log-space residual below which a fit is "exact" (3 runs, final only)


def _design_matrix(
    table: pd.DataFrame,
    with_rmse: bool = False,
    with_exponents: bool = False,
    log_compute_floor: float = -math.inf,
) -> np.ndarray:
    """phi(x): intercept, log extrapolation factors, size-count indicators, final-only, cutoff, log
    fraction, and the fit's own features: (``with_rmse``) log of the fit's in-sample log-residual RMS
    and (``with_exponents``) the distance of its exponents from the usual ones.

    ``log_compute_floor`` (the smallest log compute ratio the model was learned on) clamps a target
    cheaper than every calibration design's to that floor: such a design extrapolates less in compute
    than any measured one, and the regression is not extended below its data."""
    sizes = table["num_sizes"].to_numpy(float)
    extra = [np.log(np.maximum(table["fit_log_rmse"].to_numpy(float), RMSE_FLOOR))] if with_rmse else []
    if with_rmse and with_exponents:
        extra.append(table["exponent_distance"].to_numpy(float))
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
    return pd.DataFrame([row])


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PredictionInterval:
    """A calibrated interval for a predicted loss: ``low <= actual <= high`` with probability ``level``.

    ``scale`` is the half-width in log space (interval = predicted * exp(+-scale)); ``families``
    and ``cells`` count the sweep families and designs the calibration was learned on.
    """

    level: float
    low: float
    high: float
    method: str
    predicted: float
    scale: float = float("nan")
    families: int = 0
    cells: int = 0
    groups: int = 0  # source groups the calibration was learned on
    basis: str = ""  # what it was learned on, when not the collection (e.g. "42 backtest predictions inside your runs")

    @property
    def relative_width(self) -> float:
        """(high - low) / predicted."""
        return (self.high - self.low) / self.predicted

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level,
            "low": self.low,
            "high": self.high,
            "method": self.method,
            "families": self.families,
            "source_groups": self.groups,
            "designs": self.cells,
            "basis": self.basis or self._collection_basis(),
        }

    def _collection_basis(self) -> str:
        return f"{self.cells:,} designs of {self.families} families in {self.groups} source groups"

    def describe(self) -> str:
        """E.g. "90% interval 2.01-2.33 (calibrated on 20 families)"."""
        return (
            f"{self.level:.0%} interval {self.low:.4g}–{self.high:.4g} "
            f"(calibrated on {self.basis or self._collection_basis()})"
        )


@dataclass(frozen=True)
class Refusal:
    """No calibrated interval: the design lies outside what the collection covers."""

    reason: str
    kind: str = ""  # sizes, param_ratio, compute_ratio, tokens_per_param, fit_residual, families, prediction

    def __str__(self) -> str:
        return f"no calibrated interval: outside what the collection covers ({self.reason})"

    def as_dict(self, level: float) -> dict[str, object]:
        return {"level": level, "low": None, "high": None, "method": METHOD, "refused": str(self)}


@dataclass(frozen=True)
class AREQuantiles:
    """Expected absolute relative error |pred/actual - 1| of such a design, as fractions (0.05 = 5%)."""

    median: float
    p80: float
    p90: float
    cells: int
    families: int
    thin_support: bool
    groups: int = 0  # source groups behind the numbers


# ----------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class _Support:
    """Range of each feature over the calibration designs (log space for ratios)."""

    max_log_param_ratio: float
    max_log_compute_ratio: float
    min_sizes: int
    max_log_rmse: float
    min_log_tpp: float = -math.inf  # target tokens per parameter of the calibration designs
    max_log_tpp: float = math.inf


@dataclass(frozen=True, eq=False)
class _Model:
    """sigma(x) = exp(w . phi(x)) and the sorted normalised scores with their weights."""

    weights: np.ndarray
    scores: np.ndarray
    score_weights: np.ndarray
    with_rmse: bool
    with_exponents: bool = False
    log_compute_floor: float = -math.inf  # the smallest log compute ratio it was learned on

    def sigma(self, table: pd.DataFrame) -> np.ndarray:
        phi = _design_matrix(table, self.with_rmse, self.with_exponents, self.log_compute_floor)
        sigma: np.ndarray = np.exp(phi @ self.weights)
        return sigma

    @property
    def n_eff(self) -> float:
        """Kish's effective sample size (sum w)^2 / sum w^2 of the score weights."""
        return float(self.score_weights.sum()) ** 2 / float(np.sum(self.score_weights**2))

    def adjusted_level(self, level: float) -> float:
        """The conformal level * (1 + 1/n_eff) (finite-sample correction), capped at 1."""
        return min(level * (1.0 + 1.0 / self.n_eff), 1.0 + 1e-9)

    def quantile(self, level: float) -> float:
        """Weighted conformal quantile: smallest score whose cumulative weight reaches
        level * (1 + 1/n_eff) of the total, n_eff Kish's effective sample size (the number of designs
        when all weigh the same, about the number of source groups when every group weighs the same)."""
        total = float(self.score_weights.sum())
        needed = self.adjusted_level(level) * total
        index = int(np.searchsorted(np.cumsum(self.score_weights), needed - 1e-9 * total))
        return float(self.scores[index]) if index < self.scores.size else math.inf

    def score_cdf(self, values: np.ndarray) -> np.ndarray:
        """Weighted empirical CDF of the normalised scores at ``values`` (share of the total weight)."""
        cumulative = np.concatenate([[0.0], np.cumsum(self.score_weights)])
        shares: np.ndarray = cumulative[np.searchsorted(self.scores, values, side="right")] / cumulative[-1]
        return shares


def _fit_model(
    table: pd.DataFrame,
    log_ratio: np.ndarray,
    weight: np.ndarray,
    with_rmse: bool,
    with_exponents: bool = False,
    ridge: float = 1e-3,
    cross_groups: np.ndarray | None = None,
) -> _Model:
    """Weighted ridge regression of log(|r| + 1e-3) on phi(x), then normalised scores |r| / sigma(x).

    With ``cross_groups`` (3 groups or more) the scores are a mixture: weight 1 - CROSS_FIT_SHARE on the
    in-sample scores and CROSS_FIT_SHARE on cross-fitted ones, each group's |r| divided by the sigma of
    a regression without that group. In-sample scores alone under-cover a new source (the regression
    has seen each group's difficulty: 80% realised at 90% leaving source groups out)."""
    phi = _design_matrix(table, with_rmse, with_exponents)
    target = np.log(np.abs(log_ratio) + 1e-3)
    penalty = np.diag([0.0] + [1.0] * (phi.shape[1] - 1))

    def regress(rows: np.ndarray) -> np.ndarray:
        w = weight[rows]
        gram = phi[rows].T @ (phi[rows] * w[:, None]) + ridge * w.sum() * penalty
        solved: np.ndarray = np.linalg.solve(gram, phi[rows].T @ (w * target[rows]))
        return solved

    everything = np.ones(len(target), dtype=bool)
    weights = regress(everything)
    scores = np.abs(log_ratio) / np.exp(phi @ weights)
    if cross_groups is not None and np.unique(cross_groups).size >= 3:
        # Cross-fitted scores: each source group normalised by a sigma learned without it, so the
        # quantile is that of a group the difficulty model has not seen (as a new source's runs).
        crossed = scores.copy()
        for group in np.unique(cross_groups):
            inside = cross_groups == group
            crossed[inside] = np.abs(log_ratio[inside]) / np.exp(phi[inside] @ regress(~inside))
        mix = CROSS_FIT_SHARE
        scores = np.concatenate([scores, crossed])
        weight = np.concatenate([weight * (1 - mix), weight * mix])
    order = np.argsort(scores, kind="stable")
    return _Model(
        weights=weights,
        scores=scores[order],
        score_weights=weight[order],
        with_rmse=with_rmse,
        with_exponents=with_exponents,
        log_compute_floor=float(np.log(table["compute_ratio"].to_numpy(float)).min()),
    )


RESIDUAL_GRID = 64  # joint draws of (fit RMS, exponent distance | plan features) a plan's error averages over


@dataclass(frozen=True, eq=False)
class _ResidualModel:
    """What a plan's fit will look like: log RMS = v . phi_plan(x) + e1 and exponent distance =
    u . phi_plan(x) + e2, with (e1, e2) RESIDUAL_GRID joint draws from the calibration designs'
    regression residuals (weighted systematic sample): a plan has no fit yet."""

    rmse_weights: np.ndarray
    exponent_weights: np.ndarray
    rmse_residuals: np.ndarray  # RESIDUAL_GRID values of e1
    exponent_residuals: np.ndarray  # the paired values of e2
    log_compute_floor: float = -math.inf  # as :attr:`_Model.log_compute_floor`

    def draws(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(rows, RESIDUAL_GRID) equally likely (fit RMS, exponent distance) for each row's plan features."""
        phi = _design_matrix(table, False, log_compute_floor=self.log_compute_floor)
        log_rmse = (phi @ self.rmse_weights)[:, None] + self.rmse_residuals[None, :]
        distance = (phi @ self.exponent_weights)[:, None] + self.exponent_residuals[None, :]
        return np.exp(log_rmse), np.maximum(distance, 0.0)


def _ridge(phi: np.ndarray, target: np.ndarray, weight: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    gram = phi.T @ (phi * weight[:, None]) + ridge * weight.sum() * np.diag([0.0] + [1.0] * (phi.shape[1] - 1))
    return np.linalg.solve(gram, phi.T @ (weight * target))


def _fit_residual_model(table: pd.DataFrame, weight: np.ndarray) -> _ResidualModel:
    phi = _design_matrix(table, False)
    log_rmse = np.log(np.maximum(table["fit_log_rmse"].to_numpy(float), RMSE_FLOOR))
    distance = np.nan_to_num(table["exponent_distance"].to_numpy(float), nan=0.0)  # unused when unknown
    rmse_weights, exponent_weights = _ridge(phi, log_rmse, weight), _ridge(phi, distance, weight)
    e1, e2 = log_rmse - phi @ rmse_weights, distance - phi @ exponent_weights
    order = np.argsort(e1, kind="stable")
    cumulative = np.cumsum(weight[order]) / weight.sum()
    probabilities = (np.arange(RESIDUAL_GRID) + 0.5) / RESIDUAL_GRID
    index = order[np.minimum(np.searchsorted(cumulative, probabilities), order.size - 1)]
    floor = float(np.log(table["compute_ratio"].to_numpy(float)).min())
    return _ResidualModel(rmse_weights, exponent_weights, e1[index], e2[index], floor)


def source_groups(rows: pd.DataFrame) -> np.ndarray:
    """The source group of each sweep row (its ``source_group`` column, see
    :func:`core.storage.source_group`); a row without one is its own family's group."""
    family: np.ndarray = rows["family"].astype(str).to_numpy()
    if "source_group" not in rows:
        return family
    group = rows["source_group"].to_numpy(object)
    known = pd.notna(group) & (group != "")
    groups: np.ndarray = np.where(known, group.astype(str), family)
    return groups


@dataclass(frozen=True, eq=False)
class Calibration:
    """A fitted calibration of extrapolation error (see the module docstring).

    One difficulty model sigma(x), on the design's features and (when the calibration designs carry
    it) the fit's in-sample residual. A design without a fit (a plan) has no residual: its quantile
    averages the model over the residuals such designs had (:class:`_ResidualModel`), so the
    planner's expected error and the Fit page's interval are the same model with the same refusals.
    """

    model: _Model
    residual_model: _ResidualModel | None  # None when the model does not use the fit's residual
    support: _Support
    num_families: int
    cells: int
    families: tuple[str, ...]  # the calibration families (sorted)
    groups: tuple[str, ...] = ()  # the calibration source groups (sorted)
    method: str = METHOD
    excluded: tuple[str, ...] = ()  # the families or groups left out

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def _uses_fit(self, table: pd.DataFrame) -> np.ndarray:
        """Rows that carry the fit's own features (a fitted design, not a plan)."""
        if not self.model.with_rmse:
            return np.ones(len(table), dtype=bool)
        fitted: np.ndarray = np.isfinite(table["fit_log_rmse"].to_numpy(float))
        if self.model.with_exponents:
            fitted &= np.isfinite(table["exponent_distance"].to_numpy(float))
        return fitted

    def log_half_widths(self, table: pd.DataFrame, level: float) -> np.ndarray:
        """q(x) = sigma(x) * Q_level(scores) for each row of a features table: the interval is
        predicted * exp(+-q). Rows without a fit residual (plans) get the level-quantile of |r|
        averaged over the residual model: the t with mean_j F(t / sigma(x, rmse_j)) = adjusted level."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        out = np.empty(len(table))
        fitted = self._uses_fit(table)
        if fitted.any():
            out[fitted] = self.model.sigma(table[fitted]) * self.model.quantile(level)
        if (~fitted).any():
            out[~fitted] = self._plan_half_widths(table[~fitted], level)
        return out

    def _plan_half_widths(self, table: pd.DataFrame, level: float) -> np.ndarray:
        target = self.model.adjusted_level(level)
        if target >= 1.0 or self.residual_model is None:
            return np.full(len(table), math.inf)
        rows = len(table)
        rmse, distance = self.residual_model.draws(table)  # (rows, grid) each
        expanded = table.loc[table.index.repeat(rmse.shape[1])].reset_index(drop=True)
        expanded["fit_log_rmse"] = rmse.ravel()
        expanded["exponent_distance"] = distance.ravel()
        sigma = self.model.sigma(expanded).reshape(rows, -1)
        low = np.log(sigma.min(axis=1) * self.model.scores[0] + 1e-12)
        high = np.log(sigma.max(axis=1) * self.model.scores[-1] + 1e-12)
        for _ in range(50):  # bisection on log t; the mixture CDF is monotone in t
            middle = 0.5 * (low + high)
            cdf = self.model.score_cdf((np.exp(middle)[:, None] / sigma).ravel()).reshape(rows, -1).mean(axis=1)
            below = cdf < target - 1e-12
            low, high = np.where(below, middle, low), np.where(below, high, middle)
        half_widths: np.ndarray = np.exp(high)
        return half_widths

    def log_half_width(self, features: DesignFeatures, level: float) -> float:
        """:meth:`log_half_widths` of one design."""
        return float(self.log_half_widths(_table_of(features), level)[0])

    def sigma(self, features: DesignFeatures) -> float:
        """Difficulty sigma(x) (log-space scale) of a design with a fit (NaN for a plan)."""
        table = _table_of(features)
        return float(self.model.sigma(table)[0]) if self._uses_fit(table)[0] else math.nan

    def _checks(
        self, table: pd.DataFrame, plan: bool = False
    ) -> list[tuple[str, np.ndarray, Callable[[pd.Series], str]]]:
        """(kind, mask, reason) of each refusal rule, in precedence order (the first that applies wins);
        with ``plan``, last, a planned study needing more compute than its target
        (:data:`PLAN_MIN_COMPUTE_RATIO`)."""
        s = self.support
        param = table["param_ratio"].to_numpy(float)
        compute = table["compute_ratio"].to_numpy(float)
        log_param = np.log(np.maximum(param, 1e-300))
        log_compute = np.log(np.maximum(compute, 1e-300))
        tpp = table["tokens_per_param"].to_numpy(float)
        known_tpp = np.isfinite(tpp) & (tpp > 0)
        log_tpp = np.log(np.where(known_tpp, tpp, 1.0))
        rmse = table["fit_log_rmse"].to_numpy(float)
        log_rmse = np.log(np.maximum(np.nan_to_num(rmse, nan=RMSE_FLOOR), RMSE_FLOOR))
        margin = math.log(TPP_MARGIN)
        checks: list[tuple[str, np.ndarray, Callable[[pd.Series], str]]] = [
            (
                "sizes",
                table["num_sizes"].to_numpy(float) < s.min_sizes,
                lambda r: f"{int(r.num_sizes)} sizes; the collection's designs use at least {s.min_sizes}",
            ),
            (
                "param_ratio",
                ~((param > 1) & (compute > 0)),
                lambda r: (
                    "the target is not larger than every fitted run: every design of the collection predicts "
                    "a model larger than its fitted runs, so no measured error covers a target inside the fitted sizes "
                    "(a next isoFLOP budget, a longer run of a size already trained); the point prediction stands, "
                    "a Chinchilla fit of runs over several compute budgets gets an interval from their own "
                    "backtest, and a target above your largest run gets one from the collection"
                ),
            ),
            (
                "param_ratio",
                log_param > s.max_log_param_ratio + 1e-9,
                lambda r: (
                    f"extrapolates {r.param_ratio:.3g}x in parameters; the collection's designs go up to "
                    f"{math.exp(s.max_log_param_ratio):.3g}x"
                ),
            ),
            (
                "compute_ratio",
                log_compute > s.max_log_compute_ratio + 1e-9,
                lambda r: (
                    f"extrapolates {r.compute_ratio:.3g}x in compute; the collection's designs go up to "
                    f"{math.exp(s.max_log_compute_ratio):.3g}x"
                ),
            ),
            (
                "tokens_per_param",
                known_tpp & ((log_tpp < s.min_log_tpp - margin) | (log_tpp > s.max_log_tpp + margin)),
                lambda r: (
                    f"the target trains on {r.tokens_per_param:.3g} tokens per parameter; the collection's "
                    f"targets span {math.exp(s.min_log_tpp):.3g}-{math.exp(s.max_log_tpp):.3g} (a factor "
                    f"{TPP_MARGIN:g} beyond is allowed): no measured error in that regime"
                ),
            ),
            (
                "fit_residual",
                np.isfinite(rmse) & (log_rmse > s.max_log_rmse + 1e-9),
                lambda r: (
                    f"the law misses the fitted points by {r.fit_log_rmse:.1%} (RMS, log scale); no design "
                    f"of the collection fits worse than {math.exp(s.max_log_rmse):.1%}"
                ),
            ),
        ]
        if plan:
            checks.append(
                (
                    "study_compute",
                    compute < PLAN_MIN_COMPUTE_RATIO,
                    lambda r: (
                        f"the study needs {1 / r.compute_ratio:.3g}x the compute of training the target itself: "
                        "train the target, or plan smaller study runs"
                    ),
                )
            )
        return checks

    def refusal_kinds(self, table: pd.DataFrame, plan: bool = False) -> np.ndarray:
        """The refusal kind of each row of a features table, or None (same rules as :meth:`refusal`)."""
        kinds = np.full(len(table), None, dtype=object)
        for kind, mask, _ in self._checks(table, plan):
            kinds[mask & pd.isna(kinds)] = kind
        return kinds

    def plan_refusal_kinds(self, table: pd.DataFrame) -> np.ndarray:
        """:meth:`refusal_kinds` of planned studies (the rules of :meth:`are_quantiles`): also
        ``study_compute`` where the study needs more compute than training the target."""
        return self.refusal_kinds(table, plan=True)

    def refusal(self, features: DesignFeatures, plan: bool = False) -> Refusal | None:
        """A :class:`Refusal` if the design lies outside what the collection covers (with ``plan``, or
        is a study dearer than its target), else None."""
        table = _table_of(features)
        for kind, mask, reason in self._checks(table, plan):
            if mask[0]:
                return Refusal(reason(table.iloc[0]), kind)
        return None

    def interval(self, predicted: float, features: DesignFeatures, level: float = 0.9) -> PredictionInterval | Refusal:
        """Calibrated interval of ``predicted`` (a loss) at ``level``, or a :class:`Refusal`."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        if not (np.isfinite(predicted) and predicted > 0):
            return Refusal(f"the prediction {predicted!r} is not a positive loss", "prediction")
        refusal = self.refusal(features)
        if refusal is not None:
            return refusal
        q = self.log_half_width(features, level)
        if not math.isfinite(q):
            return Refusal(f"{self.num_groups} source groups are too few for a {level:.0%} interval", "families")
        if not q > 0:  # a zero-width interval is never shown
            return Refusal("the calibration designs give no spread at this level", "families")
        return PredictionInterval(
            level=float(level),
            low=predicted * math.exp(-q),
            high=predicted * math.exp(q),
            method=self.method,
            predicted=float(predicted),
            scale=q,
            families=self.num_families,
            cells=self.cells,
            groups=self.num_groups,
        )

    def are_quantiles(self, features: DesignFeatures) -> AREQuantiles | Refusal:
        """Expected ARE = |pred/actual - 1| of such a design, at 50/80/90%: exp(q_level) - 1.

        The same model and refusals as :meth:`interval`, and a study needing more compute than the
        target is refused (:data:`PLAN_MIN_COMPUTE_RATIO`); without a fit residual (a plan) the
        quantiles average over the residuals such designs had."""
        refusal = self.refusal(features, plan=True)
        if refusal is not None:
            return refusal
        table = _table_of(features)
        values = [math.expm1(float(self.log_half_widths(table, level)[0])) for level in (0.5, 0.8, 0.9)]
        if not all(math.isfinite(v) for v in values):
            return Refusal(f"{self.num_groups} source groups are too few for a 90% expected error", "families")
        return AREQuantiles(
            median=values[0],
            p80=values[1],
            p90=values[2],
            cells=self.cells,
            families=self.num_families,
            thin_support=self.num_groups < 3 or self.num_families < 5,
            groups=self.num_groups,
        )


def usable_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Sweep rows that can calibrate: fitted, a positive finite prediction and actual loss, a target
    larger than every fitted run."""
    ok = results[results["status"] == "ok"]
    ok = ok[
        (ok["predicted_final"] > 0)
        & (ok["actual_final"] > 0)
        & (ok["compute_share"] > 0)
        & below_target(ok["max_params_used"], ok["target_params"])
    ]
    values = ok[["predicted_final", "actual_final", "compute_share"]].to_numpy(float)
    return ok[np.isfinite(values).all(axis=1)]


PLAN_MIN_COMPUTE_RATIO = 1.0
"""A planned study must cost less compute than training the target (target 6 N D / study FLOPs >= 1):
a dearer study buys nothing the target's own run would not, so the planner prices it and refuses to
rank it, and its expected error is validated only where it is shown (sweep designs with a compute
ratio of at least 1)."""
TPP_MARGIN = 3.0  # a target's tokens per parameter may lie this factor beyond the calibration targets' range
GROUP_WEIGHT_POWER = 0.5
CROSS_FIT = True
CROSS_FIT_SHARE = 0.5
"""Share of the score weight on cross-fitted scores (each source group normalised by a difficulty model
learned without it); the rest on the in-sample scores. Half and half: not tuned on the held-out result
(measured leaving source groups out: 0.3 -> 84.4% at 90%, width 0.49; 0.5 -> 87.5%, 0.59; 0.7 -> 90.2%,
0.69; 1.0 -> 92.4%, 0.85; 0 -> 80.0%, 0.40)."""
"""Each source group's designs weigh n_g ** power in total: 0 = groups equal, 1 = designs equal (fixed
a priori, between the two, not tuned on the coverage it is reported with)."""
FAMILY_WEIGHT_POWER = GROUP_WEIGHT_POWER  # the name before source groups were the units


def fit_calibration(
    results: pd.DataFrame,
    *,
    exclude_family: str | None = None,
    exclude_group: str | None = None,
    group_weight_power: float = GROUP_WEIGHT_POWER,
) -> Calibration:
    """Learn a calibration from sweep rows (:func:`core.meta.load_results`), without ``exclude_family``
    and without every family of ``exclude_group`` (a source group, :func:`source_groups`).

    Needs the columns of a sweep row (family, status, predicted_final, actual_final, target_params,
    max_params_used, compute_share, final_only, fraction, min_tokens; num_sizes, target_tokens,
    fit_log_rmse and source_group when present). Raises :class:`CalibrationError` with fewer than 2
    families or 20 designs.
    """
    rows = usable_rows(results)
    groups = source_groups(rows)
    keep = np.ones(len(rows), dtype=bool)
    if exclude_family is not None:
        keep &= rows["family"].astype(str).to_numpy() != exclude_family
    if exclude_group is not None:
        keep &= groups != exclude_group
    rows, groups = rows[keep], groups[keep]
    families = rows["family"].astype(str).to_numpy()
    names = np.unique(families)
    if names.size < 2 or len(rows) < 20:
        raise CalibrationError(
            f"a calibration needs at least 2 families and 20 fitted designs; "
            f"got {names.size} families and {len(rows)} designs"
        )
    table = features_table(rows).reset_index(drop=True)
    log_ratio = np.log(rows["predicted_final"].to_numpy(float) / rows["actual_final"].to_numpy(float))
    counts = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy(float)
    weight = counts ** (group_weight_power - 1.0)
    rmse = table["fit_log_rmse"].to_numpy(float)
    distance = table["exponent_distance"].to_numpy(float)
    with_exponents = bool((np.isfinite(rmse) & np.isfinite(distance)).mean() > 0.9)
    has = np.isfinite(rmse) & (np.isfinite(distance) | (not with_exponents))
    with_rmse = bool(has.mean() > 0.9)
    if with_rmse:  # the few rows without the fit's features (older results) do not calibrate
        table, log_ratio, weight, groups, families = (
            table[has].reset_index(drop=True),
            log_ratio[has],
            weight[has],
            groups[has],
            families[has],
        )
    model = _fit_model(
        table,
        log_ratio,
        weight,
        with_rmse=with_rmse,
        with_exponents=with_rmse and with_exponents,
        cross_groups=groups if CROSS_FIT else None,
    )
    residual_model = _fit_residual_model(table, weight) if with_rmse else None
    log_param = np.log(table["param_ratio"].to_numpy(float))
    log_compute = np.log(table["compute_ratio"].to_numpy(float))
    rmse = table["fit_log_rmse"].to_numpy(float)
    tpp = table["tokens_per_param"].to_numpy(float)
    known_tpp = np.isfinite(tpp) & (tpp > 0)
    support = _Support(
        max_log_param_ratio=float(log_param.max()),
        max_log_compute_ratio=float(log_compute.max()),
        min_sizes=int(table["num_sizes"].min()),
        max_log_rmse=float(np.log(max(np.nanmax(rmse), RMSE_FLOOR))) if np.isfinite(rmse).any() else math.inf,
        min_log_tpp=float(np.log(tpp[known_tpp]).min()) if known_tpp.any() else -math.inf,
        max_log_tpp=float(np.log(tpp[known_tpp]).max()) if known_tpp.any() else math.inf,
    )
    return Calibration(
        model=model,
        residual_model=residual_model,
        support=support,
        num_families=int(np.unique(families).size),
        cells=int(len(table)),
        families=tuple(np.unique(families)),
        groups=tuple(np.unique(groups)),
        excluded=tuple(x for x in (exclude_family, exclude_group) if x is not None),
    )


def load_calibration(meta_path: Path, data_version: str) -> Calibration:
    """The calibration learned on every family of the stored sweep (``scaleplan meta run``)."""
    from scaleplan.core import meta

    results = meta.load_results(meta_path, data_version)
    if results.empty:
        raise CalibrationError(
            f"the meta-analysis results are missing (none in {meta_path} and none shipped "
            f"for data version {data_version[:12]}); run `scaleplan meta run` once"
        )
    return fit_calibration(results)


# ----------------------------------------------------------------------------- validation
HOLDOUTS = ("source", "family")
"""What one held-out unit is: a whole source group (the use: a new lab's runs) or one family."""
PLANNER_LEVELS = (0.5, 0.8, 0.9)


def _check_holdout(holdout: str) -> None:
    if holdout not in HOLDOUTS:
        raise CalibrationError(f"holdout must be one of {', '.join(HOLDOUTS)}, got {holdout!r}")


def held_out_units(results: pd.DataFrame, holdout: str = "source") -> list[str]:
    """The units a validation holds out one at a time: source groups or families (sorted)."""
    _check_holdout(holdout)
    rows = usable_rows(results)
    units = source_groups(rows) if holdout == "source" else rows["family"].astype(str).to_numpy()
    return sorted(set(units))


def plan_table(table: pd.DataFrame) -> pd.DataFrame:
    """The same designs as a planner sees them, before any fit: no residual, no fitted exponents."""
    return table.assign(fit_log_rmse=np.nan, exponent_distance=np.nan)


def evaluate_held_out(
    results: pd.DataFrame, unit: str, levels: tuple[float, ...] = LEVELS, *, holdout: str = "family"
) -> pd.DataFrame:
    """One hold-out step: calibrate without ``unit`` (a family, or with ``holdout="source"`` every
    family of a source group), evaluate on its designs.

    Pure and top-level, so it can be mapped over units by any executor. One row per held-out design
    with, for each level (as percent, e.g. 90): ``covered_90``, ``width_90`` (relative width, NaN if
    refused), ``refused_90``, the naive baseline's ``base_covered_90``, ``base_width_90`` (one global
    conformal quantile of |log ratio| on the other units), and for the planner's levels
    ``planner_ok_80`` (realised ARE at or below the planner's p80 for the same design before any fit;
    NaN where refused) and ``planner_refused``. ``calibration_families`` records which families the
    calibration used.
    """
    _check_holdout(holdout)
    rows = usable_rows(results)
    groups = source_groups(rows)
    held_mask = (groups if holdout == "source" else rows["family"].astype(str).to_numpy()) == unit
    held, others = rows[held_mask], rows[~held_mask]
    if holdout == "source":
        calibration = fit_calibration(results, exclude_group=unit)
    else:
        calibration = fit_calibration(results, exclude_family=unit)
    table = features_table(held)
    predicted = held["predicted_final"].to_numpy(float)
    actual = held["actual_final"].to_numpy(float)
    other_scores = np.abs(np.log(others["predicted_final"].to_numpy(float) / others["actual_final"].to_numpy(float)))
    out = pd.DataFrame(
        {
            "group": groups[held_mask],
            "family": held["family"].astype(str).to_numpy(),
            "key": held["key"].to_numpy() if "key" in held else np.arange(len(held)),
            "predicted": predicted,
            "actual": actual,
        },
        index=range(len(held)),
    )
    for column in table.columns:
        out[column] = table[column].to_numpy()
    out["calibration_families"] = ",".join(calibration.families)
    kinds = calibration.refusal_kinds(table)
    refused = np.array([k is not None for k in kinds])
    for level in levels:
        tag = f"{round(level * 100):d}"
        q = calibration.log_half_widths(table, level)
        refused_here = refused | ~np.isfinite(q)
        low = np.where(refused_here, np.nan, predicted * np.exp(-q))
        high = np.where(refused_here, np.nan, predicted * np.exp(q))
        out[f"refused_{tag}"] = refused_here
        out[f"covered_{tag}"] = np.where(refused_here, np.nan, (low <= actual) & (actual <= high))
        out[f"width_{tag}"] = (high - low) / predicted
        base_q = conformal_quantile(other_scores, level)
        out[f"base_covered_{tag}"] = (predicted * math.exp(-base_q) <= actual) & (
            actual <= predicted * math.exp(base_q)
        )
        out[f"base_width_{tag}"] = math.exp(base_q) - math.exp(-base_q)
    out["refusal_kind"] = kinds
    plan = plan_table(table)
    plan_refused = np.array([k is not None for k in calibration.plan_refusal_kinds(plan)])
    realised_are = np.abs(predicted / actual - 1.0)
    for level in PLANNER_LEVELS:
        tag = f"{round(level * 100):d}"
        expected = np.expm1(calibration.log_half_widths(plan, level))
        out[f"planner_are_{tag}"] = np.where(plan_refused, np.nan, expected)
        out[f"planner_ok_{tag}"] = np.where(plan_refused | ~np.isfinite(expected), np.nan, realised_are <= expected)
    out["planner_refused"] = plan_refused
    return out


Mapper = Callable[[Callable[[str], pd.DataFrame], list[str]], Iterable[pd.DataFrame]]


def leave_one_out(
    results: pd.DataFrame, holdout: str = "source", levels: tuple[float, ...] = LEVELS, *, mapper: Mapper = map
) -> pd.DataFrame:
    """:func:`evaluate_held_out` for every unit (source group or family) of ``results``.

    ``mapper(function, units)`` may be any map (e.g. a Dask client's ``map`` then gather): the step
    is a picklable partial of a top-level function.
    """
    units = held_out_units(results, holdout)
    step = functools.partial(evaluate_held_out, results, levels=levels, holdout=holdout)
    frames = list(mapper(step, units))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def leave_one_family_out(
    results: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, mapper: Mapper = map
) -> pd.DataFrame:
    """:func:`leave_one_out` holding out one family at a time (its source-group siblings stay in)."""
    return leave_one_out(results, "family", levels, mapper=mapper)


def leave_one_source_out(
    results: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, mapper: Mapper = map
) -> pd.DataFrame:
    """:func:`leave_one_out` holding out one whole source group at a time (the use: a new lab's runs)."""
    return leave_one_out(results, "source", levels, mapper=mapper)


@dataclass(frozen=True)
class LevelSummary:
    nominal: float
    realised: float
    cells: int
    median_rel_width: float


@dataclass(frozen=True)
class PlannerLevel:
    """Share of answered held-out designs whose realised ARE is at or below the planner's quantile."""

    nominal: float
    realised: float
    cells: int


@dataclass(frozen=True)
class CalibrationReport:
    """Held-out coverage of the calibrated interval, of the naive baseline and of the planner's
    expected ARE (``holdout``: each source group or each family predicted without itself)."""

    levels: tuple[LevelSummary, ...]
    baseline: tuple[LevelSummary, ...]
    refused: int
    families: int
    cells: int
    per_family: pd.DataFrame  # group, family, designs, covered_90, base_covered_90, width_90, refused, planner_80
    per_feature: pd.DataFrame  # feature, value, designs, covered_90, base_covered_90, width_90
    refusal_reasons: pd.Series  # refusal kind -> count
    holdout: str = "family"
    per_group: pd.DataFrame | None = None  # group, families, designs, covered_90, ..., planner_80
    planner: tuple[PlannerLevel, ...] = ()
    planner_refused: int = 0
    groups: int = 0
    # share of the schedule the fitted runs reached (the sweep's token fraction: fits on the first f of
    # every run's checkpoints, mid-schedule losses of cosine runs) x source group: designs, covered_90, width_90
    per_schedule: pd.DataFrame | None = None


def _bin_sizes(n: pd.Series) -> pd.Series:
    return pd.cut(n, [0, 3, 5, np.inf], labels=["3", "4-5", "6+"]).astype(str)


SCHEDULE_BINS = (0.0, 0.3, 0.6, 0.99, 1.0)
"""Bins of the share of the schedule a design's fitted runs reached (its token fraction)."""


def _schedule_bins(fraction: pd.Series) -> pd.Series:
    labels = [f"{low:g}-{high:g}" if high < 1 else f"{low:g}-1" for low, high in zip(SCHEDULE_BINS, SCHEDULE_BINS[1:])]
    labels[-1] = "1 (final)"
    return pd.cut(fraction, list(SCHEDULE_BINS), labels=labels).astype(str)


def _per_schedule(answered: pd.DataFrame) -> pd.DataFrame:
    """Coverage at 90% per (schedule share, source group) of the answered designs."""
    fitted = answered[~answered["refused_90"].astype(bool)]
    return (
        fitted.assign(schedule=_schedule_bins(fitted["fraction"]))
        .groupby(["schedule", "group"])
        .agg(designs=("covered_90", "size"), covered_90=("covered_90", "mean"), width_90=("width_90", "median"))
        .reset_index()
    )


def _per_unit(answered: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return (
        answered.groupby(by)
        .agg(
            families=("family", "nunique"),
            designs=("covered_90", "size"),
            covered_90=("covered_90", "mean"),
            base_covered_90=("base_covered_90", "mean"),
            width_90=("width_90", "median"),
            refused=("refused_90", "sum"),
            planner_80=("planner_ok_80", "mean"),
        )
        .reset_index()
        .sort_values("covered_90")
    )


def summarise(frame: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, holdout: str = "family") -> CalibrationReport:
    """Pooled coverage over designs (each design of each held-out unit counts once), per source
    group, per family, per design feature, and the planner's realised quantiles."""
    out, base = [], []
    for level in levels:
        tag = f"{round(level * 100):d}"
        answered = frame[~frame[f"refused_{tag}"].astype(bool)]
        out.append(
            LevelSummary(
                level,
                float(answered[f"covered_{tag}"].astype(float).mean()),
                int(len(answered)),
                float(answered[f"width_{tag}"].median()),
            )
        )
        base.append(
            LevelSummary(
                level,
                float(frame[f"base_covered_{tag}"].astype(float).mean()),
                int(len(frame)),
                float(frame[f"base_width_{tag}"].median()),
            )
        )
    if "group" not in frame:
        frame = frame.assign(group=frame["family"])
    if "planner_ok_80" not in frame:
        frame = frame.assign(planner_ok_80=np.nan, planner_refused=True)
    answered = frame.assign(
        covered_90=frame["covered_90"].astype(float),
        base_covered_90=frame["base_covered_90"].astype(float),
        planner_ok_80=frame["planner_ok_80"].astype(float),
    )
    per_family = _per_unit(answered, ["group", "family"]).drop(columns="families")
    per_group = _per_unit(answered, ["group"])
    groups = {
        "sizes": _bin_sizes(answered["num_sizes"]),
        "param ratio": pd.cut(
            answered["param_ratio"],
            [1, 2, 4, 16, 64, np.inf],
            right=False,
            labels=["1-2x", "2-4x", "4-16x", "16-64x", ">=64x"],
        ).astype(str),
        "compute ratio": pd.cut(
            answered["compute_ratio"],
            [0, 10, 100, 1e3, 1e4, np.inf],
            right=False,
            labels=["<10x", "10-100x", "100-1000x", "1e3-1e4x", ">=1e4x"],
        ).astype(str),
        "checkpoints": np.where(answered["final_only"].astype(bool), "final only", "all"),
        "cutoff": np.where(answered["min_tokens"] > 0, "10B", "none"),
        "fraction": answered["fraction"].map(lambda p: f"{p:g}"),
    }
    parts = []
    for name, values in groups.items():
        g = (
            answered.assign(value=values)
            .groupby("value")
            .agg(
                designs=("covered_90", "size"),
                covered_90=("covered_90", "mean"),
                base_covered_90=("base_covered_90", "mean"),
                width_90=("width_90", "median"),
            )
            .reset_index()
        )
        g.insert(0, "feature", name)
        parts.append(g)
    planner = tuple(
        PlannerLevel(
            level,
            float(frame[f"planner_ok_{round(level * 100):d}"].astype(float).mean()),
            int(frame[f"planner_ok_{round(level * 100):d}"].notna().sum()),
        )
        for level in PLANNER_LEVELS
        if f"planner_ok_{round(level * 100):d}" in frame
    )
    return CalibrationReport(
        levels=tuple(out),
        baseline=tuple(base),
        refused=int(frame["refused_90"].sum()),
        families=int(frame["family"].nunique()),
        cells=int(len(frame)),
        per_family=per_family,
        per_feature=pd.concat(parts, ignore_index=True),
        refusal_reasons=frame["refusal_kind"].dropna().value_counts(),
        holdout=holdout,
        per_group=per_group,
        planner=planner,
        planner_refused=int(frame["planner_refused"].astype(bool).sum()),
        groups=int(frame["group"].nunique()),
        per_schedule=_per_schedule(answered),
    )


def report_json(report: CalibrationReport) -> dict[str, object]:
    """The report as plain JSON: ``holdout``, ``levels`` and ``baseline`` ({nominal, realised, cells,
    median_rel_width}), ``groups`` ({group, families, designs, realised_90}), ``refused``,
    ``refusal_reasons``, ``planner`` ({nominal, realised}), ``schedule`` ({fraction, group, designs,
    realised_90, median_rel_width_90}: fits on the first share of every run's schedule, i.e. mid-schedule
    losses, per source group) and the per-family and per-feature tables."""

    def number(value: object) -> float | None:
        if value is None:
            return None
        number_ = float(value)  # type: ignore[arg-type]  # a NumPy or Python number
        return number_ if np.isfinite(number_) else None

    def levels(summaries: tuple[LevelSummary, ...]) -> list[dict[str, object]]:
        return [
            {
                "nominal": s.nominal,
                "realised": number(s.realised),
                "cells": s.cells,
                "median_rel_width": number(s.median_rel_width),
            }
            for s in summaries
        ]

    def records(frame: pd.DataFrame) -> list[dict[str, object]]:
        """Rows as JSON objects: floats through ``number`` (NaN -> null), NumPy integers as int."""
        return [
            {
                k: number(v) if isinstance(v, (float, np.floating)) else (int(v) if isinstance(v, np.integer) else v)
                for k, v in row.items()
            }
            for row in frame.to_dict(orient="records")
        ]

    per_group = report.per_group if report.per_group is not None else pd.DataFrame()
    per_schedule = report.per_schedule if report.per_schedule is not None else pd.DataFrame()
    return {
        "method": METHOD,
        "holdout": report.holdout,
        "levels": levels(report.levels),
        "baseline": levels(report.baseline),
        "groups": [
            {
                "group": str(r["group"]),
                "families": int(r["families"]),
                "designs": int(r["designs"]),
                "realised_90": number(r["covered_90"]),
                "baseline_90": number(r["base_covered_90"]),
                "median_rel_width_90": number(r["width_90"]),
                "refused": int(r["refused"]),
                "planner_80": number(r["planner_80"]),
            }
            for _, r in per_group.iterrows()
        ],
        "schedule": [
            {
                "fraction": str(r["schedule"]),
                "group": str(r["group"]),
                "designs": int(r["designs"]),
                "realised_90": number(r["covered_90"]),
                "median_rel_width_90": number(r["width_90"]),
            }
            for _, r in per_schedule.iterrows()
        ],
        "refused": report.refused,
        "refusal_reasons": {str(k): int(v) for k, v in report.refusal_reasons.items()},
        "planner": [{"nominal": p.nominal, "realised": number(p.realised), "cells": p.cells} for p in report.planner],
        "planner_refused": report.planner_refused,
        "families": report.families,
        "cells": report.cells,
        "per_family": records(report.per_family),
        "per_feature": records(report.per_feature),
    }
