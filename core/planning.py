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
* **Study designs.** :func:`candidate_plans` enumerates sets of small runs (k sizes spaced
  geometrically from a floor to a largest size, each trained to 20 tokens per parameter or to a
  fraction of the target's tokens, 1 to 3 seeds) that fit a FLOPs budget, and attaches the
  accuracy the public collection achieved with comparable fits (same number of runs, compute
  share within a factor 3), from the meta-analysis (:func:`core.meta.expected_are`). The
  expected error is learned from the collection, not from a formula.
* **Over-training.** :func:`overtraining_tradeoff` shows, at a fixed training budget C, what
  training a smaller model for longer (token multiplier M = D / N) costs in loss and downstream
  error and saves at inference (2 N FLOPs per generated token).
* :func:`recommendation` turns the numbers into a few plain sentences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from scaleplan.core import laws
from scaleplan.core.units import format_count, format_dollars, format_flops, format_percent

__all__ = [
    "PlanningError",
    "MetaResultsMissingError",
    "BudgetTooSmallError",
    "H100_BF16_DENSE_FLOPS",
    "DEFAULT_DOLLARS_PER_GPU_HOUR",
    "DEFAULT_MFU",
    "MAX_FLOPS",
    "ComputeCost",
    "study_compute_budget",
    "compute_cost",
    "training_flops",
    "candidate_plans",
    "best_plan",
    "overtraining_tradeoff",
    "recommendation",
    "parse_quantity",
    "overtraining_choice",
]

H100_BF16_DENSE_FLOPS = 989e12
"""Peak dense bf16 throughput of one NVIDIA H100 SXM, in FLOP/s (no sparsity)."""
DEFAULT_DOLLARS_PER_GPU_HOUR = 2.0
DEFAULT_MFU = 0.4
SECONDS_PER_HOUR = 3600.0
FLOPS_PER_PARAM_TOKEN = laws.FLOPS_PER_PARAM_TOKEN  # 6: training FLOPs per parameter per token
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0  # forward pass only

MAX_FLOPS = 1e30
"""Largest compute accepted anywhere (about 100,000 times the largest training run to date)."""
MAX_DOLLARS = 1e13
MAX_GPU_HOURS = 1e13
MAX_PEAK_FLOPS = 1e18  # per GPU, FLOP/s
MIN_PEAK_FLOPS = 1e9  # per GPU, FLOP/s: below this a "GPU" cannot train anything and costs overflow
MIN_MFU = 1e-3
MAX_PRICE = 1e6  # dollars per GPU-hour
MIN_PRICE = 1e-6  # a hundredth of a cent per thousand GPU-hours: free compute is not a price to plan with
MAX_ARE = 100.0  # 10,000%: a larger "expected error" is not a number to print
MIN_COUNT = 1e3  # fewest parameters of a study model, fewest tokens of a target: below it shares underflow
MAX_PARAMS = 1e15
MAX_TOKENS = 1e17

DEFAULT_MIN_SIZE = 1e7
DEFAULT_NUM_RUNS = (3, 4, 5, 6, 8)
DEFAULT_TOKEN_FRACTIONS = (0.1, 0.3)
DEFAULT_SEEDS = (1, 2, 3)
DEFAULT_MULTIPLIERS = (10, 20, 40, 80, 160, 320, 640)
COMPUTE_OPTIMAL_MULTIPLIER = 20.0
CUTOFF_TOKENS = 10e9  # the Hitchhiker cutoff: checkpoints at or below this are noisy


class PlanningError(ValueError):
    """A planning input is unusable (zero, negative, not finite, absurdly large, inconsistent)."""


class MetaResultsMissingError(PlanningError):
    """There are no meta-analysis results to learn the expected accuracy from."""


class BudgetTooSmallError(PlanningError):
    """No study design fits in the budget."""


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


_SUFFIX_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_quantity(text: object, *, name: str = "the value", maximum: float = MAX_FLOPS) -> float:
    """A positive count typed by a person: "7B", "1.4e9", "70 M", "2,000,000", "1.5T" -> float.

    Suffixes k (1e3), M (1e6), B or G (1e9), T (1e12), P (1e15), case-insensitive; commas,
    underscores and spaces are ignored. Raises :class:`PlanningError` for anything else, for
    zero, negative, non-finite or values above ``maximum``.
    """
    raw = "" if text is None else str(text)
    cleaned = raw.strip().replace(",", "").replace("_", "").replace(" ", "")
    if not cleaned:
        raise PlanningError(f"{name} is empty")
    suffix = cleaned[-1].lower() if cleaned[-1].isalpha() else ""
    if suffix and suffix not in _SUFFIX_SCALE:
        raise PlanningError(f"{name}: cannot read {raw.strip()[:40]!r}; use a number like 7e9 or 7B")
    body = cleaned[:-1] if suffix else cleaned
    try:
        number = float(body) * _SUFFIX_SCALE[suffix]
    except ValueError:
        raise PlanningError(f"{name}: cannot read {raw.strip()[:40]!r}; use a number like 7e9 or 7B") from None
    return _positive(name, number, maximum)


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


def study_compute_budget(dollars: float | None = None, gpu_hours: float | None = None, *,
                         dollars_per_gpu_hour: float = DEFAULT_DOLLARS_PER_GPU_HOUR,
                         peak_flops_per_gpu: float = H100_BF16_DENSE_FLOPS, mfu: float = DEFAULT_MFU) -> float:
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
    if flops > MAX_FLOPS:
        raise PlanningError(f"a budget of {flops:.2g} FLOPs is beyond any realistic study (at most {MAX_FLOPS:.0e})")
    return flops


def compute_cost(flops: float, *, dollars_per_gpu_hour: float = DEFAULT_DOLLARS_PER_GPU_HOUR,
                 peak_flops_per_gpu: float = H100_BF16_DENSE_FLOPS, mfu: float = DEFAULT_MFU) -> ComputeCost:
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
    return FLOPS_PER_PARAM_TOKEN * n * d


# ---------------------------------------------------------------------------------------------
# Study designs

def _default_max_sizes(min_size: float, target_params: float) -> list[float]:
    """Largest-run candidates on a 1-2-5 series, from 10x the floor up to a third of the target."""
    top = target_params / 3.0
    sizes = []
    for exponent in range(int(math.floor(math.log10(min_size))), int(math.ceil(math.log10(top))) + 1):
        for mantissa in (1.0, 2.0, 5.0):
            size = mantissa * 10.0 ** exponent
            if 10.0 * min_size <= size <= top:
                sizes.append(size)
    return sizes


def _token_rules(target_tokens: float, fractions: Sequence[float]) -> list[tuple[str, float | None]]:
    """(label, fraction of the target's tokens or None for 20 tokens per parameter)."""
    rules: list[tuple[str, float | None]] = [("20 tokens/param", None)]
    rules += [(f"{f:.0%} of target tokens", float(f)) for f in fractions]
    return rules


def candidate_plans(target_params: float, target_tokens: float, study_flops: float, *,
                    results: pd.DataFrame, sizes_grid: Sequence[float] | None = None,
                    min_size: float = DEFAULT_MIN_SIZE, num_runs: Sequence[int] = DEFAULT_NUM_RUNS,
                    token_fractions: Sequence[float] = DEFAULT_TOKEN_FRACTIONS,
                    seeds: Sequence[int] = DEFAULT_SEEDS, target_are: float | None = None,
                    cost: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Small-run study designs that fit ``study_flops``, ranked by expected ARE, then cost.

    (Designs whose expected ARE is supported by at least two families of the collection rank
    before those supported by one family or none.)

    A design is k runs with sizes ``geomspace(min_size, max_size, k)`` (``max_size`` from
    ``sizes_grid``; default a 1-2-5 series up to a third of the target), each trained on
    D_i = 20 N_i tokens or on a fraction f of the target's tokens, repeated with s seeds:

        study FLOPs   = s * sum_i 6 N_i D_i                 (must be <= study_flops)
        compute share = sum_i 6 N_i D_i / (6 N_target D_target)   (one seed)

    The expected ARE of the target's predicted loss is what the collection's meta-analysis
    measured for fits with the same number of runs (+-2) and a compute share within a factor
    3 (:func:`core.meta.expected_are`; median and 80th percentile, averaged over families).
    The collection has one seed per run, so extra seeds do not change the expected ARE (they
    guard against a bad seed, which the ~4% seed-to-seed floor reflects) but do cost more.

    Columns: num_runs, sizes (tuple of N), min_size, max_size, token_rule, tokens (tuple of
    D), seeds, study_flops, budget_share, compute_share, are_median, are_p80, fits, families,
    under_cutoff (runs trained on at most 10B tokens: their checkpoints fall under the usual
    10B cutoff), meets_target (are_p80 <= target_are; NaN without a target) and, with ``cost``
    (keyword arguments of :func:`compute_cost`), gpu_hours and dollars.

    Raises :class:`MetaResultsMissingError` when ``results`` has no successful fit,
    :class:`BudgetTooSmallError` when no design fits, :class:`PlanningError` on bad inputs.
    """
    n_target = _positive("the target's parameters", target_params, MAX_PARAMS)
    d_target = _positive("the target's tokens", target_tokens, MAX_TOKENS, minimum=MIN_COUNT)
    budget = _positive("the study budget", study_flops, MAX_FLOPS, unit=" FLOPs")
    floor = _positive("the smallest model size", min_size, MAX_PARAMS, minimum=MIN_COUNT)
    if target_are is not None:
        target_are = _positive("the accuracy needed (ARE)", target_are, 10.0)
    if floor * 10 >= n_target:
        raise PlanningError(f"the target ({format_count(n_target)} parameters) must be at least 10 times the "
                            f"smallest study model ({format_count(floor)}) to leave room for a study")
    ok = _usable_results(results)
    grid = sorted({float(s) for s in (sizes_grid if sizes_grid is not None else _default_max_sizes(floor, n_target))})
    grid = [s for s in grid if floor < s < n_target]
    if not grid:
        raise PlanningError("no candidate model size lies between the smallest study model and the target")
    target_compute = FLOPS_PER_PARAM_TOKEN * n_target * d_target
    rows = []
    lookups: dict[tuple[int, float], dict] = {}
    cheapest, cheapest_text = math.inf, ""
    for k in sorted({int(k) for k in num_runs if int(k) >= 2}):
        for max_size in grid:
            sizes = np.geomspace(floor, max_size, k)
            for label, fraction in _token_rules(d_target, token_fractions):
                tokens = COMPUTE_OPTIMAL_MULTIPLIER * sizes if fraction is None else np.full(k, fraction * d_target)
                one_seed = float(np.sum(FLOPS_PER_PARAM_TOKEN * sizes * tokens))
                share = one_seed / target_compute
                key = (k, round(math.log10(share), 3))
                for s in sorted({int(s) for s in seeds if int(s) >= 1}):
                    total = s * one_seed
                    if total < cheapest:
                        cheapest = total
                        cheapest_text = (f"{k} runs of {format_count(sizes[0])} to {format_count(sizes[-1])} "
                                         f"parameters on {label}, {s} seed{'s' if s > 1 else ''}")
                    if total > budget:
                        continue
                    if key not in lookups:
                        lookups[key] = _expected_are(ok, k, share)
                    expected = lookups[key]
                    rows.append({
                        "num_runs": k, "sizes": tuple(float(n) for n in sizes), "min_size": float(sizes[0]),
                        "max_size": float(sizes[-1]), "token_rule": label,
                        "tokens": tuple(float(d) for d in tokens), "seeds": s, "study_flops": total,
                        "budget_share": total / budget, "compute_share": share,
                        "are_median": expected["are_median"], "are_p80": expected["are_p80"],
                        "fits": expected["fits"], "families": expected["families"],
                        "under_cutoff": int(np.sum(tokens <= CUTOFF_TOKENS)),
                    })
    if not rows:
        raise BudgetTooSmallError(
            f"the study budget ({format_flops(budget)}) is too small for any design; the cheapest "
            f"({cheapest_text}) needs {format_flops(cheapest)}")
    plans = pd.DataFrame(rows)
    plans["meets_target"] = (plans["are_p80"] <= target_are) if target_are is not None else np.nan
    if cost is not None:
        per_hour = _flops_per_gpu_hour(cost.get("peak_flops_per_gpu", H100_BF16_DENSE_FLOPS),
                                       cost.get("mfu", DEFAULT_MFU))
        price = _price(cost.get("dollars_per_gpu_hour", DEFAULT_DOLLARS_PER_GPU_HOUR))
        plans["gpu_hours"] = plans["study_flops"] / per_hour
        plans["dollars"] = plans["gpu_hours"] * price
    # Designs whose expected ARE rests on at least two families first (one family's fits are
    # anecdotal), then expected ARE to 0.1 percentage point (finer differences are noise), then cost.
    plans["_support"] = np.where(plans["families"] >= 2, 0, np.where(plans["fits"] > 0, 1, 2))
    plans["_rank_are"] = plans["are_median"].round(3).fillna(np.inf)
    plans = (plans.sort_values(["_support", "_rank_are", "study_flops", "num_runs"], kind="stable")
             .drop(columns=["_support", "_rank_are"]))
    return plans.reset_index(drop=True)


def _usable_results(results: pd.DataFrame | None) -> pd.DataFrame:
    needed = {"status", "final_only", "min_tokens", "num_runs", "compute_share", "are_mean", "family", "fraction"}
    if results is None or results.empty or not needed <= set(results.columns):
        raise MetaResultsMissingError("there are no meta-analysis results yet; run the meta-analysis sweep "
                                      "to learn how accurate fits are on the collection")
    ok = results[results["status"] == "ok"]
    if ok.empty:
        raise MetaResultsMissingError("the meta-analysis results hold no successful fit; run the sweep again")
    return ok


def _expected_are(results: pd.DataFrame, num_runs: int, compute_share: float) -> dict:
    from scaleplan.core.meta import expected_are  # local: keeps core.planning importable without joblib/tqdm

    return expected_are(results, num_runs=num_runs, compute_share=compute_share)


def best_plan(plans: pd.DataFrame, target_are: float | None = None) -> pd.Series | None:
    """The design to recommend (a row of :func:`candidate_plans`), or None if there is none.

    Only designs whose expected ARE rests on at least two families are considered (else those
    with any support, else all): the cheapest whose 80th-percentile ARE meets ``target_are``;
    without a target, or when none meets it, the most accurate (the first in ranking order).
    """
    if plans is None or plans.empty:
        return None
    pool = plans[plans["families"] >= 2]
    if pool.empty:
        pool = plans[plans["fits"] > 0]
    if pool.empty:
        pool = plans
    if target_are is not None:
        meeting = pool[pool["are_p80"] <= target_are]
        if not meeting.empty:
            return meeting.sort_values(["study_flops", "are_median"], kind="stable").iloc[0]
    return pool.iloc[0]


# ---------------------------------------------------------------------------------------------
# Over-training

def _as_chinchilla(params: Mapping[str, float]) -> dict[str, float]:
    """Chinchilla parameters from either law's parameters, checked to be a usable law.

    Exponents beyond twice the fitter's bounds (alpha, beta <= 2; eta <= 1) are not a law
    anyone fitted, and only make the powers overflow.
    """
    if {"E", "A", "B", "alpha", "beta"} <= set(params):
        values = {k: _law_value(k, params[k], 4.0 if k in ("alpha", "beta") else math.inf)
                  for k in ("E", "A", "B", "alpha", "beta")}
    elif {"E", "a", "b", "eta"} <= set(params):
        raw = {k: _law_value(k, params[k], 2.0 if k == "eta" else math.inf) for k in ("E", "a", "b", "eta")}
        values = laws.overtrain_as_chinchilla(**raw)
    else:
        raise PlanningError("the law's parameters must be E, A, B, alpha, beta (Chinchilla) or E, a, b, eta "
                            "(over-training law)")
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
        raise PlanningError(f"the law's parameter {name} = {number:g} is not usable"
                            + (f" (at most {maximum:g})" if math.isfinite(maximum) else ""))
    return number


def overtraining_tradeoff(params: Mapping[str, float], compute_flops: float,
                          multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
                          downstream: Mapping[str, float] | None = None) -> pd.DataFrame:
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
        ds = [_finite("eps", downstream["eps"]), _law_value("k", downstream["k"], math.inf),
              _law_value("gamma", downstream["gamma"], math.inf)]
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            N = np.sqrt(C / (FLOPS_PER_PARAM_TOKEN * M))
            D = M * N
            loss = laws.chinchilla_loss(N, D, **chin)
            n_opt, d_opt = laws.compute_optimal_allocation(C, **chin)
            loss_opt = float(laws.chinchilla_loss(n_opt, d_opt, **chin))
            error = laws.downstream_error(loss, *ds) if ds is not None else np.full_like(loss, np.nan)
            relative = N / float(n_opt)
        usable = (np.isfinite(loss).all() and math.isfinite(loss_opt) and np.isfinite(relative).all()
                  and (relative > 0).all() and (ds is None or np.isfinite(error).all()))
    except (ZeroDivisionError, OverflowError):
        usable = False
    if not usable:
        raise PlanningError(f"the law cannot be evaluated at {format_flops(C)}: a term overflows "
                            "(check the law's parameters and the compute)")
    return pd.DataFrame({
        "multiplier": M, "num_params": N, "tokens": D, "compute_flops": FLOPS_PER_PARAM_TOKEN * N * D,
        "loss": loss, "loss_increase": loss - loss_opt, "downstream_error": error,
        "inference_flops_per_token": INFERENCE_FLOPS_PER_PARAM_TOKEN * N,
        "inference_relative": relative, "inference_saved": 1.0 - relative,
    })


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
# Plain-language recommendation

def _clean(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _clean_positive(value: float | None) -> float | None:
    number = _clean(value)
    return number if number is not None and number > 0 else None


def recommendation(*, target_params: float, target_tokens: float, target_are: float,
                   plan_num_runs: int | None = None, plan_min_size: float | None = None,
                   plan_max_size: float | None = None, plan_seeds: int | None = None,
                   plan_compute_share: float | None = None, plan_dollars: float | None = None,
                   plan_are_median: float | None = None, plan_are_p80: float | None = None,
                   plan_fraction_of_target_tokens: float | None = None,
                   plan_runs_under_cutoff: int | None = None,
                   optimal_params: float | None = None, optimal_tokens: float | None = None,
                   overtrain_multiplier: float | None = None, overtrain_loss_increase: float | None = None,
                   overtrain_inference_saved: float | None = None, meta_available: bool = True) -> str:
    """A few plain sentences summarising the plan (numbers in, text out; no markup).

    ``plan_fraction_of_target_tokens`` None means the study runs are trained at 20 tokens per
    parameter; ``meta_available=False`` says the meta-analysis must be run first. ``overtrain_*``
    describe one over-training option (multiplier M, loss increase
    in nats/token over the compute-optimal loss, share of inference compute saved).
    Optional numbers that are missing, NaN, infinite or out of range are left out of the text;
    a missing or unusable target size raises :class:`PlanningError`.
    """
    n_target = _positive("the target's parameters", target_params, MAX_PARAMS)
    d_target = _positive("the target's tokens", target_tokens, MAX_TOKENS)
    target = f"a {format_count(n_target)}-parameter model trained on {format_count(d_target)} tokens"
    goal = _clean_positive(target_are)
    sentences = []
    runs, lo, hi = _clean_positive(plan_num_runs), _clean_positive(plan_min_size), _clean_positive(plan_max_size)
    share = _clean_positive(plan_compute_share)
    median, p80 = _clean(plan_are_median), _clean(plan_are_p80)
    median = median if median is not None and 0 <= median <= MAX_ARE else None
    p80 = p80 if p80 is not None and median is not None and median <= p80 <= MAX_ARE else None
    if not meta_available:
        sentences.append(f"Run the meta-analysis to rank study designs for {target} by the accuracy they reached "
                         "on the public collection.")
    elif runs is None or runs < 1 or lo is None or hi is None:
        sentences.append(f"No study design fits the budget for {target}; raise the study budget or lower the "
                         "target.")
    else:
        runs = int(runs)
        fraction = _clean_positive(plan_fraction_of_target_tokens)
        tokens = ("20 tokens per parameter" if fraction is None
                  else f"{format_percent(fraction, 0)} of the target's tokens")
        seeds = max(1, int(min(_clean_positive(plan_seeds) or 1, 1e6)))
        dollars = _clean_positive(plan_dollars)
        cost = f" (about {format_dollars(dollars)})" if dollars is not None else ""
        sentences.append(
            f"To predict the loss of {target}, train {runs} model{'s' if runs > 1 else ''} from "
            f"{format_count(lo)} to {format_count(hi)} parameters on {tokens}"
            f"{', with ' + str(seeds) + ' seeds each' if seeds > 1 else ''}{cost}"
            + (f", {format_percent(share, 2 if share < 0.01 else 1)} of the target's compute." if share is not None
               else "."))
        if median is None:
            sentences.append("The collection has no comparable fits, so its accuracy cannot be estimated; "
                             "treat the prediction with care.")
        else:
            spread = f" and {format_percent(p80)} (4 in 5 fits did better)" if p80 is not None else ""
            sentences.append(f"On the public collection, comparable fits missed the target's loss by "
                             f"{format_percent(median)} (typical){spread}.")
            if goal is not None and p80 is not None and p80 <= goal:
                sentences.append(f"That meets the {format_percent(goal)} accuracy you asked for.")
            elif goal is not None and median <= goal:
                sentences.append(f"That usually meets your {format_percent(goal)} goal, but not reliably; "
                                 "add a larger run or train the runs longer if you can.")
            elif goal is not None:
                sentences.append(f"That misses your {format_percent(goal)} goal; a larger study budget "
                                 "would help (about 4% is the floor set by seed-to-seed noise).")
        under = int(min(_clean_positive(plan_runs_under_cutoff) or 0, runs))
        if under:
            sentences.append(f"{under} of the {runs} runs see at most 10B tokens, where early checkpoints are "
                             "noisy: drop their warm-up checkpoints and expect a less precise fit.")
    n_opt, d_opt = _clean_positive(optimal_params), _clean_positive(optimal_tokens)
    if n_opt is not None and d_opt is not None:
        sentences.append(f"For the target's compute, the compute-optimal model has {format_count(n_opt)} parameters "
                         f"trained on {format_count(d_opt)} tokens.")
    m, increase, saved = (_clean_positive(overtrain_multiplier), _clean(overtrain_loss_increase),
                          _clean_positive(overtrain_inference_saved))
    if m is not None and increase is not None and increase >= 0 and saved is not None and saved <= 1:
        sentences.append(f"Training a smaller model to {m:g} tokens per parameter instead costs "
                         f"{increase:.3f} nats/token of loss and saves {format_percent(saved, 0)} of inference "
                         "compute per token.")
    return " ".join(sentences)
