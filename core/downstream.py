"""Downstream accuracy of a target: loss -> accuracy links, a direct form in compute, refusals.

Two ways to predict a target's accuracy on one task (Bhagia et al. 2024's two steps, Gadre et al.
2025's link for the average):

* **two-step**: a loss law predicts the target's loss L (nats/token); a monotone link maps it to
  accuracy. For a single task the link has the task's chance level c as its floor and 1 as its
  ceiling::

      acc(L) = c + (1 - c) / (1 + exp(-k (L0 - L)))

  k (per nat) > 0: accuracy rises as the loss falls; L0 (nats/token): the loss halfway between
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

A task is refused (:class:`TaskRefused`, a :class:`core.errors.UserError`, with its ``reason``)
when the study has fewer than :data:`MIN_RUNS` runs, when its runs sit at chance (no run above
chance by more than 3 binomial standard errors, sqrt(max(c (1 - c), a (1 - a)) / n) for a run of
accuracy a, and :data:`MIN_POINTS_ABOVE_CHANCE` points), when
its accuracy is not monotone in compute (Spearman rank correlation below :data:`MIN_RANK_CORRELATION`)
or when the fitted link falls as the loss falls (k <= 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats

from scaleplan.core.errors import UserError

FloatArray = NDArray[np.float64]
Variable = Literal["loss", "log10_flops"]
Reason = Literal["too_few_runs", "at_chance", "not_monotone", "decreasing_link", "no_fit"]

__all__ = [
    "MIN_RUNS",
    "MIN_RANK_CORRELATION",
    "MIN_POINTS_ABOVE_CHANCE",
    "CHANCE_Z",
    "TaskRefused",
    "LinkFit",
    "StudyCheck",
    "check_study",
    "fit_link",
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
    """acc = c + (a - c) sigma(k d (x - x0)), d = -1 for a loss (nats/token), +1 for log10 FLOPs, a the
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
    """What the refusal rules measured on a study: runs, best points above chance, rank correlation."""

    runs: int
    best_above_chance_points: float
    chance_threshold_points: float
    rank_correlation: float


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
) -> StudyCheck:
    """Apply the refusal rules to a task's study points; raise :class:`TaskRefused` or return the measures.

    ``compute_flops`` (FLOPs), ``accuracy`` (fractions) and ``n_questions`` per point; ``run_ids``
    names each point's run (one point per run when omitted).
    """
    c = np.asarray(compute_flops, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    n = np.broadcast_to(np.asarray(n_questions, dtype=float), acc.shape)
    runs = len(set(run_ids)) if run_ids is not None else int(acc.size)
    if runs < min_runs:
        raise TaskRefused(task, "too_few_runs", f"{runs} study runs; the link needs at least {min_runs}")
    # the larger of the binomial se at chance and at the run's own accuracy (a chance of 0 has none)
    se = np.sqrt(np.maximum(chance * (1.0 - chance), acc * (1.0 - acc)) / n)
    threshold = np.maximum(MIN_POINTS_ABOVE_CHANCE / 100.0, CHANCE_Z * se)
    above = acc - chance
    best = int(np.argmax(above - threshold))
    if not np.any(above > threshold):
        raise TaskRefused(
            task,
            "at_chance",
            f"the study runs sit at chance ({chance:.0%}): the best is {100 * above[best]:+.1f} points from it, "
            f"within {100 * threshold[best]:.1f} points (3 binomial standard errors or "
            f"{MIN_POINTS_ABOVE_CHANCE:g} points)",
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
    )


@dataclass(frozen=True, eq=False)
class LinkFit:
    """A fitted link acc = c + (1 - c) sigma(k d (x - x0)) (see the module docstring).

    ``variable``: x is the loss (nats/token, d = -1) or log10 of compute in FLOPs (d = +1).
    ``k`` (per nat, or per decade of compute) and ``x0`` (nats/token, or log10 FLOPs) with their
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

    def predict(self, x: ArrayLike) -> FloatArray:
        """Predicted accuracy (a fraction) at x (loss in nats/token, or log10 FLOPs)."""
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
    ``x``: losses (nats/token) for ``variable="loss"`` or log10 FLOPs for ``"log10_flops"``;
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
    check = check_study(
        task, compute, acc, n, chance, run_ids=ids, min_runs=min_runs, min_rank_correlation=min_rank_correlation
    )
    d = _DIRECTION[variable]
    y = acc * n
    fitted = ceiling is None
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
    )


def conformal_quantile(scores: ArrayLike, level: float) -> float:
    """Split conformal quantile: the ceil((m + 1) level)-th smallest of m scores; inf when m is too small."""
    s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(np.asarray(scores, dtype=float))])
    rank = math.ceil((s.size + 1) * level)
    return float("inf") if rank > s.size or s.size == 0 else float(s[rank - 1])
