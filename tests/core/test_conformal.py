"""The split-conformal quantile: closed forms and its coverage guarantee on exchangeable draws."""

import math

import numpy as np

from scaleplan.core import calibration, downstream
from scaleplan.core.conformal import conformal_quantile


def test_rank_is_ceil_of_m_plus_one_times_level():
    scores = np.arange(1.0, 20.0)  # m = 19: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(scores, 0.9) == 18.0
    assert conformal_quantile(scores[::-1], 0.5) == 10.0  # ceil(20 * 0.5) = 10, order does not matter
    assert conformal_quantile(scores[:5], 0.9) == math.inf  # ceil(6 * 0.9) = 6 > 5
    assert conformal_quantile([], 0.5) == math.inf


def test_non_finite_scores_are_dropped_not_ranked():
    scores = np.array([np.nan, 3.0, np.inf, 1.0, 2.0, -np.inf])
    assert conformal_quantile(scores, 0.5) == 2.0  # finite 1, 2, 3: ceil(4 * 0.5) = 2nd


def test_one_rule_for_every_interval():
    assert calibration.conformal_quantile is conformal_quantile
    assert downstream.conformal_quantile is conformal_quantile


def test_coverage_of_a_new_exchangeable_score_is_at_least_the_level():
    rng = np.random.default_rng(0)
    for level in (0.5, 0.8, 0.9):
        draws = rng.standard_exponential((4000, 31))  # 30 calibration scores and one new one per trial
        q = np.array([conformal_quantile(row[:-1], level) for row in draws])
        covered = float(np.mean(draws[:, -1] <= q))
        # exact coverage is ceil(31 level) / 31; 4000 trials put 3 binomial SE at about 0.02
        exact = math.ceil(31 * level) / 31
        assert abs(covered - exact) < 3 * math.sqrt(exact * (1 - exact) / 4000) + 1e-9
        assert covered >= level - 3 * math.sqrt(level * (1 - level) / 4000)
