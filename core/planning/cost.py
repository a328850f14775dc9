"""GPU cost model: FLOPs = gpu_hours * 3600 * peak_flops_per_gpu * mfu, gpu_hours = dollars / price.

:func:`study_compute_budget` goes from money or GPU-hours to FLOPs, :func:`compute_cost` back;
:class:`CostModel` holds one price and speed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scaleplan.core.planning.inputs import (
    DEFAULT_DOLLARS_PER_GPU_HOUR,
    DEFAULT_MFU,
    FLOPS_PER_PARAM_TOKEN,
    H100_BF16_DENSE_FLOPS,
    MAX_DOLLARS,
    MAX_FLOPS,
    MAX_GPU_HOURS,
    MAX_PARAMS,
    MAX_PEAK_FLOPS,
    MAX_PRICE,
    MAX_TOKENS,
    MIN_MFU,
    MIN_PEAK_FLOPS,
    MIN_PRICE,
    SECONDS_PER_HOUR,
    PlanningError,
    _fraction,
    _positive,
)
from scaleplan.core.units import format_count, format_dollars, format_flops


@dataclass(frozen=True)
class ComputeCost:
    """What an amount of compute costs: ``gpu_hours`` (GPU-hours) and ``dollars`` (US$)."""

    flops: float
    gpu_hours: float
    dollars: float


def _flops_per_gpu_hour(peak_flops_per_gpu: float, mfu: float) -> float:
    peak = _positive("peak FLOP/s per GPU", peak_flops_per_gpu, MAX_PEAK_FLOPS, minimum=MIN_PEAK_FLOPS)
    utilisation = _fraction("MFU", mfu, minimum=MIN_MFU)
    return SECONDS_PER_HOUR * peak * utilisation


def _price(dollars_per_gpu_hour: object) -> float:
    return _positive("the price per GPU-hour", dollars_per_gpu_hour, MAX_PRICE, minimum=MIN_PRICE, prefix="$")


def cost_model_problems(dollars_per_gpu_hour: object, peak_flops_per_gpu: object, mfu: object) -> dict[str, str]:
    """Each unusable input of a :class:`CostModel`, by field ("price", "peak", "mfu"), with its message.

    The same checks as :class:`CostModel` (``mfu`` as a fraction), one input at a time, so a page can
    show each error under the input it names. Empty when the three make a cost model.
    """
    checks: tuple[tuple[str, Callable[[], float]], ...] = (
        ("price", lambda: _price(dollars_per_gpu_hour)),
        ("peak", lambda: _positive("peak FLOP/s per GPU", peak_flops_per_gpu, MAX_PEAK_FLOPS, minimum=MIN_PEAK_FLOPS)),
        ("mfu", lambda: _fraction("MFU", mfu, minimum=MIN_MFU)),
    )
    problems: dict[str, str] = {}
    for field, check in checks:
        try:
            check()
        except PlanningError as error:
            problems[field] = str(error)
    return problems


def study_compute_budget(
    dollars: float | None = None,
    gpu_hours: float | None = None,
    *,
    dollars_per_gpu_hour: float = DEFAULT_DOLLARS_PER_GPU_HOUR,
    peak_flops_per_gpu: float = H100_BF16_DENSE_FLOPS,
    mfu: float = DEFAULT_MFU,
) -> float:
    """Training FLOPs a budget buys: exactly one of ``dollars`` or ``gpu_hours``.

        gpu_hours = dollars / dollars_per_gpu_hour
        FLOPs     = gpu_hours * 3600 s/h * peak_flops_per_gpu (FLOP/s) * mfu

    Defaults: an H100 at 989 TFLOP/s (bf16 dense), 40% MFU, $2 per GPU-hour, so $1 buys
    about 7.1e17 FLOPs. Raises :class:`PlanningError` on missing, zero, negative, NaN,
    infinite or absurdly large inputs.
    """
    if (dollars is None) == (gpu_hours is None):
        raise PlanningError("give the study budget either in dollars or in GPU-hours (exactly one)")
    per_hour = _flops_per_gpu_hour(peak_flops_per_gpu, mfu)
    if dollars is not None:
        money = _positive("the study budget in dollars", dollars, MAX_DOLLARS, prefix="$")
        hours = money / _price(dollars_per_gpu_hour)
    else:
        hours = _positive("the study budget in GPU-hours", gpu_hours, MAX_GPU_HOURS)
    flops = hours * per_hour
    if not flops > 0:  # a subnormal budget underflows (found by Hypothesis: $5e-324)
        raise PlanningError("the study budget is below any realistic value: it buys no compute; raise the budget")
    if flops > MAX_FLOPS:
        given = f"{format_dollars(dollars)}" if dollars is not None else f"{format_count(gpu_hours)} GPU-hours"
        raise PlanningError(
            f"a study budget of {given} buys more compute than any realistic study ({format_flops(flops)}, at most "
            f"{MAX_FLOPS:.0e} FLOPs); lower the budget"
        )
    return flops


def compute_cost(
    flops: float,
    *,
    dollars_per_gpu_hour: float = DEFAULT_DOLLARS_PER_GPU_HOUR,
    peak_flops_per_gpu: float = H100_BF16_DENSE_FLOPS,
    mfu: float = DEFAULT_MFU,
) -> ComputeCost:
    """GPU-hours and dollars to spend ``flops`` (the inverse of :func:`study_compute_budget`).

    gpu_hours = flops / (3600 * peak_flops_per_gpu * mfu)
    dollars   = gpu_hours * dollars_per_gpu_hour
    """
    amount = _positive("compute", flops, MAX_FLOPS, unit=" FLOPs", minimum=1.0)
    price = _price(dollars_per_gpu_hour)
    hours = amount / _flops_per_gpu_hour(peak_flops_per_gpu, mfu)
    return ComputeCost(flops=amount, gpu_hours=hours, dollars=hours * price)


def training_flops(num_params: float, tokens: float) -> float:
    """C = 6 N D: training FLOPs of a dense transformer with N parameters on D tokens."""
    n = _positive("the number of parameters", num_params, MAX_PARAMS)
    d = _positive("the number of tokens", tokens, MAX_TOKENS)
    flops = FLOPS_PER_PARAM_TOKEN * n * d
    if flops > MAX_FLOPS:
        raise PlanningError(
            f"training {format_count(n)} parameters on {format_count(d)} tokens takes {flops:.2g} "
            f"FLOPs, beyond any realistic run (at most {MAX_FLOPS:.0e})"
        )
    return flops


@dataclass(frozen=True)
class CostModel:
    """GPU price and speed: ``dollars_per_gpu_hour`` (US$), ``peak_flops_per_gpu`` (FLOP/s), ``mfu`` (0-1)."""

    dollars_per_gpu_hour: float = DEFAULT_DOLLARS_PER_GPU_HOUR
    peak_flops_per_gpu: float = H100_BF16_DENSE_FLOPS
    mfu: float = DEFAULT_MFU

    def __post_init__(self) -> None:
        _price(self.dollars_per_gpu_hour)
        _flops_per_gpu_hour(self.peak_flops_per_gpu, self.mfu)

    @property
    def flops_per_dollar(self) -> float:
        return _flops_per_gpu_hour(self.peak_flops_per_gpu, self.mfu) / self.dollars_per_gpu_hour

    def of(self, flops: float) -> ComputeCost:
        """:func:`compute_cost` under this model."""
        return compute_cost(
            flops,
            dollars_per_gpu_hour=self.dollars_per_gpu_hour,
            peak_flops_per_gpu=self.peak_flops_per_gpu,
            mfu=self.mfu,
        )

    def budget_dollars(self, dollars: float | None = None, gpu_hours: float | None = None) -> float:
        """A budget given in dollars or GPU-hours (exactly one), in dollars."""
        # Validates the inputs (exactly one budget, each within its range) with the same rules.
        study_compute_budget(
            dollars,
            gpu_hours,
            dollars_per_gpu_hour=self.dollars_per_gpu_hour,
            peak_flops_per_gpu=self.peak_flops_per_gpu,
            mfu=self.mfu,
        )
        # Dollars come back exactly as given (no round trip through FLOPs).
        if dollars is not None:
            return float(dollars)
        assert gpu_hours is not None  # study_compute_budget checked that exactly one is given
        return float(gpu_hours) * self.dollars_per_gpu_hour
