"""IsoFLOP analysis: Hoffmann et al.'s (2022) approach 2, from a lab's own sweep.

An isoFLOP sweep trains several model sizes N at each of several compute budgets C (FLOPs),
each run to the end of its learning-rate schedule. Approach 2 reads the compute-optimal size off
each budget and fits a power law through those optima:

1. **Budgets.** Runs are grouped by their training compute C (the ``flops`` column when given,
   else C = 6 N D, with D the tokens of the run's final checkpoint): sorted by C, a run joins the
   current budget while its C is within a factor ``1 + tolerance`` of the budget's smallest C.
   A budget's C is the geometric mean of its runs' C.
2. **Per budget**, the final loss against x = ln N is fitted by least squares with a parabola
   L(x) = c0 + c1 x + c2 x^2 (Hoffmann et al.'s choice; near the optimum every smooth isoFLOP
   curve is one). Its minimum is x* = -c1 / (2 c2), N*_C = exp(x*) parameters, and
   D*_C = C / (6 N*_C) tokens. A curve that opens downwards (c2 <= 0) has no minimum.
3. **Across budgets**, ln N*_C = ln G + a ln C is fitted by least squares: N*(C) = G C^a
   parameters, and D*(C) = C / (6 G C^a) = C^(1-a) / (6 G) tokens.

**Intervals** come from a bootstrap over runs within each budget: each replicate resamples the
budget's k runs with replacement and refits the parabola; replicates with fewer than 3 distinct
sizes or no minimum are left out (counted in ``failed_replicates``). The spread of a budget's
minimum, sd (in ln N), is half the 16th-84th percentile range of its replicates (robust to the
wild minima of replicates that drew few sizes) times sqrt(k / (k - 1)) (a bootstrap over k runs
estimates (k - 1)/k of the variance). A budget's interval is x* +- z sd. Step 3 weights each
budget by 1 / sd^2, and N*(C)'s interval is the weighted fit's normal interval in ln N.
(Percentile intervals of bootstrap-refitted power laws over-covered: 90% of nominal 80% intervals
held the truth on synthetic sweeps of 5 budgets x 7 sizes with 1% noise; tests/core/test_isoflop.py
measures the coverage of these.)

**What biases approach 2** is flagged (:class:`IsoflopWarning`): a budget whose sizes do not
bracket its minimum (the parabola extrapolates), fewer than :data:`RECOMMENDED_SIZES` sizes in a
budget, an off-centre grid (the minimum in the outer part of the sizes' log range, where the
isoFLOP curve's asymmetry moves a parabola's minimum), fewer than 3 budgets, and a target budget
far beyond the largest one.

Units: N in parameters, D in tokens, C in FLOPs, loss as uploaded (e.g. nats/token).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from scaleplan.core import fitting, laws, planning
from scaleplan.core.errors import UserError
from scaleplan.core.units import format_flops

__all__ = [
    "DEFAULT_TOLERANCE",
    "RECOMMENDED_SIZES",
    "Allocation",
    "BudgetFit",
    "IsoflopAnalysis",
    "IsoflopError",
    "IsoflopWarning",
    "approach3_allocation",
    "compare_allocations",
    "final_runs",
    "fit_isoflop",
    "group_budgets",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_TOLERANCE = 0.1  # runs within 10% of a budget's smallest compute are one budget
MIN_SIZES = 3  # a parabola needs three sizes
RECOMMENDED_SIZES = 5  # fewer leave the minimum to one or two points (Hoffmann et al. used about 9)
MIN_RUNS_FOR_INTERVAL = 4  # three runs fit a parabola exactly: no spread to bootstrap
MIN_BUDGETS = 2  # a power law needs two budgets
RECOMMENDED_BUDGETS = 3
OFF_CENTRE = 0.5  # |x* - centre| / half-span of the sizes' ln N range above this: off-centre grid
FAR_EXTRAPOLATION = 100.0  # target compute / largest budget above this: warned
LOSS_RISE = 0.03  # a larger budget's best loss this far (relative) above a smaller one's: warned (3x 1% seed noise)
DEFAULT_LEVEL = 0.8
DEFAULT_BOOT = 400


class IsoflopError(UserError, ValueError):
    """The runs do not form an isoFLOP sweep that approach 2 can use (the message says what is missing)."""


@dataclass(frozen=True)
class IsoflopWarning:
    """Why approach 2 may be biased here. ``kind``: ``not_bracketed``, ``few_sizes``, ``off_centre``,
    ``skipped_budget``, ``few_budgets``, ``loss_rises``, ``far_extrapolation``, ``no_interval`` or
    ``bootstrap_failures``."""

    kind: str
    message: str


@dataclass(frozen=True)
class BudgetFit:
    """One compute budget's isoFLOP curve and its parabola in ln N.

    ``compute_flops``: the budget C (FLOPs). ``num_params``, ``tokens``, ``loss``: its runs (final
    checkpoints). ``coefficients``: (c0, c1, c2) of L = c0 + c1 ln N + c2 (ln N)^2, None when the
    budget has fewer than 3 sizes. ``optimal_params``: N* = exp(-c1 / 2 c2) (None without a
    minimum), with its bootstrap interval ``optimal_params_low``/``high`` at ``level``;
    ``optimal_tokens`` = C / (6 N*). ``optimal_loss``: the parabola at its minimum.
    """

    compute_flops: float
    num_params: tuple[float, ...]
    tokens: tuple[float, ...]
    loss: tuple[float, ...]
    coefficients: tuple[float, float, float] | None
    optimal_params: float | None
    optimal_params_low: float | None
    optimal_params_high: float | None
    optimal_loss: float | None
    bracketed: bool
    centre_offset: float | None  # |x* - centre| / half-span in ln N; 1 = at the edge of the grid
    level: float

    @property
    def num_sizes(self) -> int:
        return len(set(self.num_params))

    @property
    def optimal_tokens(self) -> float | None:
        if self.optimal_params is None:
            return None
        return float(self.compute_flops / laws.FLOPS_PER_PARAM_TOKEN / self.optimal_params)

    def curve(self, num_params: npt.ArrayLike) -> FloatArray:
        """The fitted parabola's loss at ``num_params`` (NaN without a fit)."""
        n = np.asarray(num_params, dtype=float)
        if self.coefficients is None:
            return np.full(n.shape, np.nan)
        c0, c1, c2 = self.coefficients
        x = np.log(n)
        return np.asarray(c0 + c1 * x + c2 * x * x, dtype=float)


