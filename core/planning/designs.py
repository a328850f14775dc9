"""Study designs: sizes up to a share of the target, tokens by a rule (tokens per parameter, a fraction
of the target's tokens, an isoFLOP grid), seeds, kept inside the collection's tokens-per-parameter
range (:func:`study_designs`). Units: parameters, tokens, FLOPs (C = 6 N D).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scaleplan.core.planning.inputs import (
    FLOPS_PER_PARAM_TOKEN,
    MAX_PARAMS,
    MAX_TOKENS,
    MIN_COUNT,
    PlanningError,
    _fraction,
    _positive,
)
from scaleplan.core.units import format_count, format_percent, suffix_hint

if TYPE_CHECKING:
    import duckdb

DEFAULT_MIN_SIZE = 1e7
DEFAULT_NUM_RUNS = (3, 4, 5, 6, 8)
DEFAULT_SEEDS = (1,)
"""Seeds per run in the generated designs: one. What extra seeds buy is measured on the collection's
multi-seed families (:func:`seed_evidence`); the collection holds none (no family repeats a run with a
second seed), so no gain is measured, 2 or 3 seeds would only multiply the cost at the same expected
ARE, and they are not offered as an improvement. Runs you enter may still have seeds (priced, same
expected ARE)."""
COMPUTE_OPTIMAL_MULTIPLIER = 20.0

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
"""Tokens per parameter assumed when the database is not at hand: a fallback wider than the main
sources (Gadre et al.'s testbed spans M = 5 to 640, Pythia's 70M run ~4,300); a built database gives
the 5th-95th percentiles of its runs instead (:func:`collection_tokens_per_param`)."""


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


def collection_tokens_per_param(con: duckdb.DuckDBPyConnection) -> tuple[float, float]:
    """(5th, 95th percentile) of tokens per parameter, D / N, over the collection's runs (final checkpoint).

    The span the error model has seen: a study run far outside it asks the calibration to
    extrapolate in a direction it was never measured in. :data:`DEFAULT_TPP_RANGE` when the
    database holds no usable runs (no observation, or a non-positive 5th percentile).
    """
    from scaleplan.core import storage  # planning itself imports no database code

    low, high = storage.tokens_per_param_quantiles(con, 0.05, 0.95)
    if low is None or high is None or not (low > 0 and high >= low):
        return DEFAULT_TPP_RANGE
    return low, high


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
    (20B on the 1-2-5 ladder for a 70B target at the default share of 1/2). For each largest size N_max and span s, k sizes
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
            f"{format_count(floor)} and {format_count(top)} parameters" + suffix_hint(n_target)
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
