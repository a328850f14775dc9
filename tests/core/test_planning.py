"""scaleplan.core.planning: GPU cost model, study designs, over-training trade-off, recommendation text."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from scaleplan.core import planning
from scaleplan.core.planning import PlanningError


class FakeCalibration:
    """A stand-in error model with known quantiles: ARE falls with more sizes and grows with the
    distance to the target, so the design space has a real cost/accuracy trade-off.

    median = floor + slope * max(log10 param_ratio, 0.1) * max(log10 compute_ratio, 0.1) / num_sizes,
    p80 = 1.6 x median, p90 = 2 x median; thin support beyond ``thin_ratio`` in parameters,
    refusal beyond ``refuse_ratio`` in compute.
    """

    def __init__(self, floor=0.01, slope=0.02, thin_ratio=1e4, refuse_ratio=1e9):
        self.floor, self.slope, self.thin_ratio, self.refuse_ratio = floor, slope, thin_ratio, refuse_ratio

    def are_quantiles(self, features):
        from scaleplan.core.calibration import AREQuantiles, Refusal

        if features.compute_ratio > self.refuse_ratio:
            return Refusal(reason="too far beyond the data in compute")
        distance = max(math.log10(features.param_ratio), 0.1) * max(math.log10(features.compute_ratio), 0.1)
        median = self.floor + self.slope * distance / features.num_sizes
        return AREQuantiles(
            median=median,
            p80=1.6 * median,
            p90=2.0 * median,
            cells=40,
            families=1 if features.param_ratio > self.thin_ratio else 4,
            thin_support=features.param_ratio > self.thin_ratio,
        )


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
    back = planning.study_compute_budget(
        dollars=cost.dollars, dollars_per_gpu_hour=3.0, peak_flops_per_gpu=1e15, mfu=0.5
    )
    assert back == pytest.approx(1.8e19, rel=1e-12)


def test_training_flops():
    assert planning.training_flops(7e9, 1.4e11) == pytest.approx(6 * 7e9 * 1.4e11)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dollars": 0},
        {"dollars": -5},
        {"dollars": float("nan")},
        {"dollars": float("inf")},
        {"dollars": 1e20},
        {"gpu_hours": 0},
        {"gpu_hours": -1},
        {"gpu_hours": float("nan")},
        {"gpu_hours": 1e30},
        {},
        {"dollars": 10, "gpu_hours": 10},
        {"dollars": 10, "mfu": 0},
        {"dollars": 10, "mfu": 1.5},
        {"dollars": 10, "mfu": float("nan")},
        {"dollars": 10, "peak_flops_per_gpu": -1},
        {"dollars": 10, "peak_flops_per_gpu": float("inf")},
        {"dollars": 10, "dollars_per_gpu_hour": 0},
        {"dollars": "ten"},
    ],
)
def test_bad_budget_inputs_raise_planning_error(kwargs):
    with pytest.raises(PlanningError) as info:
        planning.study_compute_budget(**kwargs)
    assert str(info.value)  # a message for the user


@pytest.mark.parametrize("flops", [0, -1e20, float("nan"), float("inf"), 1e40])
def test_bad_compute_raises(flops):
    with pytest.raises(PlanningError):
        planning.compute_cost(flops)


# ---------------------------------------------------------------------------------------------
# Study designs and the pick.


def test_design_space_for_a_70b_target():
    designs = planning.study_designs(70e9, 1.4e12)
    assert {d.token_rule for d in designs} == set(planning.TOKEN_RULES) | {planning.PARTIAL_TARGET_RULE}
    partial = [d for d in designs if d.token_rule == planning.PARTIAL_TARGET_RULE]
    assert [(d.sizes, d.tokens) for d in partial] == [((70e9,), (0.3 * 1.4e12,))]  # the target on 30% of its tokens
    designs = [d for d in designs if d.token_rule != planning.PARTIAL_TARGET_RULE]
    assert max(d.max_size for d in designs) == 20e9  # at most half of a 70B target, on the 1-2-5 ladder
    for d in designs:
        low, high = d.tokens_per_param
        assert planning.DEFAULT_TPP_RANGE[0] <= low and high <= planning.DEFAULT_TPP_RANGE[1] * (1 + 1e-9)
        # Cost recomputed by hand: seeds * sum 6 N D.
        assert d.study_flops == pytest.approx(d.seeds * sum(6 * n * t for n, t in zip(d.sizes, d.tokens)))
        if d.token_rule == "tokens_per_param":
            assert np.allclose(np.array(d.tokens) / np.array(d.sizes), d.rule_value)
        elif d.token_rule == "target_fraction":
            assert np.allclose(d.tokens, d.rule_value * 1.4e12)
    # A 10M model on 10% of 1.4T tokens is 14,000 tokens per parameter: left out unless asked for.
    assert not any(d.token_rule == "target_fraction" and d.min_size < 2e7 for d in designs)
    wide = planning.study_designs(70e9, 1.4e12, tpp_range=None)
    assert any(d.token_rule == "target_fraction" and d.min_size < 2e7 for d in wide)


@pytest.mark.parametrize("target_params", [5e-324, 1.0, 1e8])
def test_a_target_too_small_for_any_study_is_a_planning_error(target_params):
    # Half the target must reach 10x the 10M floor; 5e-324 / 2 underflows to 0 (found by Hypothesis).
    with pytest.raises(PlanningError, match="leaves no room for a study") as raised:
        planning.study_designs(target_params, 1e9)
    # a size no language model has (1 parameter) was likely typed without its suffix; 100M was not
    assert ("sizes take a suffix" in str(raised.value)) == (target_params < 1e5)


def test_isoflop_grid_has_equal_compute_per_budget():
    designs = [
        d
        for d in planning.study_designs(7e9, 1.4e11, token_rules=("isoflop",), seeds=(1, 2))
        if d.seeds == 1 and d.token_rule == "isoflop"
    ]
    assert designs
    for d in designs:
        flops = np.array([6 * n * t for n, t in zip(d.sizes, d.tokens)])
        budgets = np.unique(np.round(np.log10(flops), 9))
        assert len(budgets) == d.rule_value  # a few budgets ...
        assert d.num_runs == len(flops) and d.num_runs / len(budgets) >= 3  # ... several sizes each
        assert np.allclose(np.diff(budgets), -np.log10(planning.ISOFLOP_BUDGET_STEP)) or np.allclose(
            np.diff(budgets), np.log10(planning.ISOFLOP_BUDGET_STEP)
        )


def test_seeds_multiply_the_cost():
    designs = planning.study_designs(7e9, 1.4e11, seeds=(1, 3), token_rules=("tokens_per_param",))
    by_shape = {}
    for d in designs:
        if d.token_rule == "tokens_per_param":
            by_shape.setdefault((d.sizes, d.tokens), {})[d.seeds] = d.study_flops
    assert all(v[3] == pytest.approx(3 * v[1]) for v in by_shape.values())


def _plan(budget, goal=0.05, **kwargs):
    return planning.plan_study(
        70e9,
        1.4e12,
        budget_dollars=budget,
        goal_are=goal,
        calibration=kwargs.pop("calibration", FakeCalibration()),
        **kwargs,
    )


@pytest.mark.parametrize("budget", [2e3, 2e4, 2e5, 2e6])
def test_pick_within_budget_and_the_rule(budget):
    plan = _plan(budget)
    pick = plan.picked
    assert pick is not None and pick.cost.dollars <= budget
    assert pick.rankable
    pool = [a for a in plan.designs if a.rankable and a.cost.dollars <= budget]
    meeting = [a for a in pool if a.are_p80 <= 0.05]
    if meeting:
        assert plan.meets_goal and pick.cost.dollars == min(a.cost.dollars for a in meeting)
    else:
        assert not plan.meets_goal and pick.are_p80 == min(a.are_p80 for a in pool)


def test_budget_changes_the_pick_and_never_worsens_it():
    # A goal the small budgets cannot meet: each larger budget buys a better pick until one meets it.
    picks = [_plan(b, goal=0.02).picked for b in (2e3, 2e4, 2e5, 2e6)]
    p80 = [p.are_p80 for p in picks]
    assert p80 == sorted(p80, reverse=True)
    assert len(set(p80)) > 1  # the budget decides the plan
    # With a goal the smallest budget already meets, more money buys the same (cheapest) design.
    assert len({_plan(b, goal=0.5).pick for b in (2e3, 2e6)}) == 1


def test_goal_not_met_says_which_budget_would():
    plan = _plan(2e3, goal=0.03)
    assert not plan.meets_goal
    assert plan.budget_to_meet is not None and plan.budget_to_meet > 2e3
    cheapest = min(a.cost.dollars for a in plan.designs if a.rankable and a.are_p80 <= 0.03)
    assert plan.budget_to_meet == cheapest
    assert _plan(plan.budget_to_meet, goal=0.03).meets_goal


def test_thin_support_and_refusals_are_never_picked():
    # Every design is thin: nothing may be picked.
    plan = _plan(2e6, calibration=FakeCalibration(thin_ratio=0.0))
    assert plan.pick is None and plan.frontier == ()
    refusing = _plan(2e6, calibration=FakeCalibration(refuse_ratio=0.0))
    assert refusing.pick is None and all(a.expected is None and a.refusal for a in refusing.designs)


def test_missing_error_model_is_a_clear_state():
    plan = _plan(2e4, calibration=None, message="the meta-analysis results are missing")
    assert plan.pick is None and plan.message
    assert "the meta-analysis results are missing" in planning.recommendation(plan)


def test_frontier_is_pareto():
    plan = _plan(2e6)
    front = [plan.designs[i] for i in plan.frontier]
    assert [a.are_p80 for a in front] == sorted((a.are_p80 for a in front), reverse=True)
    for a in plan.designs:
        if a.rankable:  # nothing cheaper-or-equal beats a frontier point, every design is matched by one
            assert any(f.cost.dollars <= a.cost.dollars and f.are_p80 <= a.are_p80 for f in front)


@pytest.mark.parametrize(
    "kwargs", [dict(budget_dollars=0), dict(budget_dollars=float("nan")), dict(goal_are=0), dict(goal_are=-0.1)]
)
def test_bad_plan_inputs(kwargs):
    args = dict(budget_dollars=2e4, goal_are=0.05) | kwargs
    with pytest.raises(PlanningError):
        planning.plan_study(70e9, 1.4e12, calibration=FakeCalibration(), **args)
    with pytest.raises(PlanningError):
        planning.study_designs(5e7, 1e9, min_size=1e7)


# ---------------------------------------------------------------------------------------------
# Compute-optimal allocation.


def test_hoffmann_closed_form_at_chinchilla_compute():
    C = 5.76e23
    _E, A, B, a, b = 1.69, 406.4, 410.7, 0.34, 0.28  # Hoffmann et al. 2022, approach 3 (published)
    G = (a * A / (b * B)) ** (1 / (a + b))
    n_star = G * (C / 6) ** (b / (a + b))
    d_star = (C / 6) / n_star
    row = planning.optimal_allocation(planning.published_law("hoffmann2022"), C)
    assert row.num_params == pytest.approx(n_star, rel=1e-6)
    assert row.tokens == pytest.approx(d_star, rel=1e-6)
    assert row.num_params_low < n_star < row.num_params_high


def test_besiroglu_is_about_twenty_tokens_per_parameter():
    # Their paper: the refit agrees with approaches 1 and 2 (~20 tokens per parameter at Chinchilla's compute).
    row = planning.optimal_allocation(planning.published_law("besiroglu2024"), 5.76e23)
    assert 15 < row.tokens_per_param < 25


def test_fitted_overtrain_law_matches_its_chinchilla_form():
    gadre = {"E": 1.8, "a": 40.0, "b": 900.0, "eta": 0.12}
    law = planning.fitted_law("g", "g", gadre, np.array([[1.8, 40.0, 900.0, 0.12]] * 3), overtrain=True)
    chin = {"E": 1.8, "A": 40.0 * 6**-0.12, "B": 900.0 * 6**-0.12, "alpha": 0.24, "beta": 0.24}
    row = planning.optimal_allocation(law, 1e22)
    # With alpha = beta = 2 eta, minimising A N^-alpha + B (C / 6N)^-alpha gives
    # N* = (A / B)^(1 / (2 alpha)) * sqrt(C / 6).
    expected = (chin["A"] / chin["B"]) ** (1 / (2 * chin["alpha"])) * math.sqrt(1e22 / 6)
    assert row.num_params == pytest.approx(expected, rel=1e-9)
    assert row.num_params_low == pytest.approx(row.num_params) == pytest.approx(row.num_params_high)


def test_disagreement_warning_fires_above_two():
    rows = planning.compute_optimal_table([planning.published_law(n) for n in planning.PUBLISHED_LAWS], 5.9e23)
    ratio = rows[1].num_params / rows[0].num_params
    assert planning.disagreement(rows) == pytest.approx(max(ratio, 1 / ratio))
    assert (planning.disagreement_warning(rows) is not None) == (planning.disagreement(rows) > 2)
    law = planning.published_law("hoffmann2022")
    far = planning.fitted_law("tiny", "tiny", {**planning.HOFFMANN2022, "A": 406.4 * 100}, None)
    warning = planning.disagreement_warning(planning.compute_optimal_table([law, far], 5.9e23))
    assert warning is not None and "tiny" in warning and "hoffmann2022" in warning


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
    direct = GADRE["E"] + (GADRE["a"] * M**eta + GADRE["b"] * M**-eta) * C**-eta
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


@pytest.mark.parametrize(
    "call",
    [
        lambda: planning.overtraining_tradeoff(CHIN, 0),
        lambda: planning.overtraining_tradeoff(CHIN, float("nan")),
        lambda: planning.overtraining_tradeoff(CHIN, -1e21),
        lambda: planning.overtraining_tradeoff(CHIN, 1e21, multipliers=(20, -1)),
        lambda: planning.overtraining_tradeoff(CHIN, 1e21, multipliers=()),
        lambda: planning.overtraining_tradeoff({"E": 1.0}, 1e21),
        lambda: planning.overtraining_tradeoff({**CHIN, "alpha": float("nan")}, 1e21),
        lambda: planning.overtraining_tradeoff(CHIN, 1e21, downstream={"eps": 0.8}),
    ],
)
def test_tradeoff_bad_inputs(call):
    with pytest.raises(PlanningError):
        call()


# ---------------------------------------------------------------------------------------------
# Recommendation text: parse its claims back and compare with the typed numbers.

_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def _count(text: str) -> float:
    """'4.2k' -> 4200 (an independent reader of the display format)."""
    match = re.fullmatch(r"([0-9.]+)(e[0-9]+)?([kMBT]?)", text)
    assert match, text
    return float(match.group(1) + (match.group(2) or "")) * _SUFFIX[match.group(3)]


Q = r"[0-9.]+(?:e[0-9]+)?[kMBT]?"  # a count as units.format_count writes it


def claims(text: str) -> dict:
    out = {}
    if m := re.search(rf"train (\d+) runs of ({Q})-({Q}) parameters .*? for \$({Q}) ", text):
        out.update(
            runs=int(m.group(1)), min_size=_count(m.group(2)), max_size=_count(m.group(3)), dollars=_count(m.group(4))
        )
    if m := re.search(
        r"([0-9.]+)% ARE at the median and ([0-9.]+)% at the 80th percentile \(an error model learned on "
        r"([0-9,]+) fits of the collection, (\d+) model families",
        text,
    ):
        out.update(
            median=float(m.group(1)) / 100,
            p80=float(m.group(2)) / 100,
            fits=int(m.group(3).replace(",", "")),
            families=int(m.group(4)),
        )
    out["meets"] = "That meets the" in text
    if m := re.search(rf"A budget of \$({Q}) would meet it", text):
        out["budget_to_meet"] = _count(m.group(1))
    if m := re.search(
        rf"under (\S+) has ({Q}) parameters \((?:({Q})-({Q}), 80% interval|no interval)\) "
        rf"trained on ({Q}) tokens",
        text,
    ):
        n = _count(m.group(2))
        out.update(
            law=m.group(1),
            n=n,
            n_low=n if m.group(3) is None else _count(m.group(3)),
            n_high=n if m.group(4) is None else _count(m.group(4)),
            d=_count(m.group(5)),
        )
    return out


def check_claims(plan, optimum, text):
    """Every number the text states equals the typed result's (to the display precision)."""
    got = claims(text)
    pick = plan.picked
    if pick is None:
        assert "runs" not in got and "median" not in got
    else:
        assert got["runs"] == pick.design.num_runs
        assert got["min_size"] == pytest.approx(pick.design.min_size, rel=0.06)
        assert got["max_size"] == pytest.approx(pick.design.max_size, rel=0.06)
        assert got["dollars"] == pytest.approx(pick.cost.dollars, rel=0.06)
        assert got["median"] == pytest.approx(pick.expected.median, abs=0.0005)
        assert got["p80"] == pytest.approx(pick.expected.p80, abs=0.0005)
        assert (got["fits"], got["families"]) == (pick.expected.fits, pick.expected.families)
        assert got["meets"] == plan.meets_goal == (pick.expected.p80 <= plan.goal_are)
        if not plan.meets_goal and plan.budget_to_meet is not None:
            assert got["budget_to_meet"] == pytest.approx(plan.budget_to_meet, rel=0.06)
    if optimum is not None:
        assert got["law"] == optimum.law
        assert got["n"] == pytest.approx(optimum.num_params, rel=0.06)
        assert got["n_low"] == pytest.approx(optimum.num_params_low, rel=0.06)
        assert got["n_high"] == pytest.approx(optimum.num_params_high, rel=0.06)
        assert got["d"] == pytest.approx(optimum.tokens, rel=0.06)
    return got


