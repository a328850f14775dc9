"""core.downstream: the chance-floor sigmoid link on synthetic studies with known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from scaleplan.core import downstream as ds
from scaleplan.core.errors import UserError

LOSSES = np.linspace(2.6, 4.0, 8)  # nats/token, one study run each
TRUE_K, TRUE_L0, CHANCE, QUESTIONS = 3.0, 2.8, 0.25, 1000


def _truth(losses=LOSSES, k=TRUE_K, l0=TRUE_L0, chance=CHANCE):
    # the formula written out here, independently of ds.link_accuracy
    return chance + (1 - chance) / (1 + np.exp(-k * (l0 - losses)))


def _compute(losses):
    return 1e18 * np.exp(-5 * (losses - losses.min()))  # falls as the loss rises: monotone study


def test_noise_free_study_recovers_the_link_exactly():
    fit = ds.fit_link("t", LOSSES, _truth(), QUESTIONS, CHANCE, compute_flops=_compute(LOSSES))
    assert fit.k == pytest.approx(TRUE_K, rel=1e-5)
    assert fit.x0 == pytest.approx(TRUE_L0, rel=1e-6)
    assert fit.predict(2.0) == pytest.approx(_truth(np.array([2.0]))[0], rel=1e-5)
    assert fit.rms_residual_points < 1e-3


def test_direct_form_in_compute_recovers_its_parameters():
    log_c = np.linspace(17.0, 21.0, 7)  # log10 FLOPs
    k, x0 = 1.2, 20.5  # per decade, log10 FLOPs at the midpoint
    acc = 0.5 + 0.5 / (1 + np.exp(-k * (log_c - x0)))
    fit = ds.fit_link("t", log_c, acc, 2000, 0.5, variable="log10_flops")
    assert (fit.k, fit.x0) == (pytest.approx(k, rel=1e-5), pytest.approx(x0, rel=1e-6))


@pytest.mark.parametrize("extra_sd", [0.0, 0.02])
def test_parameter_intervals_cover_at_nominal_level_under_binomial_noise(extra_sd):
    """Binomial noise at 1,000 questions (and, second case, run-to-run scatter of 2 points on top,
    which the quasi-binomial dispersion must absorb): the 90% Wald intervals of k and L0 hold
    the true values in 85-97% of 300 replicates (binomial sd of a 90% share over 300 is 1.7%)."""
    rng = np.random.default_rng(23)
    truth = _truth()
    replicates, covered = 300, {"k": 0, "x0": 0}
    for _ in range(replicates):
        p = np.clip(truth + rng.normal(0.0, extra_sd, truth.size), 0.0, 1.0)
        acc = rng.binomial(QUESTIONS, p) / QUESTIONS
        fit = ds.fit_link("t", LOSSES, acc, QUESTIONS, CHANCE, compute_flops=_compute(LOSSES))
        for name, true in (("k", TRUE_K), ("x0", TRUE_L0)):
            lo, hi = fit.parameter_interval(name, 0.9)
            covered[name] += lo <= true <= hi
    for name, count in covered.items():
        assert 0.85 <= count / replicates <= 0.97, (name, count / replicates)


def test_prediction_standard_error_matches_the_spread_of_refits():
    """The delta-method se of the predicted accuracy at an extrapolated loss is the spread of the
    predictions over replicates (within 20%)."""
    rng = np.random.default_rng(5)
    predictions, ses = [], []
    for _ in range(200):
        acc = rng.binomial(QUESTIONS, _truth()) / QUESTIONS
        fit = ds.fit_link("t", LOSSES, acc, QUESTIONS, CHANCE, compute_flops=_compute(LOSSES))
        predictions.append(float(fit.predict(2.3)))
        ses.append(fit.standard_error(2.3)[0])
    assert np.median(ses) == pytest.approx(np.std(predictions), rel=0.2)
    assert np.mean(predictions) == pytest.approx(_truth(np.array([2.3]))[0], abs=0.01)


def test_a_task_at_chance_is_refused():
    rng = np.random.default_rng(1)
    acc = rng.binomial(QUESTIONS, CHANCE, LOSSES.size) / QUESTIONS  # every run guesses
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_link("mmlu", LOSSES, acc, QUESTIONS, CHANCE, compute_flops=_compute(LOSSES))
    assert info.value.reason == "at_chance"
    assert isinstance(info.value, UserError)
    assert "mmlu" in str(info.value) and "chance" in str(info.value)


def test_a_task_not_monotone_in_compute_is_refused():
    acc = _truth()[[3, 0, 6, 1, 7, 2, 5, 4]]  # accuracies shuffled against compute
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_link("t", LOSSES, acc, QUESTIONS, CHANCE, compute_flops=_compute(LOSSES))
    assert info.value.reason == "not_monotone"
    assert "Spearman" in str(info.value)


def test_too_few_runs_are_refused_counting_runs_not_points():
    ids = ["a", "a", "a", "b", "b", "b", "b", "b"]  # 8 checkpoints of 2 runs
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_link("t", LOSSES, _truth(), QUESTIONS, CHANCE, compute_flops=_compute(LOSSES), run_ids=ids)
    assert info.value.reason == "too_few_runs"


def test_spearman_and_conformal_quantile_closed_forms():
    assert ds.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert ds.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # 1 - 6 sum d^2 / (n (n^2 - 1)) with d = (0, 1, -1, 0): 1 - 12/60 = 0.8
    assert ds.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    scores = np.arange(1, 20, dtype=float)  # 19 scores: ceil(20 * 0.9) = 18th smallest
    assert ds.conformal_quantile(scores, 0.9) == 18.0
    assert ds.conformal_quantile(scores[:5], 0.9) == float("inf")


def test_a_fitted_ceiling_recovers_a_capped_task():
    """acc = c + (a - c) sigma(k (L0 - L)) with a = 0.8 (exact-match scoring caps it): all three back."""
    capped = CHANCE + (0.8 - CHANCE) / (1 + np.exp(-TRUE_K * (TRUE_L0 - LOSSES)))
    fit = ds.fit_link("t", LOSSES, capped, QUESTIONS, CHANCE, compute_flops=_compute(LOSSES), ceiling=None)
    assert (fit.k, fit.x0, fit.ceiling) == (
        pytest.approx(TRUE_K, rel=1e-4),
        pytest.approx(TRUE_L0, rel=1e-5),
        pytest.approx(0.8, rel=1e-5),
    )
    assert fit.covariance.shape == (3, 3)


def test_one_lucky_answer_on_an_open_ended_task_is_still_chance():
    """Chance 0, 32 questions, one run answers one: 3 binomial se at its own accuracy is 9 points."""
    acc = np.array([0, 0, 0, 0, 0, 0, 0, 1 / 32])
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_link("copy", LOSSES[::-1], acc, 32, 0.0, compute_flops=_compute(LOSSES)[::-1])
    assert info.value.reason == "at_chance"


def test_a_task_without_question_counts_is_refused_not_fitted_unweighted():
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_link("piqa", LOSSES, _truth(), np.nan, CHANCE, compute_flops=_compute(LOSSES))
    assert info.value.reason == "no_fit" and "number of questions" in str(info.value)


# --- the refusal rules of REFUSAL_RULES and the task link (fit_task_link), on synthetic studies ---

STUDY = np.linspace(2.7, 4.2, 8)  # nats/token: a study whose runs rise from chance to ~70 points


def _sigmoid(losses, k=TRUE_K, l0=TRUE_L0, chance=CHANCE, ceiling=1.0):
    return chance + (ceiling - chance) / (1 + np.exp(-k * (l0 - losses)))


def test_every_refusal_reason_has_its_rule_declared():
    import typing

    assert set(typing.get_args(ds.Reason)) == set(ds.REFUSAL_RULES)
    assert all(text for text in ds.REFUSAL_RULES.values())


def test_a_known_sigmoid_with_binomial_noise_is_answered_with_its_parameters():
    """acc = 0.25 + 0.75 sigma(3 (2.8 - L)) + binomial noise at 1,000 questions: fit_task_link answers
    (no rule fires in 200 replicates), keeps the ceiling 1 in at most ~10% (the F test's 5% level
    plus its binomial spread), and its 90% intervals of k and L0 hold the truth in 84-96%."""
    rng = np.random.default_rng(7)
    replicates, free, covered = 200, 0, {"k": 0, "x0": 0}
    for _ in range(replicates):
        acc = rng.binomial(QUESTIONS, _sigmoid(STUDY)) / QUESTIONS
        link = ds.fit_task_link("t", STUDY, acc, QUESTIONS, CHANCE, compute_flops=_compute(STUDY))
        free += link.ceiling_fitted
        if not link.ceiling_fitted:
            for name, true in (("k", TRUE_K), ("x0", TRUE_L0)):
                lo, hi = link.parameter_interval(name, 0.9)
                covered[name] += lo <= true <= hi
    assert free / replicates <= 0.10
    for name, count in covered.items():
        assert 0.84 <= count / (replicates - free) <= 0.96, (name, count)


def test_a_capped_task_gets_its_fitted_ceiling():
    """A rise capped at 60 points (exact-match scoring) whose midpoint (L0 = 3.4) the study passes: the
    F test takes the fitted ceiling and recovers a = 0.6 within its 90% interval."""
    rng = np.random.default_rng(11)
    acc = rng.binomial(5000, _sigmoid(STUDY, l0=3.4, ceiling=0.6)) / 5000
    link = ds.fit_task_link("t", STUDY, acc, 5000, CHANCE, compute_flops=_compute(STUDY))
    assert link.ceiling_fitted
    lo, hi = link.parameter_interval("ceiling", 0.9)
    assert lo <= 0.6 <= hi and hi - lo < 0.1


def test_a_task_at_chance_is_refused_by_the_task_link():
    rng = np.random.default_rng(3)
    acc = rng.binomial(QUESTIONS, CHANCE, STUDY.size) / QUESTIONS
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_task_link("mmlu", STUDY, acc, QUESTIONS, CHANCE, compute_flops=_compute(STUDY))
    assert info.value.reason == "at_chance"


def test_one_point_above_chance_does_not_identify_the_link():
    """Seven runs at chance and the largest 20 points above: 1 point off the floor for 2 parameters."""
    acc = np.full(STUDY.size, CHANCE)
    acc[np.argmin(STUDY)] = CHANCE + 0.2
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_task_link("t", STUDY, acc, QUESTIONS, CHANCE, compute_flops=_compute(STUDY))
    assert info.value.reason == "too_few_above_chance" and "2 parameters" in str(info.value)


def test_a_noisy_non_monotone_task_is_refused():
    """16 runs of a rising sigmoid whose largest falls back 20 points below the next (binomial se of
    the drop ~2.1 points at 1,000 questions, ~9 se; the link's dispersion absorbs part of it):
    Spearman stays high, the drop rule refuses it."""
    rng = np.random.default_rng(5)
    study = np.linspace(2.7, 4.2, 16)
    truth = _sigmoid(study)
    truth[np.argmin(study)] = truth[np.argsort(study)[1]] - 0.20
    acc = rng.binomial(QUESTIONS, truth) / QUESTIONS
    assert ds.spearman(_compute(study), acc) >= ds.MIN_RANK_CORRELATION
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_task_link("t", study, acc, QUESTIONS, CHANCE, compute_flops=_compute(study))
    assert info.value.reason == "not_monotone" and "standard errors" in str(info.value)


def test_the_drop_rule_refuses_noise_alone_at_most_at_its_family_error():
    """Flat truth at 60 points, 8 points of 1,000 questions: binomial noise alone exceeds the
    Bonferroni quantile in at most 1% of studies (here measured over 2,000; allow 2%)."""
    rng = np.random.default_rng(17)
    compute = _compute(STUDY)
    hits = 0
    for _ in range(2000):
        acc = rng.binomial(QUESTIONS, 0.6, STUDY.size) / QUESTIONS
        try:
            ds.check_drops("t", compute, acc, QUESTIONS)
        except ds.TaskRefused:
            hits += 1
    assert hits / 2000 <= 0.02


def test_largest_drop_closed_form():
    # 0.6 (n 100) then 0.5 (n 100): drop 0.1 / sqrt(0.24/100 + 0.25/100) = 1.4286
    z, pairs = ds.largest_drop([1.0, 2.0], [0.6, 0.5], 100)
    assert pairs == 1 and z == pytest.approx(0.1 / np.sqrt(0.0049))
    assert ds.largest_drop([1.0, 2.0], [0.5, 0.6], 100)[0] == 0.0


def test_a_link_that_does_not_describe_the_runs_is_refused_as_a_poor_fit():
    """A staircase (accuracy jumps 25 -> 45 -> 65 points in two steps; 20,000 questions, se 0.35 points)
    no sigmoid follows: its residuals are many times the binomial noise."""
    steps = np.where(STUDY > 3.6, 0.25, np.where(STUDY > 3.1, 0.45, 0.65))
    steps = steps + np.linspace(0.0, 0.01, STUDY.size)[::-1]  # strictly monotone in compute
    with pytest.raises(ds.TaskRefused) as info:
        ds.fit_task_link("t", STUDY, steps, 20000, CHANCE, compute_flops=_compute(STUDY))
    assert info.value.reason == "poor_fit" and "binomial" in str(info.value)


def test_poor_fit_spares_a_right_link_with_seed_scatter_as_large_as_the_sampling():
    """A true sigmoid with run-to-run scatter equal to the question sampling (phi ~ 2): the
    poor-fit rule (phi > 9) fires in under 2% of 200 replicates (chi^2 argument: < 0.1%)."""
    rng = np.random.default_rng(19)
    truth = _sigmoid(STUDY)
    fired = 0
    for _ in range(200):
        p = np.clip(truth + rng.normal(0.0, np.sqrt(truth * (1 - truth) / QUESTIONS)), 0, 1)
        acc = rng.binomial(QUESTIONS, p) / QUESTIONS
        try:
            ds.fit_task_link("t", STUDY, acc, QUESTIONS, CHANCE, compute_flops=_compute(STUDY))
        except ds.TaskRefused as refusal:
            fired += refusal.reason == "poor_fit"
    assert fired / 200 <= 0.02


def test_extrapolation_beyond_the_informative_range_is_refused():
    """Informative range: the losses of the points above chance. A target beyond it by 0.5 widths is
    answered (the ratio returned), by 1.5 widths refused."""
    link = ds.fit_task_link("t", STUDY, _sigmoid(STUDY), QUESTIONS, CHANCE, compute_flops=_compute(STUDY))
    low, high = link.informative_range
    width = high - low
    assert low == pytest.approx(STUDY.min()) and width > 0
    assert ds.check_extrapolation(link, low - 0.5 * width) == pytest.approx(0.5)
    assert ds.check_extrapolation(link, high) == 0.0
    with pytest.raises(ds.TaskRefused) as info:
        ds.check_extrapolation(link, low - 1.5 * width)
    assert info.value.reason == "extrapolation"
