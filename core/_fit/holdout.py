"""How far a fit's own largest size would have been missed: a backtest inside the fitted runs.

A fit's in-sample residual says how well the law follows its points, not how well it extrapolates:
the datablations families fit their points to 2-3% (log RMS) and miss their targets by 30-50%. The
cheapest out-of-sample evidence a fit carries is its own largest size. Refitting without it and
predicting it measures how much the law's extrapolation moves when the top of the data is withheld,
on the runs at hand (a new lab's runs calibrate themselves as far as they can).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from scaleplan.core._fit.driver import fit_law
from scaleplan.core._fit.errors import FitError
from scaleplan.core._fit.results import FitResult
from scaleplan.core.laws.base import FloatArray

Refit = Callable[[FitResult, Mapping[str, FloatArray], FloatArray], FitResult]
"""refit(fit, inputs, observed): ``fit``'s law fitted again, the same way, on other points."""

MIN_SIZES = 3
"""A backtest needs the largest size to predict and two more to fit without it."""


def refit_like(fit: FitResult, inputs: Mapping[str, FloatArray], observed: FloatArray) -> FitResult:
    """``fit``'s law fitted on other points as ``fit`` was: the same parameters (fixed, tied, bounds),
    objective and Huber delta.

    One L-BFGS-B descent from ``fit``'s own values (as a bootstrap replicate, :func:`core.fitting.bootstrap`:
    the points differ little, so the optimum is near), and the law's full set of starts when that
    start does not exist (a positive parameter fitted to 0, its bound, has no logarithm) or fails."""
    at_bound = any(name in fit.law.log_params and not float(fit.params[name]) > 0 for name in fit.parameters.free_names)
    if not at_bound:
        warm = fit.parameters.with_values({n: v for n, v in fit.params.items() if n in fit.parameters.free_names})
        try:
            return fit_law(
                fit.law,
                inputs,
                observed,
                parameters=warm,
                n_starts=1,
                use_grid=False,
                objective=fit.objective,
                huber_delta=fit.huber_delta,
                run_ids=None,
            )
        except FitError:
            pass
    return fit_law(
        fit.law,
        inputs,
        observed,
        parameters=fit.parameters,
        n_starts=fit.law.default_starts,
        objective=fit.objective,
        huber_delta=fit.huber_delta,
        run_ids=None,
    )


def largest_size_backtest(fit: FitResult, *, refit: Refit = refit_like) -> float:
    """|log(L_refit / L_obs)| at the last point (most tokens) of the fit's largest size, the law refitted
    without any point of that size (dimensionless, a log ratio).

    The refit is :func:`refit_like` (``refit``: another way to refit, e.g. to watch it in a test). NaN
    when the law takes no N, with fewer than :data:`MIN_SIZES` sizes, no more remaining points than free
    parameters, or a refit that fails or predicts a non-positive loss."""
    if "num_params" not in fit.inputs:
        return math.nan
    num_params = np.asarray(fit.inputs["num_params"], dtype=float)
    sizes = np.unique(num_params)
    inside = num_params < sizes[-1]
    if sizes.size < MIN_SIZES or int(inside.sum()) <= len(fit.parameters.free_names):
        return math.nan
    try:
        without = refit(
            fit,
            {name: np.asarray(values, dtype=float)[inside] for name, values in fit.inputs.items()},
            np.asarray(fit.observed, dtype=float)[inside],
        )
    except FitError:
        return math.nan
    held = np.flatnonzero(~inside)
    order = fit.inputs["tokens_seen"] if "tokens_seen" in fit.inputs else fit.inputs["num_params"]
    last = held[int(np.argmax(np.asarray(order, dtype=float)[held]))]
    point = {name: np.asarray(values)[[last]] for name, values in fit.inputs.items()}
    with np.errstate(all="ignore"):
        predicted = float(np.asarray(fit.law.predict(point, without.params), dtype=float)[0])
    observed = float(np.asarray(fit.observed, dtype=float)[last])
    if not (math.isfinite(predicted) and predicted > 0 and observed > 0):
        return math.nan
    return abs(math.log(predicted / observed))
