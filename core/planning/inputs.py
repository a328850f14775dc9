"""The planner's inputs: plausibility limits, the cost model's defaults, :class:`PlanningError` and the
checks every planning module applies (positive finite numbers, quantities typed by a person, a law's
parameters in Chinchilla form).

Units: parameters, tokens, FLOPs (C = 6 N D), US dollars, GPU-hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scaleplan.core import laws, units
from scaleplan.core.errors import UserError

H100_BF16_DENSE_FLOPS = 989e12
"""Peak dense bf16 throughput of one NVIDIA H100 SXM, in FLOP/s (no sparsity)."""
DEFAULT_DOLLARS_PER_GPU_HOUR = 2.0
DEFAULT_MFU = 0.4
DEFAULT_MFU_PERCENT = 40.0  # the same, as the pages and the CLI take it (percent)
SECONDS_PER_HOUR = 3600.0
FLOPS_PER_PARAM_TOKEN = laws.FLOPS_PER_PARAM_TOKEN  # 6: training FLOPs per parameter per token

MAX_FLOPS = units.MAX_FLOPS  # the plausibility limits are defined once, in core.units
MAX_DOLLARS = 1e13
MAX_GPU_HOURS = 1e13
MAX_PEAK_FLOPS = 1e18  # per GPU, FLOP/s
MIN_PEAK_FLOPS = 1e9  # per GPU, FLOP/s: below this a "GPU" cannot train anything and costs overflow
MIN_MFU = 1e-3
MAX_PRICE = 1e6  # dollars per GPU-hour
MIN_PRICE = 1e-6  # a hundredth of a cent per thousand GPU-hours: free compute is not a price to plan with
MIN_COUNT = units.MIN_COUNT  # fewest parameters of a study model, fewest tokens of a target
MAX_PARAMS = units.MAX_PARAMS
MAX_TOKENS = units.MAX_TOKENS


class PlanningError(UserError, ValueError):
    """A planning input is unusable (zero, negative, not finite, absurdly large, inconsistent)."""


# ---------------------------------------------------------------------------------------------
# Validation


def _positive(
    name: str, value: object, maximum: float, *, unit: str = "", minimum: float = 0.0, prefix: str = ""
) -> float:
    """``value`` as a positive finite float in (0, ``maximum``] and at least ``minimum``, else PlanningError
    (numbers in messages as ``prefix`` number ``unit``: "$0", "12 FLOPs")."""
    if value is None or isinstance(value, bool):
        raise PlanningError(f"{name} is missing")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PlanningError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number):
        raise PlanningError(f"{name} is not a number (NaN)")
    if math.isinf(number):
        raise PlanningError(f"{name} must be finite")
    if number <= 0:
        raise PlanningError(f"{name} must be greater than zero, got {prefix}{number:g}{unit}")
    if number > maximum:
        raise PlanningError(
            f"{name} of {prefix}{number:.3g}{unit} is beyond any realistic value (at most {prefix}{maximum:.0e}{unit})"
        )
    if number < minimum:
        raise PlanningError(
            f"{name} of {prefix}{number:.3g}{unit} is below any realistic value (at least {prefix}{minimum:g}{unit})"
        )
    return number


def _fraction(name: str, value: object, minimum: float = 0.0) -> float:
    return _positive(name, value, 1.0, minimum=minimum)


def parse_quantity(text: object, *, name: str = "the value", maximum: float = MAX_FLOPS) -> float:
    """A positive count typed by a person: "7B", "1.4e9", "70 M", "2,000,000", "1.5T" -> float.

    The syntax is :func:`core.units.parse_number`'s (suffixes k, M, B or G, T, P). Raises
    :class:`PlanningError` for anything else, for zero, negative, non-finite or values above
    ``maximum``, quoting the text as typed.
    """
    typed = str(text).strip()[:40] if text is not None else ""
    try:
        number = units.parse_number(text, name=name)
    except units.NumberSyntaxError as error:
        raise PlanningError(str(error)) from None
    if not math.isfinite(number):
        raise PlanningError(f"{name} must be a finite number like 7e9 or 7B; you typed {typed!r}")
    if number <= 0:
        raise PlanningError(f"{name} must be greater than zero; you typed {typed!r}")
    if number > maximum:
        raise PlanningError(f"{name} of {typed} is beyond any realistic value (at most {maximum:.0e})")
    return number


# ---------------------------------------------------------------------------------------------
# Law parameters


def _as_chinchilla(params: Mapping[str, float]) -> dict[str, float]:
    """Chinchilla parameters from either law's parameters, checked to be a usable law.

    Exponents beyond twice the fitter's bounds (alpha, beta <= 2; eta <= 1) are not a law
    anyone fitted, and only make the powers overflow.
    """
    if {"E", "A", "B", "alpha", "beta"} <= set(params):
        values = {
            k: _law_value(k, params[k], 4.0 if k in ("alpha", "beta") else math.inf)
            for k in ("E", "A", "B", "alpha", "beta")
        }
    elif {"E", "a", "b", "eta"} <= set(params):
        raw = {k: _law_value(k, params[k], 2.0 if k == "eta" else math.inf) for k in ("E", "a", "b", "eta")}
        values = laws.overtrain_as_chinchilla(**raw)
    else:
        raise PlanningError(
            "the law's parameters must be E, A, B, alpha, beta (Chinchilla) or E, a, b, eta (over-training law)"
        )
    for name, value in values.items():
        if not math.isfinite(value) or (value <= 0 and name != "E") or value < 0:
            raise PlanningError(f"the law's parameter {name} = {value} is not usable")
    return values


def _finite(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PlanningError(f"the law's parameter {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise PlanningError(f"the law's parameter {name} must be finite")
    return number


def _law_value(name: str, value: object, maximum: float) -> float:
    """A law parameter: finite, positive (E may be zero) and at most ``maximum``."""
    number = _finite(name, value)
    if not ((number > 0 or (name == "E" and number == 0)) and number <= maximum):
        raise PlanningError(
            f"the law's parameter {name} = {number:g} is not usable"
            + (f" (at most {maximum:g})" if math.isfinite(maximum) else "")
        )
    return number
