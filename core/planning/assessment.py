"""Expected accuracy and the pick: each design priced and given the calibrated error model's median,
80th and 90th percentile of ARE (:func:`assess_designs`), the Pareto frontier, the pick
(:func:`choose`) and the typed :class:`StudyPlan` (:func:`plan_study`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from scaleplan.core.planning.cost import ComputeCost, CostModel, training_flops
from scaleplan.core.planning.designs import (
    DEFAULT_MAX_SIZE_SHARE,
    PARTIAL_TARGET_REFUSAL,
    PARTIAL_TARGET_RULE,
    StudyDesign,
    study_designs,
)
from scaleplan.core.planning.inputs import (
    FLOPS_PER_PARAM_TOKEN,
    MAX_DOLLARS,
    MAX_PARAMS,
    MAX_TOKENS,
    MIN_COUNT,
    _positive,
)


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
