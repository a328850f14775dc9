"""Budget planning: what a study of small runs costs, what it buys, and how to train the target.

Pure functions (NumPy/pandas only), used by the dashboard's budget planner and the CLI.

Units: N (``num_params``) in parameters, D (``tokens``) in tokens, C (``*_flops``) in FLOPs
with the dense-transformer estimate C = 6 N D, money in US dollars, time in GPU-hours.

* **GPU cost model.** A GPU delivers ``peak_flops_per_gpu * mfu`` useful FLOP/s (model FLOPs
  utilisation, MFU, is the share of the peak a real training run achieves; 35-45% is usual for
  dense transformers on H100s), so

      FLOPs     = gpu_hours * 3600 * peak_flops_per_gpu * mfu
      gpu_hours = dollars / dollars_per_gpu_hour

  :func:`study_compute_budget` goes from money or GPU-hours to FLOPs and
  :func:`compute_cost` back.
* **Study designs.** :func:`study_designs` spans a real design space (sizes up to a sensible
  share of the target; tokens by a fixed tokens-per-parameter, a fraction of the target's tokens
  or an isoFLOP grid; seeds; runs kept inside the collection's tokens-per-parameter range).
  :func:`plan_study` prices each design, asks the calibrated error model
  (:class:`core.calibration.Calibration`) for the median, 80th and 90th percentile of ARE and
  picks the cheapest design whose 80th percentile meets the goal within the budget
  (:func:`choose`), returning a typed :class:`StudyPlan`.
* **Compute-optimal allocation.** :func:`compute_optimal_table` gives N*, D* under several
  laws (published: :data:`HOFFMANN2022`, :data:`BESIROGLU2024`; fitted ones via
  :func:`fitted_law`), each with an interval from its parameter uncertainty, and
  :func:`disagreement_warning` says when they differ by more than 2x.
* **Over-training.** :func:`overtraining_tradeoff` shows, at a fixed training budget C, what
  training a smaller model for longer (token multiplier M = D / N) costs in loss and downstream
  error and saves at inference (2 N FLOPs per generated token); :func:`summarise_overtraining`
  places the target on it under the selected law.
* :func:`recommendation` turns the typed results into a few plain sentences.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from scaleplan.core import laws, units
from scaleplan.core.errors import UserError
from scaleplan.core.units import format_count, format_dollars, format_flops, format_percent

__all__ = [
    "PlanningError",
    "H100_BF16_DENSE_FLOPS",
    "DEFAULT_DOLLARS_PER_GPU_HOUR",
    "DEFAULT_MFU",
    "MAX_FLOPS",
    "ComputeCost",
    "CostModel",
    "study_compute_budget",
    "cost_model_problems",
    "compute_cost",
    "training_flops",
    "parse_quantity",
    "TOKEN_RULES",
    "StudyDesign",
    "study_designs",
    "CUSTOM_RULE",
    "candidate_design",
    "read_runs_file",
    "design_runs",
    "assess_candidate",
    "RungAddition",
    "NextRung",
    "study_design",
    "next_rung",
    "next_rung_text",
    "SeedEvidence",
    "seed_evidence",
    "collection_tokens_per_param",
    "ExpectedARE",
    "AssessedDesign",
    "StudyPlan",
    "assess_designs",
    "pareto_frontier",
    "choose",
    "plan_study",
    "overtraining_tradeoff",
    "overtraining_choice",
    "OvertrainingSummary",
    "summarise_overtraining",
    "HOFFMANN2022",
    "BESIROGLU2024",
    "BESIROGLU2024_SE",
    "DEFAULT_LAW",
    "DEFAULT_LAW_REASON",
    "ReferenceLaw",
    "published_law",
    "fitted_law",
    "ComputeOptimal",
    "optimal_allocation",
    "compute_optimal_table",
    "disagreement",
    "disagreement_warning",
    "recommendation",
    "plain_accuracy",
    "PLANNER_HELD_OUT",
    "budget_remarks",
]

H100_BF16_DENSE_FLOPS = 989e12
"""Peak dense bf16 throughput of one NVIDIA H100 SXM, in FLOP/s (no sparsity)."""
DEFAULT_DOLLARS_PER_GPU_HOUR = 2.0
DEFAULT_MFU = 0.4
DEFAULT_MFU_PERCENT = 40.0  # the same, as the pages and the CLI take it (percent)
SECONDS_PER_HOUR = 3600.0
FLOPS_PER_PARAM_TOKEN = laws.FLOPS_PER_PARAM_TOKEN  # 6: training FLOPs per parameter per token
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0  # forward pass only

MAX_FLOPS = units.MAX_FLOPS  # the plausibility limits are defined once, in core.units
MAX_DOLLARS = 1e13
MAX_GPU_HOURS = 1e13
MAX_PEAK_FLOPS = 1e18  # per GPU, FLOP/s
MIN_PEAK_FLOPS = 1e9  # per GPU, FLOP/s: below this a "GPU" cannot train anything and costs overflow
MIN_MFU = 1e-3
MAX_PRICE = 1e6  # dollars per GPU-hour
MIN_PRICE = 1e-6  # a hundredth of a cent per thousand GPU-hours: free compute is not a price to plan with
MAX_ARE = 100.0  # 10,000%: a larger "expected error" is not a number to print
MIN_COUNT = units.MIN_COUNT  # fewest parameters of a study model, fewest tokens of a target
MAX_PARAMS = units.MAX_PARAMS
MAX_TOKENS = units.MAX_TOKENS

DEFAULT_MIN_SIZE = 1e7
DEFAULT_NUM_RUNS = (3, 4, 5, 6, 8)
DEFAULT_SEEDS = (1,)
"""Seeds per run in the generated designs: one. What extra seeds buy is measured on the collection's
multi-seed families (:func:`seed_evidence`); the collection holds none (no family repeats a run with a
second seed), so no gain is measured, 2 or 3 seeds would only multiply the cost at the same expected
ARE, and they are not offered as an improvement. Runs you enter may still have seeds (priced, same
expected ARE)."""
DEFAULT_MULTIPLIERS = (10, 20, 40, 80, 160, 320, 640)
COMPUTE_OPTIMAL_MULTIPLIER = 20.0
CUTOFF_TOKENS = 10e9  # the Hitchhiker cutoff: checkpoints at or below this are noisy


class PlanningError(UserError, ValueError):
    """A planning input is unusable (zero, negative, not finite, absurdly large, inconsistent)."""


# ---------------------------------------------------------------------------------------------
# Validation


def _positive(name: str, value: object, maximum: float, *, unit: str = "", minimum: float = 0.0) -> float:
    """``value`` as a positive finite float in (0, ``maximum``] and at least ``minimum``, else PlanningError."""
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
        raise PlanningError(f"{name} must be greater than zero, got {number:g}{unit}")
    if number > maximum:
        raise PlanningError(f"{name} of {number:.3g}{unit} is beyond any realistic value (at most {maximum:.0e}{unit})")
    if number < minimum:
        raise PlanningError(f"{name} of {number:.3g}{unit} is below any realistic value (at least {minimum:g}{unit})")
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
# GPU cost model


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
    return _positive("the price per GPU-hour", dollars_per_gpu_hour, MAX_PRICE, minimum=MIN_PRICE, unit=" $")


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
        money = _positive("the study budget in dollars", dollars, MAX_DOLLARS)
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


# ---------------------------------------------------------------------------------------------
# Study designs

TOKEN_RULES = ("tokens_per_param", "target_fraction", "isoflop")
"""How a design sets each run's tokens: a fixed number of tokens per parameter, a fraction of the
target's tokens, or an isoFLOP grid (a few compute budgets, several sizes at each)."""
CUSTOM_RULE = "custom"
"""The token rule of runs a person entered (:func:`candidate_design`): each run's tokens as given."""
DEFAULT_TOKENS_PER_PARAM = (20.0, 80.0)
DEFAULT_TARGET_FRACTIONS = (0.1, 0.3)
DEFAULT_ISOFLOP_GRIDS = ((3, 3), (4, 3), (3, 5))  # (compute budgets, sizes per budget)
ISOFLOP_BUDGET_STEP = 4.0  # each budget 4x the previous: the optimal size doubles
ISOFLOP_SIZE_SPREAD = 2.0  # sizes from N_opt / 2 to 2 N_opt at each budget
DEFAULT_SIZE_SPANS = (10.0, 100.0)  # largest / smallest study model
DEFAULT_MAX_SIZE_SHARE = 1 / 2
"""Largest study model at most half the target (20B on the 1-2-5 ladder for a 70B target). The
calibration measured extrapolations from 1.29x in parameters up (10% of the sweep's 3,135 designs
extrapolate at most 2x, from 7 families), so a 2x extrapolation has measured support; the earlier cap of
1/7 (10B) left budgets above ~$17k unused for a 70B target."""
PARTIAL_TARGET_RULE = "target_partial"
"""A design that trains the target itself on a fraction of its tokens and extrapolates its own curve."""
DEFAULT_PARTIAL_TARGET_FRACTIONS = (0.3,)
"""The Hitchhiker guide's advice when the budget allows: train the target to about 30% of its tokens."""
PARTIAL_TARGET_REFUSAL = (
    "unsupported: the collection's sweep holds no design that trains the target itself and extrapolates "
    "its own loss curve, so no measured error covers it (the Hitchhiker guide's advice for budgets that allow it)"
)
DEFAULT_TPP_RANGE = (0.25, 1000.0)
"""Tokens per parameter spanned by the public collection's runs when the database is not at hand
(Gadre et al.'s testbed reaches 0.25 to 640, Pythia's 70M run ~4,300; see
:func:`collection_tokens_per_param`)."""