@pytest.mark.parametrize("budget, goal", [(2e3, 0.05), (2e6, 0.05), (2e3, 0.02), (2e6, 0.5)])
def test_recommendation_claims_equal_the_numbers(budget, goal):
    plan = _plan(budget, goal=goal)
    law = planning.published_law("besiroglu2024")
    optimum = planning.optimal_allocation(law, 6 * 70e9 * 1.4e12)
    overtraining = planning.summarise_overtraining(law, 70e9, 1.4e12)
    text = planning.recommendation(plan, optimum, overtraining)
    got = check_claims(plan, optimum, text)
    assert {"runs", "median", "n"} <= set(got)


def test_recommendation_says_no_interval_when_the_law_has_none():
    law = planning.fitted_law("fit:x", "x", planning.HOFFMANN2022, None)
    optimum = planning.optimal_allocation(law, 6 * 70e9 * 1.4e12)
    text = planning.recommendation(_plan(2e4, goal=0.05), optimum)
    assert "(no interval)" in text and "80% interval" not in text
    got = check_claims(_plan(2e4, goal=0.05), optimum, text)
    assert got["n_low"] == got["n"] == got["n_high"]


def test_overtraining_sentence_direction_under_the_selected_law():
    # Under a law whose optimum is ~300 tokens per parameter, 20 tokens per parameter is a *larger* model.
    law = planning.fitted_law("fit:x", "x", {"E": 1.8, "A": 400.0, "B": 4000.0, "alpha": 0.3, "beta": 0.3}, None)
    summary = planning.summarise_overtraining(law, 70e9, 1.4e12)
    assert summary.optimal_multiplier > 100
    text = planning.recommendation(_plan(2e4), None, summary)
    assert "a larger model than compute-optimal" in text and "fewer than the optimum" in text
    # above 100 a multiplier is a whole number with thousands separated ("2,154"), as the tables show it
    assert f"optimum's {summary.optimal_multiplier:,.0f} under fit:x" in text
    assert "The target's 20 tokens per parameter" in text


