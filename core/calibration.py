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
features ``x`` (number of sizes, extrapolation factor in parameters and in compute, final-only,
cutoff, fraction of training and, once a fit exists, its in-sample log-residual RMS), scores are
normalised ``s = r / sigma(x)``, and ``q(x) = sigma(x) * Q_level(s)``, Q the weighted conformal
quantile at level * (1 + 1/n_eff). Families, not designs, are the exchangeable units (designs of
one family share its misspecification): each family's designs weigh sqrt(n_f) in total, between
"every family equal" (n_eff ~ number of families, very conservative at 95%) and "every design
equal" (large families dominate). Coverage is measured leaving one family out
(:func:`leave_one_family_out`).

A design gets a :class:`Refusal` instead of an interval when it lies outside what the collection
covers: fewer sizes or a larger extrapolation (in parameters or compute) than any calibration
design, a worse in-sample fit than any, or a target trained in a regime (tokens per parameter
within a factor 3) where the collection's designs missed by more than a factor 2 in 1 case in 10.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scaleplan.core.errors import UserError
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, FitPoints

FLOPS_PER_PARAM_TOKEN = 6.0
METHOD = (
    "normalised split conformal on |log(predicted/actual)|: difficulty regressed on the design's features "
    "and the fit's residual; learned on the meta-analysis sweep, families as the exchangeable units"
)
LEVELS = (0.5, 0.8, 0.9, 0.95)


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
    ) -> DesignFeatures:
        """Features of fitting ``points`` to predict a target of ``target_params`` x ``target_tokens``.

        ``fitted_loss`` (the fitted law at the points, once a fit exists) adds ``fit_log_rmse``.
        """
        target_flops = FLOPS_PER_PARAM_TOKEN * float(target_params) * float(target_tokens)
        rmse = None
        if fitted_loss is not None:
            rmse = float(np.sqrt(np.mean(np.log(np.asarray(fitted_loss, float) / points.loss) ** 2)))
        return cls(
            num_sizes=int(np.unique(points.num_params).size),
            param_ratio=float(target_params) / float(np.max(points.num_params)),
            compute_ratio=target_flops / float(points.compute_flops),
            final_only=bool(final_only),
            fraction=float(fraction),
            min_tokens=float(min_tokens),
            fit_log_rmse=rmse,
            tokens_per_param=float(target_tokens) / float(target_params),
        )


def features_table(results: pd.DataFrame) -> pd.DataFrame:
    """Design features of sweep rows (columns named as :class:`DesignFeatures`' fields)."""
    num_sizes = results["num_sizes"] if "num_sizes" in results else results["num_runs"]
    return pd.DataFrame(
        {
            "num_sizes": pd.to_numeric(num_sizes).astype(float),
            "param_ratio": results["target_params"].astype(float) / results["max_params_used"].astype(float),
            "compute_ratio": 1.0 / results["compute_share"].astype(float),
            "final_only": results["final_only"].astype(bool),
            "fraction": results["fraction"].astype(float),
            "min_tokens": results["min_tokens"].astype(float),
            "fit_log_rmse": (
                pd.to_numeric(results["fit_log_rmse"]).astype(float)
                if "fit_log_rmse" in results
                else pd.Series(np.nan, index=results.index)
            ),
            "tokens_per_param": (
                pd.to_numeric(results["target_tokens"]).astype(float) / results["target_params"].astype(float)
                if "target_tokens" in results
                else pd.Series(np.nan, index=results.index)
            ),
        },
        index=results.index,
    )


RMSE_FLOOR = 1e-4  # log-space residual below which a fit is "exact" (3 runs, final only)