@dataclass(frozen=True)
class StudyDesign:
    """A set of study runs: run i has ``sizes[i]`` parameters and is trained on ``tokens[i]`` tokens,
    and every run is repeated with ``seeds`` seeds.

    ``token_rule`` is one of :data:`TOKEN_RULES`; ``rule_value`` is its setting (tokens per
    parameter, the fraction of the target's tokens, or the number of compute budgets).
    """

    sizes: tuple[float, ...]
    tokens: tuple[float, ...]
    seeds: int
    token_rule: str
    rule_value: float
    run_seeds: tuple[int, ...] = ()
    """Seeds of each run when they differ (runs you entered); empty: every run has ``seeds``."""

    @property
    def seeds_per_run(self) -> tuple[int, ...]:
        """The seeds of each run (``run_seeds``, or ``seeds`` for every run)."""
        return self.run_seeds if self.run_seeds else (self.seeds,) * len(self.sizes)

    @property
    def num_runs(self) -> int:
        """Runs per seed."""
        return len(self.sizes)

    @property
    def num_sizes(self) -> int:
        """Distinct model sizes (an isoFLOP grid repeats sizes across budgets)."""
        return len({round(math.log10(n), 6) for n in self.sizes})

    @property
    def min_size(self) -> float:
        return min(self.sizes)

    @property
    def max_size(self) -> float:
        return max(self.sizes)

    @property
    def flops_one_seed(self) -> float:
        """sum_i 6 N_i D_i (FLOPs)."""
        return float(sum(FLOPS_PER_PARAM_TOKEN * n * d for n, d in zip(self.sizes, self.tokens)))

    @property
    def study_flops(self) -> float:
        """sum_i seeds_i * 6 N_i D_i (FLOPs): what the study spends (seeds * sum_i 6 N_i D_i when
        every run has the same seeds)."""
        if not self.run_seeds:
            return self.seeds * self.flops_one_seed
        return float(sum(s * FLOPS_PER_PARAM_TOKEN * n * d for n, d, s in zip(self.sizes, self.tokens, self.run_seeds)))

    @property
    def tokens_per_param(self) -> tuple[float, float]:
        """(smallest, largest) D_i / N_i over the runs."""
        ratios = [d / n for n, d in zip(self.sizes, self.tokens)]
        return min(ratios), max(ratios)

    def describe(self) -> str:
        """ "5 runs of 10M-1B parameters on 20 tokens/param, 2 seeds"."""
        if self.token_rule == CUSTOM_RULE:
            low, high = self.tokens_per_param
            rule = f"{low:.3g} tokens/param" if high <= low * 1.0001 else f"{low:.3g}-{high:.3g} tokens/param"
            seed_counts = sorted(set(self.seeds_per_run))
            seeds = (
                ""
                if seed_counts == [1]
                else f", {seed_counts[0]} seeds"
                if len(seed_counts) == 1
                else f", {seed_counts[0]}-{seed_counts[-1]} seeds"
            )
            return (
                f"your {self.num_runs} runs of {format_count(self.min_size)}-{format_count(self.max_size)} "
                f"parameters on {rule}{seeds}"
            )
        if self.token_rule == PARTIAL_TARGET_RULE:
            return (
                f"the target itself ({format_count(self.max_size)} parameters) on "
                f"{format_percent(self.rule_value, 0)} of its tokens ({format_count(self.tokens[0])})"
            )
        rule = {
            "tokens_per_param": f"{self.rule_value:g} tokens/param",
            "target_fraction": f"{format_percent(self.rule_value, 0)} of the target's tokens",
            "isoflop": f"an isoFLOP grid of {int(self.rule_value)} budgets",
        }[self.token_rule]
        seeds = f", {self.seeds} seeds" if self.seeds > 1 else ""
        return (
            f"{self.num_runs} runs of {format_count(self.min_size)}-{format_count(self.max_size)} "
            f"parameters on {rule}{seeds}"
        )


def collection_tokens_per_param(con: Any) -> tuple[float, float]:
    """(5th, 95th percentile) of tokens per parameter, D / N, over the collection's runs (final checkpoint).

    The span the error model has seen: a study run far outside it asks the calibration to
    extrapolate in a direction it was never measured in.
    """
    row = con.execute("""
        SELECT quantile_cont(tpp, 0.05), quantile_cont(tpp, 0.95) FROM (
            SELECT max(o.tokens_seen) / any_value(r.num_params) AS tpp
            FROM runs r JOIN observations o ON o.run_id = r.run_id
            WHERE r.num_params > 0 GROUP BY r.run_id)""").fetchone()
    if row is None or row[0] is None or not (row[0] > 0 and row[1] >= row[0]):
        return DEFAULT_TPP_RANGE
    return float(row[0]), float(row[1])


def _size_ladder(floor: float, top: float) -> list[float]:
    """1-2-5 series of largest-run sizes in [10 * floor, top] (empty if there is no room)."""
    if not top >= 10.0 * floor * (1 - 1e-9):
        return []  # also keeps log10 away from a top that underflowed to 0 (a tiny target)
    sizes = []
    for exponent in range(int(math.floor(math.log10(floor))), int(math.ceil(math.log10(top))) + 1):
        for mantissa in (1.0, 2.0, 5.0):
            size = mantissa * 10.0**exponent
            if 10.0 * floor * (1 - 1e-9) <= size <= top * (1 + 1e-9):
                sizes.append(size)
    return sizes


def study_designs(
    target_params: float,
    target_tokens: float,
    *,
    token_rules: Sequence[str] = TOKEN_RULES,
    tokens_per_param: Sequence[float] = DEFAULT_TOKENS_PER_PARAM,
    target_fractions: Sequence[float] = DEFAULT_TARGET_FRACTIONS,
    isoflop_grids: Sequence[tuple[int, int]] = DEFAULT_ISOFLOP_GRIDS,
    num_sizes: Sequence[int] = DEFAULT_NUM_RUNS,
    size_spans: Sequence[float] = DEFAULT_SIZE_SPANS,
    max_size_share: float = DEFAULT_MAX_SIZE_SHARE,
    min_size: float = DEFAULT_MIN_SIZE,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    tpp_range: tuple[float, float] | None = DEFAULT_TPP_RANGE,
    partial_target_fractions: Sequence[float] = DEFAULT_PARTIAL_TARGET_FRACTIONS,
) -> tuple[StudyDesign, ...]:
    """The design space: every study worth considering for a target of N parameters and D tokens.

    Largest study model: a 1-2-5 series from 10x ``min_size`` up to ``max_size_share`` x N
    (10B for a 70B target). For each largest size N_max and span s, k sizes
    geomspace(max(N_max / s, min_size), N_max, k). Tokens per run by rule:

    * ``tokens_per_param`` m: D_i = m N_i;
    * ``target_fraction`` f: D_i = f D (every run sees the same data);
    * ``isoflop`` (B budgets, m sizes): budgets C_j = C_top / 4^j, j = 0..B-1, with C_top =
      6 * 20 * (N_max / 2)^2 so the largest run is N_max; at each budget the sizes
      N_opt(C_j) * 2^linspace(-1, 1, m), N_opt(C) = sqrt(C / 120) (20 tokens per parameter),
      and D = C_j / (6 N).

    Each design repeated for every seed count. Designs with a run outside ``tpp_range`` (tokens
    per parameter, default: what the collection spans; None allows anything) are left out.

    Besides, for each f in ``partial_target_fractions``, the target itself trained on f D tokens
    (:data:`PARTIAL_TARGET_RULE`, cost 6 N f D, one seed): priced and shown, never ranked, since no
    design of the collection's sweep measures its error.
    Raises :class:`PlanningError` on bad inputs or when nothing is left.
    """
    n_target = _positive("the target's parameters", target_params, MAX_PARAMS)
    d_target = _positive("the target's tokens", target_tokens, MAX_TOKENS, minimum=MIN_COUNT)
    floor = _positive("the smallest model size", min_size, MAX_PARAMS, minimum=MIN_COUNT)
    share = _fraction("the largest study model's share of the target", max_size_share)
    unknown = set(token_rules) - set(TOKEN_RULES)
    if unknown or not token_rules:
        raise PlanningError(f"token rules must be among {', '.join(TOKEN_RULES)}")
    top = share * n_target
    ladder = _size_ladder(floor, top)
    if not ladder:
        raise PlanningError(
            f"the target ({format_count(n_target)} parameters) leaves no room for a study between "
            f"{format_count(floor)} and {format_count(top)} parameters"
        )
    seed_counts = sorted({int(s) for s in seeds if int(s) >= 1}) or [1]
    low, high = (0.0, math.inf) if tpp_range is None else tpp_range
    shapes: list[tuple[tuple[float, ...], tuple[float, ...], str, float]] = []
    for n_max in ladder:
        for span in size_spans:
            for k in sorted({int(k) for k in num_sizes if int(k) >= 2}):
                ladder_sizes = np.geomspace(max(n_max / span, floor), n_max, k)
                if ladder_sizes[0] >= ladder_sizes[-1]:
                    continue
                row = tuple(float(x) for x in ladder_sizes)
                if "tokens_per_param" in token_rules:
                    for m in tokens_per_param:
                        shapes.append((row, tuple(float(m) * x for x in row), "tokens_per_param", float(m)))
                if "target_fraction" in token_rules:
                    for f in target_fractions:
                        shapes.append((row, (float(f) * d_target,) * k, "target_fraction", float(f)))
        if "isoflop" in token_rules:
            for budgets, per_budget in isoflop_grids:
                c_top = FLOPS_PER_PARAM_TOKEN * COMPUTE_OPTIMAL_MULTIPLIER * (n_max / ISOFLOP_SIZE_SPREAD) ** 2
                runs_n, runs_d = [], []
                for j in range(int(budgets)):
                    c = c_top / ISOFLOP_BUDGET_STEP**j
                    n_opt = math.sqrt(c / (FLOPS_PER_PARAM_TOKEN * COMPUTE_OPTIMAL_MULTIPLIER))
                    for n in n_opt * ISOFLOP_SIZE_SPREAD ** np.linspace(-1, 1, int(per_budget)):
                        runs_n.append(float(n))
                        runs_d.append(c / (FLOPS_PER_PARAM_TOKEN * n))
                if min(runs_n) >= floor:
                    shapes.append((tuple(runs_n), tuple(runs_d), "isoflop", float(budgets)))
    designs = []
    seen = set()
    for sizes, tokens, rule, value in shapes:
        ratios = [d / n for n, d in zip(sizes, tokens)]
        if min(ratios) < low * (1 - 1e-9) or max(ratios) > high * (1 + 1e-9):
            continue
        key = (tuple(round(math.log10(x), 6) for x in sizes), tuple(round(math.log10(x), 6) for x in tokens))
        if key in seen:
            continue
        seen.add(key)
        for s in seed_counts:
            designs.append(
                StudyDesign(
                    sizes=tuple(float(x) for x in sizes),
                    tokens=tuple(float(x) for x in tokens),
                    seeds=s,
                    token_rule=rule,
                    rule_value=value,
                )
            )
    if designs:
        for f in sorted({float(f) for f in partial_target_fractions if 0 < float(f) < 1}):
            designs.append(
                StudyDesign(
                    sizes=(n_target,), tokens=(f * d_target,), seeds=1, token_rule=PARTIAL_TARGET_RULE, rule_value=f
                )
            )
    if not designs:
        raise PlanningError(
            f"every candidate design has a run outside the collection's {low:.3g}-{high:.3g} "
            "tokens per parameter; allow runs outside that range or change the token rules"
        )
    return tuple(designs)


