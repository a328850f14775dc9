"""Plain-language recommendation: a few sentences generated from the typed results
(:func:`recommendation`, :func:`plain_accuracy`, :func:`budget_remarks`).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from scaleplan.core.planning.assessment import AssessedDesign, ExpectedARE, StudyPlan
from scaleplan.core.planning.designs import (
    PARTIAL_TARGET_RULE,
)
from scaleplan.core.planning.overtraining import (
    OvertrainingSummary,
    multiplier_text,
)
from scaleplan.core.planning.reference import ComputeOptimal
from scaleplan.core.units import format_count, format_dollars, format_flops, format_percent

if TYPE_CHECKING:  # core.task_prediction imports core.planning lazily; the type is only named here
    from scaleplan.core.task_prediction import TargetAccuracy


def _share_text(value: float) -> str:
    return format_percent(value, 3 if value < 0.001 else 2 if value < 0.01 else 1 if value < 1 else 0)


PLANNER_HELD_OUT = {0.5: (966 / 1506, 1506), 0.8: (1148 / 1506, 1506), 0.9: (1232 / 1506, 1506)}
"""How often the planner's expected ARE held on designs of source groups left out of its calibration:
level -> (share of held-out designs whose real ARE was at most the stated quantile, designs), the share
stored as the exact count over the designs (a truncated share can round to the wrong percent). Measured
with ``scaleplan reproduce calibration --json`` (``planner``) on the shipped sweep, over the designs
the planner ranks (a study cheaper than its target, :data:`core.calibration.PLAN_MIN_COMPUTE_RATIO`);
checked by tests/core/test_planning_plain.py."""

PLANNER_HELD_OUT_WORST = (("datablations", 45 / 284, 284), ("pythia", 99 / 214, 214))
"""The source groups where the planner's p80 held least, leaving each out: (group, share, designs), the
share as the exact count over the designs (45 of 284 is 15.8%, shown as 16%).
Every other group of >= 10 designs: 92-100%. Before any fit a plan cannot see a source's difficulty
(datablations' repeated data, Pythia's large fit residuals); the Fit page's interval, which sees the
fit and backtests it on its own largest size, covers them at 85% and 85% (90% level)."""


THIN_SUPPORT_REASON = "thin support: too few source groups or families behind its expected error to rank it"
_NUMBER = re.compile(r"[0-9][0-9.,]*(?:e[+-]?[0-9]+)?")


def refusal_counts(plan: StudyPlan) -> list[tuple[int, str, bool]]:
    """Why the designs no budget can pick are not ranked, grouped: (designs, reason, whether the group's
    reasons differ in their numbers, the one shown being the cheapest design's), the most common first.
    Reasons that differ only in their numbers ("extrapolates 1.5e+03x in compute", "... 5.68e+03x ...")
    are one group."""
    groups: dict[str, list[str]] = {}
    for a in plan.designs:
        if a.rankable:
            continue
        reason = a.refusal or (THIN_SUPPORT_REASON if a.expected is not None else "no expected error")
        groups.setdefault(_NUMBER.sub("#", reason), []).append(reason)
    ordered = sorted(groups.values(), key=lambda texts: -len(texts))  # stable: the cheapest group first on ties
    return [(len(texts), texts[0], len(set(texts)) > 1) for texts in ordered]


def refusal_text(plan: StudyPlan) -> str:
    """Every design refused, in words: how many and why, the reasons counted, the most common first."""
    parts = [
        f"{count} design{'' if count == 1 else 's'}{', such as' if varied else ''}: {reason}"
        for count, reason, varied in refusal_counts(plan)
    ]
    total = len(plan.designs)
    return (
        f"every one of the {total} design{'' if total == 1 else 's'} of the design space is refused, for reasons "
        "that no budget changes. " + ". ".join(parts)
    )


def support_text(expected: ExpectedARE) -> str:
    """What an expected ARE is learned from: the error model's whole calibration set (the same for every
    design, not a count of fits like this one), e.g. "an error model learned on 3,135 fits of the collection,
    20 model families in 10 source groups"."""
    families = f"{expected.families} model famil{'y' if expected.families == 1 else 'ies'}"
    groups = f" in {expected.groups} source groups" if expected.groups else ""
    return f"an error model learned on {expected.fits:,} fits of the collection, {families}{groups}"


def plain_accuracy(expected: ExpectedARE) -> str:
    """One sentence a decision-maker can read for an expected ARE, with the cases and sources behind it and
    how often such a statement held on source groups left out (:data:`PLANNER_HELD_OUT`, and the groups
    where it held least, :data:`PLANNER_HELD_OUT_WORST`)."""
    held, designs = PLANNER_HELD_OUT[0.8]
    held_median, _ = PLANNER_HELD_OUT[0.5]
    worst = " and ".join(f"{format_percent(share, 0)} of {group}" for group, share, _ in PLANNER_HELD_OUT_WORST)
    return (
        f"In plain words: in 8 of 10 comparable past cases the predicted loss came within "
        f"{format_percent(expected.p80)} of the real loss, and in half within {format_percent(expected.median)} "
        f"({support_text(expected)}). Checked on whole sources "
        f"left out, the {format_percent(expected.p80)} bound held in about {round(10 * held):.0f} of 10 cases "
        f"({format_percent(held, 0)} of {designs:,}) and the median one in {format_percent(held_median, 0)}, but "
        f"only for {worst} designs (by source): a source whose runs the law fits badly misses it far more often, and only "
        "a fit of your first runs (the Fit page) shows whether yours is one."
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
            f"it already has the largest study model of the space, {format_count(largest)} parameters: the "
            f"largest size of the 1-2-5 ladder under the cap of {_fraction_text(plan.size_share)} the target, "
            f"{format_count(plan.size_cap)}"
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
    plan: StudyPlan,
    optimum: ComputeOptimal | None = None,
    overtraining: OvertrainingSummary | None = None,
    accuracy: TargetAccuracy | None = None,
) -> str:
    """A few plain sentences generated from the typed results (no markup).

    Every number in the text is formatted from ``plan``, ``optimum``, ``overtraining`` and
    ``accuracy`` (the target's predicted accuracy on a task or on Gadre et al.'s 17-task average,
    :func:`core.task_prediction.target_task_accuracy` / :func:`~core.task_prediction.target_average_accuracy`,
    stated after the study's sentences), the same objects the tables show; tests parse the text back
    and compare.
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
        if cheapest:
            sentences.append(
                f"No well-supported study design fits the {budget} budget for {target}; the cheapest costs "
                f"{format_dollars(min(cheapest))}."
            )
        elif plan.designs:
            sentences.append(f"No study design can be ranked for {target}: {refusal_text(plan)}.")
        else:
            sentences.append(f"No study design can be ranked for {target}: the design space is empty.")
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
            f"{format_percent(e.p80)} at the 80th percentile ({support_text(e)})."
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
    if accuracy is not None:
        sentences.append(accuracy.sentence)
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
            f"tokens, {multiplier_text(optimum.tokens_per_param)} tokens per parameter."
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
                f"The target's {multiplier_text(o.target_multiplier)} tokens per parameter is "
                f"{'more' if ratio > 1 else 'fewer'} than the optimum's {multiplier_text(o.optimal_multiplier)} under "
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
