"""Muennighoff et al.'s data-constrained law: published values, closed-form limits, gradient, fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaleplan.core import fitting, laws, meta
from scaleplan.core.laws.data_constrained import (
    PUBLISHED,
    data_constrained_gradient,
    data_constrained_loss,
)


def test_the_published_examples():
    # datablations README, "Parametric Fit": the two models of the paper's Figure 1 (right)
    assert data_constrained_loss(6.34e9, 242e9, 25e9, **PUBLISHED) == pytest.approx(2.2256440889984477, rel=1e-12)
    assert data_constrained_loss(8.67e9, 178e9, 25e9, **PUBLISHED) == pytest.approx(2.2269634075087867, rel=1e-12)


def test_without_repetition_or_excess_parameters_it_is_chinchilla():
    chin = {k: PUBLISHED[k] for k in ("E", "A", "B", "alpha", "beta")}
    N = np.array([1e8, 5e8, 1e9])
    D = 20 * N
    # unique tokens >= tokens seen (no repetition), and N far below N_opt(U) for U = D
    got = data_constrained_loss(N, D, D * 10, **PUBLISHED)
    np.testing.assert_allclose(got, laws.chinchilla_loss(N, D, **chin), rtol=1e-14)


def test_effective_data_saturates_at_u_times_one_plus_r_star():
    U, N = 1e9, 1e7  # N below N_opt(U) = U G**2 ~ 5e7 (alpha = beta): only the data side decays
    far = data_constrained_loss(N, U * 1e6, U, **PUBLISHED)
    limit = PUBLISHED["E"] + PUBLISHED["A"] * N ** -PUBLISHED["alpha"]
    limit += PUBLISHED["B"] * (U * (1 + PUBLISHED["rd_star"])) ** -PUBLISHED["beta"]
    assert far == pytest.approx(limit, rel=1e-12)
    # one repetition R_D = 1 is worth U R* (1 - exp(-1 / R*)) effective tokens: close to U for R* = 15
    one = data_constrained_loss(N, 2 * U, U, **PUBLISHED)
    d_eff = U + U * PUBLISHED["rd_star"] * (1 - math.exp(-1 / PUBLISHED["rd_star"]))
    expected = PUBLISHED["E"] + PUBLISHED["A"] * N ** -PUBLISHED["alpha"] + PUBLISHED["B"] * d_eff ** -PUBLISHED["beta"]
    assert one == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("N", [1e8, 6.34e9, 3e10])  # below, around and far above N_opt(25B) ~ 1.1e9
def test_gradient_matches_central_differences(N):
    D, U = np.array([25e9, 100e9, 242e9]), 25e9
    params = dict(PUBLISHED, beta=0.33)  # alpha != beta exercises every term of d log N_opt
    grad = data_constrained_gradient(N, D, U, **params)
    for name, value in params.items():
        h = 1e-6 * value
        up = data_constrained_loss(N, D, U, **{**params, name: value + h})
        down = data_constrained_loss(N, D, U, **{**params, name: value - h})
        np.testing.assert_allclose(grad[name], (up - down) / (2 * h), rtol=2e-5, atol=1e-12, err_msg=name)


def _repetition_design(params, noise=0.0, seed=0):
    """Runs at 6 sizes on 3 unique-token budgets, checkpoints from 1 to 40 epochs (datablations-like)."""
    rng = np.random.default_rng(seed)
    rows = []
    for unique in (1e9, 4e9, 12e9):
        for n in np.geomspace(1e8, 3e9, 6):
            for epochs in np.geomspace(1, 40, 8):
                rows.append((n, epochs * unique, unique))
    N, D, U = np.array(rows).T
    L = data_constrained_loss(N, D, U, **params) * np.exp(noise * rng.standard_normal(N.size))
    return N, D, U, L


def test_fit_recovers_the_law_it_was_drawn_from():
    N, D, U, L = _repetition_design(PUBLISHED)
    result = fitting.fit("data_constrained", laws.standard_inputs(N, D, U), L)
    assert result.law is laws.get("data_constrained")
    assert result.objective_value < 1e-10
    # the prediction at a larger, more repeated target is the truth's
    target = (1e10, 400e9, 12e9)
    assert result.predict_at(*target) == pytest.approx(data_constrained_loss(*target, **PUBLISHED), rel=1e-4)
    assert result.params["rd_star"] == pytest.approx(PUBLISHED["rd_star"], rel=0.05)


def test_fit_with_noise_beats_chinchilla_on_repeated_data():
    N, D, U, L = _repetition_design(PUBLISHED, noise=0.003, seed=1)
    inputs = laws.standard_inputs(N, D, U)
    constrained = fitting.fit("data_constrained", inputs, L)
    chinchilla = fitting.fit("chinchilla", inputs, L)
    assert constrained.objective_value < chinchilla.objective_value
    target = (1e10, 400e9, 12e9)
    truth = data_constrained_loss(*target, **PUBLISHED)
    assert abs(constrained.predict_at(*target) / truth - 1) < abs(chinchilla.predict_at(*target) / truth - 1)


def test_rd_star_needs_repeated_data():
    N = np.repeat(np.geomspace(1e8, 1e9, 5), 4)
    D = np.tile(np.geomspace(1e10, 4e10, 4), 5)
    L = data_constrained_loss(N, D, D, **PUBLISHED)
    with pytest.raises(fitting.InsufficientDataError, match="rd_star"):
        fitting.fit("data_constrained", laws.standard_inputs(N, D), L)
    held = laws.get("data_constrained").defaults().fix("rd_star").fix("rn_star")
    assert fitting.fit("data_constrained", laws.standard_inputs(N, D), L, parameters=held).objective_value < 1e-10


def test_the_law_is_offered_everywhere_laws_are():
    from scaleplan.core.cli import build_parser

    assert "data_constrained" in laws.loss_laws()
    assert meta.SweepConfig.from_mapping({"law": "data_constrained"}).law == "data_constrained"
    args = build_parser().parse_args(["fit", "--family", "x", "--law", "data_constrained"])
    assert args.law == "data_constrained"