@dataclass(frozen=True)
class Allocation:
    """Compute-optimal N and D at compute C under one method, with an interval at ``level``.

    ``method``: ``approach2``, ``approach3`` or a published law's name. N in parameters, D in
    tokens (D = C / 6N, so D's interval is C / 6 over N's), C in FLOPs.
    """

    method: str
    label: str
    compute_flops: float
    num_params: float
    num_params_low: float
    num_params_high: float
    tokens: float
    tokens_low: float
    tokens_high: float
    level: float
    source: str

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.num_params

    @property
    def has_interval(self) -> bool:
        """False when the interval has no width (no parameter samples, or they do not move N*)."""
        return self.num_params_high > self.num_params_low * (1 + 1e-9)

    def contains_params(self, num_params: float) -> bool:
        return self.num_params_low <= num_params <= self.num_params_high

    def as_dict(self) -> dict[str, float | str]:
        return {
            "method": self.method,
            "label": self.label,
            "compute_flops": self.compute_flops,
            "num_params": self.num_params,
            "num_params_low": self.num_params_low,
            "num_params_high": self.num_params_high,
            "tokens": self.tokens,
            "tokens_low": self.tokens_low,
            "tokens_high": self.tokens_high,
            "tokens_per_param": self.tokens_per_param,
            "level": self.level,
            "has_interval": self.has_interval,
            "source": self.source,
        }


