"""core.fitting.prediction_log_se: the delta-method standard error of a fit's log prediction, checked
against a closed form (one free parameter) and against the spread of refits under known seed noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaleplan.core import fitting, laws
from scaleplan.core.parameters import Parameters

TRUE = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. (2022)


def _law(n, d):
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


def _isoflop(budgets=(1e18, 3e18, 1e19), sizes=5):
    n = np.concatenate([np.logspace(np.log10(c) / 2 - 1.6, np.log10(c) / 2 - 0.4, sizes) for c in budgets])
    c = np.repeat(budgets, sizes)
    return n, c / (6 * n)


def _only_e_free() -> Parameters:
    parameters = laws.get("chinchilla").defaults()
    for name in ("A", "B", "alpha", "beta"):
        parameters = parameters.fix(name, TRUE[name])
    return parameters.replace("E", value=1.5)


def test_one_free_parameter_matches_the_closed_form():
    """With only E free, d log L_i / d log E = E / L_i, so se^2 = s^2 (E / L_t)^2 / sum_i (E / L_i)^2."""
    rng = np.random.default_rng(3)
    n, d = _isoflop()
    loss = _law(n, d) * np.exp(rng.normal(0, 0.01, n.size))
    fit = fitting.fit("chinchilla", laws.standard_inputs(n, d), loss, parameters=_only_e_free())
    e = fit.params["E"]
    fitted = np.asarray(fit.predict(n, d))
    residual_variance = np.sum(np.log(loss / fitted) ** 2) / (n.size - 1)
    n_t, d_t = 7e9, 140e9
    target = float(fit.predict(n_t, d_t))
    expected = math.sqrt(residual_variance * (e / target) ** 2 / np.sum((e / fitted) ** 2))
    assert fitting.prediction_log_se(fit, n_t, d_t) == pytest.approx(expected, rel=1e-4)


def test_the_standard_error_matches_the_spread_of_refits_under_known_noise():
    """Refit the same design under 120 draws of 1% seed noise: the delta method's se (its median over the
    draws) is within 30% of the standard deviation of the refits' log predictions at 10x the compute."""
    n, d = _isoflop()
    n_t = 2.5e9
    d_t = 10 * 1e19 / (6 * n_t)
    rng = np.random.default_rng(11)
    predictions, ses = [], []
    for _ in range(120):
        loss = _law(n, d) * np.exp(rng.normal(0, 0.01, n.size))
        fit = fitting.fit("chinchilla", laws.standard_inputs(n, d), loss)
        predictions.append(math.log(float(fit.predict(n_t, d_t))))
        ses.append(fitting.prediction_log_se(fit, n_t, d_t))
    spread = float(np.std(predictions, ddof=1))
    assert np.median(ses) == pytest.approx(spread, rel=0.3)
