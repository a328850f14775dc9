"""The law registry and the general-law fitting path, checked against closed forms and known truths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from scaleplan.core import fitting, laws
from scaleplan.core._fit.inputs import as_points
from scaleplan.core._fit.objective import GeneralProblem, build_problem
from scaleplan.core.errors import UserError
from scaleplan.core.laws import Law
from scaleplan.core.laws.chinchilla import parameters as chinchilla_parameters

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def test_registry_finds_every_law_module():
    assert {"chinchilla", "overtrain", "downstream"} <= set(laws.names())
    assert laws.names()[0] == "chinchilla"
    assert "downstream" not in laws.loss_laws() and {"chinchilla", "overtrain"} <= set(laws.loss_laws())
    law = laws.get("chinchilla")
    assert law is laws.get(law) and law.param_names == ("E", "A", "B", "alpha", "beta")
    assert set(law.descriptions) == set(law.param_names)
    with pytest.raises(laws.UnknownLawError, match="unknown law 'nope'; choose from chinchilla"):
        laws.get("nope")
    assert issubclass(laws.UnknownLawError, UserError)


def test_every_registered_law_is_consistent():
    for name in laws.names():
        law = laws.get(name)
        defaults = law.defaults()
        assert tuple(defaults) == law.param_names and set(law.grid) == set(law.param_names)
        assert law.log_params <= set(law.param_names)
        if law.is_loss_law:
            inputs = laws.standard_inputs(np.array([1e8, 1e9]), np.array([2e9, 2e10]))
            predicted = law.predict(inputs, defaults.values_dict())
            assert predicted.shape == (2,) and np.all(np.isfinite(predicted)) and predicted[1] < predicted[0]


def test_standard_inputs_derive_compute_multiplier_and_cap_unique_tokens():
    x = laws.standard_inputs([1e8, 2e8], [4e9, 1e9], [1e9, np.nan])
    np.testing.assert_allclose(x["compute_flops"], [6 * 1e8 * 4e9, 6 * 2e8 * 1e9])
    np.testing.assert_allclose(x["token_multiplier"], [40.0, 5.0])
    np.testing.assert_array_equal(x["unique_tokens"], [1e9, 1e9])  # 1e9 < 4e9 kept; NaN -> D
    assert np.array_equal(laws.standard_inputs(1e8, 3e9)["unique_tokens"], 3e9)


def _chinchilla_gradient(N, D, E, A, B, alpha, beta):
    """d L / d (E, A, B, alpha, beta) of L = E + A N^-alpha + B D^-beta, by hand."""
    size, data = N ** -np.asarray(alpha), D ** -np.asarray(beta)
    return {
        "E": np.ones_like(size * data),
        "A": size,
        "B": data,
        "alpha": -A * size * np.log(N),
        "beta": -B * data * np.log(D),
    }


GENERAL_CHINCHILLA = Law(
    name="chinchilla_general",
    title="Chinchilla written as a general law",
    formula="L(N, D) = E + A/N^alpha + B/D^beta",
    function=laws.chinchilla_loss,
    defaults=chinchilla_parameters,
    input_names=("num_params", "tokens_seen"),
    log_params=frozenset({"E", "A", "B"}),
    grid=laws.get("chinchilla").grid,
    positive=("num_params", "tokens_seen", "loss"),
    gradient=_chinchilla_gradient,
)


def _design(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 12)
    D = np.tile(np.geomspace(1e9, 1e11, 12), 6)
    L = laws.chinchilla_loss(N, D, **TRUTH) * np.exp(noise * rng.standard_normal(N.size))
    return N, D, L


@pytest.mark.parametrize("objective", ["huber", "least_squares"])
def test_general_problem_gradient_matches_finite_differences(objective):
    N, D, L = _design(noise=0.01)
    law = GENERAL_CHINCHILLA
    inputs, y, _ = as_points(law, {"num_params": N, "tokens_seen": D}, L, None)
    problem = build_problem(law, inputs, y, law.defaults().tie("beta", "alpha"), objective, 1e-3)
    assert isinstance(problem, GeneralProblem)
    theta = np.array(np.log([1.5, 300.0, 500.0]).tolist() + [0.3, 0.3])
    value = lambda t: problem.value_and_grad_theta(t)[0]  # noqa: E731
    grad = lambda t: problem.value_and_grad_theta(t)[1]  # noqa: E731
    assert check_grad(value, grad, theta, epsilon=1e-7) < 1e-4 * np.linalg.norm(grad(theta))
    v = problem.v_from_theta(theta)
    sv = lambda x: problem.scaled_value_and_grad(x)[0]  # noqa: E731
    sg = lambda x: problem.scaled_value_and_grad(x)[1]  # noqa: E731
    assert check_grad(sv, sg, v, epsilon=1e-7) < 1e-4 * np.linalg.norm(sg(v))


def test_general_path_recovers_the_truth_and_agrees_with_the_exp_linear_path():
    N, D, L = _design()
    general = fitting.fit(GENERAL_CHINCHILLA, {"num_params": N, "tokens_seen": D}, L)
    for name, value in TRUTH.items():
        assert general.params[name] == pytest.approx(value, rel=1e-4), name
    N, D, L = _design(noise=0.01, seed=3)
    general = fitting.fit(GENERAL_CHINCHILLA, {"num_params": N, "tokens_seen": D}, L)
    fast = fitting.fit_chinchilla(N, D, L)
    # the same objective: the general path must reach the exp-linear path's optimum (or a lower one)
    assert general.objective_value <= fast.objective_value * (1 + 1e-6)
    assert general.predict(1e10, 2e11) == pytest.approx(fast.predict(1e10, 2e11), rel=1e-4)
    assert general.law is GENERAL_CHINCHILLA and fast.law is laws.get("chinchilla")


def test_fit_by_name_uses_the_law_defaults_and_checks_inputs():
    N, D, L = _design(noise=0.005)
    by_name = fitting.fit("chinchilla", laws.standard_inputs(N, D), L)
    direct = fitting.fit_chinchilla(N, D, L)
    assert dict(by_name.params) == dict(direct.params) and by_name.objective == "huber"
    with pytest.raises(fitting.InvalidInputError, match="needs the input"):
        fitting.fit("chinchilla", {"num_params": N}, L)


def test_a_law_must_be_exp_linear_or_general():
    with pytest.raises(ValueError, match="either terms"):
        Law(
            name="bad",
            title="",
            formula="",
            function=laws.chinchilla_loss,
            defaults=chinchilla_parameters,
            input_names=("num_params", "tokens_seen"),
            log_params=frozenset(),
            grid=laws.get("chinchilla").grid,
        )