@dataclass(frozen=True)
class IsoflopAnalysis:
    """Approach 2 on one sweep: the budgets and N*(C) = G C^a with its uncertainty.

    ``coefficient`` G (parameters per FLOP^a) and ``exponent`` a: weighted least squares of the
    budgets' ln N* on ln C, each budget weighted by 1 / sd^2 of its bootstrap minima
    (``minimum_sd``, in ln N). ``covariance``: of (ln G, a), (X' W X)^-1. D*(C) = C^(1-a) / 6G.
    The interval of ln N*(C) is ln G + a ln C +- z sqrt(g' Cov g), g = (1, ln C), z the normal
    quantile at the level.
    """

    budgets: tuple[BudgetFit, ...]
    coefficient: float
    exponent: float
    covariance: FloatArray
    minimum_sd: tuple[float, ...]
    n_boot: int
    failed_replicates: int
    level: float
    warnings: tuple[IsoflopWarning, ...]

    @property
    def tokens_exponent(self) -> float:
        """b of D*(C) proportional to C^b: 1 - a."""
        return 1.0 - self.exponent

    def optimal_params(self, compute_flops: npt.ArrayLike) -> FloatArray:
        """N*(C) = G C^a, parameters."""
        c = np.asarray(compute_flops, dtype=float)
        return np.asarray(self.coefficient * c**self.exponent, dtype=float)

    def optimal_params_band(
        self, compute_flops: npt.ArrayLike, level: float | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """The interval of N*(C) at ``level`` (default: the analysis's level): N* exp(+-z sd), sd of ln N*(C)
        from the power-law fit's covariance of (ln G, a) (a normal interval in ln N*, not a bootstrap)."""
        level = self.level if level is None else level
        c = np.atleast_1d(np.asarray(compute_flops, dtype=float))
        point = self.optimal_params(c)
        if not np.all(np.isfinite(self.covariance)):
            return point, point
        g = np.stack([np.ones_like(c), np.log(c)], axis=1)
        sd = np.sqrt(np.einsum("ci,ij,cj->c", g, self.covariance, g))
        z = float(stats.norm.ppf(0.5 + level / 2))
        return point * np.exp(-z * sd), point * np.exp(z * sd)

    def allocation(self, compute_flops: float, level: float | None = None) -> Allocation:
        """N* and D* at ``compute_flops`` with intervals (D = C / 6N)."""
        level = self.level if level is None else level
        n = float(self.optimal_params(compute_flops))
        low, high = (float(v[0]) for v in self.optimal_params_band(compute_flops, level))
        low, high = min(low, n), max(high, n)
        budget = compute_flops / laws.FLOPS_PER_PARAM_TOKEN
        return Allocation(
            method="approach2",
            label="Your runs, approach 2 (isoFLOP minima)",
            compute_flops=float(compute_flops),
            num_params=n,
            num_params_low=low,
            num_params_high=high,
            tokens=budget / n,
            tokens_low=budget / high,
            tokens_high=budget / low,
            level=level,
            source=f"N*(C) = {self.coefficient:.4g} C^{self.exponent:.4f} through {self.num_fitted} budget minima; "
            f"interval: from each budget's bootstrap over runs ({self.n_boot} replicates)",
        )

    @property
    def num_fitted(self) -> int:
        return sum(b.optimal_params is not None for b in self.budgets)


def final_runs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its final checkpoint (the last ``final_of_schedule`` one when the file says so;
    a run whose flags are all unstated keeps its last checkpoint, one stating only false is left out).

    Columns: run_id, num_params, tokens_seen, value (loss), compute_flops (the ``flops`` column when
    given, else 6 N D). A checkpoint in the middle of a schedule is not an isoFLOP point: its
    learning rate has not decayed, so its loss is higher than a run trained to that length.
    """
    rows = table
    if "final_of_schedule" in rows and rows["final_of_schedule"].fillna(False).astype(bool).any():
        # Per run: its end-of-schedule checkpoints when it marks any; a run whose flags are all unstated
        # (missing, e.g. added from a file without the column) keeps its last checkpoint, as when no run
        # says; a run that states only false has no end of schedule and is left out.
        flags = rows["final_of_schedule"]
        final = flags.fillna(False).astype(bool)
        marks_end = final.groupby(rows["run_id"]).transform("any")
        unstated = flags.isna().groupby(rows["run_id"]).transform("all")
        rows = rows[final | (~marks_end & unstated)]
    rows = rows.sort_values(["run_id", "tokens_seen"]).groupby("run_id", sort=False).tail(1)
    derived = laws.compute_from(rows["num_params"].to_numpy(float), rows["tokens_seen"].to_numpy(float))
    flops = rows["flops"].to_numpy(float) if "flops" in rows else np.full(len(rows), np.nan)
    out = rows[["run_id", "num_params", "tokens_seen", "value"]].copy()
    out["compute_flops"] = np.where(np.isfinite(flops) & (flops > 0), flops, derived)
    return out.reset_index(drop=True)


def group_budgets(compute_flops: npt.ArrayLike, tolerance: float = DEFAULT_TOLERANCE) -> npt.NDArray[np.int64]:
    """Budget labels 0, 1, ... (by increasing compute) for runs of compute C (FLOPs).

    Sorted by C, a run joins the current budget while C <= (1 + tolerance) x the budget's smallest C.
    """
    c = np.asarray(compute_flops, dtype=float)
    if not np.all(np.isfinite(c) & (c > 0)):
        raise IsoflopError("every run's compute must be a positive number of FLOPs")
    if not 0 <= tolerance < 1:
        raise IsoflopError(f"the budget tolerance must be between 0 and 1 (e.g. 0.1 for 10%), got {tolerance}")
    order = np.argsort(c, kind="stable")
    labels = np.empty(len(c), dtype=np.int64)
    label, start = -1, -np.inf
    for i in order:
        if c[i] > start * (1 + tolerance):
            label, start = label + 1, c[i]
        labels[i] = label
    return labels


def _weighted_parabolas(x: FloatArray, y: FloatArray, weights: FloatArray) -> FloatArray:
    """Least-squares (c0, c1, c2) of y = c0 + c1 x + c2 x^2 for each row of ``weights`` (shape (b, k)).

    Solved by normal equations on centred x (well conditioned for x = ln N spanning a few units);
    rows with fewer than 3 distinct weighted x give NaN.
    """
    centre = float(np.mean(x))
    u = x - centre
    design = np.stack([np.ones_like(u), u, u * u], axis=1)  # (k, 3)
    gram = np.einsum("bk,ki,kj->bij", weights, design, design)
    rhs = np.einsum("bk,ki,k->bi", weights, design, y)
    distinct = np.array([len(np.unique(x[w > 0])) for w in weights])
    ok = distinct >= MIN_SIZES
    coef = np.full((len(weights), 3), np.nan)
    if ok.any():
        coef[ok] = np.linalg.solve(gram[ok], rhs[ok][..., None])[..., 0]
    # back from centred u to x: c0 + c1 (x - m) + c2 (x - m)^2
    a0, a1, a2 = coef[:, 0], coef[:, 1], coef[:, 2]
    return np.stack([a0 - a1 * centre + a2 * centre**2, a1 - 2 * a2 * centre, a2], axis=1)


def _minimum(coef: FloatArray) -> FloatArray:
    """x* = -c1 / (2 c2) for each row; NaN where c2 <= 0 (no minimum)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(coef[:, 2] > 0, -coef[:, 1] / (2 * coef[:, 2]), np.nan)


def fit_isoflop(
    num_params: npt.ArrayLike,
    loss: npt.ArrayLike,
    compute_flops: npt.ArrayLike,
    *,
    tokens: npt.ArrayLike | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> IsoflopAnalysis:
    """Approach 2 on one run per row: size N (parameters), final loss, compute C (FLOPs).

    See the module docstring for the method. Raises :class:`IsoflopError` when fewer than
    :data:`MIN_BUDGETS` budgets have a minimum.
    """
    n = np.asarray(num_params, dtype=float)
    y = np.asarray(loss, dtype=float)
    c = np.asarray(compute_flops, dtype=float)
    d = np.asarray(tokens, dtype=float) if tokens is not None else c / laws.FLOPS_PER_PARAM_TOKEN / n
    if not (len(n) == len(y) == len(c) == len(d)):
        raise ValueError("num_params, loss and compute_flops must have one entry per run")
    if not 0 < level < 1:
        raise IsoflopError(f"the interval level must be between 0 and 1, got {level}")
    labels = group_budgets(c, tolerance)
    rng = np.random.default_rng(seed)
    budgets: list[BudgetFit] = []
    minima_boot: list[FloatArray] = []  # per fitted budget: replicate x* (NaN: failed)
    budget_log_c: list[float] = []
    warnings: list[IsoflopWarning] = []
    z = float(stats.norm.ppf(0.5 + level / 2))
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == label)
        order = members[np.argsort(n[members], kind="stable")]
        nb, yb, db, cb = n[order], y[order], d[order], c[order]
        budget_c = float(np.exp(np.mean(np.log(cb))))
        x = np.log(nb)
        sizes = len(np.unique(nb))
        coefficients = None
        opt = low = high = opt_loss = offset = None
        bracketed = False
        if sizes >= MIN_SIZES:
            point = _weighted_parabolas(x, yb, np.ones((1, len(x))))[0]
            x_star = float(_minimum(point[None, :])[0])
            coefficients = (float(point[0]), float(point[1]), float(point[2]))
            if np.isfinite(x_star):
                opt = float(np.exp(x_star))
                opt_loss = float(point[0] + point[1] * x_star + point[2] * x_star**2)
                lowest = int(np.argmin(yb))
                bracketed = bool(x.min() <= x_star <= x.max() and 0 < lowest < len(x) - 1)
                half = (x.max() - x.min()) / 2
                offset = float(abs(x_star - (x.max() + x.min()) / 2) / half)
                weights = rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=n_boot).astype(float)
                boot = _minimum(_weighted_parabolas(x, yb, weights)) if n_boot else np.empty(0)
                sd = _robust_sd(boot, len(x)) * _small_sample(len(x))
                if np.isfinite(sd):
                    low, high = float(np.exp(x_star - z * sd)), float(np.exp(x_star + z * sd))
                minima_boot.append(boot)
                budget_log_c.append(np.log(budget_c))
        budget = BudgetFit(
            compute_flops=budget_c,
            num_params=tuple(map(float, nb)),
            tokens=tuple(map(float, db)),
            loss=tuple(map(float, yb)),
            coefficients=coefficients,
            optimal_params=opt,
            optimal_params_low=low,
            optimal_params_high=high,
            optimal_loss=opt_loss,
            bracketed=bracketed,
            centre_offset=offset,
            level=level,
        )
        budgets.append(budget)
        warnings.extend(_budget_warnings(budget))
    fitted = [b for b in budgets if b.optimal_params is not None]
    if len(fitted) < MIN_BUDGETS:
        raise IsoflopError(
            f"approach 2 needs at least {MIN_BUDGETS} compute budgets with {MIN_SIZES} or more sizes each and a "
            f"minimum; these runs give {len(fitted)} (of {len(budgets)} budgets found, each grouping runs whose "
            f"compute lies within {tolerance:.0%} of each other). Add runs at more sizes per budget, or give a "
            "flops column"
        )
    if len(fitted) < RECOMMENDED_BUDGETS:
        warnings.append(
            IsoflopWarning(
                "few_budgets",
                f"only {len(fitted)} budgets have a minimum: N*(C) = G C^a is a line through {len(fitted)} points "
                f"and its interval is unreliable; use {RECOMMENDED_BUDGETS} or more budgets",
            )
        )
    rising = loss_rise_warning(budgets)
    if rising is not None:
        warnings.append(rising)
    log_c = np.array(budget_log_c)
    x_points = np.log(np.array([b.optimal_params for b in fitted], dtype=float))
    spread = np.array(
        [
            _robust_sd(m, len(b.num_params)) * _small_sample(len(b.num_params))
            for m, b in zip(minima_boot, fitted, strict=True)
        ]
    )
    if not n_boot:
        spread = np.full(len(fitted), np.nan)
    failed = int(sum(int((~np.isfinite(m)).sum()) for m in minima_boot))
    log_g, exponent, covariance = _power_law(log_c, x_points, spread)
    if not np.all(np.isfinite(spread)) and n_boot:
        warnings.append(
            IsoflopWarning(
                "no_interval",
                f"N*(C) has no interval: a budget with fewer than {MIN_RUNS_FOR_INTERVAL} runs passes its parabola "
                "exactly through them, so resampling runs cannot measure its uncertainty; add sizes",
            )
        )
    if failed:
        warnings.append(
            IsoflopWarning(
                "bootstrap_failures",
                f"{failed} of {n_boot * len(fitted)} budget replicates had no minimum (too few distinct sizes drawn "
                "or a curve opening downwards) and are not in the budgets' spreads",
            )
        )
    return IsoflopAnalysis(
        budgets=tuple(budgets),
        coefficient=float(np.exp(log_g)),
        exponent=float(exponent),
        covariance=covariance,
        minimum_sd=tuple(map(float, spread)),
        n_boot=n_boot,
        failed_replicates=failed,
        level=level,
        warnings=tuple(warnings),
    )