# ---------------------------------------------------------------------------------------------
# Expected accuracy and the pick


class AREModel(Protocol):
    """What the planner needs from :class:`core.calibration.Calibration`."""

    def are_quantiles(self, features: Any) -> Any: ...


@dataclass(frozen=True)
class ExpectedARE:
    """Expected ARE (fractions) of the target's predicted loss for one design, and its support."""

    median: float
    p80: float
    p90: float
    fits: int
    families: int
    thin_support: bool
    groups: int = 0  # source groups behind the numbers


@dataclass(frozen=True)
class AssessedDesign:
    """A design, what it costs and how accurate its prediction is expected to be.

    ``expected`` is None when the error model refuses the design (``refusal`` says why);
    ``param_ratio`` = N_target / N_max and ``compute_ratio`` = 6 N D / (sum_i 6 N_i D_i) are the
    features the error model sees.
    """

    design: StudyDesign
    cost: ComputeCost
    param_ratio: float
    compute_ratio: float
    expected: ExpectedARE | None
    refusal: str | None = None

    @property
    def rankable(self) -> bool:
        """Supported well enough to be picked: an expected ARE without thin support."""
        return self.expected is not None and not self.expected.thin_support

    @property
    def are_p80(self) -> float:
        return self.expected.p80 if self.expected is not None else math.inf


@dataclass(frozen=True)
class StudyPlan:
    """The planner's answer: every design assessed, the pick, and the Pareto frontier.

    ``designs`` are sorted by cost. ``pick`` is an index into ``designs`` (None when no rankable
    design fits the budget). ``meets_goal`` says whether the pick's 80th-percentile ARE is at
    most ``goal_are``; ``budget_to_meet`` is the cost (US$) of the cheapest rankable design that
    meets the goal in the whole design space (None when none does). ``frontier`` holds the
    indices of rankable designs that no cheaper-or-equal design beats on p80 ARE.
    ``message`` explains a missing error model.
    """

    target_params: float
    target_tokens: float
    budget_dollars: float
    goal_are: float
    designs: tuple[AssessedDesign, ...]
    pick: int | None
    meets_goal: bool
    budget_to_meet: float | None
    frontier: tuple[int, ...]
    message: str | None = None
    size_cap: float = math.nan
    """Largest study model the design space allows (parameters): ``max_size_share`` x N."""
    size_share: float = DEFAULT_MAX_SIZE_SHARE
    target_cost_dollars: float = math.nan
    """What training the target itself costs (US$) under the same cost model."""

    @property
    def picked(self) -> AssessedDesign | None:
        return None if self.pick is None else self.designs[self.pick]

    @property
    def within_budget(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.designs) if a.cost.dollars <= self.budget_dollars)

    def table(self) -> pd.DataFrame:
        """One row per design (numbers, not text): the page's and the CLI's design table."""
        rows = []
        for i, a in enumerate(self.designs):
            d, e = a.design, a.expected
            rows.append(
                {
                    "pick": i == self.pick,
                    "frontier": i in self.frontier,
                    "within_budget": a.cost.dollars <= self.budget_dollars,
                    "num_runs": d.num_runs,
                    "num_sizes": d.num_sizes,
                    "sizes": d.sizes,
                    "tokens": d.tokens,
                    "min_size": d.min_size,
                    "max_size": d.max_size,
                    "token_rule": d.token_rule,
                    "rule_value": d.rule_value,
                    "seeds": d.seeds,
                    "study_flops": d.study_flops,
                    "gpu_hours": a.cost.gpu_hours,
                    "dollars": a.cost.dollars,
                    "param_ratio": a.param_ratio,
                    "compute_ratio": a.compute_ratio,
                    "are_median": e.median if e else math.nan,
                    "are_p80": e.p80 if e else math.nan,
                    "are_p90": e.p90 if e else math.nan,
                    "fits": e.fits if e else 0,
                    "families": e.families if e else 0,
                    "thin_support": e.thin_support if e else True,
                    "refusal": a.refusal or "",
                }
            )
        return pd.DataFrame(rows)


def _design_features(design: StudyDesign, n_target: float, d_target: float) -> Any:
    from scaleplan.core.calibration import DesignFeatures  # local: the error model is optional at import

    # tokens_per_param: the calibration refuses a target regime no collection target was measured in,
    # as it does for the same target on the Fit page (one model, one set of refusals).
    return DesignFeatures(
        num_sizes=design.num_sizes,
        param_ratio=n_target / design.max_size,
        compute_ratio=FLOPS_PER_PARAM_TOKEN * n_target * d_target / design.flops_one_seed,
        tokens_per_param=d_target / n_target,
    )


def assess_designs(
    designs: Sequence[StudyDesign],
    target_params: float,
    target_tokens: float,
    *,
    calibration: AREModel | None,
    cost: CostModel,
) -> tuple[AssessedDesign, ...]:
    """Cost and expected ARE of each design, sorted by cost (then p80 ARE).

    The expected ARE comes from ``calibration.are_quantiles(DesignFeatures(...))``: median,
    80th and 90th percentile of ARE for fits with that many sizes, that far (in parameters and in
    compute) from the target, with its support (fits, families). A design the calibration
    refuses, or every design when ``calibration`` is None, has ``expected`` None.
    """
    n_target = _positive("the target's parameters", target_params, MAX_PARAMS)
    d_target = _positive("the target's tokens", target_tokens, MAX_TOKENS, minimum=MIN_COUNT)
    cache: dict[tuple[float, ...], tuple[ExpectedARE | None, str | None]] = {}
    out = []
    for design in designs:
        expected: ExpectedARE | None
        refusal: str | None
        key = (
            design.num_sizes,
            round(math.log10(n_target / design.max_size), 4),
            round(math.log10(n_target * d_target / (design.flops_one_seed / FLOPS_PER_PARAM_TOKEN)), 4),
        )
        if design.token_rule == PARTIAL_TARGET_RULE:
            expected, refusal = None, PARTIAL_TARGET_REFUSAL
        elif calibration is None:
            expected, refusal = None, "no error model (the meta-analysis results are missing)"
        elif key in cache:
            expected, refusal = cache[key]
        else:
            features = _design_features(design, n_target, d_target)
            answer = calibration.are_quantiles(features)
            if hasattr(answer, "median"):
                expected, refusal = (
                    ExpectedARE(
                        median=float(answer.median),
                        p80=float(answer.p80),
                        p90=float(answer.p90),
                        fits=int(answer.cells),
                        families=int(answer.families),
                        thin_support=bool(answer.thin_support),
                        groups=int(getattr(answer, "groups", 0)),
                    ),
                    None,
                )
                if not (math.isfinite(expected.median) and math.isfinite(expected.p80)):
                    expected, refusal = None, "the error model gave no finite ARE"
            else:
                expected, refusal = None, str(getattr(answer, "reason", answer))
            cache[key] = (expected, refusal)
        out.append(
            AssessedDesign(
                design=design,
                cost=cost.of(design.study_flops),
                param_ratio=n_target / design.max_size,
                compute_ratio=FLOPS_PER_PARAM_TOKEN * n_target * d_target / design.flops_one_seed,
                expected=expected,
                refusal=refusal,
            )
        )
    out.sort(key=lambda a: (a.design.study_flops, a.are_p80, a.design.num_runs))
    return tuple(out)


def pareto_frontier(designs: Sequence[AssessedDesign]) -> tuple[int, ...]:
    """Indices of rankable designs not beaten by a cheaper-or-equal one on p80 ARE (``designs`` sorted by cost)."""
    best, frontier = math.inf, []
    for i, a in enumerate(designs):
        if a.rankable and a.are_p80 < best:
            best = a.are_p80
            frontier.append(i)
    return tuple(frontier)


def choose(designs: Sequence[AssessedDesign], budget_dollars: float, goal_are: float) -> tuple[int | None, bool]:
    """The pick among rankable designs costing at most ``budget_dollars``: (index, meets goal).

    The cheapest whose 80th-percentile ARE is at most ``goal_are``; when none meets it, the one
    with the smallest 80th-percentile ARE (the cheaper on a tie). Thin-support and refused
    designs are never picked. Raising the budget only adds candidates, so the pick's p80 ARE
    never gets worse.
    """
    pool = [i for i, a in enumerate(designs) if a.rankable and a.cost.dollars <= budget_dollars]
    if not pool:
        return None, False
    meeting = [i for i in pool if designs[i].are_p80 <= goal_are]
    if meeting:
        return min(meeting, key=lambda i: (designs[i].cost.dollars, designs[i].are_p80)), True
    return min(pool, key=lambda i: (designs[i].are_p80, designs[i].cost.dollars)), False


def plan_study(
    target_params: float,
    target_tokens: float,
    *,
    budget_dollars: float,
    goal_are: float,
    calibration: AREModel | None,
    cost: CostModel | None = None,
    designs: Sequence[StudyDesign] | None = None,
    message: str | None = None,
    **design_options: Any,
) -> StudyPlan:
    """Assess the design space for a target and pick the study to run within ``budget_dollars``.

    ``goal_are`` is the accuracy needed as a fraction (0.05 for 5%). ``designs`` default to
    :func:`study_designs` (``design_options`` are passed on). See :func:`choose` for the rule.
    """
    budget = _positive("the study budget in dollars", budget_dollars, MAX_DOLLARS)
    goal = _positive("the accuracy needed (ARE)", goal_are, 10.0)
    cost = cost or CostModel()
    training_flops(target_params, target_tokens)
    if designs is None:
        designs = study_designs(target_params, target_tokens, **design_options)
    share = float(design_options.get("max_size_share", DEFAULT_MAX_SIZE_SHARE))
    assessed = assess_designs(designs, target_params, target_tokens, calibration=calibration, cost=cost)
    pick, meets = choose(assessed, budget, goal)
    meeting = [a.cost.dollars for a in assessed if a.rankable and a.are_p80 <= goal]
    return StudyPlan(
        target_params=float(target_params),
        target_tokens=float(target_tokens),
        budget_dollars=budget,
        goal_are=goal,
        designs=assessed,
        pick=pick,
        meets_goal=meets,
        budget_to_meet=min(meeting) if meeting else None,
        frontier=pareto_frontier(assessed),
        message=message if calibration is None else None,
        size_cap=share * float(target_params),
        size_share=share,
        target_cost_dollars=cost.of(training_flops(target_params, target_tokens)).dollars,
    )


