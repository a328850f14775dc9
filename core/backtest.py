"""An interval from a study's own runs, for a target the collection's calibration does not cover.

The collection's calibration (:mod:`core.calibration`) measured the error of predicting a model
*larger* than every fitted run. A lab's next question is often inside its sizes: the next budget
of an isoFLOP sweep (a size already trained, on more tokens) or a longer training of a mid-size
run. For those the study is backtested on itself: refit on its cheaper part, predict its more
expensive, already-measured points, and scale the errors by how far each prediction reached.

Method (split-conformal on in-study backtests):

- each point's compute is C_i = 6 N_i D_i (FLOPs). For each cut factor f in ``CUT_FACTORS``, the
  law is refitted on the points with C_i <= C_max / f (C_max: the largest fitted point) and
  predicts every point beyond; a prediction reaching r = C_i / C_fit,max (>= 1) times the refit's
  largest compute scores s = |log(L_pred / L_obs)| / log(1 + r) (errors grow with the reach;
  log(1 + r) stays >= log 2, so seed noise at short reach is counted, not divided away);
- the target's half-width in log space is q * log(1 + r_t), with q the conformal quantile of the
  scores at ``level`` and r_t = 6 N_t D_t / C_max (clamped to >= 1);
- refused when fewer than ``MIN_SCORES`` scores from ``MIN_CUTS`` refits exist, or when the target
  reaches further in compute than any backtest did (no measured error covers that reach).

Coverage is measured on synthetic isoFLOP sweeps of a known law with seed noise
(tests/core/test_backtest.py) and on the collection's own runs, per source group
(``benchmarks/bench_backtest_coverage.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scaleplan.core import fitting, laws
from scaleplan.core.calibration import PredictionInterval, Refusal
from scaleplan.core.conformal import conformal_quantile
from scaleplan.core.laws import FLOPS_PER_PARAM_TOKEN
from scaleplan.core.units import format_level, format_params, format_ratio, format_tokens, suffix_hint

FloatArray = npt.NDArray[np.float64]

CUT_FACTORS: tuple[float, ...] = (1.5, 2.5, 4.0, 7.0, 12.0)
"""Refits on the points with compute at most C_max / f: reaches from 1.5x to 12x in compute."""
MIN_SCORES = 10
MIN_CUTS = 2
MIN_POINTS = 6  # a Chinchilla law has 5 parameters
METHOD = "in-study backtest (split conformal on refits of your cheaper runs)"


def _refusal(reason: str, kind: str) -> Refusal:
    """A refusal of this method (its ``as_dict`` names the backtest, not the collection's calibration)."""
    return Refusal(reason, kind, method=METHOD)


@dataclass(frozen=True)
class BacktestScores:
    """Normalised errors of refits on a study's cheaper part (see the module docstring).

    ``scores`` = |log(L_pred / L_obs)| / log(1 + reach); ``reach`` = C_point / C_refit,max (>= 1);
    ``cuts`` = refits that fitted; ``largest_compute`` = C_max of all points (FLOPs); ``smallest_params``
    and ``smallest_tokens``: the smallest N and D of the points (every backtest predicts upwards from them)."""

    scores: FloatArray
    reach: FloatArray
    cuts: int
    largest_compute: float
    smallest_params: float = 0.0
    smallest_tokens: float = 0.0

    @property
    def max_reach(self) -> float:
        return float(self.reach.max()) if self.reach.size else 0.0


def _as_array(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def backtest_scores(
    num_params: npt.ArrayLike,
    tokens_seen: npt.ArrayLike,
    loss: npt.ArrayLike,
    run_ids: npt.ArrayLike,
    *,
    law: str = "chinchilla",
    cut_factors: Sequence[float] = CUT_FACTORS,
) -> BacktestScores:
    """Refit ``law`` on the points of compute <= C_max / f for each f and score its predictions beyond.

    Inputs are aligned arrays of the study's points: N (parameters), D (tokens seen), observed loss
    (nats/token) and run ids. A refit that cannot be fitted (too few points or sizes, a failed fit)
    is skipped."""
    n, d, observed = _as_array(num_params), _as_array(tokens_seen), _as_array(loss)
    runs = np.asarray(run_ids, dtype=object)
    compute = FLOPS_PER_PARAM_TOKEN * n * d
    largest = float(compute.max())
    scores: list[FloatArray] = []
    reaches: list[FloatArray] = []
    seen: set[int] = set()
    cuts = 0
    for factor in cut_factors:
        inside = compute <= largest / factor
        key = int(inside.sum())
        # identical refits (the same points) count once; a refit needs points, two sizes, and
        # two compute levels (one isoFLOP budget alone confounds N with D)
        if key in seen or key < MIN_POINTS or key == compute.size:
            continue
        seen.add(key)
        if np.unique(n[inside]).size < 2 or np.unique(np.round(np.log(compute[inside]), 2)).size < 2:
            continue
        try:
            refit = fitting.fit(law, laws.standard_inputs(n[inside], d[inside]), observed[inside], run_ids=runs[inside])
        except fitting.FitError:
            continue
        beyond = ~inside
        predicted = np.asarray(refit.predict_at(n[beyond], d[beyond]), dtype=np.float64)
        ok = np.isfinite(predicted) & (predicted > 0)
        if not ok.any():
            continue
        cuts += 1
        reach = np.maximum(compute[beyond][ok] / float(compute[inside].max()), 1.0)
        error = np.abs(np.log(predicted[ok] / observed[beyond][ok]))
        scores.append(error / np.log1p(reach))
        reaches.append(reach)
    return BacktestScores(
        scores=np.concatenate(scores) if scores else np.empty(0),
        reach=np.concatenate(reaches) if reaches else np.empty(0),
        cuts=cuts,
        largest_compute=largest,
        smallest_params=float(n.min()),
        smallest_tokens=float(d.min()),
    )


def backtest_interval(
    predicted: float,
    target_params: float,
    target_tokens: float,
    backtest: BacktestScores,
    level: float = 0.9,
) -> PredictionInterval | Refusal:
    """The interval ``predicted * exp(+-q log(1 + r_t))`` at ``level`` for a target of N x D, or a refusal.

    ``predicted`` is the full fit's loss at the target (nats/token); r_t = 6 N D / C_max, clamped
    to >= 1 (a target cheaper than the largest run is charged the shortest reach measured). A target
    smaller than every run in parameters, or trained on fewer tokens than every point, is refused:
    every backtest predicts larger or longer runs from smaller ones, so none measures a downward
    extrapolation."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not (math.isfinite(predicted) and predicted > 0):
        return _refusal(f"the prediction {predicted!r} is not a positive loss", "prediction")
    if backtest.cuts < MIN_CUTS or backtest.scores.size < MIN_SCORES:
        return _refusal(
            f"a backtest inside your runs needs {MIN_SCORES} predictions from {MIN_CUTS} refits on their cheaper "
            f"part; yours give {backtest.scores.size} from {backtest.cuts} (add runs at more compute budgets)",
            "backtest",
        )
    below = [
        f"{shown(value)} is below {where}, {shown(smallest)}"
        for value, smallest, shown, where in (
            (target_params, backtest.smallest_params, format_params, "your smallest run"),
            (target_tokens, backtest.smallest_tokens, format_tokens, "the fewest tokens of any fitted point"),
        )
        if value < smallest * (1 - 1e-9)
    ]
    if below:
        return _refusal(
            "the target lies below your runs (" + "; ".join(below) + "): every backtest predicts larger or longer "
            "runs from smaller ones, so no measured error covers a smaller target"
            + suffix_hint(target_params, "7B is 7 billion"),
            "backtest",
        )
    reach = max(FLOPS_PER_PARAM_TOKEN * target_params * target_tokens / backtest.largest_compute, 1.0)
    if reach > backtest.max_reach * (1 + 1e-9):
        return _refusal(
            f"the target needs {format_ratio(reach)} your largest run's compute; backtests inside your runs reach "
            f"only {format_ratio(backtest.max_reach)} (add runs at a larger budget, or ask for a nearer target)",
            "backtest",
        )
    q = conformal_quantile(backtest.scores, level)
    if not math.isfinite(q):
        return _refusal(
            f"{backtest.scores.size} backtest predictions are too few for a {format_level(level)} interval", "backtest"
        )
    half = q * math.log1p(reach)
    if not half > 0:
        return _refusal("the backtests give no spread at this level", "backtest")
    return PredictionInterval(
        level=float(level),
        low=predicted * math.exp(-half),
        high=predicted * math.exp(half),
        method=METHOD,
        predicted=float(predicted),
        scale=half,
        families=1,
        cells=int(backtest.scores.size),
        groups=0,
        basis=f"{backtest.scores.size} backtest predictions of {backtest.cuts} refits inside your runs",
    )