def _small_sample(num_runs: int) -> float:
    """sqrt(k / (k - 1)): a bootstrap over k runs estimates a variance (k - 1)/k of the true one."""
    return float(np.sqrt(num_runs / (num_runs - 1)))


def _robust_sd(replicates: FloatArray, num_runs: int) -> float:
    """Half the 16th-84th percentile range of the finite replicates (the SD for a normal; robust to
    the wild minima of replicates that drew few distinct sizes).

    NaN (no interval) with fewer than 10 finite replicates or fewer than :data:`MIN_RUNS_FOR_INTERVAL`
    runs: three runs fit a parabola exactly, so every usable replicate is the same fit and its
    spread would be a false zero.
    """
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < 10 or num_runs < MIN_RUNS_FOR_INTERVAL:
        return float("nan")
    low, high = np.quantile(finite, [0.15865, 0.84135])
    return float((high - low) / 2)


def _power_law(log_c: FloatArray, x_star: FloatArray, sd: FloatArray) -> tuple[float, float, FloatArray]:
    """ln G, a and their 2x2 covariance from x*_j = ln G + a ln C_j.

    Weighted least squares with weights 1 / sd_j^2 (sd_j: budget j's bootstrap spread of x*; the
    budgets' runs are disjoint, so their minima are independent). Covariance (X' W X)^-1. Without
    spreads (no bootstrap, or a budget with too few replicates), ordinary least squares and a NaN
    covariance.
    """
    design = np.column_stack([np.ones_like(log_c), log_c])
    if not np.all(np.isfinite(sd) & (sd > 0)):
        log_g, exponent = np.linalg.lstsq(design, x_star, rcond=None)[0]
        return float(log_g), float(exponent), np.full((2, 2), np.nan)
    weights = 1.0 / sd**2
    gram = design.T @ (weights[:, None] * design)
    covariance = np.asarray(np.linalg.inv(gram), dtype=np.float64)
    log_g, exponent = covariance @ (design.T @ (weights * x_star))
    return float(log_g), float(exponent), covariance


