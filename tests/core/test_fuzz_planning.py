"""Property-based tests: every planner entry point ends in a sane result or a PlanningError.

Inputs are what a person can type or a URL can carry: zero, negative, NaN, infinite, subnormal
and astronomically large budgets, sizes and prices. A result that "succeeds" must be finite,
positive where it is a quantity, and obey the closed forms it documents (checked by hand here,
not by calling the code under test twice).
"""

import math
import re

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scaleplan.core import planning
from scaleplan.core.planning import PlanningError
from tests.core.test_planning import FakeCalibration, check_claims

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A number a hostile user can produce: anything float, plus the edges that matter.
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e40, 1e40),
    st.sampled_from([0.0, -0.0, -1.0, 5e-324, 1e-300, 1e30, 1e31, 1e300, 1.7976931348623157e308]),
    st.integers(-(10**40), 10**40),
)
budget_like = st.one_of(number, st.none(), st.text(max_size=8), st.booleans())


def mixed(realistic, hostile=number):
    """One draw in eight hostile, so that whole argument lists are often realistic and the
    success path is exercised as well as the rejections."""
    return st.integers(0, 7).flatmap(lambda i: hostile if i == 0 else realistic)


params_like = mixed(st.floats(1e8, 1e13))
tokens_like = mixed(st.floats(1e9, 1e14))
size_like = mixed(st.floats(1e6, 1e9))


@FUZZ
@given(
    dollars=mixed(st.floats(1, 1e9), budget_like),
    gpu_hours=st.one_of(st.none(), st.none(), budget_like),
    price=mixed(st.floats(0.1, 100)),
    peak=mixed(st.floats(1e12, 1e16)),
    mfu=mixed(st.floats(0.01, 1)),
)
def test_study_compute_budget(dollars, gpu_hours, price, peak, mfu):
    try:
        flops = planning.study_compute_budget(
            dollars, gpu_hours, dollars_per_gpu_hour=price, peak_flops_per_gpu=peak, mfu=mfu
        )
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert math.isfinite(flops) and 0 < flops <= planning.MAX_FLOPS
    hours = float(dollars) / float(price) if dollars is not None else float(gpu_hours)
    assert math.isclose(flops, hours * 3600.0 * float(peak) * float(mfu), rel_tol=1e-9)


@FUZZ
@given(
    flops=mixed(st.floats(1e15, 1e28)),
    price=mixed(st.floats(0.1, 100)),
    peak=mixed(st.floats(1e12, 1e16)),
    mfu=mixed(st.floats(0.01, 1)),
)
def test_compute_cost(flops, price, peak, mfu):
    try:
        cost = planning.compute_cost(flops, dollars_per_gpu_hour=price, peak_flops_per_gpu=peak, mfu=mfu)
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert all(math.isfinite(v) and v > 0 for v in (cost.flops, cost.gpu_hours, cost.dollars))
    assert math.isclose(cost.gpu_hours, float(flops) / (3600.0 * float(peak) * float(mfu)), rel_tol=1e-9)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=20), st.from_regex(r"\s*-?[0-9.,_ ]{0,12}(e-?[0-9]{1,3})?\s*[kKmMbBgGtTpPxX]?", fullmatch=True)
    )
)
def test_parse_quantity(text):
    try:
        value = planning.parse_quantity(text, maximum=1e30)
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert math.isfinite(value) and 0 < value <= 1e30


PLANS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
calibrations = st.builds(
    FakeCalibration,
    floor=st.floats(0.0, 0.1),
    slope=st.floats(0.0, 0.2),
    thin_ratio=st.sampled_from([1e2, 1e3, 1e4, 1e9]),
    refuse_ratio=st.sampled_from([1e3, 1e6, 1e12]),
)


