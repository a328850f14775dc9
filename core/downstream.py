"""Downstream accuracy of a target: loss -> accuracy links, a direct form in compute, refusals.

Two ways to predict a target's accuracy on one task (Bhagia et al. 2024's two steps, Gadre et al.
2025's link for the average):

* **two-step**: a loss law predicts the target's loss L (nats per token, or per word: the family's loss unit); a monotone link maps it to
  accuracy. For a single task the link has the task's chance level c as its floor and 1 as its
  ceiling::

      acc(L) = c + (1 - c) / (1 + exp(-k (L0 - L)))

  k (per nat) > 0: accuracy rises as the loss falls; L0 (in the loss's unit): the loss halfway between
  chance and a perfect score. For the average error over tasks, Gadre et al.'s
  Err(L) = eps - k exp(-gamma L) (:mod:`core.laws.downstream`, :func:`core.fitting.fit_downstream`).
* **direct**: the same saturating form in compute, x = log10 C (C = 6 N D in FLOPs)::

      acc(C) = c + (1 - c) / (1 + exp(-k (log10 C - x0)))

Both are fitted by maximum binomial likelihood: a study run's accuracy on a task of n questions is
a share of n Bernoulli trials, so acc * n successes out of n (binomial weights: a point's weight is
n / (p (1 - p))). The parameters' covariance is the inverse Fisher information scaled by the
quasi-binomial dispersion phi = Pearson chi^2 / (points - 2) when phi > 1 (runs scatter more than
their question sampling explains); their intervals are Wald intervals, theta +- z se (Student's t
with points - 2 degrees of freedom instead of z when phi was estimated above 1).

A task is refused (:class:`TaskRefused`, a :class:`core.errors.UserError`, with its ``reason``) by
the rules of :data:`REFUSAL_RULES`, each decided from the study runs only (never from a target's
score; the extrapolation rule uses the target's *predicted* loss). The rules and their thresholds,
chosen from noise arguments before any target was scored with them:

* ``too_few_runs``: fewer than :data:`MIN_RUNS` distinct study runs.
* ``at_chance``: no study point above chance by more than :data:`CHANCE_Z` binomial standard errors,
  sqrt(max(c (1 - c), a (1 - a)) / n) for a point of accuracy a, and :data:`MIN_POINTS_ABOVE_CHANCE`
  points; ``too_few_above_chance``: fewer such points than the link has parameters (2, or 3 with a
  fitted ceiling): points at the floor say nothing about the rise, so with fewer the link is not
  identified by the data.
* ``not_monotone``: Spearman rank correlation of accuracy with compute below
  :data:`MIN_RANK_CORRELATION`, or a drop of accuracy from a point to a point of more compute beyond
  noise (:func:`check_drops`): (a_i - a_j) / sqrt(phi (a_i (1 - a_i) / n_i + a_j (1 - a_j) / n_j)),
  phi = max(1, the link's robust dispersion: median squared Pearson residual / 0.455), above the Bonferroni quantile
  z = Phi^-1(1 - :data:`MONOTONE_FAMILY_ERROR` / pairs) over all compute-ordered pairs (noise alone
  produces such a drop anywhere in the study with probability < 1%).
* ``decreasing_link``: the fitted link falls as the loss falls (k <= 0).
* ``poor_fit``: the link's Pearson dispersion phi above :data:`MAX_DISPERSION` = 3^2, i.e. its
  residuals' root mean square above three binomial standard errors. Run-to-run (seed) scatter of the
  order of the question sampling noise (phi ~ 2 for a right link) reaches phi = 9 in under 1% of
  studies of 3 or more degrees of freedom (2 chi^2_3 / 3 has its 99% quantile at 7.6).
* ``extrapolation``: the target's predicted loss beyond the study's informative range (the losses of
  the points above chance) by more than :data:`MAX_EXTRAPOLATION` times that range's width
  (:func:`check_extrapolation`): no farther beyond what the study saw rise than its rise spans.
* ``no_fit``: no question counts, no finite optimum or unidentified parameters.

The ceiling a is 1 unless a fitted ceiling (:func:`fit_task_link`) explains the study points better
than noise could: the quasi-likelihood F test (X^2_fixed - X^2_free) / (X^2_free / (m - 3)) above
the F(1, m - 3) quantile at :data:`CEILING_TEST_LEVEL`, m the study points (Bhagia et al.'s free
scale, for tasks whose scoring caps accuracy below 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats

from scaleplan.core.conformal import conformal_quantile
from scaleplan.core.errors import UserError

FloatArray = NDArray[np.float64]
Variable = Literal["loss", "log10_flops"]
Reason = Literal[
    "too_few_runs",
    "at_chance",
    "too_few_above_chance",
    "not_monotone",
    "decreasing_link",
    "poor_fit",
    "extrapolation",
    "no_fit",
]

__all__ = [
    "MIN_RUNS",
    "MIN_RANK_CORRELATION",
    "MIN_POINTS_ABOVE_CHANCE",
    "CHANCE_Z",
    "MONOTONE_FAMILY_ERROR",
    "MAX_DISPERSION",
    "MAX_EXTRAPOLATION",
    "CEILING_TEST_LEVEL",
    "REFUSAL_RULES",
    "TaskRefused",
    "LinkFit",
    "StudyCheck",
    "check_study",
    "fit_link",
    "fit_task_link",
    "fit_task_links",
    "check_extrapolation",
    "check_drops",
    "largest_drop",
    "above_chance",
    "ceiling_improves",
    "link_accuracy",
    "conformal_quantile",
    "spearman",
]

MIN_RUNS = 3
"""Fewest distinct study runs for a link (two parameters, and one run more to see a trend)."""
MIN_RANK_CORRELATION = 0.5
"""Spearman rank correlation of accuracy with compute below which a study is 'not monotone'."""
MIN_POINTS_ABOVE_CHANCE = 2.0
"""Points (percentage points) above chance that at least one study run must exceed."""
CHANCE_Z = 3.0
"""... and by this many binomial standard errors, sqrt(max(c (1 - c), a (1 - a)) / n) (at chance or at the
run's accuracy a, whichever is larger: a task with chance 0 still has sampling error)."""

MONOTONE_FAMILY_ERROR = 0.01
"""Chance that binomial noise alone shows a drop beyond the Bonferroni quantile anywhere in a study."""
MAX_DISPERSION = 9.0
"""Pearson chi^2 / dof above which the link does not describe the study runs (rms residual > 3 se)."""
MAX_EXTRAPOLATION = 1.0
"""How far beyond the informative loss range a target may lie, in widths of that range."""
CEILING_TEST_LEVEL = 0.05
"""Level of the F test that lets a fitted ceiling replace the ceiling 1."""

REFUSAL_RULES: dict[Reason, str] = {
    "too_few_runs": f"fewer than {MIN_RUNS} study runs",
    "at_chance": f"no study point above chance by {CHANCE_Z:g} binomial standard errors and {MIN_POINTS_ABOVE_CHANCE:g} points",
    "too_few_above_chance": "fewer study points above chance than the link has parameters: its rise is not identified",
    "not_monotone": (
        f"accuracy not monotone in compute: Spearman below {MIN_RANK_CORRELATION:g}, or a drop to a run of more "
        f"compute that binomial noise makes with probability < {MONOTONE_FAMILY_ERROR:.0%} (Bonferroni over pairs)"
    ),
    "decreasing_link": "the fitted link falls as the loss improves",
    "poor_fit": f"the link's residuals exceed {MAX_DISPERSION**0.5:g} binomial standard errors (rms) on the study runs",
    "extrapolation": (
        f"the target's predicted loss lies beyond the study's above-chance loss range by more than "
        f"{MAX_EXTRAPOLATION:g} times its width"
    ),
    "no_fit": "no question counts, or no finite, identified binomial fit",
}
"""Every refusal reason with the rule behind it (one sentence; the messages add the measured values)."""

_P_CLIP = 1e-9
_DIRECTION: dict[Variable, float] = {"loss": -1.0, "log10_flops": 1.0}


class TaskRefused(UserError, ValueError):
    """A task whose study cannot support a link; ``reason`` is one of :data:`Reason`."""

    def __init__(self, task: str, reason: Reason, message: str) -> None:
        super().__init__(f"task {task!r}: {message}")
        self.task = task
        self.reason: Reason = reason


def link_accuracy(
    x: ArrayLike, k: float, x0: float, chance: float, variable: Variable = "loss", ceiling: float = 1.0
) -> FloatArray:
    """acc = c + (a - c) sigma(k d (x - x0)), d = -1 for a loss (its unit, e.g. nats/token), +1 for log10 FLOPs, a the
    ceiling (1 unless fitted); a fraction."""
    d = _DIRECTION[variable]
    z = k * d * (np.asarray(x, dtype=float) - x0)
    return np.asarray(chance + (ceiling - chance) * special.expit(z), dtype=float)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    rx = stats.rankdata(np.asarray(x, dtype=float))
    ry = stats.rankdata(np.asarray(y, dtype=float))
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class StudyCheck:
    """What the refusal rules measured on a study: runs, best points above chance, the points above
    chance (count), rank correlation and the largest compute-ordered drop in binomial standard errors
    with the Bonferroni quantile it was held to."""

    runs: int
    best_above_chance_points: float
    chance_threshold_points: float
    rank_correlation: float
    points_above_chance: int = 0
    largest_drop_z: float = 0.0
    drop_quantile: float = float("inf")


def above_chance(accuracy: ArrayLike, n_questions: ArrayLike, chance: float) -> tuple[FloatArray, FloatArray]:
    """Points above chance (accuracy - c, fractions) and the threshold each must pass:
    max(:data:`MIN_POINTS_ABOVE_CHANCE` / 100, :data:`CHANCE_Z` sqrt(max(c (1 - c), a (1 - a)) / n))."""
    acc = np.asarray(accuracy, dtype=float)
    n = np.broadcast_to(np.asarray(n_questions, dtype=float), acc.shape)
    # the larger of the binomial se at chance and at the point's own accuracy (a chance of 0 has none)
    se = np.sqrt(np.maximum(chance * (1.0 - chance), acc * (1.0 - acc)) / n)
    return acc - chance, np.asarray(np.maximum(MIN_POINTS_ABOVE_CHANCE / 100.0, CHANCE_Z * se), dtype=float)


def largest_drop(compute_flops: ArrayLike, accuracy: ArrayLike, n_questions: ArrayLike) -> tuple[float, int]:
    """The largest fall of accuracy from a point to a point of more compute, in binomial standard errors
    of the difference, (a_i - a_j) / sqrt(a_i (1 - a_i) / n_i + a_j (1 - a_j) / n_j) over C_i < C_j,
    and the number of such pairs."""
    c = np.asarray(compute_flops, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    n = np.broadcast_to(np.asarray(n_questions, dtype=float), acc.shape)
    var = acc * (1.0 - acc) / n
    ordered = c[:, None] < c[None, :]
    pairs = int(ordered.sum())
    if pairs == 0:
        return 0.0, 0
    drop = acc[:, None] - acc[None, :]
    se = np.sqrt(var[:, None] + var[None, :])
    z = np.where(ordered & (drop > 0), drop / np.maximum(se, 1e-12), 0.0)
    return float(z.max()), pairs


def check_study(
    task: str,
    compute_flops: ArrayLike,
    accuracy: ArrayLike,
    n_questions: ArrayLike,
    chance: float,
    *,
    run_ids: Sequence[str] | None = None,
    min_runs: int = MIN_RUNS,
    min_rank_correlation: float = MIN_RANK_CORRELATION,
    parameters: int = 2,
) -> StudyCheck:
    """Apply the study rules of :data:`REFUSAL_RULES` to a task's study points; raise :class:`TaskRefused`
    or return the measures.

    ``compute_flops`` (FLOPs), ``accuracy`` (fractions) and ``n_questions`` per point; ``run_ids``
    names each point's run (one point per run when omitted); ``parameters``: the link's (2, or 3 with
    a fitted ceiling), the fewest points above chance that identify it.
    """
    c = np.asarray(compute_flops, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    n = np.broadcast_to(np.asarray(n_questions, dtype=float), acc.shape)
    runs = len(set(run_ids)) if run_ids is not None else int(acc.size)
    if runs < min_runs:
        raise TaskRefused(task, "too_few_runs", f"{runs} study runs; the link needs at least {min_runs}")
    above, threshold = above_chance(acc, n, chance)
    best = int(np.argmax(above - threshold))
    count = int(np.sum(above > threshold))
    if count == 0:
        raise TaskRefused(
            task,
            "at_chance",
            f"the study runs sit at chance ({chance:.0%}): the best is {100 * above[best]:+.1f} points from it, "
            f"within {100 * threshold[best]:.1f} points ({CHANCE_Z:g} binomial standard errors or "
            f"{MIN_POINTS_ABOVE_CHANCE:g} points)",
        )
    if count < parameters:
        raise TaskRefused(
            task,
            "too_few_above_chance",
            f"{count} study point(s) above chance ({chance:.0%}); the link has {parameters} parameters, so its "
            f"rise is not identified (points at chance say nothing about it)",
        )
    rho = spearman(c, acc)
    if not rho >= min_rank_correlation:
        raise TaskRefused(
            task,
            "not_monotone",
            f"accuracy is not monotone in compute over the study runs (Spearman {rho:.2f} < {min_rank_correlation:g})",
        )
    return StudyCheck(
        runs=runs,
        best_above_chance_points=float(100 * above[best]),
        chance_threshold_points=float(100 * threshold[best]),
        rank_correlation=rho,
        points_above_chance=count,
    )


def check_drops(
    task: str,
    compute_flops: ArrayLike,
    accuracy: ArrayLike,
    n_questions: ArrayLike,
    dispersion: float = 1.0,
) -> tuple[float, float]:
    """The ``not_monotone`` rule beyond noise: refuse when accuracy falls from a point to a point of more
    compute by more than the Bonferroni quantile z = Phi^-1(1 - :data:`MONOTONE_FAMILY_ERROR` / pairs) of
    quasi-binomial standard errors (:func:`largest_drop` divided by sqrt(max(1, ``dispersion``)), the
    link's robust dispersion in :func:`fit_link`: run-to-run scatter the link's residuals show is noise too). Returns the
    largest drop (in those standard errors) and the quantile."""
    z, pairs = largest_drop(compute_flops, accuracy, n_questions)
    z /= math.sqrt(max(1.0, dispersion))
    quantile = float(stats.norm.isf(MONOTONE_FAMILY_ERROR / pairs)) if pairs else float("inf")
    if z > quantile:
        raise TaskRefused(
            task,
            "not_monotone",
            f"accuracy falls to a study run of more compute by {z:.1f} standard errors (binomial, times the "
            f"square root of the link's dispersion), beyond the {quantile:.1f} that noise reaches with probability "
            f"{MONOTONE_FAMILY_ERROR:.0%} over {pairs} pairs",
        )
    return z, quantile


@dataclass(frozen=True, eq=False)
class LinkFit:
    """A fitted link acc = c + (1 - c) sigma(k d (x - x0)) (see the module docstring).

    ``variable``: x is the loss (in its unit, d = -1) or log10 of compute in FLOPs (d = +1).
    ``k`` (per nat, or per decade of compute) and ``x0`` (the loss's unit, or log10 FLOPs) with their
    covariance ``covariance`` (2 x 2, order k, x0; inverse Fisher information times
    max(1, ``dispersion``)); ``chance`` is the floor (a fraction). ``x``, ``accuracy`` and
    ``n_questions`` are the study points; ``rms_residual_points`` their root mean square residual
    in points; ``check`` what the refusal rules measured.
    """

    task: str
    variable: Variable
    chance: float
    k: float
    x0: float
    covariance: FloatArray
    dispersion: float
    x: FloatArray
    accuracy: FloatArray
    n_questions: FloatArray
    rms_residual_points: float
    check: StudyCheck
    dof: int = 1
    ceiling: float = 1.0
    ceiling_fitted: bool = False
    informative_range: tuple[float, float] = (float("nan"), float("nan"))
    pearson_chi2: float = float("nan")

    @property
    def parameters(self) -> int:
        """The link's free parameters: k and x0, and the ceiling when fitted."""
        return 3 if self.ceiling_fitted else 2

    def predict(self, x: ArrayLike) -> FloatArray:
        """Predicted accuracy (a fraction) at x (a loss in its unit, or log10 FLOPs)."""
        return link_accuracy(x, self.k, self.x0, self.chance, self.variable, self.ceiling)

    def gradient(self, x: ArrayLike) -> FloatArray:
        """d acc / d (k, x0[, ceiling]) at each x, shape (len(x), 2 or 3)."""
        return _gradient(
            np.atleast_1d(np.asarray(x, dtype=float)),
            self.k,
            self.x0,
            self.chance,
            self.variable,
            self.ceiling,
            self.ceiling_fitted,
        )

    def slope(self, x: ArrayLike) -> FloatArray:
        """d acc / d x at x (per nat, or per decade of compute)."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        d = _DIRECTION[self.variable]
        s = special.expit(self.k * d * (xs - self.x0))
        return np.asarray((self.ceiling - self.chance) * s * (1.0 - s) * self.k * d, dtype=float)

    def standard_error(self, x: ArrayLike) -> FloatArray:
        """Delta-method standard error of the predicted accuracy (a fraction) from the parameters' covariance."""
        g = self.gradient(x)
        return np.asarray(np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, self.covariance, g), 0.0)), dtype=float)

    def parameter_interval(self, name: Literal["k", "x0", "ceiling"], level: float = 0.9) -> tuple[float, float]:
        """Wald interval theta +- q se of ``k`` or ``x0``: q the normal quantile of (1 + level) / 2, or
        Student's t with ``dof`` = points - 2 degrees of freedom when the dispersion was estimated (> 1)."""
        i = {"k": 0, "x0": 1, "ceiling": 2}[name]
        if i >= self.covariance.shape[0]:
            return self.ceiling, self.ceiling  # fixed, not fitted
        value = {"k": self.k, "x0": self.x0, "ceiling": self.ceiling}[name]
        half = self.quantile(level) * math.sqrt(max(float(self.covariance[i, i]), 0.0))
        return value - half, value + half

    def quantile(self, level: float) -> float:
        """The Wald intervals' multiplier at ``level`` (see :meth:`parameter_interval`)."""
        tail = 0.5 + level / 2.0
        return float(stats.t.ppf(tail, self.dof) if self.dispersion > 1.0 else stats.norm.ppf(tail))


