"""The next rung of a stored study (issue 21, item 5): candidate additions to a study's runs, each priced
with the target's expected ARE after adding it, and the pick among them (:func:`next_rung`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleplan.core.planning.assessment import AREModel, AssessedDesign, choose
from scaleplan.core.planning.candidates import assess_candidate, candidate_design
from scaleplan.core.planning.cost import ComputeCost, CostModel
from scaleplan.core.planning.designs import (
    COMPUTE_OPTIMAL_MULTIPLIER,
    CUSTOM_RULE,
    ISOFLOP_SIZE_SPREAD,
    StudyDesign,
)
from scaleplan.core.planning.inputs import (
    FLOPS_PER_PARAM_TOKEN,
    MAX_DOLLARS,
    MAX_PARAMS,
    MAX_TOKENS,
    MIN_COUNT,
    PlanningError,
    _positive,
)
from scaleplan.core.units import format_count, format_dollars, format_flops, format_percent

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
    * two new sizes in the largest existing budget C_top = max_i 6 N_i D_i: N_min / 2 and 2 N_max, the
      smallest and largest sizes of the runs in that budget (:func:`core.isoflop.group_budgets`), D = C_top / (6 N);
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
    # The runs of the largest budget (an isoFLOP sweep has several, their N D equal up to rounding:
    # isoflop.group_budgets' rule): the two new sizes extend that budget's size range on both sides.
    from scaleplan.core.isoflop import group_budgets  # isoflop imports planning: here, not at import time

    computes = np.asarray(existing.sizes) * np.asarray(existing.tokens)
    labels = group_budgets(computes)
    at_top = np.asarray(existing.sizes)[labels == labels.max()]
    sizes = (float(at_top.min()) / ISOFLOP_SIZE_SPREAD, float(at_top.max()) * ISOFLOP_SIZE_SPREAD)
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
