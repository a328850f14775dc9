"""Scaling-law forms checked against hand arithmetic, brute force and algebraic identities."""

import math

import numpy as np
import pytest

from scaleplan.core.laws import (
    UnreachableLossError,
    allocation_for_loss,
    chinchilla_loss,
    compute_from,
    compute_optimal_allocation,
    downstream_error,
    multiplier_from,
    overtrain_as_chinchilla,
    overtrain_loss,
)

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def test_chinchilla_loss_matches_hand_arithmetic():
    expected = 1.69 + 406.4 / 1e9**0.34 + 410.7 / 2e10**0.28
    assert chinchilla_loss(1e9, 2e10, **HOFFMANN) == pytest.approx(expected, rel=1e-14)


def test_chinchilla_loss_broadcasts_and_decreases():
    N = np.geomspace(1e7, 1e10, 4)[:, None]
    D = np.geomspace(1e9, 1e12, 5)[None, :]
    L = chinchilla_loss(N, D, **HOFFMANN)
    assert L.shape == (4, 5)
    assert np.all(np.diff(L, axis=0) < 0) and np.all(np.diff(L, axis=1) < 0)
    assert np.all(L > HOFFMANN["E"])


def test_compute_and_multiplier_helpers():
    assert compute_from(1e9, 2e10) == pytest.approx(1.2e20)
    assert multiplier_from(1e9, 2e10) == pytest.approx(20.0)
    np.testing.assert_allclose(compute_from([1, 2], [3, 4]), [18, 48])


@pytest.mark.parametrize("M", [0.25, 20.0, 640.0])
def test_overtrain_loss_at_fixed_multiplier_is_a_power_law_in_compute(M):
    E, a, b, eta = 1.8, 500.0, 600.0, 0.16
    C = np.geomspace(1e17, 1e24, 30)
    L = overtrain_loss(C, M, E, a, b, eta)
    slope, intercept = np.polyfit(np.log(C), np.log(L - E), 1)
    assert slope == pytest.approx(-eta, abs=1e-10)
    assert intercept == pytest.approx(math.log(a * M**eta + b * M**-eta), abs=1e-8)


def test_overtrain_law_equals_chinchilla_with_tied_exponents():
    rng = np.random.default_rng(0)
    N = 10 ** rng.uniform(7, 10, 50)
    D = 10 ** rng.uniform(9, 12, 50)
    params = {"E": 1.8, "a": 500.0, "b": 600.0, "eta": 0.16}
    via_overtrain = overtrain_loss(compute_from(N, D), multiplier_from(N, D), **params)
    via_chinchilla = chinchilla_loss(N, D, **overtrain_as_chinchilla(**params))
    np.testing.assert_allclose(via_overtrain, via_chinchilla, rtol=1e-12)


def test_downstream_error_limits_and_monotonicity():
    eps, k, gamma = 0.75, 1.6, 0.7
    assert downstream_error(0.0, eps, k, gamma) == pytest.approx(eps - k)
    assert downstream_error(1e3, eps, k, gamma) == pytest.approx(eps)
    L = np.linspace(1.5, 5, 20)
    assert np.all(np.diff(downstream_error(L, eps, k, gamma)) > 0)


@pytest.mark.parametrize("C", [1e19, 1e21, 5.76e23])
def test_compute_optimal_allocation_matches_brute_force(C):
    N_opt, D_opt = compute_optimal_allocation(C, **HOFFMANN)
    assert compute_from(N_opt, D_opt) == pytest.approx(C, rel=1e-12)
    N_grid = np.geomspace(1e5, 1e14, 900_001)  # spacing 2.3e-5 in relative terms
    losses = chinchilla_loss(N_grid, C / (6 * N_grid), **HOFFMANN)
    assert N_opt == pytest.approx(N_grid[np.argmin(losses)], rel=1e-4)


def test_compute_optimal_allocation_is_vectorised():
    C = np.array([1e19, 1e21, 1e23])
    N, D = compute_optimal_allocation(C, **HOFFMANN)
    assert N.shape == D.shape == (3,)
    # More compute buys both a larger model and more data.
    assert np.all(np.diff(N) > 0) and np.all(np.diff(D) > 0)
    # The N exponent is beta / (alpha + beta).
    slope = np.polyfit(np.log(C), np.log(N), 1)[0]
    assert slope == pytest.approx(0.28 / 0.62, abs=1e-12)


def test_allocation_for_loss_round_trips():
    targets = np.array([[1.9], [2.2], [3.0], [5.0]])
    multipliers = np.array([1.0, 20.0, 640.0])
    N, D = allocation_for_loss(targets, multipliers, **HOFFMANN)
    assert N.shape == (4, 3)
    np.testing.assert_allclose(chinchilla_loss(N, D, **HOFFMANN), np.broadcast_to(targets, N.shape), rtol=1e-11)
    np.testing.assert_allclose(D / N, np.broadcast_to(multipliers, N.shape), rtol=1e-12)


def test_allocation_for_loss_recovers_compute_optimal_model():
    N_opt, D_opt = compute_optimal_allocation(1e22, **HOFFMANN)
    target = chinchilla_loss(N_opt, D_opt, **HOFFMANN)
    N, D = allocation_for_loss(target, D_opt / N_opt, **HOFFMANN)
    assert N == pytest.approx(N_opt, rel=1e-10)
    assert D == pytest.approx(D_opt, rel=1e-10)


@pytest.mark.parametrize("target", [1.69, 1.5, [2.0, 1.6]])
def test_allocation_for_unreachable_loss_raises(target):
    with pytest.raises(UnreachableLossError, match="irreducible loss"):
        allocation_for_loss(target, 20.0, **HOFFMANN)


def test_allocation_rejects_bad_multiplier():
    with pytest.raises(ValueError, match="token_multiplier"):
        allocation_for_loss(2.0, 0.0, **HOFFMANN)