def _budget_warnings(budget: BudgetFit) -> list[IsoflopWarning]:
    c = f"{budget.compute_flops:.3g} FLOPs"
    if budget.coefficients is None:
        return [
            IsoflopWarning(
                "skipped_budget",
                f"the budget at {c} has {budget.num_sizes} size(s); a parabola needs {MIN_SIZES}: it is left out",
            )
        ]
    if budget.optimal_params is None:
        return [
            IsoflopWarning(
                "skipped_budget",
                f"the isoFLOP curve at {c} has no minimum (its parabola opens downwards): it is left out; "
                "add sizes on both sides of the best one",
            )
        ]
    out = []
    if not budget.bracketed:
        out.append(
            IsoflopWarning(
                "not_bracketed",
                f"the sizes at {c} do not bracket the minimum (the lowest loss is at the smallest or largest size, "
                "or the parabola's minimum lies outside the sizes): its N* is an extrapolation; add sizes beyond it",
            )
        )
    if budget.num_sizes < RECOMMENDED_SIZES:
        out.append(
            IsoflopWarning(
                "few_sizes",
                f"the budget at {c} has {budget.num_sizes} sizes: its minimum rests on few points; "
                f"use {RECOMMENDED_SIZES} or more",
            )
        )
    if budget.bracketed and budget.centre_offset is not None and budget.centre_offset > OFF_CENTRE:
        out.append(
            IsoflopWarning(
                "off_centre",
                f"the grid at {c} is off-centre: the minimum lies in the outer {1 - OFF_CENTRE:.0%} of the sizes' "
                "log range, where the curve's asymmetry moves a parabola's minimum; centre the sizes on it",
            )
        )
    return out


