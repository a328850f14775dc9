"""Gadre et al. (2025): L(C, M) = E + (a M**eta + b M**-eta) C**-eta, for over-trained models.

C = 6 N D is the training compute (FLOPs) and M = D / N the token multiplier (tokens per
parameter). At fixed M the reducible loss is a power law in C with an exponent eta that does not
depend on M, which is what lets compute-optimal runs predict over-trained ones. The law is the
Chinchilla form with alpha = beta = 2 eta (:func:`core.laws.overtrain_as_chinchilla`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from scaleplan.core.laws.base import Law, Term, require_distinct
from scaleplan.core.laws.chinchilla import LOG_E_GRID, LOG_PREFACTOR_GRID
from scaleplan.core.laws.formulas import compute_optimal_allocation, overtrain_as_chinchilla, overtrain_loss
from scaleplan.core.parameters import EXPONENT_FLOOR, Parameter, Parameters

FloatArray = NDArray[np.float64]


def parameters() -> Parameters:
    """Defaults for L(C, M) = E + (a M**eta + b M**-eta) C**-eta.

    Starting values are Hoffmann et al.'s fit mapped onto the tied form (eta = 0.155,
    a = A 6**eta, b = B 6**eta, see :func:`core.laws.overtrain_as_chinchilla`); E, a, b > 0
    and eta in (0, 1] (Chinchilla exponents 2 eta in (0, 2]).
    """
    return Parameters(
        [
            Parameter("E", 1.69, min=0.0),
            Parameter("a", 536.0, min=0.0),
            Parameter("b", 542.0, min=0.0),
            Parameter("eta", 0.155, min=EXPONENT_FLOOR, max=1.0),
        ]
    )


def identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    """a and b separate only across token multipliers; E, eta and the prefactor need compute budgets."""
    # At one multiplier a M**eta + b M**-eta is a single constant: a and b separate
    # only across multipliers.
    if "a" in free and "b" in free:
        require_distinct(
            inputs["token_multiplier"],
            2,
            "token multipliers",
            ["a", "b"],
            "add a run at another tokens-per-parameter ratio or fix a or b",
        )
    curve = [n for n in ("E", "eta") if n in free]
    require_distinct(
        inputs["compute_flops"],
        len(curve) + 1,
        "compute budgets",
        curve + ["the prefactor"],
        "add runs at other compute budgets",
    )


def features(x: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    log_c, log_m = np.log(x["compute_flops"]), np.log(x["token_multiplier"])
    return {"a_slope": log_m - log_c, "b_slope": -log_m - log_c}


def compute_optimal(
    compute_flops: FloatArray, E: float, a: float, b: float, eta: float
) -> tuple[FloatArray, FloatArray]:
    """(N, D) minimising the law at C = 6 N D: the Chinchilla allocation of the equal Chinchilla law."""
    return compute_optimal_allocation(compute_flops, **overtrain_as_chinchilla(E, a, b, eta))


LAW = Law(
    name="overtrain",
    title="Over-training (Gadre et al. 2025)",
    formula="L(C, M) = E + (a M^eta + b M^-eta) C^-eta",
    function=overtrain_loss,
    defaults=parameters,
    input_names=("compute_flops", "token_multiplier"),
    log_params=frozenset({"E", "a", "b"}),
    grid={
        "E": LOG_E_GRID,
        "a": LOG_PREFACTOR_GRID,
        "b": LOG_PREFACTOR_GRID,
        # eta multiplies log C ~ 40-55, so it needs a finer grid than Chinchilla exponents.
        "eta": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0),
    },
    descriptions={
        "E": "irreducible loss",
        "a": "size-side coefficient",
        "b": "data-side coefficient",
        "eta": "compute exponent",
    },
    positive=("compute_flops", "token_multiplier", "loss"),
    terms=(
        Term(1.0, "E"),
        Term(1.0, "a", "eta", "a_slope"),
        Term(1.0, "b", "eta", "b_slope"),
    ),
    features=features,
    identifiability=identifiability,
    compute_optimal=compute_optimal,
    # Gadre et al.'s published practice: least squares on the loss from a grid of starts.
    default_objective="least_squares",
    default_starts=5,
)