@PLANS
@given(
    target_params=params_like,
    target_tokens=tokens_like,
    budget=mixed(st.floats(1, 1e8), budget_like),
    goal=mixed(st.floats(0.005, 0.5)),
    calibration=calibrations,
    rules=st.lists(st.sampled_from(planning.TOKEN_RULES), min_size=1, max_size=3, unique=True),
)
def test_plan_study_pick_within_budget_and_text_matches(target_params, target_tokens, budget, goal, calibration, rules):
    try:
        plan = planning.plan_study(
            target_params,
            target_tokens,
            budget_dollars=budget,
            goal_are=goal,
            calibration=calibration,
            token_rules=rules,
        )
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("picked" if plan.pick is not None else "no pick")
    budget = float(budget)
    if plan.picked is not None:
        assert plan.picked.cost.dollars <= budget
        assert plan.picked.rankable
        assert plan.meets_goal == (plan.picked.are_p80 <= plan.goal_are)
    law = planning.published_law("besiroglu2024", n_samples=200)
    optimum = planning.optimal_allocation(law, planning.training_flops(target_params, target_tokens))
    text = planning.recommendation(plan, optimum, planning.summarise_overtraining(law, target_params, target_tokens))
    check_claims(plan, optimum, text)
    assert not re.search(r"\b(nan|inf|infinity)\b|\u221e", text, flags=re.IGNORECASE), text
    assert not re.search(r"\bNone\b", text), text


@PLANS
@given(
    target_params=st.floats(1e9, 1e13),
    tokens_per_param=st.floats(1, 300),
    budget=st.floats(1, 1e8),
    factor=st.floats(1, 1e4),
    goal=st.floats(0.005, 0.5),
    calibration=calibrations,
)
def test_raising_the_budget_never_worsens_the_pick(target_params, tokens_per_param, budget, factor, goal, calibration):
    designs = planning.study_designs(target_params, target_params * tokens_per_param)
    plans = [
        planning.plan_study(
            target_params,
            target_params * tokens_per_param,
            budget_dollars=b,
            goal_are=goal,
            calibration=calibration,
            designs=designs,
        )
        for b in (budget, budget * factor)
    ]
    p80 = [math.inf if p.picked is None else p.picked.are_p80 for p in plans]
    assert p80[1] <= p80[0]
    if plans[0].meets_goal:
        assert plans[1].meets_goal


law_number = mixed(st.one_of(st.floats(0.05, 1.0), st.floats(1.0, 1e4)))
chinchilla_params = st.fixed_dictionaries({name: law_number for name in ("E", "A", "B", "alpha", "beta")})
overtrain_params = st.fixed_dictionaries({name: law_number for name in ("E", "a", "b", "eta")})
downstream_params = st.one_of(st.none(), st.fixed_dictionaries({name: law_number for name in ("eps", "k", "gamma")}))


@FUZZ
@given(
    params=st.one_of(chinchilla_params, overtrain_params),
    compute=mixed(st.floats(1e15, 1e28), budget_like),
    multipliers=st.lists(mixed(st.floats(1, 1000)), max_size=6),
    downstream=downstream_params,
)
def test_overtraining_tradeoff(params, compute, multipliers, downstream):
    try:
        table = planning.overtraining_tradeoff(params, compute, multipliers, downstream)
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    C = float(compute)
    assert len(table) == len(multipliers)
    for column in ("num_params", "tokens", "compute_flops", "loss", "inference_flops_per_token"):
        assert np.isfinite(table[column]).all() and (table[column] > 0).all(), column
    np.testing.assert_allclose(table["compute_flops"], C, rtol=1e-9)
    np.testing.assert_allclose(table["tokens"] / table["num_params"], table["multiplier"], rtol=1e-9)
    # Compute-optimal is the minimum over all allocations of C, so no row can beat it.
    assert (table["loss_increase"] >= -1e-9 * table["loss"]).all()
    assert np.isfinite(table["inference_relative"]).all() and (table["inference_relative"] > 0).all()
    if downstream is not None:
        assert np.isfinite(table["downstream_error"]).all()
    choice = planning.overtraining_choice(table)
    assert choice is None or choice["inference_saved"] > 0