def loss_rise_warning(budgets: Sequence[BudgetFit]) -> IsoflopWarning | None:
    """A warning when a larger compute budget's best loss is more than :data:`LOSS_RISE` (relative) above a
    smaller budget's: more compute at the best size never trains a worse model on the same data, so the
    budgets' losses are in different units (bits and nats, per token and per byte) or of different data."""
    ordered = sorted(budgets, key=lambda b: b.compute_flops)
    for i, small in enumerate(ordered):
        for large in ordered[i + 1 :]:
            low, high = min(small.loss), min(large.loss)
            if high > low * (1 + LOSS_RISE):
                return IsoflopWarning(
                    "loss_rises",
                    f"the best loss at {format_flops(large.compute_flops)} ({high:.4g}) is {high / low - 1:.0%} above "
                    f"the best at {format_flops(small.compute_flops)} ({low:.4g}), although that budget has more compute: "
                    "check that every budget's loss is in the same unit (nats or bits, per token or per byte) and "
                    "on the same data",
                )
    return None


def extrapolation_warning(analysis: IsoflopAnalysis, compute_flops: float) -> IsoflopWarning | None:
    """A warning when ``compute_flops`` lies more than :data:`FAR_EXTRAPOLATION` x beyond the largest budget."""
    largest = max(b.compute_flops for b in analysis.budgets if b.optimal_params is not None)
    ratio = compute_flops / largest
    if ratio <= FAR_EXTRAPOLATION:
        return None
    return IsoflopWarning(
        "far_extrapolation",
        f"the target compute is {ratio:,.0f}x the largest budget with a minimum ({largest:.3g} FLOPs): "
        "N*(C) is extrapolated far beyond the sweep",
    )


