"""Coverage of the compute-optimal N* interval of a law fitted on a family (planning.family_law).

Independent truth: synthetic families drawn from a known Chinchilla law, whose N* at compute C is
written here in closed form (not taken from core). Each replication draws a family, builds the
interval with the product's own functions (``family_law`` then ``optimal_allocation``, the path of
``collection_laws``, at the product's default number of bootstrap refits) and checks whether the
true N* is inside. The realised share is compared, within three binomial standard errors of the
number of replications, with the nominal level and with the coverage the label states
(``planning.FAMILY_LAW_COVERAGE``). Slow with today's fitter (minutes under load): 140 families.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import planning

TRUE = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022, approach 3
COMPUTE_FLOPS = 5.76e23  # Chinchilla's budget: an extrapolation of ~5 orders of magnitude in compute
RUN_NOISE = 0.01  # multiplicative seed noise per run (one draw per run, shared by its checkpoints)
CHECKPOINT_NOISE = 0.003  # multiplicative noise per checkpoint


def true_optimal_params(compute_flops: float) -> float:
    a, b = TRUE["alpha"], TRUE["beta"]
    g = (a * TRUE["A"] / (b * TRUE["B"])) ** (1.0 / (a + b))
    return g * (compute_flops / 6.0) ** (b / (a + b))


def draw_family(rng: np.random.Generator, sizes, checkpoints: int = 10) -> pd.DataFrame:
    """Curves with checkpoints from 1/8 of training to the end (at least 1e11 tokens, 20 per param)."""
    rows = []
    for n in sizes:
        final = max(20.0 * n, 1e11)
        tokens = np.geomspace(final / 8, final, checkpoints)
        loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / tokens ** TRUE["beta"]
        loss = loss * np.exp(RUN_NOISE * rng.standard_normal() + CHECKPOINT_NOISE * rng.standard_normal(checkpoints))
        rows.append(pd.DataFrame({"run_id": f"syn/{n:.3g}", "num_params": n, "tokens_seen": tokens, "value": loss}))
    return pd.concat(rows, ignore_index=True)


def realised_coverage(num_sizes: int, replications: int, seed: int) -> float:
    """Share of ``replications`` synthetic families whose N* interval contains the true N*."""
    sizes = 7e7 * 2.0 ** np.arange(num_sizes)  # the largest is held out as the target by the protocol
    truth = true_optimal_params(COMPUTE_FLOPS)
    rng = np.random.default_rng(seed)
    inside = 0
    for replication in range(replications):
        law = planning.family_law(draw_family(rng, sizes), "synthetic", seed=replication)
        row = planning.optimal_allocation(law, COMPUTE_FLOPS)
        assert row.level == planning.INTERVAL_LEVEL and row.has_interval
        inside += row.num_params_low <= truth <= row.num_params_high
    return inside / replications


def three_standard_errors(p: float, n: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / n)


def test_closed_form_truth_is_independent_of_core():
    # Hoffmann et al.'s approach 3 puts N* near 40B parameters at Chinchilla's budget.
    assert 3e10 < true_optimal_params(COMPUTE_FLOPS) < 5e10


def test_family_law_states_the_coverage_of_its_scheme():
    law = planning.family_law(draw_family(np.random.default_rng(1), 7e7 * 2.0 ** np.arange(8)), "synthetic", n_boot=3)
    assert "run-bootstrap" in law.source and planning.family_law_coverage_text("runs") in law.source
    assert "coverage" in planning.family_law_coverage_text("blocks") and "nominal 80%" in law.source


def test_run_bootstrap_interval_covers_at_nominal_level_and_as_stated():
    """Eight sizes, seven fitted: the bootstrap resamples runs."""
    covered, total, sizes = planning.FAMILY_LAW_COVERAGE["runs"]
    assert sizes == 8
    n = 100
    coverage = realised_coverage(num_sizes=8, replications=n, seed=20261129)
    nominal = planning.INTERVAL_LEVEL
    assert abs(coverage - nominal) <= three_standard_errors(nominal, n), f"coverage {coverage:.3f} vs nominal {nominal}"
    stated = covered / total
    assert abs(coverage - stated) <= three_standard_errors(stated, n), f"coverage {coverage:.3f} vs stated {stated}"


def test_block_bootstrap_interval_coverage_is_as_stated():
    """Six sizes, five fitted: the bootstrap resamples checkpoints within runs and under-covers; the
    label states the measured coverage, which must hold."""
    covered, total, sizes = planning.FAMILY_LAW_COVERAGE["blocks"]
    assert sizes == 6
    n = 40
    coverage = realised_coverage(num_sizes=6, replications=n, seed=20261130)
    stated = covered / total
    assert abs(coverage - stated) <= three_standard_errors(stated, n), f"coverage {coverage:.3f} vs stated {stated}"


def test_published_laws_say_their_interval_is_not_coverage_tested():
    for name in planning.PUBLISHED_LAWS:
        row = planning.optimal_allocation(planning.published_law(name), COMPUTE_FLOPS)
        assert row.has_interval
        assert "published standard errors" in row.source and "not a coverage-tested interval" in row.source


def test_samples_that_do_not_move_n_star_are_no_interval():
    # What a block bootstrap gives on one point per run (Gadre et al.'s fit set): every refit equals the fit.
    values = [TRUE[k] for k in planning.CHINCHILLA_NAMES]
    constant = planning.fitted_law("c", "c", TRUE, np.array([values] * 30))
    assert not planning.optimal_allocation(constant, COMPUTE_FLOPS).has_interval
    assert not planning.optimal_allocation(planning.fitted_law("n", "n", TRUE, None), COMPUTE_FLOPS).has_interval


def test_a_users_short_runs_give_a_planner_law(con):
    """A user's sweep of runs shorter than 10B tokens (the paper's cutoff) is fitted with the cutoff the
    Fit page and ``fit --runs`` use for uploaded runs (userdata.default_min_tokens), not refused."""
    rows = []
    for n in 2e7 * 2.0 ** np.arange(6):  # 20M-640M parameters
        tokens = np.geomspace(5e8, 8e9, 12)
        loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / tokens ** TRUE["beta"]
        rows.append(pd.DataFrame({"run_id": f"u/{n:.3g}", "num_params": n, "tokens_seen": tokens, "value": loss}))
    curves = pd.concat(rows, ignore_index=True)
    laws, problems = planning.collection_laws(con, family="my sweep", curves=curves, n_boot=2)
    assert "fit:my sweep" not in problems, problems
    law = next(law for law in laws if law.name == "fit:my sweep")
    # noiseless points of a known law: the fit recovers the exponents
    assert law.params["alpha"] == pytest.approx(TRUE["alpha"], rel=0.05)
    assert law.params["beta"] == pytest.approx(TRUE["beta"], rel=0.05)
