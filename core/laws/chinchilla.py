"""Hoffmann et al. (2022): L(N, D) = E + A / N**alpha + B / D**beta.

E is the irreducible loss (nats/token); A / N**alpha the excess due to finite model size N
(parameters), B / D**beta the excess due to finite data D (tokens seen). Fitted as the exp-linear
sum exp(e) + exp(a - alpha log N) + exp(b - beta log D), e = log E, a = log A, b = log B.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from scaleplan.core.laws.base import Law, Term, require_distinct
from scaleplan.core.laws.formulas import chinchilla_loss, compute_optimal_allocation
from scaleplan.core.parameters import EXPONENT_FLOOR, Parameter, Parameters

FloatArray = NDArray[np.float64]

EXPONENT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
# Hoffmann et al.'s grid (e, a, b, alpha, beta), plus log 1.7, a typical irreducible loss.
LOG_E_GRID = (-1.0, -0.5, 0.0, math.log(1.7), 0.5, 1.0)
LOG_PREFACTOR_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)


def parameters() -> Parameters:
    """Defaults for L(N, D) = E + A/N**alpha + B/D**beta.

    Starting values are Hoffmann et al.'s (2022) published fit; E, A, B > 0 (fitted in
    log space, so 0 is never reached) and alpha, beta in (0, 2].
    """
    return Parameters(
        [
            Parameter("E", 1.69, min=0.0),
            Parameter("A", 406.4, min=0.0),
            Parameter("B", 410.7, min=0.0),
            Parameter("alpha", 0.34, min=EXPONENT_FLOOR, max=2.0),
            Parameter("beta", 0.28, min=EXPONENT_FLOOR, max=2.0),
        ]
    )


def identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    """k distinct sizes pin at most k of the size side's free parameters (E, A, alpha); likewise D."""
    # N enters only through E + A N**-alpha, so k distinct sizes pin at most k of its
    # free parameters; likewise for D. Both counts are necessary for any design.
    size_side: list[str] = [n for n in ("E", "A", "alpha") if n in free]
    data_side: list[str] = [n for n in ("E", "B", "beta") if n in free]
    require_distinct(
        inputs["num_params"],
        len(size_side),
        "model sizes (num_params)",
        size_side,
        "fix some of them, e.g. borrow A and alpha from another family",
    )
    require_distinct(
        inputs["tokens_seen"],
        len(data_side),
        "token counts (tokens_seen)",
        data_side,
        "add checkpoints or fix B and beta",
    )


def features(x: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    return {"neg_log_n": -np.log(x["num_params"]), "neg_log_d": -np.log(x["tokens_seen"])}


def compute_optimal(
    compute_flops: FloatArray, E: float, A: float, B: float, alpha: float, beta: float
) -> tuple[FloatArray, FloatArray]:
    """(N, D) minimising the law at C = 6 N D (:func:`core.laws.compute_optimal_allocation`)."""
    return compute_optimal_allocation(compute_flops, E, A, B, alpha, beta)


LAW = Law(
    name="chinchilla",
    title="Chinchilla (Hoffmann et al. 2022)",
    formula="L(N, D) = E + A/N^alpha + B/D^beta",
    function=chinchilla_loss,
    defaults=parameters,
    input_names=("num_params", "tokens_seen"),
    log_params=frozenset({"E", "A", "B"}),
    grid={
        "E": LOG_E_GRID,
        "A": LOG_PREFACTOR_GRID,
        "B": LOG_PREFACTOR_GRID,
        "alpha": EXPONENT_GRID,
        "beta": EXPONENT_GRID,
    },
    descriptions={
        "E": "irreducible loss",
        "A": "size coefficient",
        "B": "data coefficient",
        "alpha": "size exponent",
        "beta": "data exponent",
    },
    positive=("num_params", "tokens_seen", "loss"),
    terms=(
        Term(1.0, "E"),
        Term(1.0, "A", "alpha", "neg_log_n"),
        Term(1.0, "B", "beta", "neg_log_d"),
    ),
    features=features,
    identifiability=identifiability,
    compute_optimal=compute_optimal,
    default_objective="huber",
    # Chinchilla fits rank starts by variable projection (core._fit.starts), which puts the
    # best start close to the optimum: fewer descents reach the same minimum.
    default_starts=4,
)