def _gradient(
    x: FloatArray, k: float, x0: float, chance: float, variable: Variable, ceiling: float, fitted: bool
) -> FloatArray:
    d = _DIRECTION[variable]
    s = special.expit(k * d * (x - x0))
    dp_dz = (ceiling - chance) * s * (1.0 - s)
    columns = [dp_dz * d * (x - x0), dp_dz * (-k * d)] + ([s] if fitted else [])
    return np.asarray(np.column_stack(columns), dtype=float)


def _fisher(
    x: FloatArray, n: FloatArray, k: float, x0: float, chance: float, variable: Variable, ceiling: float, fitted: bool
) -> tuple[FloatArray, FloatArray]:
    p = np.clip(link_accuracy(x, k, x0, chance, variable, ceiling), _P_CLIP, 1.0 - _P_CLIP)
    g = _gradient(x, k, x0, chance, variable, ceiling, fitted)
    w = n / (p * (1.0 - p))
    return np.asarray(g.T @ (g * w[:, None]), dtype=float), p


def fit_link(
    task: str,
    x: ArrayLike,
    accuracy: ArrayLike,
    n_questions: ArrayLike,
    chance: float,
    *,
    variable: Variable = "loss",
    compute_flops: ArrayLike | None = None,
    run_ids: Sequence[str] | None = None,
    min_runs: int = MIN_RUNS,
    min_rank_correlation: float = MIN_RANK_CORRELATION,
    ceiling: float | None = 1.0,
) -> LinkFit:
    """Fit acc = c + (a - c) sigma(k d (x - x0)) by maximum binomial likelihood on the study points.

    ``ceiling``: a, 1 by default (a perfect score is reachable); None fits it in (c, 1] (Bhagia et
    al.'s free scale, for tasks whose exact-match scoring may cap accuracy below 1).
    ``x``: losses (in their unit) for ``variable="loss"`` or log10 FLOPs for ``"log10_flops"``;
    ``accuracy``: fractions; ``n_questions``: the task's number of questions (per point or one);
    ``chance``: the floor (a fraction in [0, 1)); ``compute_flops``: the points' compute for the
    monotonicity rule (10**x when x is log10 FLOPs). Raises :class:`TaskRefused` (see
    :func:`check_study`), also when the likelihood has no finite optimum or k <= 0.
    """
    if not 0.0 <= chance < 1.0:
        raise TaskRefused(task, "no_fit", f"chance level {chance!r} must be a fraction in [0, 1)")
    xs = np.asarray(x, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    n = np.broadcast_to(np.asarray(n_questions, dtype=float), acc.shape).astype(float)
    if acc.size and not np.any(np.isfinite(n) & (n > 0)):
        raise TaskRefused(
            task, "no_fit", "the source does not state the task's number of questions, which the binomial fit needs"
        )
    ok = np.isfinite(xs) & np.isfinite(acc) & (n > 0)
    xs, acc, n = xs[ok], acc[ok], n[ok]
    ids = [r for r, keep in zip(run_ids, ok) if keep] if run_ids is not None else None
    if compute_flops is None:
        if variable != "log10_flops":
            raise TaskRefused(task, "no_fit", "compute_flops is needed to check monotonicity of a loss link")
        compute = 10.0**xs
    else:
        compute = np.asarray(compute_flops, dtype=float)[ok]
    fitted = ceiling is None
    check = check_study(
        task,
        compute,
        acc,
        n,
        chance,
        run_ids=ids,
        min_runs=min_runs,
        min_rank_correlation=min_rank_correlation,
        parameters=3 if fitted else 2,
    )
    gap, threshold = above_chance(acc, n, chance)
    informative = xs[gap > threshold]
    d = _DIRECTION[variable]
    y = acc * n
    fixed_ceiling = 1.0 if ceiling is None else float(ceiling)

    def unpack(theta: FloatArray) -> float:
        return chance + (1.0 - chance) * float(special.expit(theta[2])) if fitted else fixed_ceiling

    def nll(theta: FloatArray) -> float:
        a = unpack(theta)
        p = np.clip(chance + (a - chance) * special.expit(theta[0] * d * (xs - theta[1])), _P_CLIP, 1 - _P_CLIP)
        return float(-np.sum(y * np.log(p) + (n - y) * np.log1p(-p)) / n.sum())

    def grad(theta: FloatArray) -> FloatArray:
        a = unpack(theta)
        s = special.expit(theta[0] * d * (xs - theta[1]))
        p = np.clip(chance + (a - chance) * s, _P_CLIP, 1 - _P_CLIP)
        dl_dp = (y - n * p) / (p * (1.0 - p))
        dp_dz = (a - chance) * s * (1.0 - s)
        parts = [np.sum(dl_dp * dp_dz * d * (xs - theta[1])), np.sum(dl_dp * dp_dz * -theta[0] * d)]
        if fitted:
            su = float(special.expit(theta[2]))
            parts.append(np.sum(dl_dp * s) * (1.0 - chance) * su * (1.0 - su))
        return np.asarray(-np.array(parts) / n.sum(), dtype=float)

    # Starts: weighted least squares of logit((acc - c) / (a - c)) on x, for a = 1 and (fitted) a
    # halfway between the best study accuracy and 1; and a generic slope.
    ceilings = [fixed_ceiling] if not fitted else [0.999, float(acc.max()) + 0.5 * (1.0 - float(acc.max()))]
    spread = float(np.ptp(xs)) or 1.0
    starts: list[FloatArray | None] = []
    for a0 in ceilings:
        extra = [float(special.logit(min((a0 - chance) / (1.0 - chance), 0.999)))] if fitted else []
        q = np.clip((acc - chance) / (a0 - chance), 0.01, 0.99)
        slope, intercept = np.polyfit(xs, special.logit(q), 1, w=np.sqrt(n * q * (1 - q)))
        starts.append(np.array([slope * d, -intercept / slope, *extra]) if slope != 0 else None)
        starts.append(np.array([4.0 / spread, float(np.median(xs)) + d * 2.0 * spread, *extra]))
    best: optimize.OptimizeResult | None = None
    for start in starts:
        if start is None or not np.all(np.isfinite(start)):
            continue
        result = optimize.minimize(nll, start, jac=grad, method="BFGS", options={"gtol": 1e-10, "maxiter": 500})
        if np.all(np.isfinite(result.x)) and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        raise TaskRefused(task, "no_fit", "the binomial likelihood has no finite optimum on these study points")
    k, x0, a = float(best.x[0]), float(best.x[1]), unpack(best.x)
    if k <= 0:
        raise TaskRefused(task, "decreasing_link", f"the fitted link falls as the {variable} improves (k = {k:.3g})")
    info, p = _fisher(xs, n, k, x0, chance, variable, a, fitted)
    pearson = float(np.sum((y - n * p) ** 2 / (n * p * (1.0 - p))))
    dof = max(int(xs.size) - (3 if fitted else 2), 1)
    dispersion = pearson / dof
    try:
        covariance = np.asarray(np.linalg.inv(info) * max(1.0, dispersion), dtype=float)
    except np.linalg.LinAlgError:
        raise TaskRefused(task, "no_fit", "the link's parameters are not identified by these study points") from None
    if not np.all(np.isfinite(covariance)):
        raise TaskRefused(task, "no_fit", "the link's parameters are not identified by these study points")
    covariance.setflags(write=False)
    # the drop rule's noise: a dispersion robust to the drop itself, the median squared Pearson residual
    # over the median of chi^2_1 (0.455), so one fallen run cannot inflate the noise it is held to
    squared = (y - n * p) ** 2 / (n * p * (1.0 - p))
    robust = float(np.median(squared)) / float(stats.chi2.ppf(0.5, 1))
    z, quantile = check_drops(task, compute, acc, n, robust)
    check = dataclasses.replace(check, largest_drop_z=z, drop_quantile=quantile)
    residual = acc - link_accuracy(xs, k, x0, chance, variable, a)
    return LinkFit(
        task=task,
        variable=variable,
        chance=float(chance),
        k=k,
        x0=x0,
        covariance=covariance,
        dispersion=float(dispersion),
        x=xs,
        accuracy=acc,
        n_questions=n,
        rms_residual_points=float(100 * np.sqrt(np.mean(residual**2))),
        check=check,
        dof=dof,
        ceiling=a,
        ceiling_fitted=fitted,
        informative_range=(float(informative.min()), float(informative.max())),
        pearson_chi2=pearson,
    )


def ceiling_improves(fixed: LinkFit, free: LinkFit, level: float = CEILING_TEST_LEVEL) -> bool:
    """Whether the fitted ceiling explains the study points better than noise could: the quasi-likelihood
    F statistic (X^2_fixed - X^2_free) / (X^2_free / (m - 3)) (Pearson chi^2s, m study points) above the
    upper ``level`` quantile of F(1, m - 3)."""
    dof = int(free.x.size) - 3
    if dof < 1 or not free.ceiling_fitted:
        return False
    scale = max(free.pearson_chi2 / dof, 1e-12)
    statistic = (fixed.pearson_chi2 - free.pearson_chi2) / scale
    return bool(statistic > float(stats.f.isf(level, 1, dof)))


def fit_task_link(
    task: str,
    loss: ArrayLike,
    accuracy: ArrayLike,
    n_questions: ArrayLike,
    chance: float,
    *,
    compute_flops: ArrayLike,
    run_ids: Sequence[str] | None = None,
) -> LinkFit:
    """The link a task is answered with: the chance-floor sigmoid in loss (nats/token) with ceiling 1, or
    with a fitted ceiling when :func:`ceiling_improves` (which needs 3 points above chance), held to
    every study rule of :data:`REFUSAL_RULES` (``poor_fit``: dispersion above :data:`MAX_DISPERSION`).
    Raises :class:`TaskRefused`; the target-side rule is :func:`check_extrapolation`."""
    link, _ = fit_task_links(
        task, loss, accuracy, n_questions, chance, compute_flops=compute_flops, run_ids=run_ids, report_free=False
    )
    return link


def fit_task_links(
    task: str,
    loss: ArrayLike,
    accuracy: ArrayLike,
    n_questions: ArrayLike,
    chance: float,
    *,
    compute_flops: ArrayLike,
    run_ids: Sequence[str] | None = None,
    report_free: bool = True,
) -> tuple[LinkFit, LinkFit | None]:
    """:func:`fit_task_link`'s link and the free-ceiling fit its F test compared it with (None when that
    fit is refused), so a caller that reports both fits each once. The free fit is made only where the F
    test can use it (3 points above chance, more than 3 points) unless ``report_free`` asks for it always."""
    link = fit_link(task, loss, accuracy, n_questions, chance, compute_flops=compute_flops, run_ids=run_ids)
    testable = link.check.points_above_chance >= 3 and link.x.size > 3
    free: LinkFit | None = None
    if testable or report_free:
        try:
            free = fit_link(
                task, loss, accuracy, n_questions, chance, compute_flops=compute_flops, run_ids=run_ids, ceiling=None
            )
        except TaskRefused:
            free = None
    if free is not None and testable and ceiling_improves(link, free):
        link = free
    if link.dispersion > MAX_DISPERSION:
        raise TaskRefused(
            task,
            "poor_fit",
            f"the link's residuals on the study runs are {math.sqrt(link.dispersion):.1f} times their binomial "
            f"noise (rms; Pearson dispersion {link.dispersion:.1f} > {MAX_DISPERSION:g}): the sigmoid does not "
            f"describe how this task's accuracy follows the loss",
        )
    return link, free


def check_extrapolation(link: LinkFit, x_target: float) -> float:
    """Refuse (``extrapolation``) a target whose predicted x lies beyond the study's informative range
    (the x of its points above chance) by more than :data:`MAX_EXTRAPOLATION` times that range's width;
    return the distance beyond it in widths (0 inside; inf for a range of zero width)."""
    d = _DIRECTION[link.variable]
    low, high = sorted(d * np.asarray(link.informative_range, dtype=float))
    beyond = max(0.0, d * float(x_target) - high)
    width = high - low
    ratio = beyond / width if width > 0 else (0.0 if beyond == 0 else float("inf"))
    if ratio > MAX_EXTRAPOLATION:
        unit = "nats/token" if link.variable == "loss" else "decades of compute"
        raise TaskRefused(
            link.task,
            "extrapolation",
            f"the target lies {beyond:.3g} {unit} beyond the losses at which the study runs rise above chance, "
            f"{ratio:.1f} times that range's width ({width:.3g}); the link is trusted to {MAX_EXTRAPOLATION:g}",
        )
    return ratio
