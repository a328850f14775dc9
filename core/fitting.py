"""Fitting scaling laws (the interface): ``fit(law, inputs, observed)`` for any :class:`core.laws.Law`.

A fit checks its inputs, ranks starting points cheaply, runs L-BFGS-B with the analytic gradient
from the best few and keeps the best converged optimum; :func:`bootstrap` refits on data resampled
by run. The parts live in :mod:`core._fit`, one module per job: ``errors``, ``results``,
``inputs`` (validation), ``objective`` (Huber or least squares in optimiser coordinates, for
exp-linear and general laws), ``starts`` (grids and Chinchilla's variable-projection scan),
``optimiser`` (the side-by-side L-BFGS-B descents of :mod:`core.lbfgsb`), ``driver``,
``bootstrap``, ``uncertainty`` (:func:`prediction_log_se`, how precisely a fit pins its prediction) and
``holdout`` (:func:`largest_size_backtest`, how far the fit's own largest size would have been missed).

Exp-linear laws are signed sums of exponentials of functions *linear* in the internal
parameters theta (positive parameters enter as their logarithm):

    chinchilla   L   = exp(e) + exp(a - alpha log N) + exp(b - beta log D)
    overtrain    L   = exp(e) + exp(a' + eta (log M - log C)) + exp(b' - eta (log M + log C))
    downstream   Err = exp(e') - exp(k' - gamma L)

with e = log E, a = log A, ... So one design tensor and one objective serve all of them; a general
law (e.g. the data-constrained law) supplies its gradient instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from scaleplan.core import laws
from scaleplan.core._fit.bootstrap import BootstrapScheme, bootstrap
from scaleplan.core._fit.driver import DEFAULT_N_STARTS, fit_law
from scaleplan.core._fit.errors import (
    ConvergenceError,
    DegenerateFitError,
    FitError,
    InsufficientDataError,
    InvalidInputError,
)
from scaleplan.core._fit.holdout import MIN_SIZES as BACKTEST_MIN_SIZES
from scaleplan.core._fit.holdout import HeldOutSize, hold_out_largest_size, largest_size_backtest, refit_like
from scaleplan.core._fit.objective import huber
from scaleplan.core._fit.results import DEFAULT_HUBER_DELTA, BootstrapResult, FitResult
from scaleplan.core._fit.uncertainty import prediction_log_se
from scaleplan.core.laws import Law
from scaleplan.core.parameters import Parameters

__all__ = [
    "DEFAULT_HUBER_DELTA",
    "DEFAULT_N_STARTS",
    "DEFAULT_CHINCHILLA_STARTS",
    "FitError",
    "InvalidInputError",
    "InsufficientDataError",
    "DegenerateFitError",
    "ConvergenceError",
    "FitResult",
    "BootstrapResult",
    "BootstrapScheme",
    "Objective",
    "fit",
    "fit_chinchilla",
    "fit_overtrain",
    "fit_downstream",
    "bootstrap",
    "bootstrap_fit",
    "chinchilla_objective",
    "prediction_log_se",
    "largest_size_backtest",
    "BACKTEST_MIN_SIZES",
    "hold_out_largest_size",
    "HeldOutSize",
    "refit_like",
]

Objective = Literal["huber", "least_squares"]
DEFAULT_CHINCHILLA_STARTS = laws.get("chinchilla").default_starts  # variable projection ranks starts well


def fit(
    law: str | Law,
    inputs: Mapping[str, ArrayLike],
    observed: ArrayLike,
    *,
    parameters: Parameters | None = None,
    objective: Objective | str | None = None,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    run_ids: ArrayLike | None = None,
    n_starts: int | None = None,
) -> FitResult:
    """Fit ``law`` (a :class:`core.laws.Law` or a registered name) to ``observed`` at ``inputs``.

    ``inputs`` maps input names to arrays and must hold every one of ``law.input_names`` (others
    are ignored; :func:`core.laws.standard_inputs` gives all a run's N, D and unique tokens
    supply). ``objective`` and ``n_starts`` default to the law's own (``default_objective``,
    ``default_starts``). ``parameters`` (default: the law's defaults) may fix, tie or bound
    parameters. Raises a :class:`FitError` subclass for data that cannot be fitted.
    """
    law = laws.get(law)
    return fit_law(
        law,
        inputs,
        observed,
        parameters=parameters,
        objective=law.default_objective if objective is None else objective,
        huber_delta=huber_delta,
        run_ids=run_ids,
        n_starts=law.default_starts if n_starts is None else n_starts,
    )


def fit_chinchilla(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    loss: ArrayLike,
    *,
    parameters: Parameters | None = None,
    objective: Objective = "huber",
    huber_delta: float = DEFAULT_HUBER_DELTA,
    run_ids: ArrayLike | None = None,
    n_starts: int = DEFAULT_CHINCHILLA_STARTS,
) -> FitResult:
    """Fit L(N, D) = E + A/N**alpha + B/D**beta to (num_params, tokens_seen, loss) points.

    ``objective="huber"`` (default) is Hoffmann et al.'s approach 3: minimise the mean of
    Huber_delta(log L_pred - log L_obs), delta = 1e-3, with log L_pred =
    logsumexp(log A - alpha log N, log B - beta log D, log E). ``"least_squares"`` minimises
    the mean of (L_pred - L_obs)**2, as in Choshen et al.'s code. Starts are ranked by the
    objective: with E, A, B free (the default), the cells of a variable-projection scan over
    (alpha, beta) (exact NNLS for E, A, B in each cell) plus ``parameters``' values; otherwise
    Hoffmann's grid of starts (designs of at most 100 points also get the grid's best 5).
    L-BFGS-B with analytic gradients runs from the ``n_starts`` best and the lowest
    converged optimum is returned.

    Parameters fixed in ``parameters`` (e.g. borrowed from another family) are held at
    their values; tied ones follow their target; bounds are honoured.

    Raises
    ------
    InvalidInputError, InsufficientDataError, DegenerateFitError, ConvergenceError
        All subclasses of :class:`FitError` (a ``ValueError``).
    """
    return fit_law(
        laws.get("chinchilla"),
        {"num_params": num_params, "tokens_seen": tokens_seen},
        loss,
        parameters=parameters,
        objective=objective,
        huber_delta=huber_delta,
        run_ids=run_ids,
        n_starts=n_starts,
    )


def fit_overtrain(
    compute_flops: ArrayLike,
    token_multiplier: ArrayLike,
    loss: ArrayLike,
    *,
    parameters: Parameters | None = None,
    objective: Objective = "least_squares",
    huber_delta: float = DEFAULT_HUBER_DELTA,
    run_ids: ArrayLike | None = None,
    n_starts: int = DEFAULT_N_STARTS,
) -> FitResult:
    """Fit Gadre et al.'s L(C, M) = E + (a M**eta + b M**-eta) C**-eta.

    Default is their published practice, least squares on the loss from a grid of
    starts keeping the smallest residual; ``objective="huber"`` uses the Chinchilla
    approach-3 objective instead. Same machinery and errors as :func:`fit_chinchilla`.
    """
    return fit_law(
        laws.get("overtrain"),
        {"compute_flops": compute_flops, "token_multiplier": token_multiplier},
        loss,
        parameters=parameters,
        objective=objective,
        huber_delta=huber_delta,
        run_ids=run_ids,
        n_starts=n_starts,
    )


def fit_downstream(
    loss: ArrayLike,
    error: ArrayLike,
    *,
    parameters: Parameters | None = None,
    run_ids: ArrayLike | None = None,
    n_starts: int = DEFAULT_N_STARTS,
) -> FitResult:
    """Fit Err(L) = eps - k exp(-gamma L) by least squares on the error, from a small grid."""
    return fit_law(
        laws.get("downstream"),
        {"loss": loss},
        error,
        parameters=parameters,
        objective="least_squares",
        huber_delta=DEFAULT_HUBER_DELTA,
        run_ids=run_ids,
        n_starts=n_starts,
    )


def chinchilla_objective(
    params: Mapping[str, float],
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    loss: ArrayLike,
    *,
    objective: Objective = "huber",
    huber_delta: float = DEFAULT_HUBER_DELTA,
) -> float:
    """The objective :func:`fit_chinchilla` minimises, at given natural parameters.

    Mean over points of Huber_delta(log L_pred - log L_obs), or of (L_pred - L_obs)**2.
    Useful to compare fits obtained by different procedures on an equal footing.
    """
    predicted = laws.chinchilla_loss(num_params, tokens_seen, **params)
    observed = np.asarray(loss, dtype=np.float64)
    if objective == "huber":
        per_point = huber(np.log(predicted) - np.log(observed), huber_delta)
    else:
        per_point = (predicted - observed) ** 2
    return float(np.mean(per_point))


def bootstrap_fit(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    loss: ArrayLike,
    run_ids: ArrayLike,
    *,
    n_boot: int = 100,
    seed: int = 0,
    scheme: BootstrapScheme = "auto",
    **fit_kwargs: Any,
) -> BootstrapResult:
    """:func:`fit_chinchilla` on all points, then :func:`bootstrap` over runs."""
    full = fit_chinchilla(num_params, tokens_seen, loss, run_ids=run_ids, **fit_kwargs)
    return bootstrap(full, n_boot=n_boot, seed=seed, scheme=scheme)
