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
