"""Gadre et al. (2025): average downstream top-1 error Err(L) = eps - k exp(-gamma L) from the loss L.

eps is the error of a model with infinite loss (chance level when the tasks are multiple choice);
the error falls exponentially as the loss (nats/token) decreases. Fitted by least squares on the
error (the law can be negative, so not on log residuals).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from scaleplan.core.laws.base import Law, Term, require_distinct
from scaleplan.core.laws.formulas import downstream_error
from scaleplan.core.parameters import EXPONENT_FLOOR, Parameter, Parameters

FloatArray = NDArray[np.float64]


def parameters() -> Parameters:
    """Defaults for Err(L) = eps - k exp(-gamma L).

    eps in (0, 1] is an error rate (chance level for multiple choice); k > 0 and gamma in
    (0, 10]. The starting values give errors of about 0.35 at L = 2 and 0.65 at L = 4.
    """
    return Parameters(
        [
            Parameter("eps", 0.75, min=0.0, max=1.0),
            Parameter("k", 1.6, min=0.0),
            Parameter("gamma", 0.7, min=EXPONENT_FLOOR, max=10.0),
        ]
    )


def identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    """As many distinct losses as free parameters."""
    require_distinct(inputs["loss"], len(free), "loss values", list(free), "add models")


def features(x: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    return {"neg_loss": -x["loss"]}


LAW = Law(
    name="downstream",
    title="Downstream error (Gadre et al. 2025)",
    formula="Err(L) = eps - k exp(-gamma L)",
    function=downstream_error,
    defaults=parameters,
    input_names=("loss",),
    log_params=frozenset({"eps", "k"}),
    grid={
        "eps": tuple(float(x) for x in np.log([0.25, 0.5, 0.75, 0.9, 1.0])),
        "k": (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
        "gamma": (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0),
    },
    descriptions={"eps": "error at infinite loss", "k": "error scale", "gamma": "loss rate (per nat)"},
    observed_name="error",
    positive=("loss",),
    terms=(Term(1.0, "eps"), Term(-1.0, "k", "gamma", "neg_loss")),
    features=features,
    identifiability=identifiability,
    default_objective="least_squares",
    default_starts=5,
)
