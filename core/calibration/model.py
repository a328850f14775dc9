"""The calibration itself: the difficulty model sigma(x), its normalised (partly cross-fitted) scores,
the residual model a plan averages over, and :class:`Calibration` with its refusal rules."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from scaleplan.core.calibration.base import METHOD, CalibrationError
from scaleplan.core.calibration.features import (
    BACKTEST_SIZES,
    RMSE_FLOOR,
    DesignFeatures,
    _design_matrix,
    _table_of,
    features_table,
    log_backtest_error,
)
from scaleplan.core.calibration.results import AREQuantiles, PredictionInterval, Refusal
from scaleplan.core.selection import below_target
from scaleplan.core.units import format_level, format_ratio


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
    with_backtest: bool = False

    def sigma(self, table: pd.DataFrame) -> np.ndarray:
        phi = _design_matrix(table, self.with_rmse, self.with_exponents, self.log_compute_floor, self.with_backtest)
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
        when all weigh the same, about the number of source groups when every group weighs the same);
        infinite when level * (1 + 1/n_eff) exceeds 1 (as split conformal's ceil((n + 1) level) > n)."""
        if level * (1.0 + 1.0 / self.n_eff) > 1.0 + 1e-9:
            return math.inf  # beyond what n_eff scores can bound: no finite conformal quantile
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
    with_backtest: bool = False,
) -> _Model:
    """Weighted ridge regression of log(|r| + 1e-3) on phi(x), then normalised scores |r| / sigma(x).

    With ``cross_groups`` (3 groups or more) the scores are a mixture: weight 1 - CROSS_FIT_SHARE on the
    in-sample scores and CROSS_FIT_SHARE on cross-fitted ones, each group's |r| divided by the sigma of
    a regression without that group. In-sample scores alone under-cover a new source (the regression
    has seen each group's difficulty: 80% realised at 90% leaving source groups out)."""
    phi = _design_matrix(table, with_rmse, with_exponents, with_backtest=with_backtest)
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
        with_backtest=with_backtest,
    )


RESIDUAL_GRID = 64  # joint draws of (fit RMS, exponent distance, backtest | plan features) a plan's error averages over


@dataclass(frozen=True, eq=False)
class _ResidualModel:
    """What a plan's fit will look like: log RMS = v . phi_plan(x) + e1, exponent distance =
    u . phi_plan(x) + e2 and log backtest error = t . phi_plan(x) + e3, with (e1, e2, e3) RESIDUAL_GRID
    joint draws from the calibration designs' regression residuals (weighted systematic sample): from
    the designs with a backtest for a plan that will have one, else (e1, e2) from those without: a plan
    has no fit yet."""

    rmse_weights: np.ndarray
    exponent_weights: np.ndarray
    rmse_residuals: np.ndarray  # RESIDUAL_GRID values of e1
    exponent_residuals: np.ndarray  # the paired values of e2
    log_compute_floor: float = -math.inf  # as :attr:`_Model.log_compute_floor`
    backtest_weights: np.ndarray | None = None  # None when the calibration designs carry no backtest
    # (e1, e2, e3) RESIDUAL_GRID joint draws from the designs that have a backtest, for plans that will
    # have one (:data:`BACKTEST_SIZES` sizes or more); the main draws are then from those without one
    backtested: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def draws(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, RESIDUAL_GRID) equally likely (fit RMS, exponent distance, backtest error; NaN: none)
        for each row's plan features. Whether a plan's fit will have a backtest is the plan's own
        feature (its number of sizes), not the drawn design's."""
        phi = _design_matrix(table, False, log_compute_floor=self.log_compute_floor)
        e1, e2 = self.rmse_residuals[None, :], self.exponent_residuals[None, :]
        backtest = np.full((len(table), RESIDUAL_GRID), np.nan)
        if self.backtest_weights is not None and self.backtested is not None:
            will = (table["num_sizes"].to_numpy(float) >= BACKTEST_SIZES)[:, None]
            k1, k2, k3 = (values[None, :] for values in self.backtested)
            e1, e2 = np.where(will, k1, e1), np.where(will, k2, e2)
            backtest = np.where(will, np.exp((phi @ self.backtest_weights)[:, None] + k3), np.nan)
        log_rmse = (phi @ self.rmse_weights)[:, None] + e1
        distance = (phi @ self.exponent_weights)[:, None] + e2
        return np.exp(log_rmse), np.maximum(distance, 0.0), backtest