def _design_matrix(table: pd.DataFrame, with_rmse: bool = False) -> np.ndarray:
    """phi(x): intercept, log extrapolation factors, size-count indicators, final-only, cutoff, log
    fraction, and (``with_rmse``) log of the fit's in-sample log-residual RMS."""
    sizes = table["num_sizes"].to_numpy(float)
    extra = [np.log(np.maximum(table["fit_log_rmse"].to_numpy(float), RMSE_FLOOR))] if with_rmse else []
    return np.column_stack(
        [
            np.ones(len(table)),
            np.log(table["param_ratio"].to_numpy(float)),
            np.log(table["compute_ratio"].to_numpy(float)),
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

    @property
    def relative_width(self) -> float:
        """(high - low) / predicted."""
        return (self.high - self.low) / self.predicted

    def as_dict(self) -> dict:
        return {
            "level": self.level,
            "low": self.low,
            "high": self.high,
            "method": self.method,
            "families": self.families,
            "designs": self.cells,
        }

    def describe(self) -> str:
        """E.g. "90% interval 2.01-2.33 (calibrated on 20 families)"."""
        return (
            f"{self.level:.0%} interval {self.low:.4g}–{self.high:.4g} "
            f"(calibrated on {self.cells:,} designs of {self.families} families)"
        )


@dataclass(frozen=True)
class Refusal:
    """No calibrated interval: the design lies outside what the collection covers."""

    reason: str
    kind: str = ""  # sizes, param_ratio, compute_ratio, regime, fit_residual, families, prediction

    def __str__(self) -> str:
        return f"no calibrated interval: outside what the collection covers ({self.reason})"

    def as_dict(self, level: float) -> dict:
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


# ----------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class _Support:
    """Range of each feature over the calibration designs (log space for ratios)."""

    max_log_param_ratio: float
    max_log_compute_ratio: float
    min_log_compute_ratio: float
    min_sizes: int
    max_log_rmse: float


@dataclass(frozen=True, eq=False)
class _Model:
    """sigma(x) = exp(w . phi(x)) and the sorted normalised scores with their weights."""

    weights: np.ndarray
    scores: np.ndarray
    score_weights: np.ndarray
    with_rmse: bool

    def sigma(self, table: pd.DataFrame) -> np.ndarray:
        return np.exp(_design_matrix(table, self.with_rmse) @ self.weights)

    def quantile(self, level: float, num_families: int) -> float:
        """Weighted conformal quantile: smallest score whose cumulative weight reaches
        level * (1 + 1/n_eff) of the total, n_eff = (sum w)^2 / sum w^2 (Kish's effective sample size:
        the number of designs when all weigh the same, about the number of families when every family
        weighs the same)."""
        total = float(self.score_weights.sum())
        n_eff = total**2 / float(np.sum(self.score_weights**2))
        needed = min(level * (1.0 + 1.0 / n_eff), 1.0 + 1e-9) * total
        index = int(np.searchsorted(np.cumsum(self.score_weights), needed - 1e-9 * total))
        return float(self.scores[index]) if index < self.scores.size else math.inf


def _fit_model(
    table: pd.DataFrame, log_ratio: np.ndarray, weight: np.ndarray, with_rmse: bool, ridge: float = 1e-3
) -> _Model:
    """Family-weighted ridge regression of log(|r| + 1e-3) on phi(x), then normalised scores."""
    phi = _design_matrix(table, with_rmse)
    target = np.log(np.abs(log_ratio) + 1e-3)
    gram = phi.T @ (phi * weight[:, None]) + ridge * weight.sum() * np.diag([0.0] + [1.0] * (phi.shape[1] - 1))
    weights = np.linalg.solve(gram, phi.T @ (weight * target))
    scores = np.abs(log_ratio) / np.exp(phi @ weights)
    order = np.argsort(scores, kind="stable")
    return _Model(weights=weights, scores=scores[order], score_weights=weight[order], with_rmse=with_rmse)


@dataclass(frozen=True, eq=False)
class Calibration:
    """A fitted calibration of extrapolation error (see the module docstring).

    Two difficulty models: one on plan features only (for hypothetical plans) and one that also
    uses the fit's in-sample residual (``fit_log_rmse``), used whenever a fit exists.
    """

    plan_model: _Model
    fit_model: _Model | None
    support: _Support
    num_families: int
    cells: int
    families: tuple[str, ...]  # the calibration families (sorted)
    method: str = METHOD
    excluded_family: str | None = None
    regime_log_tpp: np.ndarray | None = None  # log target tokens/parameter of the calibration designs
    regime_abs_log_ratio: np.ndarray | None = None
    regime_weights: np.ndarray | None = None
    regime_families: np.ndarray | None = None

    def regime_error(self, tokens_per_param: float) -> tuple[float, int]:
        """90th percentile of |log(pred/actual)| (family-weighted) over calibration designs whose target
        trains on a similar number of tokens per parameter (within a factor REGIME_SPAN), and how
        many families they come from."""
        if self.regime_log_tpp is None or not (tokens_per_param and tokens_per_param > 0):
            return math.nan, 0
        near = np.abs(self.regime_log_tpp - math.log(tokens_per_param)) <= math.log(REGIME_SPAN)
        families = int(np.unique(self.regime_families[near]).size)
        if families == 0:
            return math.nan, 0
        values, weights = self.regime_abs_log_ratio[near], self.regime_weights[near]
        order = np.argsort(values)
        cumulative = np.cumsum(weights[order])
        index = int(np.searchsorted(cumulative, 0.9 * cumulative[-1]))
        return float(values[order][min(index, values.size - 1)]), families

    def _model(self, features: DesignFeatures) -> _Model:
        if (
            self.fit_model is not None
            and features.fit_log_rmse is not None
            and features.tokens_per_param is not None
            and math.isfinite(features.fit_log_rmse)
            and features.tokens_per_param > 0
        ):
            return self.fit_model
        return self.plan_model

    def sigma(self, features: DesignFeatures) -> float:
        """Difficulty sigma(x) (log-space scale) of a design."""
        return float(self._model(features).sigma(_table_of(features))[0])

    def log_half_width(self, features: DesignFeatures, level: float) -> float:
        """q(x) = sigma(x) * Q_level(scores): the interval is predicted * exp(+-q)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        model = self._model(features)
        return float(model.sigma(_table_of(features))[0]) * model.quantile(level, self.num_families)

    def refusal_reason(self, features: DesignFeatures) -> str | None:
        """Why a design lies outside what the collection covers, or None."""
        refusal = self.refusal(features)
        return None if refusal is None else refusal.reason

    def refusal(self, features: DesignFeatures) -> Refusal | None:
        """A :class:`Refusal` if the design lies outside what the collection covers, else None."""
        s = self.support
        if features.num_sizes < s.min_sizes:
            return Refusal(f"{features.num_sizes} sizes; the collection's designs use at least {s.min_sizes}", "sizes")
        if not (features.param_ratio > 1 and features.compute_ratio > 0):
            return Refusal("the target is not larger than every fitted run", "param_ratio")
        if math.log(features.param_ratio) > s.max_log_param_ratio + 1e-9:
            return Refusal(
                f"extrapolates {features.param_ratio:.3g}x in parameters; the collection's designs go up to "
                f"{math.exp(s.max_log_param_ratio):.3g}x",
                "param_ratio",
            )
        if math.log(features.compute_ratio) > s.max_log_compute_ratio + 1e-9:
            return Refusal(
                f"extrapolates {features.compute_ratio:.3g}x in compute; the collection's designs go up to "
                f"{math.exp(s.max_log_compute_ratio):.3g}x",
                "compute_ratio",
            )
        if math.log(features.compute_ratio) < s.min_log_compute_ratio - 1e-9:
            return Refusal(
                f"the target needs only {features.compute_ratio:.3g}x the fit's compute; the collection's "
                f"designs need at least {math.exp(s.min_log_compute_ratio):.3g}x",
                "compute_ratio",
            )
        if features.tokens_per_param is not None:
            error, families = self.regime_error(features.tokens_per_param)
            if families >= 2 and error > math.log(REGIME_MAX_ERROR):
                return Refusal(
                    f"the target trains on {features.tokens_per_param:.3g} tokens per parameter; the "
                    f"collection's designs with targets in that regime ({families} families) missed by more "
                    f"than a factor {math.exp(error):.1f} in 1 case out of 10: the law does not hold there",
                    "regime",
                )
        rmse = features.fit_log_rmse
        if rmse is not None and math.isfinite(rmse) and math.log(max(rmse, RMSE_FLOOR)) > s.max_log_rmse + 1e-9:
            return Refusal(
                f"the law misses the fitted points by {rmse:.1%} (RMS, log scale); no design of the collection "
                f"fits worse than {math.exp(s.max_log_rmse):.1%}",
                "fit_residual",
            )
        return None

    def refusal_kinds(self, table: pd.DataFrame) -> np.ndarray:
        """Vectorised :meth:`refusal` over a features table: the refusal kind of each row, or None."""
        s = self.support
        log_param = np.log(np.maximum(table["param_ratio"].to_numpy(float), 1e-300))
        log_compute = np.log(np.maximum(table["compute_ratio"].to_numpy(float), 1e-300))
        rmse = table["fit_log_rmse"].to_numpy(float)
        kinds = np.full(len(table), None, dtype=object)
        checks = [
            (
                "fit_residual",
                np.isfinite(rmse)
                & (np.log(np.maximum(np.nan_to_num(rmse, nan=RMSE_FLOOR), RMSE_FLOOR)) > s.max_log_rmse + 1e-9),
            ),
            ("compute_ratio", log_compute < s.min_log_compute_ratio - 1e-9),
            ("compute_ratio", log_compute > s.max_log_compute_ratio + 1e-9),
            ("param_ratio", log_param > s.max_log_param_ratio + 1e-9),
            ("param_ratio", table["param_ratio"].to_numpy(float) <= 1),
            ("sizes", table["num_sizes"].to_numpy(float) < s.min_sizes),
        ]
        tpp = table["tokens_per_param"].to_numpy(float)
        regime = np.zeros(len(table), dtype=bool)
        for value in np.unique(tpp[np.isfinite(tpp) & (tpp > 0)]):
            error, families = self.regime_error(float(value))
            if families >= 2 and error > math.log(REGIME_MAX_ERROR):
                regime |= tpp == value
        checks.insert(1, ("regime", regime))
        for kind, mask in checks:  # last assignment wins: same precedence as refusal()
            kinds[mask] = kind
        return kinds

    def log_half_widths(self, table: pd.DataFrame, level: float) -> np.ndarray:
        """Vectorised :meth:`log_half_width` over a features table (rows with a finite
        ``fit_log_rmse`` use the fit model)."""
        rmse = table["fit_log_rmse"].to_numpy(float)
        tpp = table["tokens_per_param"].to_numpy(float)
        use_fit = np.isfinite(rmse) & np.isfinite(tpp) & (tpp > 0) & (self.fit_model is not None)
        out = np.empty(len(table))
        if (~use_fit).any():
            out[~use_fit] = self.plan_model.sigma(table[~use_fit]) * self.plan_model.quantile(level, self.num_families)
        if use_fit.any():
            out[use_fit] = self.fit_model.sigma(table[use_fit]) * self.fit_model.quantile(level, self.num_families)
        return out

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
            return Refusal(f"{self.num_families} families are too few for a {level:.0%} interval", "families")
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
        )

    def are_quantiles(self, features: DesignFeatures) -> AREQuantiles | Refusal:
        """Expected ARE = |pred/actual - 1| of such a design, at 50/80/90%: exp(q_level) - 1."""
        refusal = self.refusal(features)
        if refusal is not None:
            return refusal
        values = [math.expm1(self.log_half_width(features, level)) for level in (0.5, 0.8, 0.9)]
        return AREQuantiles(
            median=values[0],
            p80=values[1],
            p90=values[2],
            cells=self.cells,
            families=self.num_families,
            thin_support=self.num_families < 5,
        )


def usable_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Sweep rows that can calibrate: fitted, a positive finite prediction and actual loss, a target
    larger than every fitted run."""
    ok = results[results["status"] == "ok"]
    ok = ok[
        (ok["predicted_final"] > 0)
        & (ok["actual_final"] > 0)
        & (ok["compute_share"] > 0)
        & (ok["target_params"] > ok["max_params_used"])
    ]
    values = ok[["predicted_final", "actual_final", "compute_share"]].to_numpy(float)
    return ok[np.isfinite(values).all(axis=1)]


REGIME_SPAN = 3.0  # "similar" tokens per parameter: within a factor 3
REGIME_MAX_ERROR = 2.0  # refuse when such designs miss by more than a factor 2 (90th percentile)
FAMILY_WEIGHT_POWER = 0.5
"""Each family's designs weigh n_f ** power in total: 0 = families equal, 1 = designs equal."""


def fit_calibration(
    results: pd.DataFrame, *, exclude_family: str | None = None, family_weight_power: float = FAMILY_WEIGHT_POWER
) -> Calibration:
    """Learn a calibration from sweep rows (:func:`core.meta.load_results`), without ``exclude_family``.

    Needs the columns of a sweep row (family, status, predicted_final, actual_final, target_params,
    max_params_used, compute_share, final_only, fraction, min_tokens; num_sizes and fit_log_rmse
    when present). Raises :class:`CalibrationError` with fewer than 2 families or 20 designs.
    """
    rows = usable_rows(results)
    if exclude_family is not None:
        rows = rows[rows["family"].astype(str) != exclude_family]
    families = rows["family"].astype(str).to_numpy()
    names = np.unique(families)
    if names.size < 2 or len(rows) < 20:
        raise CalibrationError(
            f"a calibration needs at least 2 families and 20 fitted designs; "
            f"got {names.size} families and {len(rows)} designs"
        )
    table = features_table(rows).reset_index(drop=True)
    log_ratio = np.log(rows["predicted_final"].to_numpy(float) / rows["actual_final"].to_numpy(float))
    counts = pd.Series(families).map(pd.Series(families).value_counts()).to_numpy(float)
    weight = counts ** (family_weight_power - 1.0)
    plan_model = _fit_model(table, log_ratio, weight, with_rmse=False)
    has_rmse = np.isfinite(table["fit_log_rmse"].to_numpy(float)) & np.isfinite(
        table["tokens_per_param"].to_numpy(float)
    )
    fit_model = None
    if has_rmse.mean() > 0.9:
        keep = has_rmse
        fit_model = _fit_model(table[keep].reset_index(drop=True), log_ratio[keep], weight[keep], with_rmse=True)
    log_param = np.log(table["param_ratio"].to_numpy(float))
    log_compute = np.log(table["compute_ratio"].to_numpy(float))
    rmse = table["fit_log_rmse"].to_numpy(float)
    support = _Support(
        max_log_param_ratio=float(log_param.max()),
        max_log_compute_ratio=float(log_compute.max()),
        min_log_compute_ratio=float(log_compute.min()),
        min_sizes=int(table["num_sizes"].min()),
        max_log_rmse=float(np.log(max(np.nanmax(rmse), RMSE_FLOOR))) if has_rmse.any() else math.inf,
    )
    tpp = table["tokens_per_param"].to_numpy(float)
    known = np.isfinite(tpp) & (tpp > 0)
    return Calibration(
        plan_model=plan_model,
        fit_model=fit_model,
        support=support,
        num_families=int(names.size),
        cells=int(len(rows)),
        families=tuple(names),
        excluded_family=exclude_family,
        regime_log_tpp=np.log(tpp[known]),
        regime_abs_log_ratio=np.abs(log_ratio[known]),
        regime_weights=weight[known],
        regime_families=families[known],
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
def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split-conformal quantile: the ceil((n + 1) level)-th smallest score (inf if beyond n)."""
    scores = np.sort(np.asarray(scores, float))
    rank = math.ceil((scores.size + 1) * level)
    return float(scores[rank - 1]) if rank <= scores.size else math.inf


def evaluate_held_out(results: pd.DataFrame, family: str, levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """Leave-one-family-out step: calibrate without ``family``, evaluate on its designs.

    Pure and top-level, so it can be mapped over families by any executor. One row per design of
    ``family`` with, for each level (as percent, e.g. 90): ``covered_90``, ``width_90`` (relative
    width, NaN if refused), ``refused_90``, and the naive baseline's ``base_covered_90``,
    ``base_width_90`` (one global conformal quantile of |log ratio| on the other families).
    ``calibration_families`` records which families the calibration used.
    """
    rows = usable_rows(results)
    held = rows[rows["family"].astype(str) == family]
    others = rows[rows["family"].astype(str) != family]
    calibration = fit_calibration(others)
    table = features_table(held)
    predicted = held["predicted_final"].to_numpy(float)
    actual = held["actual_final"].to_numpy(float)
    other_scores = np.abs(np.log(others["predicted_final"].to_numpy(float) / others["actual_final"].to_numpy(float)))
    out = pd.DataFrame(
        {
            "family": family,
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
    return out


def leave_one_family_out(results: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, mapper=map) -> pd.DataFrame:
    """:func:`evaluate_held_out` for every family of ``results``.

    ``mapper(function, families)`` may be any map (e.g. a Dask client's ``map`` then gather):
    the step is a picklable partial of a top-level function.
    """
    families = sorted(usable_rows(results)["family"].astype(str).unique())
    frames = list(mapper(functools.partial(evaluate_held_out, results, levels=levels), families))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class LevelSummary:
    nominal: float
    realised: float
    cells: int
    median_rel_width: float


@dataclass(frozen=True)
class CalibrationReport:
    """Leave-one-family-out coverage of the calibrated interval and of the naive baseline."""

    levels: tuple[LevelSummary, ...]
    baseline: tuple[LevelSummary, ...]
    refused: int
    families: int
    cells: int
    per_family: pd.DataFrame  # family, designs, covered_90, base_covered_90, width_90, refused
    per_feature: pd.DataFrame  # feature, value, designs, covered_90, base_covered_90, width_90
    refusal_reasons: pd.Series  # refusal kind -> count


def _bin_sizes(n: pd.Series) -> pd.Series:
    return pd.cut(n, [0, 3, 5, np.inf], labels=["3", "4-5", "6+"]).astype(str)


def summarise(frame: pd.DataFrame, levels: tuple[float, ...] = LEVELS) -> CalibrationReport:
    """Pooled coverage over designs (each design of each held-out family counts once)."""
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
    answered = frame.assign(
        covered_90=frame["covered_90"].astype(float), base_covered_90=frame["base_covered_90"].astype(float)
    )
    per_family = (
        answered.groupby("family")
        .agg(
            designs=("covered_90", "size"),
            covered_90=("covered_90", "mean"),
            base_covered_90=("base_covered_90", "mean"),
            width_90=("width_90", "median"),
            refused=("refused_90", "sum"),
        )
        .reset_index()
        .sort_values("covered_90")
    )
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
    return CalibrationReport(
        levels=tuple(out),
        baseline=tuple(base),
        refused=int(frame["refused_90"].sum()),
        families=int(frame["family"].nunique()),
        cells=int(len(frame)),
        per_family=per_family,
        per_feature=pd.concat(parts, ignore_index=True),
        refusal_reasons=frame["refusal_kind"].dropna().value_counts(),
    )