def approach3_allocation(
    final: pd.DataFrame,
    compute_flops: float,
    *,
    n_boot: int = 100,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> tuple[Allocation, fitting.FitResult]:
    """Approach 3 on the same runs: L(N, D) = E + A/N^alpha + B/D^beta fitted on their final losses
    (Huber on log residuals, :func:`scaleplan.core.fitting.fit_chinchilla`), then
    N* = G (C/6)^(beta/(alpha+beta)), G = (alpha A / beta B)^(1/(alpha+beta)), D* = C / 6N*.

    The interval applies the same formula to a bootstrap over runs (``n_boot`` refits).
    """
    fit = fitting.fit_chinchilla(
        final["num_params"].to_numpy(float),
        final["tokens_seen"].to_numpy(float),
        final["value"].to_numpy(float),
        run_ids=final["run_id"].to_numpy(),
    )
    samples = None
    if n_boot:
        boot = fitting.bootstrap(fit, n_boot=n_boot, seed=seed)
        order = [boot.param_names.index(k) for k in planning.CHINCHILLA_NAMES]
        samples = boot.param_samples[:, order]
    law = planning.fitted_law(
        "approach3",
        "Your runs, approach 3 on final losses",
        fit.params,
        samples,
        source=f"L(N, D) fitted on the final losses of {len(final)} runs; interval: bootstrap over runs",
    )
    row = planning.optimal_allocation(law, compute_flops, level=level)
    return _from_compute_optimal(row, "approach3"), fit


def _from_compute_optimal(row: planning.ComputeOptimal, method: str) -> Allocation:
    return Allocation(
        method=method,
        label=row.label,
        compute_flops=row.compute_flops,
        num_params=row.num_params,
        num_params_low=row.num_params_low,
        num_params_high=row.num_params_high,
        tokens=row.tokens,
        tokens_low=row.tokens_low,
        tokens_high=row.tokens_high,
        level=row.level,
        source=row.source,
    )


def compare_allocations(
    analysis: IsoflopAnalysis | None,
    approach3: Allocation | None,
    compute_flops: float,
    *,
    published: Sequence[str] = planning.PUBLISHED_LAWS,
    level: float = DEFAULT_LEVEL,
) -> tuple[Allocation, ...]:
    """Approach 2 and approach 3 from the user's runs beside the published laws, all at ``compute_flops``."""
    rows: list[Allocation] = []
    if analysis is not None:
        rows.append(analysis.allocation(compute_flops, level))
    if approach3 is not None:
        rows.append(approach3)
    for name in published:
        law = planning.published_law(name)
        rows.append(_from_compute_optimal(planning.optimal_allocation(law, compute_flops, level=level), name))
    return tuple(rows)
