"""How precisely a fit pins its own prediction: the delta-method standard error of log L at a target.

The collection's calibration measures how far extrapolations of the collection's (smooth, densely
sampled) curves missed. It cannot know how much a given fit's parameters would move under another
draw of its runs' seed noise: a sweep of ten noisy final losses pins a law far less than a family's
hundreds of checkpoints. This module measures that second part for one fit, so an interval can add it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from scaleplan.core._fit.results import FitResult
from scaleplan.core.laws import standard_inputs
from scaleplan.core.laws.base import FloatArray

STEP = 1e-5
"""Central-difference step in the optimiser's units (log of a positive parameter, the value otherwise)."""


def _log_prediction(
    fit: FitResult, theta: FloatArray, free: tuple[str, ...], inputs: dict[str, FloatArray]
) -> FloatArray:
    params = dict(fit.params)
    for name, value in zip(free, theta):
        params[name] = fit.law.to_natural(name, float(value))
    for name, to in fit.parameters.tied.items():  # a tied parameter moves with the one it is tied to
        params[name] = params[to]
    with np.errstate(all="ignore"):
        values: FloatArray = np.log(np.asarray(fit.law.predict(inputs, params), dtype=float))
    return values


def prediction_log_se(
    fit: FitResult, num_params: ArrayLike, tokens_seen: ArrayLike, unique_tokens: ArrayLike | None = None
) -> float:
    """Standard error of log L_fit at one target (N parameters, D tokens), by the delta method.

        se^2 = g' (s^2 (J'J)^+) g,   J_ij = d log L(x_i) / d theta_j,   g_j = d log L(target) / d theta_j,
        s^2 = sum_i r_i^2 / (n - p),  r_i = log(L_obs,i / L_fit,i)

    over the fit's n points and its p free parameters theta (in the optimiser's units; borrowed, fixed
    parameters do not vary, nor does a positive one fitted to 0, its bound; a tied one moves with its
    own), with the points' residuals taken as independent (seed noise). Derivatives
    by central differences (:data:`STEP`). Dimensionless (a standard deviation of log L); NaN for a
    law that is not a loss law of (N, D), with no more points than free parameters, or a non-finite
    derivative.
    """
    if not fit.law.is_loss_law:
        return math.nan
    # a positive parameter fitted to 0 sits on its bound: it does not vary there (and has no log)
    free = tuple(
        name for name in fit.parameters.free_names if name not in fit.law.log_params or float(fit.params[name]) > 0
    )
    observed = np.asarray(fit.observed, dtype=float)
    n, p = observed.size, len(free)
    if n <= p or p == 0:
        return math.nan
    points = {name: np.asarray(fit.inputs[name], dtype=float) for name in fit.law.input_names}
    target = standard_inputs(num_params, tokens_seen, unique_tokens)
    theta = np.array([fit.law.to_internal(name, float(fit.params[name])) for name in free])

    def jacobian(inputs: dict[str, FloatArray]) -> FloatArray:
        columns = []
        for j in range(p):
            up, down = theta.copy(), theta.copy()
            up[j] += STEP
            down[j] -= STEP
            columns.append(
                (_log_prediction(fit, up, free, inputs) - _log_prediction(fit, down, free, inputs)) / (2 * STEP)
            )
        return np.column_stack(columns)

    residuals = np.log(observed) - _log_prediction(fit, theta, free, points)
    at_points = jacobian(points)
    at_target = jacobian({name: np.atleast_1d(np.asarray(target[name], dtype=float)) for name in fit.law.input_names})[
        0
    ]
    if not (np.all(np.isfinite(at_points)) and np.all(np.isfinite(at_target)) and np.all(np.isfinite(residuals))):
        return math.nan
    variance = float(residuals @ residuals) / (n - p)
    spread = float(at_target @ np.linalg.pinv(at_points.T @ at_points) @ at_target)
    return math.sqrt(max(variance * spread, 0.0))