# ---------------------------------------------------------------------------------------------
# Your own candidate runs

MAX_CANDIDATE_RUNS = 200
MAX_RUN_SEEDS = 100
RUN_COLUMNS = ("num_params", "tokens", "seeds")
"""The columns of a runs file (``scaleplan plan --runs-file``) and of the page's table: parameters,
tokens (or ``tokens_per_param`` instead) and seeds (optional, default 1)."""


def _cell(value: object, *, row: int, column: str) -> float:
    """One number of a runs table: a number or text such as "150M" (:func:`core.units.parse_number`)."""
    where = f"row {row}, {column}"
    if isinstance(value, str):
        try:
            return units.parse_number(value, name=where)
        except units.NumberSyntaxError as error:
            raise PlanningError(str(error)) from None
    if value is None or isinstance(value, bool):
        raise PlanningError(f"{where} is empty; give a number like 150M or 1.5e8")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PlanningError(f"{where}: cannot read {str(value)[:40]!r}; give a number like 150M") from None
    if math.isnan(number):
        raise PlanningError(f"{where} is empty; give a number like 150M or 1.5e8")
    return number


def candidate_design(runs: pd.DataFrame) -> StudyDesign:
    """The runs a person entered as a design: one row per run, columns ``num_params``, ``tokens`` (or
    ``tokens_per_param``, D = m N, used in a row whose tokens are empty) and optionally ``seeds`` (whole
    number, default 1); cells may be
    numbers or text such as "150M" or "3B". Column names are matched case-insensitively; rows that
    are entirely empty are skipped.

    The cost is sum_i seeds_i * 6 N_i D_i (:attr:`StudyDesign.study_flops`). Raises
    :class:`PlanningError` naming the row and column of the first unusable cell, a missing column,
    no runs or more than :data:`MAX_CANDIDATE_RUNS`.
    """
    if not isinstance(runs, pd.DataFrame):
        raise PlanningError("the runs must be a table with columns num_params, tokens and seeds")
    columns = {str(c).strip().lower(): c for c in runs.columns}
    found = ", ".join(str(c) for c in runs.columns) or "none"
    if "num_params" not in columns or not ({"tokens", "tokens_per_param"} & set(columns)):
        raise PlanningError(
            "the runs need the columns num_params and tokens (or tokens_per_param), and optionally seeds; "
            f"found: {found}"
        )
    frame = runs.rename(columns={v: k for k, v in columns.items()})
    present = [c for c in ("num_params", "tokens", "tokens_per_param", "seeds") if c in frame.columns]
    frame = frame[present].replace("", np.nan)
    frame = frame[~frame.isna().all(axis=1)]
    if frame.empty:
        raise PlanningError("the runs table has no runs; give one row per run (num_params, tokens, seeds)")
    if len(frame) > MAX_CANDIDATE_RUNS:
        raise PlanningError(f"the runs table has {len(frame):,} runs; at most {MAX_CANDIDATE_RUNS} are planned")
    sizes, tokens, seeds = [], [], []
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        n = _cell(record["num_params"], row=number, column="num_params")
        _positive(f"row {number}: num_params", n, MAX_PARAMS, minimum=MIN_COUNT)
        given = record.get("tokens")
        if given is None or (isinstance(given, float) and math.isnan(given)):
            ratio = record.get("tokens_per_param")
            if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
                raise PlanningError(f"row {number}: give its tokens or its tokens_per_param")
            value = _cell(ratio, row=number, column="tokens_per_param")
            _positive(f"row {number}: tokens_per_param", value, 1e6)
            value = value * n
        else:
            value = _cell(given, row=number, column="tokens")
        d = _positive(f"row {number}: tokens", value, MAX_TOKENS, minimum=MIN_COUNT)
        raw_seeds = record.get("seeds")
        if raw_seeds is None or (isinstance(raw_seeds, float) and math.isnan(raw_seeds)):
            k = 1.0
        else:
            k = _cell(raw_seeds, row=number, column="seeds")
        if not (k.is_integer() and 1 <= k <= MAX_RUN_SEEDS):
            raise PlanningError(f"row {number}, seeds: give a whole number from 1 to {MAX_RUN_SEEDS}, got {k:g}")
        training_flops(n, d)  # a run beyond any realistic compute
        sizes.append(n)
        tokens.append(d)
        seeds.append(int(k))
    return StudyDesign(
        sizes=tuple(sizes),
        tokens=tuple(tokens),
        seeds=min(seeds),
        token_rule=CUSTOM_RULE,
        rule_value=float(len(sizes)),
        run_seeds=tuple(seeds) if len(set(seeds)) > 1 else (),
    )


def read_runs_file(path: object) -> StudyDesign:
    """:func:`candidate_design` of a CSV file (columns num_params, tokens or tokens_per_param, seeds).

    Raises :class:`PlanningError` with a plain message for a missing, unreadable or malformed file."""
    from pathlib import Path

    file = Path(str(path))
    if not file.is_file():
        raise PlanningError(f"no runs file at {file}")
    try:
        frame = pd.read_csv(file, dtype=str, skipinitialspace=True, nrows=MAX_CANDIDATE_RUNS + 1)
    except pd.errors.EmptyDataError:
        raise PlanningError(f"the runs file {file.name} is empty; give a header num_params,tokens,seeds") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise PlanningError(f"the runs file {file.name} is not a readable CSV ({first})") from None
    try:
        return candidate_design(frame)
    except PlanningError as error:
        raise PlanningError(f"{file.name}: {error}") from None


def design_runs(design: StudyDesign, cost: CostModel) -> pd.DataFrame:
    """The run-by-run list of a design: num_params, tokens, tokens_per_param, seeds, flops (all seeds,
    6 N D per seed), gpu_hours and cost_dollars of each run; the costs add up to the design's."""
    n = np.asarray(design.sizes, dtype=float)
    d = np.asarray(design.tokens, dtype=float)
    k = np.asarray(design.seeds_per_run, dtype=int)
    flops = k * FLOPS_PER_PARAM_TOKEN * n * d
    hours = flops / (cost.flops_per_dollar * cost.dollars_per_gpu_hour)
    return pd.DataFrame(
        {
            "num_params": n,
            "tokens": d,
            "tokens_per_param": d / n,
            "seeds": k,
            "flops": flops,
            "gpu_hours": hours,
            "cost_dollars": hours * cost.dollars_per_gpu_hour,
        }
    )


def assess_candidate(
    design: StudyDesign,
    target_params: float,
    target_tokens: float,
    *,
    calibration: AREModel | None,
    cost: CostModel,
) -> AssessedDesign:
    """Cost and expected ARE of one design (runs you entered), from the same calibrated model and the
    same refusals as every generated design (:func:`assess_designs`)."""
    return assess_designs([design], target_params, target_tokens, calibration=calibration, cost=cost)[0]


# ---------------------------------------------------------------------------------------------
# The next rung of a stored study (issue 21, item 5)

NEXT_BUDGET_FACTORS = (2.0, 4.0)  # a new isoFLOP budget this many times the study's largest run's compute
NEXT_SIZE_FACTORS = (2.0, 4.0)  # a new size this many times the study's largest model
NEXT_BUDGET_SIZES = 5  # sizes at a new budget: N_opt(C) * 2^linspace(-1, 1, 5)


@dataclass(frozen=True)
class RungAddition:
    """One candidate addition to a study: ``added`` (the new runs only, priced in ``cost``) and ``after``
    (the study with them, as the error model sees it; its ``cost`` is the addition's)."""

    kind: str  # "budget", "size" or "seeds"
    label: str
    added: StudyDesign
    after: AssessedDesign

    @property
    def cost(self) -> ComputeCost:
        return self.after.cost


@dataclass(frozen=True)
class NextRung:
    """What to train next from a study's runs: the study as it stands (``existing``, its cost the runs'
    own), the additions by cost, and the pick among them (:func:`choose`'s rule on the additions'
    cost and the expected ARE after adding each)."""

    existing: AssessedDesign
    additions: tuple[RungAddition, ...]
    pick: int | None
    meets_goal: bool
    budget_dollars: float
    goal_are: float

    @property
    def picked(self) -> RungAddition | None:
        return None if self.pick is None else self.additions[self.pick]


def study_design(curves: pd.DataFrame) -> StudyDesign:
    """A stored study's runs as a design: one run per ``run_id`` with its ``num_params`` and the most
    tokens it reached (``tokens_seen``), one seed each."""
    missing = {"run_id", "num_params", "tokens_seen"} - set(curves.columns)
    if missing:
        raise PlanningError(f"the study's rows lack {', '.join(sorted(missing))}")
    runs = curves.groupby("run_id").agg(num_params=("num_params", "first"), tokens=("tokens_seen", "max"))
    if runs.empty:
        raise PlanningError("the study has no runs")
    return candidate_design(runs.reset_index(drop=True).sort_values(["num_params", "tokens"]))


def _joined(existing: StudyDesign, sizes: Sequence[float], tokens: Sequence[float]) -> StudyDesign:
    return StudyDesign(
        sizes=existing.sizes + tuple(float(n) for n in sizes),
        tokens=existing.tokens + tuple(float(d) for d in tokens),
        seeds=1,
        token_rule=CUSTOM_RULE,
        rule_value=float(existing.num_runs + len(sizes)),
    )