@pytest.mark.parametrize(
    "text, value",
    [
        ("7B", 7e9),
        ("1.4e9", 1.4e9),
        ("70 M", 7e7),
        ("2,000,000", 2e6),
        ("1.5t", 1.5e12),
        ("500k", 5e5),
        ("3G", 3e9),
        ("  12_000 ", 12000.0),
    ],
)
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


# ---------------------------------------------------------------------------------------------
# The CLI twin: scaleplan plan ... --json


def _plan_json(capsys, built_db, meta_db, *args):
    import json

    from scaleplan.core import cli

    code = cli.main(
        ["--db", str(built_db), "--meta", str(meta_db), "plan", *args, "--json", "--law-boot", "10", "--quiet"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_cli_plan_budgets_give_picks_within_budget(capsys, built_db, meta_db):
    picks = []
    for budget in (2e3, 2e4, 2e5, 2e6):
        out = _plan_json(
            capsys,
            built_db,
            meta_db,
            "--target-params",
            "70e9",
            "--target-tokens",
            "1.4e12",
            "--budget-dollars",
            f"{budget:g}",
            "--accuracy",
            "5",
        )
        pick = out["pick"]
        assert pick is not None, out["message"]
        assert pick["cost_dollars"] <= budget
        assert len(pick["sizes"]) == len(pick["tokens"]) >= 2
        assert 0 < pick["are_median"] <= pick["are_p80"]
        picks.append(pick)
        names = [row["law"] for row in out["compute_optimal"]]
        assert {"hoffmann2022", "besiroglu2024", "gadre-rpj"} <= set(names)
        for row in out["compute_optimal"]:
            assert row["num_params_low"] <= row["num_params"] <= row["num_params_high"]
            assert row["num_params"] * row["tokens"] * 6 == pytest.approx(6 * 70e9 * 1.4e12, rel=1e-9)
    p80 = [p["are_p80"] for p in picks]
    assert p80 == sorted(p80, reverse=True)


def test_cli_plan_hoffmann_closed_form(capsys, built_db, meta_db):
    C = 5.76e23
    out = _plan_json(
        capsys,
        built_db,
        meta_db,
        "--target-flops",
        "5.76e23",
        "--budget-dollars",
        "2e4",
        "--accuracy",
        "5",
        "--law",
        "hoffmann2022",
    )
    A, B, alpha, beta = 406.4, 410.7, 0.34, 0.28
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    n_star = G * (C / 6) ** (beta / (alpha + beta))
    row = next(r for r in out["compute_optimal"] if r["law"] == "hoffmann2022")
    assert row["num_params"] == pytest.approx(n_star, rel=1e-6)
    assert row["tokens"] == pytest.approx(C / 6 / n_star, rel=1e-6)
    # In compute mode the target is the selected law's optimum.
    assert out["target"]["num_params"] == pytest.approx(n_star, rel=1e-6)


def test_cli_plan_user_errors(capsys, built_db, meta_db, tmp_path, monkeypatch):
    from scaleplan.core import cli, meta

    base = ["--db", str(built_db), "--meta", str(meta_db), "plan", "--accuracy", "5"]
    assert cli.main(base + ["--target-params", "70e9", "--target-tokens", "1.4e12"]) == 2  # no budget
    # argparse rejects a negative size before the command runs: one line, exit 2
    assert cli.main(base + ["--target-params", "-1", "--target-tokens", "1.4e12", "--budget-dollars", "1e4"]) == 2
    assert cli.main(base + ["--target-flops", "1e23", "--budget-dollars", "1e4", "--law", "nope"]) == 2
    assert "unknown law" in capsys.readouterr().err
    # Without meta-analysis results (none here, none shipped): no pick, a clear message, the laws still there.
    monkeypatch.setattr(meta.shipped, "shipped_results_info", lambda: None)
    out = _plan_json(
        capsys,
        built_db,
        tmp_path / "none.duckdb",
        "--target-flops",
        "1e23",
        "--budget-dollars",
        "1e4",
        "--accuracy",
        "5",
    )
    assert out["pick"] is None and "meta-analysis" in out["message"] and out["compute_optimal"]


def test_next_rung_extends_the_largest_isoflop_budget_beyond_its_sizes():
    # An isoFLOP study: 3 budgets x 5 sizes (N_opt 2^-1..2^1 around sqrt(C / 120)), tokens rounded to a
    # thousand so the runs of one budget tie only up to rounding (as a real sweep's do). The two new
    # sizes at the largest budget must lie outside that budget's sizes: half its smallest, twice its largest.
    sizes, tokens = [], []
    for c in (1e19, 4e19, 1.6e20):
        n_opt = math.sqrt(c / 120)
        for f in 2.0 ** np.linspace(-1, 1, 5):
            n = round(n_opt * f, -3)
            sizes.append(n)
            tokens.append(round(c / (6 * n), -3))
    study = planning.StudyDesign(
        sizes=tuple(sizes), tokens=tuple(tokens), seeds=1, token_rule=planning.CUSTOM_RULE, rule_value=15.0
    )
    top = sizes[10:]  # the 1.6e20 budget's five sizes
    rung = planning.next_rung(
        study, 7e9, 140e9, calibration=None, cost=planning.CostModel(), budget_dollars=1e4, goal_are=0.05
    )
    inside = [a for a in rung.additions if a.label.startswith("2 new sizes at your largest budget")]
    assert len(inside) == 1
    new = inside[0].added.sizes
    assert new == (pytest.approx(min(top) / 2), pytest.approx(max(top) * 2))
    assert min(new) < min(top) and max(new) > max(top)  # neither is a run the budget already has
    top_flops = max(6 * n * d for n, d in zip(sizes, tokens))
    assert [6 * n * d for n, d in zip(new, inside[0].added.tokens)] == [pytest.approx(top_flops)] * 2


@pytest.mark.parametrize("name", ["besiroglu2024", "hoffmann2022"])
@pytest.mark.parametrize("compute", [5.88e23, 1e21])
def test_published_interval_matches_a_converged_reference(name, compute):
    """The published laws' 80% N* interval against 4 million pseudo-random draws made here, from the papers'
    numbers: Hoffmann et al. eq. 10 and Besiroglu et al.'s table (A 482.01 +- 124.58, B 2085.43 +- 1293.23,
    alpha 0.3478 +- 0.02, beta 0.3658 +- 0.02; A and B log-normal by their relative errors)."""
    centre = {
        "besiroglu2024": (482.01, 2085.43, 0.3478, 0.3658),
        "hoffmann2022": (406.4, 410.7, 0.34, 0.28),
    }[name]
    rel_a, rel_b = 124.58 / 482.01, 1293.23 / 2085.43
    rng = np.random.default_rng(20261207)
    chunks = []
    for _ in range(4):
        z = rng.standard_normal((1_000_000, 4))
        a_coef, b_coef = centre[0] * np.exp(rel_a * z[:, 0]), centre[1] * np.exp(rel_b * z[:, 1])
        alpha, beta = centre[2] + 0.02 * z[:, 2], centre[3] + 0.02 * z[:, 3]
        # minimise A N^-alpha + B (C / 6N)^-beta over N: alpha A N^-alpha = beta B D^-beta with D = C / 6N
        g = (alpha * a_coef / (beta * b_coef)) ** (1 / (alpha + beta))
        chunks.append(g * (compute / 6) ** (beta / (alpha + beta)))
    low, high = np.quantile(np.concatenate(chunks), [0.1, 0.9])  # the reference's own error: about 0.2%
    row = planning.optimal_allocation(planning.published_law(name), compute)
    assert row.num_params_low == pytest.approx(low, rel=0.015)
    assert row.num_params_high == pytest.approx(high, rel=0.015)


def test_the_cap_on_study_models_is_stated_with_the_ladder_size_under_it():
    # 70B target, study models capped at half of it (35B): the 1-2-5 ladder's largest size under 35B is 20B
    text = planning.recommendation(_plan(2e6, goal=0.001))
    assert (
        "it already has the largest study model of the space, 20B parameters: the largest size of the 1-2-5 "
        "ladder under the cap of half the target, 35B" in text
    )
    assert "35B))" not in text
