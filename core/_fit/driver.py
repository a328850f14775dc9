"""One fit from start to finish: check the inputs, build the objective, rank starts, descend, keep the best.

A fit ranks starting points cheaply (:mod:`core._fit.starts`), then runs L-BFGS-B with the analytic
gradient from the best few (:mod:`core._fit.optimiser`) and keeps the best converged optimum. A
descent that stalls is restarted once from where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core._fit.errors import ConvergenceError, DegenerateFitError, InvalidInputError
from scaleplan.core._fit.inputs import as_points, check_identifiable, check_parameters
from scaleplan.core._fit.objective import ExpLinearProblem, build_problem
from scaleplan.core._fit.optimiser import descend
from scaleplan.core._fit.results import FitResult, frozen
from scaleplan.core._fit.starts import select_starts, varpro_applies, varpro_starts
from scaleplan.core.laws import Law
from scaleplan.core.parameters import Parameters

__all__ = ["DEFAULT_N_STARTS", "fit_law"]

FloatArray = NDArray[np.float64]

DEFAULT_N_STARTS = 5
# Designs with at most this many points also descend from the best starts of Hoffmann's grid
# (see fit_law): on the meta-analysis grid, every cell where variable-projection starts alone
# ended in a worse basin than the grid's had at most 74 points.
_SMALL_DESIGN_POINTS = 100


def fit_law(
    law: Law,
    arrays: Mapping[str, ArrayLike],
    observed: ArrayLike,
    *,
    parameters: Parameters | None,
    objective: str,
    huber_delta: float,
    run_ids: ArrayLike | None,
    n_starts: int,
    use_grid: bool = True,
) -> FitResult:
    if objective not in ("huber", "least_squares"):
        raise ValueError(f"objective must be 'huber' or 'least_squares', got {objective!r}")
    if objective == "huber" and law.terms is not None and any(t.sign < 0 for t in law.terms):
        raise ValueError(f"the {law.name} law can be negative: use objective='least_squares'")
    if not huber_delta > 0:
        raise ValueError(f"huber_delta must be positive, got {huber_delta}")
    if n_starts < 1:
        raise ValueError(f"n_starts must be at least 1, got {n_starts}")
    parameters = law.defaults() if parameters is None else parameters
    check_parameters(law, parameters)
    missing = [n for n in law.input_names if n not in arrays]
    if missing:
        raise InvalidInputError(f"the {law.name} law needs the input(s) {', '.join(missing)}")
    inputs, y, ids = as_points(law, {n: arrays[n] for n in law.input_names}, observed, run_ids)
    check_identifiable(law, inputs, y, parameters.free_names)

    problem = build_problem(law, inputs, y, parameters, objective, huber_delta)
    initial = parameters.values_dict()
    start_theta = np.array([law.to_internal(n, initial[n]) for n in law.param_names])
    if not use_grid:
        starts = [start_theta]
    elif isinstance(problem, ExpLinearProblem) and varpro_applies(problem):
        starts = varpro_starts(problem, start_theta, n_starts)
        if y.size <= _SMALL_DESIGN_POINTS:
            # Few points, five parameters: the law nearly interpolates and the objective has
            # flat valleys and several basins at the bounds (an exponent at 0 or 2, E -> 0).
            # Descents are cheap here, so Hoffmann's grid adds its own best starts.
            starts += select_starts(problem, start_theta, DEFAULT_N_STARTS)
    else:
        starts = select_starts(problem, start_theta, n_starts)

    # The lists can share a start (the caller's values rank high in both); a descent is
    # deterministic, so a repeated start would only repeat its work.
    distinct: dict[bytes, FloatArray] = {}
    for theta in starts:
        v0 = problem.v_from_theta(theta)
        distinct.setdefault(v0.tobytes(), v0)
    v_starts = list(distinct.values())
    descents = descend(problem, v_starts)
    # L-BFGS-B's line search can stall at a kink of the Huber loss with a stale curvature
    # memory; a fresh run from where it stopped usually finishes the job.
    stalled = [i for i, d in enumerate(descents) if not d.converged and math.isfinite(d.value)]
    for i, descent in zip(stalled, descend(problem, [descents[i].v for i in stalled])):
        descents[i] = descent
    converged = [d for d in descents if d.converged and math.isfinite(d.value)]
    if not converged:
        messages = sorted({d.message for d in descents})
        raise ConvergenceError(
            f"L-BFGS-B did not converge from any of {len(v_starts)} starting points: " + "; ".join(messages)
        )
    best = min(converged, key=lambda d: d.value)
    theta = problem.theta_from_v(best.v)
    # Held parameters keep their exact value (exp(log(x)) may differ from x by an ulp,
    # which could also step outside a finite bound).
    params = {
        n: initial[n]
        if problem.source(n) not in problem.free
        else min(max(law.to_natural(n, float(t)), parameters[n].min), parameters[n].max)
        for n, t in zip(law.param_names, theta)
    }
    if not all(math.isfinite(p) for p in params.values()):
        raise DegenerateFitError(f"the fit reached non-finite parameters {params}")
    fitted = law.predict(inputs, params)
    if not np.all(np.isfinite(fitted)):
        raise DegenerateFitError("the fitted law gives non-finite predictions on the data")
    return FitResult(
        law=law,
        params=params,
        fixed=parameters.fixed_names,
        objective=objective,
        objective_value=best.value,
        n_starts=len(v_starts),
        message=best.message,
        inputs={n: frozen(a) for n, a in inputs.items()},
        observed=frozen(y),
        run_ids=ids,
        parameters=parameters,
        huber_delta=huber_delta,
        n_iterations=best.n_iterations,
    )
