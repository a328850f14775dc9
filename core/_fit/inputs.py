"""Checks on what a fit is given: input arrays, the target, the parameters, the design's identifiability."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core._fit.errors import DegenerateFitError, InsufficientDataError, InvalidInputError
from scaleplan.core.laws import Law
from scaleplan.core.parameters import Parameters

__all__ = ["as_points", "check_parameters", "check_identifiable"]

FloatArray = NDArray[np.float64]


def as_points(
    law: Law, arrays: Mapping[str, ArrayLike], observed: ArrayLike, run_ids: ArrayLike | None
) -> tuple[dict[str, FloatArray], FloatArray, NDArray[Any] | None]:
    """Validated float arrays of the inputs and target, and the run ids (or None)."""
    named: dict[str, FloatArray] = {}
    for name, values in [*arrays.items(), (law.observed_name, observed)]:
        try:
            a = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} must be numeric: {exc}") from None
        if a.ndim != 1:
            raise InvalidInputError(f"{name} must be one-dimensional, got shape {a.shape}")
        named[name] = a
    lengths = {name: a.size for name, a in named.items()}
    ids = None if run_ids is None else np.asarray(run_ids)
    if ids is not None:
        if ids.ndim != 1:
            raise InvalidInputError(f"run_ids must be one-dimensional, got shape {ids.shape}")
        lengths["run_ids"] = ids.size
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n}={m}" for n, m in lengths.items())
        raise InvalidInputError(f"inputs must have the same length, got {detail}")
    for name, a in named.items():
        bad = ~np.isfinite(a)
        if bad.any():
            raise InvalidInputError(
                f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf), first at index {int(np.argmax(bad))}"
            )
    for name in law.positive:
        if np.any(named[name] <= 0):
            a = named[name]
            raise InvalidInputError(
                f"{name} must be positive, got {int(np.sum(a <= 0))} value(s) <= 0 (smallest {float(a.min()):g})"
            )
    y = named.pop(law.observed_name)
    return named, y, ids


def check_parameters(law: Law, parameters: Parameters) -> None:
    if tuple(parameters) != law.param_names:
        raise InvalidInputError(f"the {law.name} law needs parameters {list(law.param_names)}, got {list(parameters)}")
    for name in law.log_params:
        p = parameters[name]
        if p.value <= 0 or p.max <= 0:
            raise InvalidInputError(f"{name} must be positive (it is fitted in log space)")


def check_identifiable(law: Law, inputs: Mapping[str, FloatArray], y: FloatArray, free: tuple[str, ...]) -> None:
    if y.size < len(free) + 1:
        raise InsufficientDataError(
            f"need at least {len(free) + 1} points to fit {len(free)} free parameters ({', '.join(free)}), got {y.size}"
        )
    if np.ptp(y) <= 1e-12 * np.max(np.abs(y)):
        raise DegenerateFitError(
            f"all {y.size} {law.observed_name} values are equal ({y[0]:.6g}): flat data carry no scaling signal"
        )
    law.identifiability(inputs, free)