def next_rung(
    existing: StudyDesign,
    target_params: float,
    target_tokens: float,
    *,
    calibration: AREModel | None,
    cost: CostModel,
    budget_dollars: float,
    goal_are: float,
) -> NextRung:
    """Candidate additions to a study, each priced and with the target's expected ARE after adding it.

    * a new isoFLOP budget C = f x max_i 6 N_i D_i (f in :data:`NEXT_BUDGET_FACTORS`): sizes
      N_opt(C) 2^linspace(-1, 1, 5), N_opt(C) = sqrt(C / 120) (20 tokens per parameter), D = C / (6 N);
    * two new sizes in the largest existing budget C_top = max_i 6 N_i D_i: N_top / 2 and 2 N_top (N_top
      the size of that run), D = C_top / (6 N);
    * a new size f x max N_i (f in :data:`NEXT_SIZE_FACTORS`) at the study's median tokens per parameter;
    * one more seed of every run (cost: the study again; expected ARE unchanged, :data:`SEEDS_NOTE`).

    Sizes at or above the target are left out. The pick: the cheapest addition whose p80 meets
    ``goal_are`` within ``budget_dollars``, else the most accurate within it (:func:`choose`).
    """
    budget = _positive("the study budget in dollars", budget_dollars, MAX_DOLLARS)
    goal = _positive("the accuracy needed (ARE)", goal_are, 10.0)
    n_target = _positive("the target's parameters", target_params, MAX_PARAMS)
    d_target = _positive("the target's tokens", target_tokens, MAX_TOKENS, minimum=MIN_COUNT)
    own = assess_candidate(existing, n_target, d_target, calibration=calibration, cost=cost)
    top = max(FLOPS_PER_PARAM_TOKEN * n * d for n, d in zip(existing.sizes, existing.tokens))
    median_tpp = float(np.median(np.asarray(existing.tokens) / np.asarray(existing.sizes)))
    options: list[tuple[str, str, tuple[float, ...], tuple[float, ...]]] = []
    for f in NEXT_BUDGET_FACTORS:
        c = f * top
        n_opt = math.sqrt(c / (FLOPS_PER_PARAM_TOKEN * COMPUTE_OPTIMAL_MULTIPLIER))
        sizes = tuple(float(n) for n in n_opt * ISOFLOP_SIZE_SPREAD ** np.linspace(-1, 1, NEXT_BUDGET_SIZES))
        if max(sizes) < n_target:
            tokens = tuple(c / (FLOPS_PER_PARAM_TOKEN * n) for n in sizes)
            options.append(
                ("budget", f"a new isoFLOP budget of {format_flops(c)} ({f:g}x your largest run)", sizes, tokens)
            )
    at_top = max(zip(existing.sizes, existing.tokens), key=lambda r: r[0] * r[1])[0]
    sizes = (at_top / ISOFLOP_SIZE_SPREAD, at_top * ISOFLOP_SIZE_SPREAD)
    if max(sizes) < n_target:
        options.append(
            (
                "size",
                f"2 new sizes at your largest budget ({format_flops(top)}): {format_count(sizes[0])} and "
                f"{format_count(sizes[1])}",
                sizes,
                tuple(top / (FLOPS_PER_PARAM_TOKEN * n) for n in sizes),
            )
        )
    for f in NEXT_SIZE_FACTORS:
        n = f * existing.max_size
        if n < n_target:
            options.append(
                (
                    "size",
                    f"a {format_count(n)}-parameter run ({f:g}x your largest) at {median_tpp:.3g} tokens/param",
                    (n,),
                    (median_tpp * n,),
                )
            )
    additions = []
    for kind, label, sizes, tokens in options:
        added = StudyDesign(sizes=sizes, tokens=tokens, seeds=1, token_rule=CUSTOM_RULE, rule_value=float(len(sizes)))
        after = assess_candidate(
            _joined(existing, sizes, tokens), n_target, d_target, calibration=calibration, cost=cost
        )
        additions.append(RungAddition(kind, label, added, dataclasses.replace(after, cost=cost.of(added.study_flops))))
    seeds_after = dataclasses.replace(own, cost=cost.of(existing.study_flops))
    additions.append(
        RungAddition("seeds", "one more seed of every run", dataclasses.replace(existing, seeds=1), seeds_after)
    )
    additions.sort(key=lambda a: a.cost.dollars)
    # Extra seeds have no measured gain (seed_evidence): shown, priced, never picked.
    ranked = [i for i, a in enumerate(additions) if a.kind != "seeds"]
    sub, meets = choose([additions[i].after for i in ranked], budget, goal)
    pick = None if sub is None else ranked[sub]
    return NextRung(
        existing=own, additions=tuple(additions), pick=pick, meets_goal=meets, budget_dollars=budget, goal_are=goal
    )


def next_rung_text(rung: NextRung) -> str:
    """The next rung in plain sentences, from the typed result."""
    e = rung.existing.expected
    now = (
        f"Your study ({rung.existing.design.num_runs} runs of {format_count(rung.existing.design.min_size)}-"
        f"{format_count(rung.existing.design.max_size)} parameters) predicts the target with "
        + (
            f"{format_percent(e.p80)} ARE at the 80th percentile."
            if e is not None
            else f"no expected accuracy ({rung.existing.refusal})."
        )
    )
    picked = rung.picked
    if picked is None:
        cheapest = min((a.cost.dollars for a in rung.additions), default=math.nan)
        return now + (
            f" No addition with an expected accuracy fits the {format_dollars(rung.budget_dollars)} budget"
            + (f"; the cheapest costs {format_dollars(cheapest)}." if math.isfinite(cheapest) else ".")
        )
    after = picked.after.expected
    assert after is not None
    if e is not None and after.p80 >= e.p80 and not rung.meets_goal:
        return now + (
            " No addition within the budget improves it: the error model expects the same or a larger error after "
            f"each (the best, {picked.label} for {format_dollars(picked.cost.dollars)}, gives "
            f"{format_percent(after.p80)})."
        )
    verdict = (
        f"meets the {format_percent(rung.goal_are)} goal"
        if rung.meets_goal
        else f"is the most accurate addition within the budget; none meets the {format_percent(rung.goal_are)} goal"
    )
    return (
        now + f" Add {picked.label} for {format_dollars(picked.cost.dollars)}: after it, "
        f"{format_percent(after.p80)} at the 80th percentile ({format_percent(after.median)} median), which {verdict}."
    )


# ---------------------------------------------------------------------------------------------
# Seeds


SEEDS_NOTE = (
    "Extra seeds multiply the cost; the collection holds no multi-seed family to measure what they buy, so the "
    "expected ARE is the 1-seed value (scaleplan reproduce calibration --json, seeds)."
)
"""Said next to runs with more than one seed (see :func:`seed_evidence`)."""


@dataclass(frozen=True)
class SeedEvidence:
    """What the collection says about extra seeds.

    ``families`` / ``groups``: multi-seed families (two or more runs of one size, tokens, architecture
    and data with distinct seeds) and their source groups; ``replicated_runs``: such (family, size,
    tokens) cells. ``measured`` is False when there is nothing to measure on; then ``gain`` is
    None and extra seeds keep the 1-seed expected ARE. ``gain`` maps a seed count (2, 3) to the
    ratio of held-out ARE with that many seeds to ARE with one.
    """

    families: int
    groups: int
    replicated_runs: int
    measured: bool
    gain: Mapping[int, float] | None
    statement: str

    def as_dict(self) -> dict[str, object]:
        return {
            "multi_seed_families": self.families,
            "source_groups": self.groups,
            "replicated_runs": self.replicated_runs,
            "measured": self.measured,
            "are_ratio_by_seeds": None if self.gain is None else {str(k): v for k, v in self.gain.items()},
            "expected_are_2_seeds": "same as 1 seed" if not self.measured else "scaled by are_ratio_by_seeds",
            "expected_are_3_seeds": "same as 1 seed" if not self.measured else "scaled by are_ratio_by_seeds",
            "statement": self.statement,
        }


def seed_evidence(replicates: pd.DataFrame, num_families: int) -> SeedEvidence:
    """:class:`SeedEvidence` from :func:`core.storage.seed_replicates` (columns family, source, runs, seeds)
    over a collection of ``num_families`` families.

    A gain would be measured by fitting each multi-seed family's ladder with 1, 2 and 3 seeds per size
    (seed losses averaged) and comparing the held-out ARE on its largest run, leaving whole source
    groups out. With no multi-seed family there is nothing to fit, and the statement says so."""
    families = int(replicates["family"].nunique()) if len(replicates) else 0
    groups = int(replicates["source"].nunique()) if len(replicates) else 0
    if families < 2 or groups < 2:
        found = (
            "no family of the collection repeats a run with a second seed"
            if families == 0
            else f"only {families} multi-seed famil{'y' if families == 1 else 'ies'} in {groups} source group"
            + ("" if groups == 1 else "s")
        )
        return SeedEvidence(
            families=families,
            groups=groups,
            replicated_runs=int(len(replicates)),
            measured=False,
            gain=None,
            statement=(
                f"No seed gain measured: {found} (of {num_families} families), too few to measure held out by "
                "source group. Expected ARE with 2 or 3 seeds is the 1-seed value, and the planner does not offer "
                "extra seeds as an improvement; they multiply the cost."
            ),
        )
    return SeedEvidence(  # pragma: no cover - the collection has no multi-seed family yet
        families=families,
        groups=groups,
        replicated_runs=int(len(replicates)),
        measured=False,
        gain=None,
        statement=(
            f"{families} multi-seed families in {groups} source groups; the held-out seed fit is not implemented, "
            "so expected ARE with 2 or 3 seeds is the 1-seed value."
        ),
    )


# ---------------------------------------------------------------------------------------------
# Over-training


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


