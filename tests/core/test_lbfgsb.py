"""core.lbfgsb: the direct L-BFGS-B loop returns exactly what scipy.optimize.minimize returns."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from scaleplan.core import fitting, laws, lbfgsb
from scaleplan.core._fit import optimiser
from scaleplan.core._fit.inputs import as_points
from scaleplan.core._fit.objective import build_problem
from tests.core.test_fitting import synthetic_runs

INF = np.inf


def rosen_value_and_grad(x):
    return rosen(x), rosen_der(x)


def cusp(x):
    """sqrt|x - 0.3| summed: its gradient blows up at the minimum, where the line search gives up (status 2)."""
    distance = np.abs(x - 0.3)
    return float(np.sqrt(distance).sum()), 0.5 * np.sign(x - 0.3) / np.sqrt(distance + 1e-300)


def chinchilla_problem(n_runs=4, n_checkpoints=6, objective="huber"):
    N, D, L, _ = synthetic_runs(n_runs=n_runs, n_checkpoints=n_checkpoints, seed=3)
    law = laws.get("chinchilla")
    inputs, y, _ = as_points(law, {"num_params": N, "tokens_seen": D}, L, None)
    return build_problem(law, inputs, y, law.defaults(), objective, fitting.DEFAULT_HUBER_DELTA)


def reference(fun, x0, lower, upper, **options):
    return minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=list(zip(lower, upper)), options=options)


def assert_identical(ours: lbfgsb.LbfgsbResult, theirs) -> None:
    # Same compiled routine, same evaluation sequence: equal to the last bit, not just close.
    assert np.array_equal(ours.x, theirs.x)
    assert ours.fun == theirs.fun
    assert (ours.status, ours.message, ours.nit, ours.nfev, ours.success) == (
        theirs.status,
        theirs.message,
        theirs.nit,
        theirs.nfev,
        theirs.success,
    )


CASES = [
    # function, x0, lower, upper, options (covering: unbounded, boxes, one-sided bounds, a start
    # outside the box, the iteration limit, the evaluation limit, and a line-search failure)
    (rosen_value_and_grad, [-1.2, 1.0, 0.5, 2.0], [-INF] * 4, [INF] * 4, {}),
    (
        rosen_value_and_grad,
        [-1.2, 1.0, 0.5, 2.0],
        [-2.0, 0.0, -INF, 1.5],
        [2.0, INF, 0.8, INF],
        {"maxcor": 20, "ftol": 1e-12, "gtol": 1e-9},
    ),
    (rosen_value_and_grad, [3.0, -3.0, 0.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], {"maxcor": 5}),
    (rosen_value_and_grad, [-1.2, 1.0, 0.5, 2.0], [-INF] * 4, [INF] * 4, {"maxiter": 7}),
    (rosen_value_and_grad, [-1.2, 1.0, 0.5, 2.0], [-INF] * 4, [INF] * 4, {"maxfun": 5}),
    (cusp, [2.0, -1.0], [-INF, -INF], [INF, INF], {"gtol": 0.0, "ftol": 0.0}),
    # the line search near the cusp asks again for the point it already has: SciPy answers from
    # its cache without counting an evaluation, which decides where the evaluation limit stops
    (cusp, [2.0, -1.0], [-INF, -INF], [INF, INF], {"gtol": 0.0, "ftol": 0.0, "maxfun": 12}),
]


@pytest.mark.parametrize("fun, x0, lower, upper, options", CASES)
def test_direct_loop_equals_minimize(fun, x0, lower, upper, options):
    if not lbfgsb.DIRECT:
        pytest.skip("this SciPy does not expose L-BFGS-B's core with the expected signature (minimize is used)")
    x0, lower, upper = (np.array(a, dtype=float) for a in (x0, lower, upper))
    assert_identical(
        lbfgsb.minimize_lbfgsb(fun, x0, lower, upper, **options), reference(fun, x0, lower, upper, **options)
    )


def test_the_cases_reach_each_kind_of_stop():
    # The comparison above means little unless it covers every way a run ends.
    statuses = {
        reference(fun, np.array(x0, float), np.array(lo, float), np.array(hi, float), **opt).status
        for fun, x0, lo, hi, opt in CASES
    }
    assert statuses == {0, 1, 2}


def test_direct_loop_equals_minimize_on_a_chinchilla_descent():
    if not lbfgsb.DIRECT:
        pytest.skip("this SciPy does not expose L-BFGS-B's core with the expected signature (minimize is used)")
    problem = chinchilla_problem()
    v0 = np.array([0.5, 3.0, 3.0, 0.5, 0.5])
    ours = lbfgsb.minimize_lbfgsb(
        problem.scaled_value_and_grad, v0, problem.lower, problem.upper, **optimiser.LBFGS_OPTIONS
    )
    assert ours.nit > 20  # a real descent, not a start at the optimum
    assert_identical(
        ours, reference(problem.scaled_value_and_grad, v0, problem.lower, problem.upper, **optimiser.LBFGS_OPTIONS)
    )


def test_runs_together_equal_runs_alone():
    # The fitter descends from all its starts at once, evaluating their points in one batch:
    # each run must still end exactly where minimize ends from its start (including runs that
    # stop early, here by the iteration limit, while others go on).
    problem = chinchilla_problem()
    starts = [
        np.array([0.5, 3.0, 3.0, 0.5, 0.5]),
        np.array([-1.0, 6.0, 1.0, 0.1, 1.2]),
        np.array([0.2, 0.0, 8.0, 1.5, 0.05]),
    ]
    for options in (optimiser.LBFGS_OPTIONS, {**optimiser.LBFGS_OPTIONS, "maxiter": 15}):
        together = lbfgsb.minimize_lbfgsb_many(
            problem.scaled_values_and_grads, starts, problem.lower, problem.upper, **options
        )
        assert len({r.nit for r in together}) > 1  # the runs do not stop in lockstep
        for start, ours in zip(starts, together):
            assert_identical(
                ours, reference(problem.scaled_value_and_grad, start, problem.lower, problem.upper, **options)
            )


def test_batched_objective_rows_equal_single_evaluations():
    # What makes runs together equal runs alone: a row of the batch is computed exactly as
    # that point alone (checked to the last bit, both objectives, including a runaway point).
    rng = np.random.default_rng(7)
    for objective in ("huber", "least_squares"):
        problem = chinchilla_problem(objective=objective)
        V = rng.normal([0.5, 3.0, 3.0, 0.4, 0.4], [1.0, 2.0, 2.0, 0.3, 0.3], size=(9, 5))
        V[4] = [0.0, 0.0, 0.0, 1e308, 0.0]  # alpha runs away: exponents overflow, the objective hits its finite wall
        values, grads = problem.scaled_values_and_grads(V)
        for v, value, grad in zip(V, values, grads):
            single_value, single_grad = problem.scaled_value_and_grad(v.copy())
            assert value == single_value and np.array_equal(grad, single_grad)
        assert values[4] == 1e300 and not grads[4].any()


def test_the_direct_loop_is_used_on_the_tested_scipy_releases():
    # Without it every comparison above skips and the fitter silently runs at minimize's speed.
    import scipy

    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    if lbfgsb.TESTED_SCIPY[0] <= (major, minor) < lbfgsb.TESTED_SCIPY[1]:
        assert lbfgsb.DIRECT, f"SciPy {scipy.__version__}: L-BFGS-B's core changed; core.lbfgsb falls back to minimize"
    else:
        assert not lbfgsb.DIRECT


def test_outside_the_tested_range_the_public_path_is_used():
    import scipy

    assert lbfgsb.direct_loop_works(scipy.__version__) == lbfgsb.DIRECT
    for version in ("1.14.1", "1.13.0", "1.18.0", "2.0.0", "not-a-version"):
        assert not lbfgsb.direct_loop_works(version), version


def test_a_core_that_behaves_differently_is_detected(monkeypatch):
    """Detection is by behaviour: a routine that returns other iterates than minimize's is not used."""
    import scipy

    real = lbfgsb._core.setulb

    class Shifted:
        @staticmethod
        def setulb(m, x, *args):
            real(m, x, *args)
            x *= 1.0 + 1e-12  # one ulp-scale change per step: minimize would not do this

    monkeypatch.setattr(lbfgsb, "_core", Shifted)
    assert not lbfgsb.direct_loop_works(scipy.__version__)

    class Broken:
        @staticmethod
        def setulb(*args):
            raise TypeError("setulb() takes 17 positional arguments but 18 were given")

    monkeypatch.setattr(lbfgsb, "_core", Broken)
    assert not lbfgsb.direct_loop_works(scipy.__version__)
    monkeypatch.setattr(lbfgsb, "_core", None)
    assert not lbfgsb.direct_loop_works(scipy.__version__)


def test_fits_on_the_public_path_are_the_direct_path_s(monkeypatch):
    N, D, L, _ = synthetic_runs(n_runs=5, n_checkpoints=8, seed=7)
    direct = fitting.fit_chinchilla(N, D, L)
    monkeypatch.setattr(lbfgsb, "DIRECT", False)
    public = fitting.fit_chinchilla(N, D, L)
    assert dict(public.params) == dict(direct.params) and public.objective_value == direct.objective_value


def test_without_the_core_the_results_are_minimize_s(monkeypatch):
    monkeypatch.setattr(lbfgsb, "DIRECT", False)
    x0, lower, upper = np.array([-1.2, 1.0]), np.array([-2.0, -INF]), np.array([0.5, INF])
    ours = lbfgsb.minimize_lbfgsb(rosen_value_and_grad, x0, lower, upper, maxiter=50)
    assert_identical(ours, reference(rosen_value_and_grad, x0, lower, upper, maxiter=50))


def test_inverted_bounds_are_refused():
    with pytest.raises(ValueError, match="lower bounds is greater"):
        lbfgsb.minimize_lbfgsb(rosen_value_and_grad, np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]))
