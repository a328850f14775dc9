"""Property-based tests: every planner entry point ends in a sane result or a PlanningError.

Inputs are what a person can type or a URL can carry: zero, negative, NaN, infinite, subnormal
and astronomically large budgets, sizes and prices. A result that "succeeds" must be finite,
positive where it is a quantity, and obey the closed forms it documents (checked by hand here,
not by calling the code under test twice).
"""

import math
import re

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scaleplan.core import planning
from scaleplan.core.planning import PlanningError

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A number a hostile user can produce: anything float, plus the edges that matter.
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e40, 1e40),
    st.sampled_from([0.0, -0.0, -1.0, 5e-324, 1e-300, 1e30, 1e31, 1e300, 1.7976931348623157e308]),
    st.integers(-10**40, 10**40),
)
budget_like = st.one_of(number, st.none(), st.text(max_size=8), st.booleans())


def mixed(realistic, hostile=number):
    """One draw in eight hostile, so that whole argument lists are often realistic and the
    success path is exercised as well as the rejections."""
    return st.integers(0, 7).flatmap(lambda i: hostile if i == 0 else realistic)


params_like = mixed(st.floats(1e8, 1e13))
tokens_like = mixed(st.floats(1e9, 1e14))
size_like = mixed(st.floats(1e6, 1e9))


def _results(are: float = 0.05) -> pd.DataFrame:
    rows = [{"family": family, "status": "ok", "num_runs": k, "compute_share": share, "are_mean": are,
             "final_only": False, "min_tokens": 10e9, "fraction": 1.0}
            for family in ("fam-a", "fam-b") for k in range(2, 10) for share in np.geomspace(1e-9, 1.0, 30)]
    return pd.DataFrame(rows)


RESULTS = _results()


@FUZZ
@given(dollars=mixed(st.floats(1, 1e9), budget_like), gpu_hours=st.one_of(st.none(), st.none(), budget_like),
       price=mixed(st.floats(0.1, 100)), peak=mixed(st.floats(1e12, 1e16)), mfu=mixed(st.floats(0.01, 1)))
def test_study_compute_budget(dollars, gpu_hours, price, peak, mfu):
    try:
        flops = planning.study_compute_budget(dollars, gpu_hours, dollars_per_gpu_hour=price,
                                              peak_flops_per_gpu=peak, mfu=mfu)
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert math.isfinite(flops) and 0 < flops <= planning.MAX_FLOPS
    hours = float(dollars) / float(price) if dollars is not None else float(gpu_hours)
    assert math.isclose(flops, hours * 3600.0 * float(peak) * float(mfu), rel_tol=1e-9)


@FUZZ
@given(flops=mixed(st.floats(1e15, 1e28)), price=mixed(st.floats(0.1, 100)), peak=mixed(st.floats(1e12, 1e16)),
       mfu=mixed(st.floats(0.01, 1)))
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
@given(text=st.one_of(st.text(max_size=20), st.from_regex(r"\s*-?[0-9.,_ ]{0,12}(e-?[0-9]{1,3})?\s*[kKmMbBgGtTpPxX]?",
                                                         fullmatch=True)))
def test_parse_quantity(text):
    try:
        value = planning.parse_quantity(text, maximum=1e30)
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert math.isfinite(value) and 0 < value <= 1e30


@FUZZ
@given(target_params=params_like, target_tokens=tokens_like, study_flops=mixed(st.floats(1e15, 1e28), budget_like),
       min_size=size_like,
       seeds=st.lists(st.integers(-3, 5), max_size=4), num_runs=st.lists(st.integers(-2, 12), max_size=5),
       target_are=st.one_of(st.none(), mixed(st.floats(0.01, 0.5))))
def test_candidate_plans(target_params, target_tokens, study_flops, min_size, seeds, num_runs, target_are):
    try:
        plans = planning.candidate_plans(target_params, target_tokens, study_flops, results=RESULTS,
                                         min_size=min_size, seeds=seeds or (1,), num_runs=num_runs or (3,),
                                         target_are=target_are, cost={})
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert not plans.empty
    budget = float(study_flops)
    n_target, d_target = float(target_params), float(target_tokens)
    for row in plans.itertuples():
        sizes, tokens = np.array(row.sizes), np.array(row.tokens)
        assert np.isfinite(sizes).all() and (sizes > 0).all() and (sizes < n_target).all()
        assert np.isfinite(tokens).all() and (tokens > 0).all()
        one_seed = float(np.sum(6.0 * sizes * tokens))
        assert math.isclose(row.study_flops, row.seeds * one_seed, rel_tol=1e-9)
        assert row.study_flops <= budget * (1 + 1e-12)
        assert math.isclose(row.compute_share, one_seed / (6.0 * n_target * d_target), rel_tol=1e-9)
        assert row.seeds >= 1 and row.num_runs >= 2 and len(sizes) == row.num_runs
        assert math.isfinite(row.gpu_hours) and math.isfinite(row.dollars) and row.dollars >= 0
        if row.fits:
            assert 0 <= row.are_median <= row.are_p80 + 1e-12
    best = planning.best_plan(plans, None if target_are is None else float(target_are))
    assert best is not None


law_number = mixed(st.one_of(st.floats(0.05, 1.0), st.floats(1.0, 1e4)))
chinchilla_params = st.fixed_dictionaries({name: law_number for name in ("E", "A", "B", "alpha", "beta")})
overtrain_params = st.fixed_dictionaries({name: law_number for name in ("E", "a", "b", "eta")})
downstream_params = st.one_of(st.none(), st.fixed_dictionaries({name: law_number for name in ("eps", "k", "gamma")}))


@FUZZ
@given(params=st.one_of(chinchilla_params, overtrain_params), compute=mixed(st.floats(1e15, 1e28), budget_like),
       multipliers=st.lists(mixed(st.floats(1, 1000)), max_size=6), downstream=downstream_params)
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


@FUZZ
@given(values=st.lists(mixed(st.floats(1e-3, 1e12), st.one_of(number, st.none())), min_size=14, max_size=14),
       meta=st.booleans())
def test_recommendation_is_always_text(values, meta):
    target_params, target_tokens, target_are, runs, lo, hi, seeds, share, dollars, median, p80, ot_m, ot_inc, ot_s = values
    try:
        text = planning.recommendation(
            target_params=target_params, target_tokens=target_tokens, target_are=target_are,
            plan_num_runs=runs, plan_min_size=lo, plan_max_size=hi, plan_seeds=seeds,
            plan_compute_share=share, plan_dollars=dollars, plan_are_median=median, plan_are_p80=p80,
            overtrain_multiplier=ot_m, overtrain_loss_increase=ot_inc, overtrain_inference_saved=ot_s,
            meta_available=meta)
    except PlanningError as error:
        assert str(error)
        event(f"rejected: {type(error).__name__}")
        return
    event("accepted")
    assert isinstance(text, str) and text
    assert not re.search(r"\b(nan|inf|infinity|none)\b|\u221e", text, flags=re.IGNORECASE), text
    assert not re.search(r"train -|train 0 model|-\d[\d.]*%? of the target", text), text