def overtraining_tradeoff(
    params: Mapping[str, float],
    compute_flops: float,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    downstream: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Loss, downstream error and inference cost of spending ``compute_flops`` at each multiplier M.

    For each token multiplier M (tokens per parameter) at fixed training compute C:

        N = sqrt(C / (6 M)),  D = M N          (so 6 N D = C and D / N = M)
        loss    L = E + A N^-alpha + B D^-beta  (equal to Gadre et al.'s E + (a M^eta + b M^-eta) C^-eta
                                                 when ``params`` are the over-training law's E, a, b, eta)
        error   Err = eps - k exp(-gamma L)    (with ``downstream`` = {eps, k, gamma})
        inference FLOPs per token = 2 N

    ``inference_relative`` is 2 N / (2 N_opt) where N_opt is the compute-optimal size for C
    (:func:`core.laws.compute_optimal_allocation`) and ``inference_saved`` = 1 -
    inference_relative (negative below the optimal multiplier). ``loss_increase`` is the loss
    above the compute-optimal loss. Columns: multiplier, num_params, tokens, compute_flops, loss,
    loss_increase, downstream_error (NaN without ``downstream``), inference_flops_per_token,
    inference_relative, inference_saved.
    """
    C = _positive("the training compute", compute_flops, MAX_FLOPS, unit=" FLOPs")
    if len(multipliers) == 0:
        raise PlanningError("give at least one token multiplier")
    M = np.array([_positive("a token multiplier", m, 1e6) for m in multipliers], dtype=float)
    chin = _as_chinchilla(params)
    ds = None
    if downstream is not None:
        missing = {"eps", "k", "gamma"} - set(downstream)
        if missing:
            raise PlanningError(f"the downstream law needs eps, k and gamma (missing {', '.join(sorted(missing))})")
        ds = [
            _finite("eps", downstream["eps"]),
            _law_value("k", downstream["k"], math.inf),
            _law_value("gamma", downstream["gamma"], math.inf),
        ]
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            N = np.sqrt(C / (FLOPS_PER_PARAM_TOKEN * M))
            D = M * N
            loss = laws.chinchilla_loss(N, D, **chin)
            n_opt, d_opt = laws.compute_optimal_allocation(C, **chin)
            loss_opt = float(laws.chinchilla_loss(n_opt, d_opt, **chin))
            error = laws.downstream_error(loss, *ds) if ds is not None else np.full_like(loss, np.nan)
            relative = N / float(n_opt)
        usable = (
            np.isfinite(loss).all()
            and math.isfinite(loss_opt)
            and np.isfinite(relative).all()
            and (relative > 0).all()
            and (ds is None or np.isfinite(error).all())
        )
    except (ZeroDivisionError, OverflowError):
        usable = False
    if not usable:
        raise PlanningError(
            f"the law cannot be evaluated at {format_flops(C)}: a term overflows "
            "(check the law's parameters and the compute)"
        )
    return pd.DataFrame(
        {
            "multiplier": M,
            "num_params": N,
            "tokens": D,
            "compute_flops": FLOPS_PER_PARAM_TOKEN * N * D,
            "loss": loss,
            "loss_increase": loss - loss_opt,
            "downstream_error": error,
            "inference_flops_per_token": INFERENCE_FLOPS_PER_PARAM_TOKEN * N,
            "inference_relative": relative,
            "inference_saved": 1.0 - relative,
        }
    )


def overtraining_choice(table: pd.DataFrame, max_loss_increase: float = 0.01) -> pd.Series | None:
    """The most over-trained option of :func:`overtraining_tradeoff` that costs little loss.

    Among rows above the compute-optimal size's multiplier that save inference compute, the one
    with the largest multiplier whose loss is at most ``max_loss_increase`` (a fraction, default
    1%) above the compute-optimal loss. None when no row qualifies.
    """
    if table is None or table.empty:
        return None
    optimal_loss = table["loss"] - table["loss_increase"]
    ok = table[(table["inference_saved"] > 0) & (table["loss_increase"] <= max_loss_increase * optimal_loss)]
    if ok.empty:
        return None
    return ok.sort_values("multiplier").iloc[-1]


# ---------------------------------------------------------------------------------------------
# Compute-optimal allocation under several laws

HOFFMANN2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
"""Hoffmann et al. (2022), *Training Compute-Optimal Large Language Models*, approach 3 (eq. 10):
L(N, D) = 1.69 + 406.4 / N^0.34 + 410.7 / D^0.28, as printed in the paper's body."""

BESIROGLU2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
"""Besiroglu, Erdil, Barnett, You (2024), *Chinchilla Scaling: A replication attempt*
(arXiv:2404.10102), their refit of approach 3 on data extracted from Hoffmann et al.'s figure 4
(Huber loss, delta 1e-3, summed; 240 points): E = 1.8172 (printed 1.82 in the abstract's
rounding), A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658."""

BESIROGLU2024_SE = {"E": 0.03, "A": 124.58, "B": 1293.23, "alpha": 0.02, "beta": 0.02}
"""Their standard errors (4,000 bootstrap refits), same table. No covariance is published."""

PUBLISHED_LAWS = ("hoffmann2022", "besiroglu2024")
DEFAULT_LAW = "besiroglu2024"
DEFAULT_LAW_REASON = (
    "The default reference is Besiroglu et al.'s 2024 refit of Chinchilla approach 3: it fits the published "
    "Chinchilla runs better than Hoffmann et al.'s printed parameters (whose optimiser stopped early and whose "
    "values are rounded), agrees with Hoffmann's approaches 1 and 2 (about 20 tokens per parameter), and, "
    "unlike a law fitted on this collection's small runs, was fitted up to 16B parameters."
)
DISAGREEMENT_FACTOR = 2.0
INTERVAL_LEVEL = 0.8
PUBLISHED_INTERVAL_SOURCE = (
    "published parameters; interval from the published standard errors (Besiroglu et al.), treated as "
    "independent (no covariance is published); not a coverage-tested interval (no held-out data)"
)
"""What a published law's interval is. It cannot be tested for coverage here: the runs it was fitted
on are not in the collection."""
N_INTERVAL_SAMPLES = 4000


@dataclass(frozen=True)
class ReferenceLaw:
    """A law in Chinchilla form with samples of its parameters for intervals.

    ``params``: E, A, B, alpha, beta. ``samples``: array (n, 5) of the same parameters in that
    order, drawn from the law's parameter uncertainty (None: no interval). ``source`` says where
    the law and its uncertainty come from.
    """

    name: str
    label: str
    params: Mapping[str, float]
    source: str
    samples: np.ndarray | None = None


CHINCHILLA_NAMES = ("E", "A", "B", "alpha", "beta")


def published_law(name: str, *, n_samples: int = N_INTERVAL_SAMPLES, seed: int = 0) -> ReferenceLaw:
    """``hoffmann2022`` or ``besiroglu2024`` with parameter samples for an interval.

    Samples: E, alpha, beta normal and log A, log B normal, independent, with Besiroglu et al.'s
    standard errors (for A and B as relative errors: 25.8% and 62.0%, so log-normal) around the
    law's point estimate. Hoffmann et al.'s own intervals are implausibly narrow (Besiroglu et
    al.: they would need over 600,000 runs), so both laws use the replication's standard errors,
    which measure approach 3's uncertainty on the same runs. The covariance is not published;
    ignoring it makes the interval wider than a joint one would be (A and alpha, B and beta are
    strongly correlated in such fits).
    """
    if name not in PUBLISHED_LAWS:
        raise PlanningError(f"unknown published law {name!r}; choose from {', '.join(PUBLISHED_LAWS)}")
    params = HOFFMANN2022 if name == "hoffmann2022" else BESIROGLU2024
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, len(CHINCHILLA_NAMES)))
    draws = np.empty_like(z)
    for i, key in enumerate(CHINCHILLA_NAMES):
        if key in ("A", "B"):
            relative = BESIROGLU2024_SE[key] / BESIROGLU2024[key]
            draws[:, i] = params[key] * np.exp(relative * z[:, i])
        else:
            draws[:, i] = params[key] + BESIROGLU2024_SE[key] * z[:, i]
    draws = draws[(draws[:, 3] > 0) & (draws[:, 4] > 0)]
    label = (
        "Hoffmann et al. 2022 (Chinchilla, approach 3)"
        if name == "hoffmann2022"
        else "Besiroglu et al. 2024 (Chinchilla replication)"
    )
    source = PUBLISHED_INTERVAL_SOURCE
    return ReferenceLaw(name=name, label=label, params=dict(params), source=source, samples=draws)


def fitted_law(
    name: str,
    label: str,
    fit_params: Mapping[str, float],
    samples: np.ndarray | None,
    *,
    overtrain: bool = False,
    source: str = "",
) -> ReferenceLaw:
    """A law fitted on the collection, with its run-bootstrap parameter samples.

    ``overtrain`` marks Gadre et al.'s E, a, b, eta (samples in that order), converted to
    Chinchilla form (:func:`core.laws.overtrain_as_chinchilla`).
    """
    if overtrain:
        chin = laws.overtrain_as_chinchilla(**{k: float(fit_params[k]) for k in ("E", "a", "b", "eta")})
        converted = None
        if samples is not None and len(samples):
            s = np.asarray(samples, dtype=float)
            scale = FLOPS_PER_PARAM_TOKEN ** -s[:, 3]
            converted = np.column_stack([s[:, 0], s[:, 1] * scale, s[:, 2] * scale, 2 * s[:, 3], 2 * s[:, 3]])
    else:
        chin = {k: float(fit_params[k]) for k in CHINCHILLA_NAMES}
        converted = None if samples is None or not len(samples) else np.asarray(samples, dtype=float)
    return ReferenceLaw(name=name, label=label, params=chin, source=source, samples=converted)


@dataclass(frozen=True)
class ComputeOptimal:
    """Compute-optimal N and D under one law at compute C, with an interval on N (and D = C / 6N).

    ``num_params_low``/``high`` are the (1 - level)/2 and (1 + level)/2 quantiles of N* over the
    law's parameter samples (equal to N* without samples).
    """

    law: str
    label: str
    compute_flops: float
    num_params: float
    tokens: float
    num_params_low: float
    num_params_high: float
    tokens_low: float
    tokens_high: float
    level: float
    source: str

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.num_params

    @property
    def has_interval(self) -> bool:
        """False when the law has no parameter samples or they do not move N* (nothing to show)."""
        return self.num_params_high > self.num_params_low * (1 + 1e-9)


def optimal_allocation(law: ReferenceLaw, compute_flops: float, *, level: float = INTERVAL_LEVEL) -> ComputeOptimal:
    """N* = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta)), D* = (C/6) / N*.

    The interval applies the same formula to every parameter sample of ``law``.
    """
    C = _positive("the training compute", compute_flops, MAX_FLOPS, unit=" FLOPs")
    chin = _as_chinchilla(law.params)
    n_point, _ = laws.compute_optimal_allocation(C, **chin)
    n_opt = float(n_point)
    d_opt = C / FLOPS_PER_PARAM_TOKEN / n_opt
    low = high = n_opt
    if law.samples is not None and len(law.samples):
        s = np.asarray(law.samples, dtype=float)
        with np.errstate(all="ignore"):
            n_all, _ = laws.compute_optimal_allocation(C, s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4])  # type: ignore[arg-type]
        n_s = np.asarray(n_all, dtype=float)
        n_s = n_s[np.isfinite(n_s) & (n_s > 0)]
        if len(n_s):
            tail = (1 - level) / 2
            q_low, q_high = np.quantile(n_s, [tail, 1 - tail])
            low, high = min(float(q_low), n_opt), max(float(q_high), n_opt)
    budget = C / FLOPS_PER_PARAM_TOKEN
    return ComputeOptimal(
        law=law.name,
        label=law.label,
        compute_flops=C,
        num_params=n_opt,
        tokens=d_opt,
        num_params_low=low,
        num_params_high=high,
        tokens_low=budget / high,
        tokens_high=budget / low,
        level=level,
        source=law.source,
    )


