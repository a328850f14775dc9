"""scaleplan.core.planning: GPU cost model, study designs, over-training trade-off, recommendation text."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import planning
from scaleplan.core.planning import BudgetTooSmallError, MetaResultsMissingError, PlanningError


def synthetic_results(are: float = 0.05) -> pd.DataFrame:
    """Meta-analysis rows of two families, every number of runs and compute share, ARE ``are``."""
    rows = []
    for family in ("fam-a", "fam-b"):
        for k in range(2, 10):
            for share in np.geomspace(1e-6, 1.0, 25):
                rows.append({"family": family, "status": "ok", "num_runs": k, "compute_share": share,
                             "are_mean": are, "final_only": False, "min_tokens": 10e9, "fraction": 1.0})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Cost model: closed forms computed by hand.

def test_one_dollar_of_h100_at_defaults():
    # $2 per GPU-hour -> $1 is half an hour: 1800 s * 989e12 FLOP/s * 0.4.
    assert planning.study_compute_budget(dollars=1.0) == pytest.approx(1800 * 989e12 * 0.4, rel=1e-12)
    assert planning.study_compute_budget(dollars=1.0) == pytest.approx(7.1208e17, rel=1e-12)


def test_gpu_hours_closed_form():
    flops = planning.study_compute_budget(gpu_hours=10, peak_flops_per_gpu=1e15, mfu=0.5)
    assert flops == pytest.approx(10 * 3600 * 1e15 * 0.5, rel=1e-12)  # 1.8e19


def test_dollars_and_price_closed_form():
    flops = planning.study_compute_budget(dollars=1000, dollars_per_gpu_hour=4.0, peak_flops_per_gpu=312e12, mfu=0.5)
    assert flops == pytest.approx(250 * 3600 * 312e12 * 0.5, rel=1e-12)


def test_compute_cost_is_the_inverse():
    cost = planning.compute_cost(1.8e19, dollars_per_gpu_hour=3.0, peak_flops_per_gpu=1e15, mfu=0.5)
    assert cost.gpu_hours == pytest.approx(10.0, rel=1e-12)
    assert cost.dollars == pytest.approx(30.0, rel=1e-12)
    back = planning.study_compute_budget(dollars=cost.dollars, dollars_per_gpu_hour=3.0, peak_flops_per_gpu=1e15,
                                         mfu=0.5)
    assert back == pytest.approx(1.8e19, rel=1e-12)


def test_training_flops():
    assert planning.training_flops(7e9, 1.4e11) == pytest.approx(6 * 7e9 * 1.4e11)


@pytest.mark.parametrize("kwargs", [
    {"dollars": 0}, {"dollars": -5}, {"dollars": float("nan")}, {"dollars": float("inf")}, {"dollars": 1e20},
    {"gpu_hours": 0}, {"gpu_hours": -1}, {"gpu_hours": float("nan")}, {"gpu_hours": 1e30},
    {}, {"dollars": 10, "gpu_hours": 10},
    {"dollars": 10, "mfu": 0}, {"dollars": 10, "mfu": 1.5}, {"dollars": 10, "mfu": float("nan")},
    {"dollars": 10, "peak_flops_per_gpu": -1}, {"dollars": 10, "peak_flops_per_gpu": float("inf")},
    {"dollars": 10, "dollars_per_gpu_hour": 0}, {"dollars": "ten"},
])
def test_bad_budget_inputs_raise_planning_error(kwargs):
    with pytest.raises(PlanningError) as info:
        planning.study_compute_budget(**kwargs)
    assert str(info.value)  # a message for the user


@pytest.mark.parametrize("flops", [0, -1e20, float("nan"), float("inf"), 1e40])
def test_bad_compute_raises(flops):
    with pytest.raises(PlanningError):
        planning.compute_cost(flops)


# ---------------------------------------------------------------------------------------------
# Study designs.

@pytest.mark.parametrize("budget", [3e18, 3e19, 1e21, 5e22])
def test_plans_never_exceed_the_budget(budget):
    plans = planning.candidate_plans(7e9, 1.4e11, budget, results=synthetic_results())
    assert not plans.empty
    assert (plans["study_flops"] <= budget * (1 + 1e-12)).all()
    # Recompute every plan's cost from its sizes, tokens and seeds: s * sum 6 N D.
    for _, plan in plans.iterrows():
        cost = plan["seeds"] * sum(6 * n * d for n, d in zip(plan["sizes"], plan["tokens"]))
        assert cost == pytest.approx(plan["study_flops"], rel=1e-12)
        assert cost <= budget * (1 + 1e-12)
        target = 6 * 7e9 * 1.4e11
        assert plan["compute_share"] == pytest.approx(cost / plan["seeds"] / target, rel=1e-12)


def test_plan_shapes():
    plans = planning.candidate_plans(1e9, 2e10, 1e21, results=synthetic_results(), seeds=(1,))
    for _, plan in plans.iterrows():
        sizes = np.array(plan["sizes"])
        assert len(sizes) == plan["num_runs"]
        assert sizes[0] == pytest.approx(1e7)
        assert sizes.max() < 1e9
        ratios = sizes[1:] / sizes[:-1]
        assert np.allclose(ratios, ratios[0])  # geometric spacing
        if plan["token_rule"] == "20 tokens/param":
            assert np.allclose(np.array(plan["tokens"]) / sizes, 20)
        else:
            assert len(set(plan["tokens"])) == 1


def test_expected_are_comes_from_the_results():
    plans = planning.candidate_plans(7e9, 1.4e11, 1e21, results=synthetic_results(are=0.037))
    assert np.allclose(plans["are_median"], 0.037)
    assert (plans["families"] == 2).all()


def test_ranking_is_by_are_then_cost():
    results = synthetic_results()
    # Make fits with more runs better: ARE = 0.2 / k.
    results["are_mean"] = 0.2 / results["num_runs"]
    plans = planning.candidate_plans(7e9, 1.4e11, 1e22, results=results)
    keys = list(zip(plans["are_median"].round(3), plans["study_flops"]))
    assert keys == sorted(keys)
    assert plans["num_runs"].iloc[0] == plans["num_runs"].max()


def test_best_plan_is_cheapest_meeting_target():
    results = synthetic_results()
    results["are_mean"] = 0.2 / results["num_runs"]
    plans = planning.candidate_plans(7e9, 1.4e11, 1e22, results=results, target_are=0.05)
    best = planning.best_plan(plans, 0.05)
    meeting = plans[plans["are_p80"] <= 0.05]
    assert best["study_flops"] == meeting["study_flops"].min()
    assert planning.best_plan(plans.iloc[0:0]) is None
    # Designs supported by one family only are not recommended while better-supported ones exist.
    weak = plans.copy()
    weak.loc[weak.index[:5], ["families", "are_p80"]] = [1, 0.0]
    assert planning.best_plan(weak, 0.05).name not in weak.index[:5]


def test_cost_columns():
    plans = planning.candidate_plans(7e9, 1.4e11, 1e21, results=synthetic_results(),
                                     cost={"dollars_per_gpu_hour": 2.0, "peak_flops_per_gpu": 1e15, "mfu": 0.5})
    assert np.allclose(plans["gpu_hours"], plans["study_flops"] / (3600 * 1e15 * 0.5))
    assert np.allclose(plans["dollars"], plans["gpu_hours"] * 2.0)


def test_empty_results_say_so():
    with pytest.raises(MetaResultsMissingError, match="meta-analysis"):
        planning.candidate_plans(7e9, 1.4e11, 1e21, results=pd.DataFrame())
    failed = synthetic_results().assign(status="InsufficientDataError")
    with pytest.raises(MetaResultsMissingError):
        planning.candidate_plans(7e9, 1.4e11, 1e21, results=failed)


def test_budget_too_small():
    with pytest.raises(BudgetTooSmallError, match="too small"):
        planning.candidate_plans(7e9, 1.4e11, 1e12, results=synthetic_results())


@pytest.mark.parametrize("args", [(-7e9, 1.4e11, 1e21), (7e9, 0, 1e21), (7e9, 1.4e11, float("nan")),
                                  (float("inf"), 1.4e11, 1e21), (5e7, 1e9, 1e21), (7e9, 1.4e11, 1e40)])
def test_bad_plan_inputs(args):
    with pytest.raises(PlanningError):
        planning.candidate_plans(*args, results=synthetic_results())


# ---------------------------------------------------------------------------------------------
# Over-training trade-off.

CHIN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
GADRE = {"E": 1.84, "a": 212.0, "b": 367.0, "eta": 0.136}


@pytest.mark.parametrize("params", [CHIN, GADRE])
@pytest.mark.parametrize("compute", [1e19, 3.2e21, 1e24])
def test_tradeoff_keeps_compute_and_multiplier(params, compute):
    table = planning.overtraining_tradeoff(params, compute)
    assert list(table["multiplier"]) == [10, 20, 40, 80, 160, 320, 640]
    assert np.allclose(6 * table["num_params"] * table["tokens"], compute, rtol=1e-12, atol=0)
    assert np.allclose(table["tokens"] / table["num_params"], table["multiplier"], rtol=1e-12, atol=0)
    assert (np.diff(table["num_params"]) < 0).all()  # longer training, smaller model
    assert np.allclose(table["inference_flops_per_token"], 2 * table["num_params"])


def test_tradeoff_loss_equals_gadre_law():
    # Independent: Gadre et al.'s law evaluated directly, E + (a M^eta + b M^-eta) C^-eta.
    C = 5e21
    table = planning.overtraining_tradeoff(GADRE, C)
    M = table["multiplier"].to_numpy()
    eta = GADRE["eta"]
    direct = GADRE["E"] + (GADRE["a"] * M ** eta + GADRE["b"] * M ** -eta) * C ** -eta
    assert np.allclose(table["loss"], direct, rtol=1e-12)


def test_tradeoff_relative_to_compute_optimal():
    # A = B and alpha = beta: the optimum is N = D = sqrt(C / 6), i.e. M = 1.
    params = {"E": 1.5, "A": 300.0, "B": 300.0, "alpha": 0.3, "beta": 0.3}
    C = 6e20
    table = planning.overtraining_tradeoff(params, C, multipliers=(1, 4, 100))
    n_opt = math.sqrt(C / 6)
    assert table["inference_relative"].iloc[0] == pytest.approx(1.0, rel=1e-12)
    assert table["inference_relative"].iloc[1] == pytest.approx(0.5, rel=1e-12)  # N = sqrt(C/24)
    assert table["inference_saved"].iloc[2] == pytest.approx(0.9, rel=1e-12)
    assert table["loss_increase"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert (table["loss_increase"].iloc[1:] > 0).all()
    assert table["num_params"].iloc[0] == pytest.approx(n_opt, rel=1e-12)


def test_tradeoff_downstream():
    ds = {"eps": 0.86, "k": 2.2, "gamma": 0.71}
    table = planning.overtraining_tradeoff(GADRE, 1e22, downstream=ds)
    expected = 0.86 - 2.2 * np.exp(-0.71 * table["loss"])
    assert np.allclose(table["downstream_error"], expected)
    assert planning.overtraining_tradeoff(GADRE, 1e22)["downstream_error"].isna().all()


@pytest.mark.parametrize("call", [
    lambda: planning.overtraining_tradeoff(CHIN, 0),
    lambda: planning.overtraining_tradeoff(CHIN, float("nan")),
    lambda: planning.overtraining_tradeoff(CHIN, -1e21),
    lambda: planning.overtraining_tradeoff(CHIN, 1e21, multipliers=(20, -1)),
    lambda: planning.overtraining_tradeoff(CHIN, 1e21, multipliers=()),
    lambda: planning.overtraining_tradeoff({"E": 1.0}, 1e21),
    lambda: planning.overtraining_tradeoff({**CHIN, "alpha": float("nan")}, 1e21),
    lambda: planning.overtraining_tradeoff(CHIN, 1e21, downstream={"eps": 0.8}),
])
def test_tradeoff_bad_inputs(call):
    with pytest.raises(PlanningError):
        call()


# ---------------------------------------------------------------------------------------------
# Recommendation text.

def test_recommendation_mentions_the_numbers():
    text = planning.recommendation(
        target_params=7e9, target_tokens=1.4e11, target_are=0.05, plan_num_runs=5, plan_min_size=1e7,
        plan_max_size=5e8, plan_seeds=1, plan_compute_share=0.012, plan_dollars=4200, plan_are_median=0.03,
        plan_are_p80=0.045, optimal_params=6.5e9, optimal_tokens=1.5e11, overtrain_multiplier=160,
        overtrain_loss_increase=0.031, overtrain_inference_saved=0.62)
    assert isinstance(text, str)
    for piece in ("7B", "140B", "5 models", "10M", "500M", "$4.2k", "3.0%", "4.5%", "meets", "6.5B", "160",
                  "62%"):
        assert piece in text, piece


def test_recommendation_without_plan_or_support():
    text = planning.recommendation(target_params=7e9, target_tokens=1.4e11, target_are=0.05)
    assert "No study design" in text
    text = planning.recommendation(target_params=7e9, target_tokens=1.4e11, target_are=0.05, plan_num_runs=3,
                                   plan_min_size=1e7, plan_max_size=1e8, plan_are_median=float("nan"),
                                   plan_runs_under_cutoff=3)
    assert "no comparable fits" in text
    assert "10B tokens" in text
    missed = planning.recommendation(target_params=7e9, target_tokens=1.4e11, target_are=0.02, plan_num_runs=3,
                                     plan_min_size=1e7, plan_max_size=1e8, plan_are_median=0.08, plan_are_p80=0.12)
    assert "misses" in missed
    no_meta = planning.recommendation(target_params=7e9, target_tokens=1.4e11, target_are=0.05, meta_available=False)
    assert "Run the meta-analysis" in no_meta


@pytest.mark.parametrize("text, value", [("7B", 7e9), ("1.4e9", 1.4e9), ("70 M", 7e7), ("2,000,000", 2e6),
                                         ("1.5t", 1.5e12), ("500k", 5e5), ("3G", 3e9), ("  12_000 ", 12000.0)])
def test_parse_quantity(text, value):
    assert planning.parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "-7B", "0", "7X", "nan", "inf", "1e400", "7BB", None])
def test_parse_quantity_rejects(text):
    with pytest.raises(PlanningError):
        planning.parse_quantity(text, name="N")


def test_overtraining_choice():
    params = {"E": 1.5, "A": 300.0, "B": 300.0, "alpha": 0.3, "beta": 0.3}  # optimum at M = 1
    table = planning.overtraining_tradeoff(params, 6e20, multipliers=(1, 2, 4, 8, 16, 32, 64, 128))
    choice = planning.overtraining_choice(table, max_loss_increase=0.01)
    optimal = table["loss"].iloc[0]
    allowed = table[(table["loss"] - optimal <= 0.01 * optimal) & (table["inference_saved"] > 0)]
    assert choice["multiplier"] == allowed["multiplier"].max()
    assert planning.overtraining_choice(table, max_loss_increase=0.0) is None
    assert planning.overtraining_choice(table.iloc[0:0]) is None
