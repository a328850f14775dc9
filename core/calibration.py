"""Calibrated prediction intervals for extrapolated losses, learned from the meta-analysis.

A run bootstrap measures only parameter uncertainty; most of an extrapolation's error is
misspecification of the law far from the data plus seed noise of the target. The meta-analysis
sweep (:mod:`core.meta`) holds thousands of designs whose target loss is known, so the
extrapolation error itself can be sampled: the score of a design is

    r = |log(L_pred / L_actual)|                         (dimensionless)

and a calibration turns the scores of designs *like the one at hand* into an interval

    [L_pred * exp(-q), L_pred * exp(+q)],   q = a conformal quantile of r at the chosen level.

Method (normalised split conformal, Vovk et al.; Angelopoulos & Bates 2021): a difficulty
``sigma(x) = exp(w . phi(x))`` is regressed on design features ``x`` (number of sizes,
extrapolation factor in parameters and in compute, final-only, cutoff, fraction of training),
scores are normalised ``s = r / sigma(x)``, and ``q(x) = sigma(x) * Q_level(s)`` where ``Q`` is
the finite-sample conformal quantile with every family weighted equally (families, not designs,
are the exchangeable units: designs within a family share its misspecification). Designs whose
features lie outside the range the collection covers get a :class:`Refusal` with the reason
instead of an interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scaleplan.core.selection import DEFAULT_MIN_TOKENS, FitPoints

FLOPS_PER_PARAM_TOKEN = 6.0
METHOD = "normalised split conformal on |log(predicted/actual)|, families weighted equally"
LEVELS = (0.5, 0.8, 0.9, 0.95)


class CalibrationError(ValueError):
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

    @classmethod
    def from_points(cls, points: FitPoints, target_params: float, target_tokens: float, *,
                    final_only: bool = False, fraction: float = 1.0,
                    min_tokens: float = DEFAULT_MIN_TOKENS) -> "DesignFeatures":
        """Features of fitting ``points`` to predict a target of ``target_params`` x ``target_tokens``."""
        target_flops = FLOPS_PER_PARAM_TOKEN * float(target_params) * float(target_tokens)
        return cls(num_sizes=int(np.unique(points.num_params).size),
                   param_ratio=float(target_params) / float(np.max(points.num_params)),
                   compute_ratio=target_flops / float(points.compute_flops),
                   final_only=bool(final_only), fraction=float(fraction), min_tokens=float(min_tokens))


def features_table(results: pd.DataFrame) -> pd.DataFrame:
    """Design features of sweep rows (columns named as :class:`DesignFeatures`' fields)."""
    num_sizes = results["num_sizes"] if "num_sizes" in results else results["num_runs"]
    return pd.DataFrame({
        "num_sizes": pd.to_numeric(num_sizes).astype(float),
        "param_ratio": results["target_params"].astype(float) / results["max_params_used"].astype(float),
        "compute_ratio": 1.0 / results["compute_share"].astype(float),
        "final_only": results["final_only"].astype(bool),
        "fraction": results["fraction"].astype(float),
        "min_tokens": results["min_tokens"].astype(float),
    }, index=results.index)


def _design_matrix(table: pd.DataFrame) -> np.ndarray:
    """phi(x): intercept, log extrapolation factors, size-count indicators, final-only, cutoff, log fraction."""
    sizes = table["num_sizes"].to_numpy(float)
    return np.column_stack([
        np.ones(len(table)),
        np.log(table["param_ratio"].to_numpy(float)),
        np.log(table["compute_ratio"].to_numpy(float)),
        (sizes <= 3).astype(float),
        ((sizes > 3) & (sizes <= 5)).astype(float),
        table["final_only"].to_numpy(bool).astype(float),
        (table["min_tokens"].to_numpy(float) > 0).astype(float),
        np.log(table["fraction"].to_numpy(float)),
    ])


def _table_of(features: DesignFeatures) -> pd.DataFrame:
    return pd.DataFrame([{k: getattr(features, k) for k in
                          ("num_sizes", "param_ratio", "compute_ratio", "final_only", "fraction", "min_tokens")}])


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


@dataclass(frozen=True)
class Refusal:
    """No calibrated interval: the design lies outside what the collection covers."""

    reason: str

    def __str__(self) -> str:
        return f"no calibrated interval: outside what the collection covers ({self.reason})"


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


@dataclass(frozen=True, eq=False)
class Calibration:
    """A fitted calibration: difficulty weights and the normalised scores with family weights."""

    weights: np.ndarray            # w of sigma(x) = exp(w . phi(x))
    scores: np.ndarray             # sorted normalised scores r / sigma(x) of the calibration designs
    score_weights: np.ndarray      # weight of each score (1 / designs of its family), aligned with scores
    log_ratios: np.ndarray         # signed log(pred / actual) of the designs (for neighbourhood lookups)
    table: pd.DataFrame            # features of the designs
    families: tuple[str, ...]      # family of each design
    support: _Support
    method: str = METHOD
    excluded_family: str | None = None
    num_families: int = field(default=0)

    # ---- core quantities
    def sigma(self, features: DesignFeatures) -> float:
        """Difficulty sigma(x) (log-space scale) of a design."""
        return float(np.exp(_design_matrix(_table_of(features)) @ self.weights)[0])

    def score_quantile(self, level: float) -> float:
        """Conformal quantile of the normalised scores, families weighted equally.

        With total weight W and K families, the quantile is the smallest s with cumulative weight
        >= level * (K + 1) / K * W (the (n + 1) correction of split conformal, at family level);
        infinite when that exceeds W (too few families for the level).
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        total = float(self.score_weights.sum())
        k = max(self.num_families, 1)
        needed = level * (k + 1) / k * total
        cumulative = np.cumsum(self.score_weights)
        index = int(np.searchsorted(cumulative, needed - 1e-12 * total))
        return float(self.scores[index]) if index < self.scores.size else math.inf

    def refusal_reason(self, features: DesignFeatures) -> str | None:
        """Why a design lies outside what the collection covers, or None."""
        s = self.support
        if features.num_sizes < s.min_sizes:
            return f"{features.num_sizes} sizes; the collection's designs use at least {s.min_sizes}"
        if not (features.param_ratio > 0 and features.compute_ratio > 0):
            return "the target is not larger than the fitted runs"
        if math.log(features.param_ratio) > s.max_log_param_ratio + 1e-9:
            return (f"extrapolates {features.param_ratio:.3g}x in parameters; the collection's designs go up to "
                    f"{math.exp(s.max_log_param_ratio):.3g}x")
        if math.log(features.compute_ratio) > s.max_log_compute_ratio + 1e-9:
            return (f"extrapolates {features.compute_ratio:.3g}x in compute; the collection's designs go up to "
                    f"{math.exp(s.max_log_compute_ratio):.3g}x")
        if math.log(features.compute_ratio) < s.min_log_compute_ratio - 1e-9:
            return (f"the target needs only {features.compute_ratio:.3g}x the fit's compute; the collection's "
                    f"designs need at least {math.exp(s.min_log_compute_ratio):.3g}x")
        return None

    # ---- public
    def interval(self, predicted: float, features: DesignFeatures, level: float = 0.9) -> PredictionInterval | Refusal:
        """Calibrated interval of ``predicted`` (a loss) at ``level``, or a :class:`Refusal`."""
        if not (np.isfinite(predicted) and predicted > 0):
            return Refusal(f"the prediction {predicted!r} is not a positive loss")
        reason = self.refusal_reason(features)
        if reason is not None:
            return Refusal(reason)
        q = self.sigma(features) * self.score_quantile(level)
        if not math.isfinite(q):
            return Refusal(f"{self.num_families} families are too few for a {level:.0%} interval")
        return PredictionInterval(level=float(level), low=predicted * math.exp(-q), high=predicted * math.exp(q),
                                  method=self.method, predicted=float(predicted), scale=q,
                                  families=self.num_families, cells=int(self.scores.size))

    def are_quantiles(self, features: DesignFeatures) -> AREQuantiles | Refusal:
        """Expected ARE = |pred/actual - 1| of such a design: exp(q) - 1 at levels 50, 80, 90%."""
        reason = self.refusal_reason(features)
        if reason is not None:
            return Refusal(reason)
        sigma = self.sigma(features)
        values = [math.expm1(sigma * self.score_quantile(level)) for level in (0.5, 0.8, 0.9)]
        return AREQuantiles(median=values[0], p80=values[1], p90=values[2], cells=int(self.scores.size),
                            families=self.num_families, thin_support=self.num_families < 5)


def usable_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Sweep rows that can calibrate: fitted, with a positive prediction and actual loss, and a target
    larger than every fitted run."""
    ok = results[results["status"] == "ok"]
    ok = ok[(ok["predicted_final"] > 0) & (ok["actual_final"] > 0) & (ok["compute_share"] > 0)
            & (ok["target_params"] > ok["max_params_used"])]
    values = ok[["predicted_final", "actual_final", "compute_share"]].to_numpy(float)
    return ok[np.isfinite(values).all(axis=1)]


def fit_calibration(results: pd.DataFrame, *, exclude_family: str | None = None) -> Calibration:
    """Learn a calibration from sweep rows (:func:`core.meta.load_results`), without ``exclude_family``.

    Needs the columns of a sweep row (family, status, predicted_final, actual_final, target_params,
    max_params_used, compute_share, final_only, fraction, min_tokens; num_sizes when present).
    """
    rows = usable_rows(results)
    if exclude_family is not None:
        rows = rows[rows["family"] != exclude_family]
    families = rows["family"].astype(str).to_numpy()
    names = np.unique(families)
    if names.size < 2 or len(rows) < 20:
        raise CalibrationError(f"a calibration needs at least 2 families and 20 fitted designs; "
                               f"got {names.size} families and {len(rows)} designs")
    table = features_table(rows).reset_index(drop=True)
    log_ratio = np.log(rows["predicted_final"].to_numpy(float) / rows["actual_final"].to_numpy(float))
    counts = pd.Series(families).map(pd.Series(families).value_counts()).to_numpy(float)
    family_weight = 1.0 / counts
    phi = _design_matrix(table)
    # difficulty: family-weighted least squares of log(|r| + floor) on phi(x)
    target = np.log(np.abs(log_ratio) + 1e-3)
    root = np.sqrt(family_weight)
    weights, *_ = np.linalg.lstsq(phi * root[:, None], target * root, rcond=None)
    sigma = np.exp(phi @ weights)
    scores = np.abs(log_ratio) / sigma
    order = np.argsort(scores, kind="stable")
    log_param = np.log(table["param_ratio"].to_numpy(float))
    log_compute = np.log(table["compute_ratio"].to_numpy(float))
    support = _Support(max_log_param_ratio=float(log_param.max()), max_log_compute_ratio=float(log_compute.max()),
                       min_log_compute_ratio=float(log_compute.min()), min_sizes=int(table["num_sizes"].min()))
    return Calibration(weights=weights, scores=scores[order], score_weights=family_weight[order],
                       log_ratios=log_ratio, table=table, families=tuple(families), support=support,
                       excluded_family=exclude_family, num_families=int(names.size))


def load_calibration(meta_path: Path, data_version: str) -> Calibration:
    """The calibration learned on every family of the stored sweep (``scaleplan meta run``)."""
    from scaleplan.core import meta

    results = meta.load_results(meta_path, data_version)
    if results.empty:
        raise CalibrationError(f"no meta-analysis results for data version {data_version} in {meta_path}; "
                               "run `scaleplan meta run` first")
    return fit_calibration(results)