def compute_optimal_table(
    reference_laws: Sequence[ReferenceLaw], compute_flops: float, *, level: float = INTERVAL_LEVEL
) -> tuple[ComputeOptimal, ...]:
    """:func:`optimal_allocation` for every law (laws that cannot be evaluated are left out)."""
    rows = []
    for law in reference_laws:
        try:
            rows.append(optimal_allocation(law, compute_flops, level=level))
        except PlanningError:
            continue
    return tuple(rows)


def disagreement(rows: Sequence[ComputeOptimal]) -> float:
    """Largest N* over smallest N* among the laws (1.0 with fewer than two)."""
    sizes = [r.num_params for r in rows]
    return max(sizes) / min(sizes) if len(sizes) >= 2 else 1.0


def disagreement_warning(rows: Sequence[ComputeOptimal], factor: float = DISAGREEMENT_FACTOR) -> str | None:
    """A sentence when the laws' N* differ by more than ``factor``, else None."""
    ratio = disagreement(rows)
    if ratio <= factor:
        return None
    big = max(rows, key=lambda r: r.num_params)
    small = min(rows, key=lambda r: r.num_params)
    return (
        f"The laws disagree by {ratio:.1f}x on the compute-optimal model size: {big.law} gives "
        f"{format_count(big.num_params)} parameters, {small.law} {format_count(small.num_params)}. "
        "Treat the compute-optimal split as uncertain; the study designs above do not depend on it."
    )


# ---------------------------------------------------------------------------------------------
# Over-training summary under the selected law


@dataclass(frozen=True)
class OvertrainingSummary:
    """Where the target sits against the compute-optimal split of its compute, under one law.

    ``target_multiplier`` = D / N of the target, ``optimal_multiplier`` = D* / N*;
    ``target_loss_increase`` (nats/token) and ``target_inference_saved`` (share of 2 N* FLOPs per
    token; negative for a larger model) compare the target with the optimum. ``choice_*``
    describe :func:`overtraining_choice` (None when no option qualifies).
    """

    law: str
    compute_flops: float
    target_multiplier: float
    optimal_multiplier: float
    target_loss_increase: float
    target_inference_saved: float
    choice_multiplier: float | None
    choice_loss_increase: float | None
    choice_inference_saved: float | None
    table: pd.DataFrame


def summarise_overtraining(
    law: ReferenceLaw,
    target_params: float,
    target_tokens: float,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    downstream: Mapping[str, float] | None = None,
) -> OvertrainingSummary:
    """:func:`overtraining_tradeoff` at the target's compute under ``law``, with the target's own row."""
    n = _positive("the target's parameters", target_params, MAX_PARAMS)
    d = _positive("the target's tokens", target_tokens, MAX_TOKENS)
    C = FLOPS_PER_PARAM_TOKEN * n * d
    m_target = d / n
    grid = sorted(set(float(m) for m in multipliers) | {m_target})
    table = overtraining_tradeoff(law.params, C, multipliers=grid, downstream=downstream)
    row = table.iloc[int(np.argmin(np.abs(np.log(table["multiplier"] / m_target))))]
    chin = _as_chinchilla(law.params)
    n_opt, d_opt = laws.compute_optimal_allocation(C, **chin)
    choice = overtraining_choice(table)
    return OvertrainingSummary(
        law=law.name,
        compute_flops=C,
        target_multiplier=m_target,
        optimal_multiplier=float(d_opt / n_opt),
        target_loss_increase=float(row["loss_increase"]),
        target_inference_saved=float(row["inference_saved"]),
        choice_multiplier=None if choice is None else float(choice["multiplier"]),
        choice_loss_increase=None if choice is None else float(choice["loss_increase"]),
        choice_inference_saved=None if choice is None else float(choice["inference_saved"]),
        table=table,
    )


# ---------------------------------------------------------------------------------------------
# Plain-language recommendation


def _share_text(value: float) -> str:
    return format_percent(value, 3 if value < 0.001 else 2 if value < 0.01 else 1 if value < 1 else 0)


PLANNER_HELD_OUT = {0.5: (0.498, 2803), 0.8: (0.614, 2803), 0.9: (0.678, 2803)}
"""How often the planner's expected ARE held on designs of source groups left out of its calibration:
level -> (share of held-out designs whose real ARE was at most the stated quantile, designs). Measured
with ``scaleplan reproduce calibration --json`` (``planner``) on the shipped sweep; checked by
tests/core/test_planning_plain.py. The 80th percentile held for 61%, not 80%: a new source group's
designs are harder than the calibration's own."""


def plain_accuracy(expected: ExpectedARE) -> str:
    """One sentence a decision-maker can read for an expected ARE, with the cases and sources behind it and
    how often such a statement held on source groups left out (:data:`PLANNER_HELD_OUT`)."""
    groups = f" in {expected.groups} source groups" if expected.groups else ""
    held, designs = PLANNER_HELD_OUT[0.8]
    held_median, _ = PLANNER_HELD_OUT[0.5]
    return (
        f"In plain words: in 8 of 10 comparable past cases the predicted loss came within "
        f"{format_percent(expected.p80)} of the real loss, and in half within {format_percent(expected.median)} "
        f"({expected.fits:,} past fits of {expected.families} model famil{'y' if expected.families == 1 else 'ies'}"
        f"{groups}). Checked on whole sources "
        f"left out, the {format_percent(expected.p80)} bound held in about {round(10 * held):.0f} of 10 cases "
        f"({format_percent(held, 0)} of {designs:,}) and the median one in {format_percent(held_median, 0)}, so "
        "expect a new lab's runs to miss it more often."
    )


UNSPENT_SHARE = 0.5  # a pick costing less than this share of the budget leaves money unspent: say why
STUDY_SHARE_REMARK = 0.10  # a study costing more than this share of the target's training gets a remark
BUDGET_EXCESS_REMARK = 10.0  # a budget this many times the most expensive design gets a remark


def _most_expensive(plan: StudyPlan) -> AssessedDesign | None:
    ranked = [a for a in plan.designs if a.design.token_rule != PARTIAL_TARGET_RULE]
    return max(ranked, key=lambda a: a.cost.dollars) if ranked else None


def _space_limit(plan: StudyPlan) -> str:
    """What bounds the design space's accuracy, in words: the most accurate design and either the cap on
    study models (when that design already has the largest study model) or that costlier designs are
    expected to be less accurate; and the most expensive design."""
    rankable = [a for a in plan.designs if a.rankable]
    if not rankable:
        return "the design space holds no well-supported design"
    best = min(rankable, key=lambda a: (a.are_p80, a.cost.dollars))
    largest = max(a.design.max_size for a in rankable)
    dearest = _most_expensive(plan)
    parts = [
        f"the most accurate design, {best.design.describe()} for {format_dollars(best.cost.dollars)}, reaches "
        f"{format_percent(best.are_p80)} at the 80th percentile"
    ]
    if best.design.max_size >= largest * (1 - 1e-9) and math.isfinite(plan.size_cap):
        parts.append(
            f"it already has the largest study model of the space ({format_count(largest)} parameters; study "
            f"models are capped at {_fraction_text(plan.size_share)} the target, {format_count(plan.size_cap)})"
        )
    elif dearest is not None and dearest.cost.dollars > best.cost.dollars:
        parts.append(
            "the calibrated error model expects every costlier design of the space (up to "
            f"{format_dollars(dearest.cost.dollars)}) to be less accurate"
        )
    return "; ".join(parts)


def _fraction_text(share: float) -> str:
    for k in range(1, 11):
        if abs(share * k - 1) < 1e-6:
            return "half" if k == 2 else f"1/{k} of"
    return format_percent(share, 0)


def budget_remarks(plan: StudyPlan) -> list[str]:
    """Sentences on how the pick uses the budget: the unspent amount and why more does not help (or
    what would) when the pick costs less than half the budget; the target trained partially when it
    fits; a study dearer than 10% of the target; a budget far beyond every design."""
    picked = plan.picked
    if picked is None or picked.expected is None:
        return []
    out = []
    budget = plan.budget_dollars
    spent = picked.cost.dollars
    rankable = [a for a in plan.designs if a.rankable]
    if spent < UNSPENT_SHARE * budget:
        unspent = format_dollars(budget - spent)
        within = [a for a in rankable if a.cost.dollars <= budget]
        better_within = min(within, key=lambda a: (a.are_p80, a.cost.dollars))
        head = f"The pick spends {format_dollars(spent)} of the {format_dollars(budget)} budget, {unspent} unspent"
        if plan.meets_goal and better_within.are_p80 < picked.are_p80 - 1e-12:
            out.append(
                f"{head}: it is the cheapest design that meets the goal. More money buys more accuracy: "
                f"{better_within.design.describe()} for {format_dollars(better_within.cost.dollars)} reaches "
                f"{format_percent(better_within.are_p80)} at the 80th percentile."
            )
        else:
            dearer = [a for a in rankable if a.are_p80 < picked.are_p80 - 1e-12]
            if dearer:
                cheapest = min(dearer, key=lambda a: a.cost.dollars)
                out.append(
                    f"{head}: no design within the budget is more accurate; the next more accurate one costs "
                    f"{format_dollars(cheapest.cost.dollars)}."
                )
            elif plan.budget_to_meet is None and not plan.meets_goal:  # the limit is stated just before
                out.append(f"{head}: more money does not help, for the reason above.")
            else:
                out.append(f"{head}: more money does not help, because {_space_limit(plan)}.")
    partial = [a for a in plan.designs if a.design.token_rule == PARTIAL_TARGET_RULE and a.cost.dollars <= budget]
    if partial:
        a = partial[0]
        out.append(
            f"Training {a.design.describe()} for {format_dollars(a.cost.dollars)} fits the budget (the Hitchhiker "
            "guide's advice when a budget allows it), but the collection's sweep holds no such design, so its "
            "accuracy is not measured here and it is not ranked."
        )
    target_cost = plan.target_cost_dollars
    if math.isfinite(target_cost) and target_cost > 0 and spent > STUDY_SHARE_REMARK * target_cost:
        out.append(
            f"Remark: the study costs {_share_text(spent / target_cost)} of training the target "
            f"({format_dollars(target_cost)}), more than the {format_percent(STUDY_SHARE_REMARK, 0)} a study "
            "usually takes."
        )
    dearest = _most_expensive(plan)
    if dearest is not None and budget > BUDGET_EXCESS_REMARK * dearest.cost.dollars:
        out.append(
            f"Remark: the {format_dollars(budget)} budget is far beyond what any design can use (the most expensive "
            f"costs {format_dollars(dearest.cost.dollars)})"
            + (
                f" and beyond training the target itself ({format_dollars(target_cost)})."
                if math.isfinite(target_cost) and budget > target_cost
                else "."
            )
        )
    elif math.isfinite(target_cost) and budget > target_cost:
        out.append(
            f"Remark: the {format_dollars(budget)} study budget exceeds the cost of training the target itself "
            f"({format_dollars(target_cost)})."
        )
    return out