def _ridge(phi: np.ndarray, target: np.ndarray, weight: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    gram = phi.T @ (phi * weight[:, None]) + ridge * weight.sum() * np.diag([0.0] + [1.0] * (phi.shape[1] - 1))
    return np.linalg.solve(gram, phi.T @ (weight * target))


def _fit_residual_model(table: pd.DataFrame, weight: np.ndarray, with_backtest: bool = False) -> _ResidualModel:
    phi = _design_matrix(table, False)
    log_rmse = np.log(np.maximum(table["fit_log_rmse"].to_numpy(float), RMSE_FLOOR))
    distance = np.nan_to_num(table["exponent_distance"].to_numpy(float), nan=0.0)  # unused when unknown
    rmse_weights, exponent_weights = _ridge(phi, log_rmse, weight), _ridge(phi, distance, weight)
    e1, e2 = log_rmse - phi @ rmse_weights, distance - phi @ exponent_weights
    floor = float(np.log(table["compute_ratio"].to_numpy(float)).min())
    if not with_backtest:
        index = _systematic_draws(e1, weight, np.ones(e1.size, bool))
        return _ResidualModel(rmse_weights, exponent_weights, e1[index], e2[index], floor)
    # learned on the designs that have a backtest; plans that will have one draw from those designs,
    # the others from the designs without one
    log_backtest, known = log_backtest_error(table)
    backtest_weights = _ridge(phi[known], log_backtest[known], weight[known])
    e3 = log_backtest - phi @ backtest_weights
    with_one = _systematic_draws(e1, weight, known)
    without = _systematic_draws(e1, weight, ~known) if (~known).any() else with_one
    return _ResidualModel(
        rmse_weights,
        exponent_weights,
        e1[without],
        e2[without],
        floor,
        backtest_weights,
        (e1[with_one], e2[with_one], e3[with_one]),
    )


def _systematic_draws(e1: np.ndarray, weight: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """RESIDUAL_GRID row indices among ``rows``: a weighted systematic sample in the order of e1 (so the
    paired residuals of one design stay together)."""
    candidates = np.flatnonzero(rows)
    order = candidates[np.argsort(e1[candidates], kind="stable")]
    cumulative = np.cumsum(weight[order]) / weight[order].sum()
    probabilities = (np.arange(RESIDUAL_GRID) + 0.5) / RESIDUAL_GRID
    index: np.ndarray = order[np.minimum(np.searchsorted(cumulative, probabilities), order.size - 1)]
    return index


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
        averaged over the residual model: the t with mean_j F(t / sigma(x, rmse_j)) = adjusted level.
        A row with the fit's own standard error adds it in quadrature (:func:`with_estimation_error`)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        out = np.empty(len(table))
        fitted = self._uses_fit(table)
        if fitted.any():
            out[fitted] = self.model.sigma(table[fitted]) * self.model.quantile(level)
        if (~fitted).any():
            out[~fitted] = self._plan_half_widths(table[~fitted], level)
        return with_estimation_error(out, table, level)

    def _plan_half_widths(self, table: pd.DataFrame, level: float) -> np.ndarray:
        target = self.model.adjusted_level(level)
        if target >= 1.0 or self.residual_model is None:
            return np.full(len(table), math.inf)
        rows = len(table)
        rmse, distance, backtest = self.residual_model.draws(table)  # (rows, grid) each
        expanded = table.loc[table.index.repeat(rmse.shape[1])].reset_index(drop=True)
        expanded["fit_log_rmse"] = rmse.ravel()
        expanded["exponent_distance"] = distance.ravel()
        expanded["backtest_log_error"] = backtest.ravel()
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
                    f"extrapolates {format_ratio(r.param_ratio)} in parameters; the collection's designs go up to "
                    f"{format_ratio(math.exp(s.max_log_param_ratio))}"
                ),
            ),
            (
                "compute_ratio",
                log_compute > s.max_log_compute_ratio + 1e-9,
                lambda r: (
                    f"extrapolates {format_ratio(r.compute_ratio)} in compute; the collection's designs go up to "
                    f"{format_ratio(math.exp(s.max_log_compute_ratio))}"
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
                        f"the study needs {format_ratio(1 / r.compute_ratio)} the compute of training the target itself: "
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
            return Refusal(
                f"{self.num_groups} source groups ({self.cells:,} designs) are too few for a {format_level(level)} interval",
                "families",
            )
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


def with_estimation_error(half_widths: np.ndarray, table: pd.DataFrame, level: float) -> np.ndarray:
    """Log half-widths q with the fit's own estimation error added in quadrature where a row has it:

        q' = sqrt(q^2 + (z se)^2),   z = Phi^-1((1 + level) / 2),

    se the row's ``prediction_log_se`` (:func:`core.fitting.prediction_log_se`). The calibration measures
    how far the collection's extrapolations missed; its fits rest on dense, smooth curves, so it cannot
    know how far a sparse, noisy sweep's parameters would move under another draw of its seed noise
    (synthetic isoFLOP sweeps of known laws: 72-74% realised at 90% without this term, 92-93% with it,
    ``benchmarks/bench_user_intervals.py``). Rows without it (plans, results stored before it) are
    unchanged; infinite q stays infinite."""
    if "prediction_log_se" not in table:
        return half_widths
    se = table["prediction_log_se"].to_numpy(float)
    known = np.isfinite(se) & np.isfinite(half_widths)
    if not known.any():
        return half_widths
    z = float(stats.norm.ppf(0.5 + level / 2))
    out = half_widths.copy()
    out[known] = np.sqrt(half_widths[known] ** 2 + (z * se[known]) ** 2)
    return out


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
    # results stored before the backtest column have none: the model then goes without it
    with_backtest = with_rmse and bool(np.isfinite(table["backtest_log_error"].to_numpy(float)[has]).any())
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
        with_backtest=with_backtest,
    )
    residual_model = _fit_residual_model(table, weight, with_backtest) if with_rmse else None
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
