"""The descents: L-BFGS-B from many starts at once, on SciPy's compiled routine (:mod:`core.lbfgsb`)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from scaleplan.core._fit.objective import Problem
from scaleplan.core.lbfgsb import minimize_lbfgsb_many

__all__ = ["LBFGS_OPTIONS", "Descent", "descend"]

FloatArray = NDArray[np.float64]

LBFGS_OPTIONS: dict[str, Any] = {"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-9, "maxcor": 20}
# Line-search failures at a kink of the Huber loss or at machine precision are benign
# when the projected gradient is already this small (scaled objective units).
_ACCEPT_PROJECTED_GRADIENT = 1e-4


def _projected_gradient(problem: Problem, v: FloatArray) -> float:
    _, g = problem.scaled_value_and_grad(v)
    at_lower = (v <= problem.lower) & (g > 0)
    at_upper = (v >= problem.upper) & (g < 0)
    g = np.where(at_lower | at_upper, 0.0, g)
    return float(np.max(np.abs(g), initial=0.0))


class Descent(NamedTuple):
    v: FloatArray
    value: float  # unscaled objective
    converged: bool
    message: str
    n_iterations: int


def descend(problem: Problem, v0s: list[FloatArray]) -> list[Descent]:
    """L-BFGS-B runs from each of v0s, evaluated together (:func:`core.lbfgsb.minimize_lbfgsb_many`).

    Each run gives exactly what SciPy's ``minimize(method="L-BFGS-B")`` gives from its start.
    """
    if not v0s:
        return []
    if v0s[0].size == 0:
        value, _ = problem.scaled_value_and_grad(v0s[0])
        return [Descent(v0, value / problem.scale, True, "nothing to vary", 0) for v0 in v0s]
    descents = []
    for res in minimize_lbfgsb_many(
        problem.scaled_values_and_grads, v0s, problem.lower, problem.upper, **LBFGS_OPTIONS
    ):
        converged = res.success
        if not converged and res.status == 2 and math.isfinite(res.fun):
            converged = _projected_gradient(problem, res.x) <= _ACCEPT_PROJECTED_GRADIENT
        descents.append(Descent(res.x, res.fun / problem.scale, converged, res.message, res.nit))
    return descents