def recommendation(
    plan: StudyPlan, optimum: ComputeOptimal | None = None, overtraining: OvertrainingSummary | None = None
) -> str:
    """A few plain sentences generated from the typed results (no markup).

    Every number in the text is formatted from ``plan``, ``optimum`` and ``overtraining``, the
    same objects the tables show; tests parse the text back and compare.
    """
    target = (
        f"a {format_count(plan.target_params)}-parameter model trained on {format_count(plan.target_tokens)} tokens"
    )
    budget, goal = format_dollars(plan.budget_dollars), format_percent(plan.goal_are)
    sentences = []
    picked = plan.picked
    if plan.message is not None:
        sentences.append(f"No study design can be ranked for {target}: {plan.message}.")
    elif picked is None:
        cheapest = [a.cost.dollars for a in plan.designs if a.rankable]
        sentences.append(
            f"No well-supported study design fits the {budget} budget for {target}"
            + (f"; the cheapest costs {format_dollars(min(cheapest))}." if cheapest else ".")
        )
    else:
        d, e = picked.design, picked.expected
        assert e is not None
        sentences.append(
            f"To predict the loss of {target}, train {d.describe()} for "
            f"{format_dollars(picked.cost.dollars)} ({format_count(picked.cost.gpu_hours)} GPU-hours), "
            f"within the {budget} budget."
        )
        sentences.append(
            f"Expected error of the predicted loss: {format_percent(e.median)} ARE at the median and "
            f"{format_percent(e.p80)} at the 80th percentile ({e.fits} comparable fits from "
            f"{e.families} families)."
        )
        sentences.append(plain_accuracy(e))
        if plan.meets_goal:
            sentences.append(f"That meets the {goal} goal in 4 of 5 comparable fits.")
        elif plan.budget_to_meet is not None:
            sentences.append(
                f"No design within the budget meets the {goal} goal; this is the most accurate one "
                "within it. "
                f"A budget of {format_dollars(plan.budget_to_meet)} would meet it."
            )
        else:
            sentences.append(
                f"No design within the budget meets the {goal} goal, and none in the design space "
                f"does at any budget ({_space_limit(plan)}); this is the most accurate design within the budget."
            )
        sentences.extend(budget_remarks(plan))
    if optimum is not None:
        sentences.append(
            f"For the target's compute ({format_flops(optimum.compute_flops)}), the compute-optimal model "
            f"under {optimum.law} has {format_count(optimum.num_params)} parameters "
            + (
                f"({format_count(optimum.num_params_low)}-{format_count(optimum.num_params_high)}, "
                f"{format_percent(optimum.level, 0)} interval)"
                if optimum.has_interval
                else "(no interval)"
            )
            + f" trained on {format_count(optimum.tokens)} "
            f"tokens, {optimum.tokens_per_param:.0f} tokens per parameter."
        )
    if overtraining is not None:
        o = overtraining
        ratio = o.target_multiplier / o.optimal_multiplier
        if abs(math.log(ratio)) > math.log(1.25):
            size = "smaller" if ratio > 1 else "larger"
            effect = (
                f"saves {format_percent(o.target_inference_saved, 0)} of inference compute per token"
                if o.target_inference_saved > 0
                else f"costs {format_percent(-o.target_inference_saved, 0)} more inference compute per token"
            )
            sentences.append(
                f"The target's {o.target_multiplier:.0f} tokens per parameter is "
                f"{'more' if ratio > 1 else 'fewer'} than the optimum's {o.optimal_multiplier:.0f} under "
                f"{o.law}: a {size} model than compute-optimal, which adds "
                f"{o.target_loss_increase:.3f} nats/token of loss and {effect}."
            )
        if (
            o.choice_multiplier is not None
            and o.choice_loss_increase is not None
            and o.choice_inference_saved is not None
        ):
            sentences.append(
                f"Under {o.law}, training a smaller model to {o.choice_multiplier:g} tokens per parameter "
                f"costs {o.choice_loss_increase:.3f} nats/token of loss and saves "
                f"{format_percent(o.choice_inference_saved, 0)} of inference compute per token."
            )
    return " ".join(sentences)


# ---------------------------------------------------------------------------------------------
# Laws fitted on the collection

GADRE_LAWS = {"gadre-c4": "overtrain-c4", "gadre-rpj": "overtrain-rpj", "gadre-rw": "overtrain-rw"}
"""Gadre et al.'s L(C, M), fitted as published on each of the testbed's data sets."""
FAMILY_LAW_PREFIX = "fit:"
DEFAULT_LAW_BOOT = 30  # run-bootstrap refits per fitted law: ~1 s each for the Gadre laws on 2 busy cores


def collection_laws(
    con: Any,
    *,
    family: str | None = None,
    curves: pd.DataFrame | None = None,
    n_boot: int = DEFAULT_LAW_BOOT,
    seed: int = 0,
) -> tuple[tuple[ReferenceLaw, ...], dict[str, str]]:
    """Laws fitted here: Gadre et al.'s L(C, M) per data set and, with ``family``, that family's
    Chinchilla fit (default protocol: largest run as target, the rest fitted), or the fit of
    ``curves`` (e.g. uploaded runs) named ``fit:<family>``.

    Each comes with ``n_boot`` run-bootstrap refits for its interval. Returns the laws and, by
    name, why a law could not be fitted.
    """
    from scaleplan.core import fitting, reproduce, storage
    from scaleplan.core.selection import SelectionError

    out, problems = [], {}
    for name, data_set in GADRE_LAWS.items():
        try:
            gadre = reproduce.fit_gadre(con, data_set, n_boot=n_boot, seed=seed)
        except (fitting.FitError, ValueError) as error:
            problems[name] = str(error)
            continue
        fitted_on = f"fitted on {len(gadre.fit_set)} small runs of {data_set}"
        if gadre.bootstrap is not None and gadre.bootstrap.scheme == "runs":
            samples = gadre.bootstrap.param_samples
            source = (
                f"{fitted_on}; interval from {n_boot} run-bootstrap refits, parameter uncertainty only, "
                "not coverage-tested"
            )
        else:
            # Gadre et al.'s fit set has one point per run and fewer runs than a run bootstrap needs, so
            # the bootstrap keeps every run: all its refits equal the fit, a zero-width "interval".
            samples = None
            source = f"{fitted_on}; no interval: one point per run and too few runs to resample"
        out.append(
            fitted_law(
                name,
                f"Gadre et al. L(C, M) fitted on {data_set}",
                gadre.loss_fit.params,
                samples,
                overtrain=True,
                source=source,
            )
        )
    if family is not None:
        name = FAMILY_LAW_PREFIX + family
        try:
            data = curves if curves is not None else storage.family_curves(con, family)
            out.append(family_law(data, family, n_boot=n_boot, seed=seed))
        except (fitting.FitError, SelectionError, ValueError) as error:
            problems[name] = str(error)
    return tuple(out), problems


FAMILY_LAW_COVERAGE = {"runs": (35, 40, 8), "blocks": (22, 40, 6)}
"""Measured coverage of :func:`family_law`'s N* interval at :data:`INTERVAL_LEVEL`, by bootstrap scheme:
(intervals containing the true N*, synthetic families, sizes per family). Families drawn from a known
Chinchilla law with 1% seed noise per run and 0.3% per checkpoint, N* at 5.76e23 FLOPs
(tests/core/test_planning_coverage.py checks that these figures hold). The block bootstrap (fewer than
6 fitted sizes) keeps every run's seed noise fixed, so it under-covers."""


def family_law_coverage_text(scheme: str) -> str:
    """The measured coverage of a family law's interval, as shown next to it."""
    if scheme not in FAMILY_LAW_COVERAGE:
        return "coverage not measured"
    covered, total, sizes = FAMILY_LAW_COVERAGE[scheme]
    return (
        f"coverage {covered / total:.0%} measured at nominal {INTERVAL_LEVEL:.0%} "
        f"({covered} of {total} synthetic {sizes}-size families)"
    )


def family_law(curves: pd.DataFrame, family: str, *, n_boot: int = DEFAULT_LAW_BOOT, seed: int = 0) -> ReferenceLaw:
    """The Chinchilla law fitted on one family's ``curves`` (columns run_id, num_params, tokens_seen,
    value), named ``fit:<family>``, with ``n_boot`` bootstrap refits for its interval.

    Default protocol of :func:`core.analysis.analyse`: the largest run is held out as the target,
    every other checkpoint is fitted. Raises :class:`core.fitting.FitError` or
    :class:`core.selection.SelectionError` when the family cannot be fitted.
    """
    from scaleplan.core.analysis import analyse
    from scaleplan.core.selection import Selection

    result = analyse(curves, Selection(), n_boot=n_boot, seed=seed, check_identifiability=False)
    if result.bootstrap is None:
        return fitted_law(
            FAMILY_LAW_PREFIX + family,
            f"Chinchilla law fitted on {family}",
            result.fit.params,
            None,
            source=f"fitted on {family} (all runs but the largest); no interval",
        )
    samples = result.bootstrap.param_samples
    scheme = (
        "run-bootstrap"
        if result.bootstrap.scheme == "runs"
        else "block-bootstrap (checkpoints resampled within each run, so run-to-run noise is left out)"
    )
    return fitted_law(
        FAMILY_LAW_PREFIX + family,
        f"Chinchilla law fitted on {family}",
        result.fit.params,
        samples,
        source=f"fitted on {family} (all runs but the largest); interval from {n_boot} "
        f"{scheme} refits, parameter uncertainty only; "
        f"{family_law_coverage_text(result.bootstrap.scheme)}",
    )


def all_laws(collection: Sequence[ReferenceLaw] = ()) -> tuple[ReferenceLaw, ...]:
    """The published laws followed by the collection's."""
    return tuple(published_law(n) for n in PUBLISHED_LAWS) + tuple(collection)
