"""Advice that uses the budget: the unspent amount and the real limit, larger study models, the target
trained partially (priced, never ranked), sanity remarks. Stand-in error model with known quantiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleplan.core import planning
from scaleplan.core.units import format_dollars
from tests.core.test_planning import FakeCalibration, check_claims

PLANS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plan(n, d, budget, goal=0.05, calibration=None, **options):
    return planning.plan_study(
        n, d, budget_dollars=budget, goal_are=goal, calibration=calibration or FakeCalibration(), **options
    )


def test_partial_target_design_is_priced_and_never_ranked():
    plan = _plan(70e9, 1.4e12, 2e6)
    partial = [a for a in plan.designs if a.design.token_rule == planning.PARTIAL_TARGET_RULE]
    assert len(partial) == 1
    a = partial[0]
    # 0.3 * 6 * 70e9 * 1.4e12 FLOPs at 3600 * 989e12 * 0.4 FLOPs per GPU-hour and $2 per GPU-hour
    assert a.cost.dollars == pytest.approx(0.3 * 6 * 70e9 * 1.4e12 / (3600 * 989e12 * 0.4) * 2, rel=1e-12)
    assert a.expected is None and not a.rankable and "no design that trains the target itself" in a.refusal
    assert plan.target_cost_dollars == pytest.approx(a.cost.dollars / 0.3, rel=1e-12)
    text = planning.recommendation(plan)
    assert (
        f"Training the target itself (70B parameters) on 30% of its tokens (420B) for {format_dollars(a.cost.dollars)}"
        in text
    )
    assert "$248k" in text
    # at $20k it does not fit and is not offered
    assert "Training the target itself" not in planning.recommendation(_plan(70e9, 1.4e12, 2e4))


def test_study_models_up_to_half_the_target():
    designs = planning.study_designs(70e9, 1.4e12)
    ranked = [d for d in designs if d.token_rule != planning.PARTIAL_TARGET_RULE]
    assert max(d.max_size for d in ranked) == 20e9  # the 1-2-5 ladder's top below 35B
    assert all(d.max_size <= 35e9 for d in ranked)


def test_budget_far_beyond_every_design_and_beyond_the_target_gets_a_remark():
    plan = _plan(1e9, 20e9, 2e6)
    text = planning.recommendation(plan)
    dearest = max(a.cost.dollars for a in plan.designs if a.design.token_rule != planning.PARTIAL_TARGET_RULE)
    assert 2e6 > 10 * dearest
    assert (
        f"the $2M budget is far beyond what any design can use (the most expensive costs {format_dollars(dearest)})"
        in text
    )
    assert f"beyond training the target itself ({format_dollars(plan.target_cost_dollars)})" in text


@PLANS
@given(
    target_params=st.floats(1e9, 1e12),
    tokens_per_param=st.floats(5, 200),
    budget=st.floats(1, 1e8),
    factor=st.floats(1, 1e4),
    goal=st.floats(0.005, 0.5),
    floor=st.floats(0.0, 0.1),
    slope=st.floats(0.0, 0.2),
)
def test_more_budget_never_worse_and_unspent_money_is_explained(
    target_params, tokens_per_param, budget, factor, goal, floor, slope
):
    calibration = FakeCalibration(floor=floor, slope=slope)
    tokens = target_params * tokens_per_param
    designs = planning.study_designs(target_params, tokens)
    plans = [
        planning.plan_study(
            target_params, tokens, budget_dollars=b, goal_are=goal, calibration=calibration, designs=designs
        )
        for b in (budget, budget * factor)
    ]
    p80 = [math.inf if p.picked is None else p.picked.are_p80 for p in plans]
    assert p80[1] <= p80[0]
    for plan in plans:
        text = planning.recommendation(plan)
        check_claims(plan, None, text)
        pick = plan.picked
        if pick is None:
            assert "unspent" not in text
            continue
        spent = pick.cost.dollars
        if spent < 0.5 * plan.budget_dollars:
            sentence = (
                f"The pick spends {format_dollars(spent)} of the {format_dollars(plan.budget_dollars)} budget, "
                f"{format_dollars(plan.budget_dollars - spent)} unspent: "
            )
            assert sentence in text, text
            after = text[text.index(sentence) + len(sentence) :]
            assert after.startswith(
                (
                    "more money does not help",
                    "it is the cheapest design that meets the goal",
                    "no design within the budget",
                )
            )
        else:
            assert "unspent" not in text
        assert ("Remark: the study costs" in text) == (spent > 0.1 * plan.target_cost_dollars)


def test_70b_picks_at_20k_200k_2m_with_the_shipped_calibration(built_db):
    """Acceptance (issue 22): at $2M the 70B / 1.4T pick differs from the $20k pick, or the text names the
    limit; more budget never worsens p80; unspent money is stated."""
    from scaleplan.core import calibration, meta, storage

    con = storage.connect(built_db)
    try:
        version = storage.stored_data_version(con)
    finally:
        con.close()
    results = meta.shipped_results(version)
    # the shipped sweep belongs to the current data version (test_meta_shipped): none would be a bug, not a skip
    assert not results.empty, f"no shipped sweep results for data version {version}"
    model = calibration.fit_calibration(results)
    designs = planning.study_designs(70e9, 1.4e12)
    plans = {
        b: planning.plan_study(70e9, 1.4e12, budget_dollars=b, goal_are=0.05, calibration=model, designs=designs)
        for b in (2e4, 2e5, 2e6)
    }
    p80 = [plans[b].picked.are_p80 for b in (2e4, 2e5, 2e6)]
    assert p80[0] >= p80[1] >= p80[2]
    small, large = plans[2e4].picked, plans[2e6].picked
    text = planning.recommendation(plans[2e6])
    assert large.design != small.design or "more money does not help" in text
    assert f"{format_dollars(2e6 - large.cost.dollars)} unspent" in text
    assert "Training the target itself (70B parameters) on 30% of its tokens" in text


def test_money_in_messages_reads_as_dollars():
    # "$0" and "$2e+09", not "0 $" (review: the price per GPU-hour of 0 read "got 0 $")
    with pytest.raises(planning.PlanningError) as zero:
        planning.CostModel(dollars_per_gpu_hour=0.0)
    assert str(zero.value).endswith("got $0") and "0 $" not in str(zero.value)
    with pytest.raises(planning.PlanningError) as huge:
        planning.CostModel().budget_dollars(dollars=1e30)
    assert "of $1e+30" in str(huge.value)
