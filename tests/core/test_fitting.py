"""Fits checked on synthetic data drawn from known laws: the truth is independent of the fitter."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from scaleplan.core import fitting, laws
from scaleplan.core._fit import optimiser
from scaleplan.core._fit.driver import fit_law
from scaleplan.core._fit.objective import build_problem
from scaleplan.core._fit.starts import _varpro_scan
from scaleplan.core.fitting import (
    BootstrapResult,
    ConvergenceError,
    DegenerateFitError,
    FitError,
    InsufficientDataError,
    InvalidInputError,
    bootstrap,
    bootstrap_fit,
    chinchilla_objective,
    fit_chinchilla,
    fit_downstream,
    fit_overtrain,
)
from scaleplan.core.laws import chinchilla_loss, downstream_error, overtrain_loss
from scaleplan.core.parameters import chinchilla_parameters, overtrain_parameters

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# Extrapolation target: 10x the largest model, at 20 tokens per parameter.
TARGET_N, TARGET_D = 1e10, 2e11


def synthetic_runs(n_runs=8, n_checkpoints=30, noise=0.005, seed=0, truth=TRUTH):
    """Runs at N in 1e7..1e9 with checkpoints at D in 1e9..1e11, multiplicative noise."""
    rng = np.random.default_rng(seed)
    num_params = np.repeat(np.geomspace(1e7, 1e9, n_runs), n_checkpoints)
    tokens_seen = np.tile(np.geomspace(1e9, 1e11, n_checkpoints), n_runs)
    run_ids = np.repeat([f"run-{i}" for i in range(n_runs)], n_checkpoints)
    loss = chinchilla_loss(num_params, tokens_seen, **truth)
    return num_params, tokens_seen, loss * np.exp(noise * rng.standard_normal(loss.size)), run_ids


@pytest.fixture(scope="module")
def runs():
    return synthetic_runs()


def relative_error(predicted, truth):
    return abs(predicted / truth - 1)


# ------------------------------------------------------------------ recovery
@pytest.mark.parametrize("objective", ["huber", "least_squares"])
def test_fit_recovers_known_law(runs, objective):
    N, D, L, ids = runs
    result = fit_chinchilla(N, D, L, objective=objective, run_ids=ids)
    assert result.law.name == "chinchilla" and 1 <= result.n_starts <= fitting.DEFAULT_CHINCHILLA_STARTS
    assert result.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert result.params["beta"] == pytest.approx(TRUTH["beta"], abs=0.03)
    assert result.params["E"] == pytest.approx(TRUTH["E"], abs=0.05)
    truth_at_target = chinchilla_loss(TARGET_N, TARGET_D, **TRUTH)
    assert relative_error(result.predict(TARGET_N, TARGET_D), truth_at_target) < 0.01


def test_fit_is_robust_across_noise_draws():
    truth_at_target = chinchilla_loss(TARGET_N, TARGET_D, **TRUTH)
    for seed in range(5):
        N, D, L, _ = synthetic_runs(n_runs=5, n_checkpoints=20, seed=seed)
        result = fit_chinchilla(N, D, L)
        assert abs(result.params["alpha"] - TRUTH["alpha"]) < 0.05
        assert abs(result.params["beta"] - TRUTH["beta"]) < 0.05
        assert relative_error(result.predict(TARGET_N, TARGET_D), truth_at_target) < 0.02


def test_best_five_starts_match_a_much_wider_search():
    N, D, L, _ = synthetic_runs(n_runs=4, n_checkpoints=15, noise=0.02, seed=3)
    default = fit_chinchilla(N, D, L)
    wide = fit_chinchilla(N, D, L, n_starts=60)
    assert default.objective_value <= wide.objective_value * (1 + 1e-6)


def test_variable_projection_solves_each_cell_exactly():
    # Independent truth: SciPy's NNLS (Lawson-Hanson) on the same weighted linear problem.
    from scipy.optimize import nnls

    rng = np.random.default_rng(5)
    for truth in (TRUTH, {**TRUTH, "E": 1e-4}, {**TRUTH, "B": 1e-3}):
        N, D, L, _ = synthetic_runs(n_runs=5, n_checkpoints=12, noise=0.03, seed=1, truth=truth)
        problem = build_problem(
            laws.get("chinchilla"), {"num_params": N, "tokens_seen": D}, L, chinchilla_parameters(), "huber", 1e-3
        )
        theta, sse = _varpro_scan(problem)
        for i in rng.choice(len(theta), 40, replace=False):
            alpha, beta = theta[i, 3], theta[i, 4]
            X = np.column_stack([np.ones_like(N), N**-alpha, D**-beta]) / L[:, None]
            coef, residual = nnls(X, np.ones_like(L))
            assert sse[i] == pytest.approx(residual**2, rel=1e-8)
            natural = np.exp(theta[i, :3])
            # coefficients NNLS sets to zero come back as a negligible positive term
            np.testing.assert_allclose(np.where(coef > 0, natural, 0.0), coef, rtol=1e-6, atol=1e-9 * natural.max())


def test_fit_matches_an_independent_multistart_search():
    # Reference: L-BFGS-B with numerical gradients on the public objective, from 12 starts
    # spread around the truth and Hoffmann's grid; ours must reach an equal or lower minimum.
    from scipy.optimize import minimize

    rng = np.random.default_rng(11)
    for seed, (n_runs, n_ckpt, noise) in enumerate([(4, 15, 0.02), (6, 10, 0.01), (3, 25, 0.005)]):
        N, D, L, _ = synthetic_runs(n_runs=n_runs, n_checkpoints=n_ckpt, noise=noise, seed=seed)

        def objective(t, N=N, D=D, L=L):
            return (
                chinchilla_objective(
                    {"E": np.exp(t[0]), "A": np.exp(t[1]), "B": np.exp(t[2]), "alpha": t[3], "beta": t[4]}, N, D, L
                )
                * 1e3
            )

        truth = np.array([np.log(TRUTH["E"]), np.log(TRUTH["A"]), np.log(TRUTH["B"]), TRUTH["alpha"], TRUTH["beta"]])
        starts = [truth + rng.normal(0, [0.3, 1.0, 1.0, 0.1, 0.1]) for _ in range(8)]
        starts += [
            np.array(s)
            for s in ([0.5, 5, 5, 0.5, 0.5], [0.0, 10, 10, 1.0, 1.0], [0.5, 0, 5, 0.1, 0.5], [-1.0, 5, 0, 0.5, 0.1])
        ]
        # The reference's line searches probe points where exp overflows (a large log prefactor);
        # it steps back from those on its own, so the warnings are noise.
        with np.errstate(over="ignore", invalid="ignore"):
            reference = (
                min(
                    minimize(
                        objective,
                        np.clip(s, -50, [50, 50, 50, 2, 2]),
                        method="L-BFGS-B",
                        bounds=[(None, None)] * 3 + [(1e-6, 2.0)] * 2,
                    ).fun
                    for s in starts
                )
                / 1e3
            )
        ours = fit_chinchilla(N, D, L)
        assert ours.objective_value <= reference * (1 + 1e-9)


def test_result_records_points_and_objective(runs):
    N, D, L, ids = runs
    result = fit_chinchilla(N, D, L, run_ids=ids)
    np.testing.assert_array_equal(result.num_params, N)
    np.testing.assert_array_equal(result.tokens_seen, D)
    np.testing.assert_array_equal(result.loss, L)
    np.testing.assert_array_equal(result.run_ids, ids)
    assert not result.loss.flags.writeable
    assert result.objective == "huber" and result.huber_delta == 1e-3
    assert result.objective_value == pytest.approx(chinchilla_objective(result.params, N, D, L), rel=1e-9)
    grid = result.predict(np.array([[1e8], [1e9]]), np.array([1e10, 1e11, 1e12]))
    assert grid.shape == (2, 3)


# ------------------------------------------------------------------ gradients
def assert_gradient(fun, theta, rtol):
    """check_grad's forward-difference error, relative to the gradient's size."""
    value = lambda t: fun(t)[0]  # noqa: E731
    grad = lambda t: fun(t)[1]  # noqa: E731
    assert check_grad(value, grad, theta, epsilon=1e-8) < rtol * np.linalg.norm(grad(theta))


@pytest.mark.parametrize("objective", ["huber", "least_squares"])
def test_chinchilla_gradient_matches_finite_differences(runs, objective):
    N, D, L, _ = runs
    problem = build_problem(
        laws.get("chinchilla"),
        {"num_params": N, "tokens_seen": D},
        L,
        chinchilla_parameters(),
        objective,
        1e-3,
    )
    truth = np.log([TRUTH["E"], TRUTH["A"], TRUTH["B"]]).tolist() + [TRUTH["alpha"], TRUTH["beta"]]
    # Away from the optimum (where the gradient vanishes and only round-off is left):
    # one point near it, one far, one with some residuals inside the Huber kink.
    for offset in ([0.05, 0.3, -0.2, 0.02, -0.01], [-0.5, 3.0, 2.0, -0.1, 0.15], [0.0, 0.0, 0.0, 0.0, 0.002]):
        theta = np.array(truth) + offset
        assert_gradient(problem.value_and_grad_theta, theta, rtol=1e-5)
        # The optimiser's centred, rescaled coordinates carry the same gradient.
        assert_gradient(problem.scaled_value_and_grad, problem.v_from_theta(theta), rtol=1e-5)


def test_overtrain_and_downstream_gradients_match_finite_differences():
    C = np.geomspace(1e17, 1e20, 40)
    M = np.tile([20.0, 320.0], 20)
    L = overtrain_loss(C, M, 1.8, 500.0, 600.0, 0.16)
    for objective in ("least_squares", "huber"):
        problem = build_problem(
            laws.get("overtrain"),
            {"compute_flops": C, "token_multiplier": M},
            L,
            overtrain_parameters(),
            objective,
            1e-3,
        )
        theta = np.array([0.5, 6.0, 6.5, 0.15])
        # eta multiplies log C ~ 45: forward differences in theta are only good to ~1e-4.
        assert_gradient(problem.value_and_grad_theta, theta, rtol=1e-4)
        assert_gradient(problem.scaled_value_and_grad, problem.v_from_theta(theta), rtol=1e-5)
    loss = np.linspace(2, 4, 30)
    problem = build_problem(
        laws.get("downstream"),
        {"loss": loss},
        downstream_error(loss, 0.8, 2.0, 0.7),
        laws.get("downstream").defaults(),
        "least_squares",
        1e-3,
    )
    theta = np.array([np.log(0.7), 0.5, 0.9])
    assert_gradient(problem.value_and_grad_theta, theta, rtol=1e-5)
    assert_gradient(problem.scaled_value_and_grad, problem.v_from_theta(theta), rtol=1e-5)


# --------------------------------------------------------- fixed and tied
def test_borrowed_parameters_stay_fixed(runs):
    N, D, L, _ = runs
    params = chinchilla_parameters().borrow(TRUTH, ["A", "alpha"])
    result = fit_chinchilla(N, D, L, parameters=params)
    assert result.params["A"] == TRUTH["A"] and result.params["alpha"] == TRUTH["alpha"]
    assert result.fixed == ("A", "alpha")
    assert result.params["beta"] == pytest.approx(TRUTH["beta"], abs=0.02)
    assert result.params["E"] == pytest.approx(TRUTH["E"], abs=0.05)


def test_single_run_with_borrowed_size_term_is_identifiable():
    N, D, L, ids = synthetic_runs(n_runs=8, n_checkpoints=40, noise=0.002)
    largest = ids == "run-7"
    params = chinchilla_parameters().borrow(TRUTH, ["A", "alpha"])
    result = fit_chinchilla(N[largest], D[largest], L[largest], parameters=params)
    # One run constrains the loss along D; check the fit reproduces it beyond its data.
    far = chinchilla_loss(1e9, 3e11, **TRUTH)
    assert relative_error(result.predict(1e9, 3e11), far) < 0.01


def test_all_parameters_fixed_returns_them(runs):
    N, D, L, _ = runs
    params = chinchilla_parameters().borrow(TRUTH, list(TRUTH))
    result = fit_chinchilla(N, D, L, parameters=params)
    assert result.params == TRUTH


def test_tied_exponents_are_equal(runs):
    N, D, L, _ = runs
    result = fit_chinchilla(N, D, L, parameters=chinchilla_parameters().tie("beta", "alpha"))
    assert result.params["alpha"] == result.params["beta"]
    assert 0.28 < result.params["alpha"] < 0.34


def test_bounds_are_honoured(runs):
    N, D, L, _ = runs
    params = chinchilla_parameters().replace("alpha", max=0.3, value=0.3)
    result = fit_chinchilla(N, D, L, parameters=params)
    assert result.params["alpha"] <= 0.3


# -------------------------------------------------------------------- errors
def _valid(n=30):
    N, D, L, _ = synthetic_runs(n_runs=6, n_checkpoints=5)
    return N[:n].copy(), D[:n].copy(), L[:n].copy()


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda N, D, L: N.__setitem__(3, np.nan), "num_params has 1 non-finite"),
        (lambda N, D, L: D.__setitem__(0, np.inf), "tokens_seen has 1 non-finite"),
        (lambda N, D, L: L.__setitem__(5, np.nan), "loss has 1 non-finite"),
        (lambda N, D, L: N.__setitem__(2, -1e8), "num_params must be positive"),
        (lambda N, D, L: D.__setitem__(2, 0.0), "tokens_seen must be positive"),
        (lambda N, D, L: L.__setitem__(2, 0.0), "loss must be positive"),
    ],
)
def test_invalid_inputs_raise(corrupt, match):
    N, D, L = _valid()
    corrupt(N, D, L)
    with pytest.raises(InvalidInputError, match=match):
        fit_chinchilla(N, D, L)


def test_mismatched_lengths_raise():
    N, D, L = _valid()
    with pytest.raises(InvalidInputError, match="same length.*num_params=30.*loss=29"):
        fit_chinchilla(N, D, L[:-1])
    with pytest.raises(InvalidInputError, match="run_ids=2"):
        fit_chinchilla(N, D, L, run_ids=["a", "b"])


def test_too_few_points_raise():
    N, D, L = _valid()
    with pytest.raises(InsufficientDataError, match="need at least 6 points to fit 5 free parameters.*got 3"):
        fit_chinchilla(N[::10], D[::10], L[::10])


def test_too_few_model_sizes_raise():
    N, D, L, _ = synthetic_runs(n_runs=2, n_checkpoints=20)
    with pytest.raises(InsufficientDataError, match="3 distinct model sizes.*got 2"):
        fit_chinchilla(N, D, L)
    # Borrowing alpha leaves E and A, which two sizes do pin down.
    fit_chinchilla(N, D, L, parameters=chinchilla_parameters().borrow(TRUTH, ["alpha"]))


def test_flat_data_raise():
    N, D, _ = _valid()
    with pytest.raises(DegenerateFitError, match="flat"):
        fit_chinchilla(N, D, np.full(N.size, 2.5))


def test_no_convergence_raises(runs, monkeypatch):
    N, D, L, _ = runs
    monkeypatch.setitem(optimiser.LBFGS_OPTIONS, "maxiter", 1)
    with pytest.raises(ConvergenceError, match=r"did not converge from any of \d+ starting points"):
        fit_chinchilla(N, D, L)
    with pytest.raises(ConvergenceError, match="did not converge from any of 1 starting point"):
        fit_chinchilla(N, D, L, n_starts=1)


def test_errors_are_value_errors_and_options_are_checked(runs):
    for error in (InvalidInputError, InsufficientDataError, DegenerateFitError, ConvergenceError):
        assert issubclass(error, FitError) and issubclass(error, ValueError)
    N, D, L, _ = runs
    with pytest.raises(ValueError, match="objective"):
        fit_chinchilla(N, D, L, objective="l1")
    with pytest.raises(InvalidInputError, match="needs parameters"):
        fit_chinchilla(N, D, L, parameters=overtrain_parameters())
    with pytest.raises(ValueError, match="least_squares"):
        fit_law(
            laws.get("downstream"),
            {"loss": L},
            L / 10,
            parameters=None,
            objective="huber",
            huber_delta=1e-3,
            run_ids=None,
            n_starts=5,
        )


# ----------------------------------------------------------- other laws
def overtrain_design(seed=1, noise=0.003):
    """Gadre et al.'s fit set: 4 sizes at M=20 plus the smallest at M=320."""
    truth = {"E": 1.8, "a": 500.0, "b": 600.0, "eta": 0.16}
    rng = np.random.default_rng(seed)
    sizes = [1.1e7, 7.9e7, 1.54e8, 4.11e8, 1.1e7]
    multipliers = [20.0, 20.0, 20.0, 20.0, 320.0]
    C, M = [], []
    for n, m in zip(sizes, multipliers):
        tokens = np.geomspace(0.2, 1.0, 15) * m * n
        C.append(6 * n * tokens)
        M.append(tokens / n)
    C, M = np.concatenate(C), np.concatenate(M)
    L = overtrain_loss(C, M, **truth) * np.exp(noise * rng.standard_normal(C.size))
    return C, M, L, truth


@pytest.mark.parametrize("objective", ["least_squares", "huber"])
def test_overtrain_fit_predicts_an_overtrained_target(objective):
    C, M, L, truth = overtrain_design()
    result = fit_overtrain(C, M, L, objective=objective)
    assert result.law.name == "overtrain" and result.params["eta"] == pytest.approx(0.16, abs=0.01)
    # 1.4B parameters at M = 640: ~300x the compute of the largest fitted run.
    n = 1.4e9
    C_target = 6 * n * 640 * n
    assert relative_error(result.predict(C_target, 640.0), overtrain_loss(C_target, 640.0, **truth)) < 0.01
    np.testing.assert_allclose(result.num_params * result.tokens_seen * 6, C, rtol=1e-12)


def test_overtrain_needs_two_multipliers():
    C, M, L, _ = overtrain_design()
    at_20 = M <= 20.0 + 1e-9
    with pytest.raises(InsufficientDataError, match="token multipliers"):
        fit_overtrain(C[at_20], np.full(at_20.sum(), 20.0), L[at_20])


def test_downstream_fit_recovers_known_curve():
    rng = np.random.default_rng(2)
    loss = np.linspace(2.2, 4.0, 25)
    error = downstream_error(loss, 0.8, 2.0, 0.7) + 0.003 * rng.standard_normal(loss.size)
    result = fit_downstream(loss, error)
    assert result.law.name == "downstream" and result.objective == "least_squares"
    at = np.array([2.0, 3.0])
    np.testing.assert_allclose(result.predict(at), downstream_error(at, 0.8, 2.0, 0.7), atol=0.01)
    np.testing.assert_array_equal(result.loss, loss)
    with pytest.raises(AttributeError):
        result.num_params  # noqa: B018 - the attribute access is what is tested


# ----------------------------------------------------------------- bootstrap
def test_bootstrap_band_contains_truth_and_narrows_with_more_runs():
    truth = chinchilla_loss(TARGET_N, TARGET_D, **TRUTH)
    for seed in (2, 3):
        widths = []
        for n_runs in (6, 24):
            N, D, L, ids = synthetic_runs(n_runs=n_runs, n_checkpoints=10, noise=0.01, seed=seed)
            boot = bootstrap_fit(N, D, L, ids, n_boot=40, seed=0)
            assert isinstance(boot, BootstrapResult)
            assert boot.param_samples.shape == (40 - boot.n_failed, 5)
            lower, upper = boot.band(TARGET_N, TARGET_D, level=0.95)
            assert lower <= truth <= upper
            widths.append(upper - lower)
        # Four times the runs: the standard error should roughly halve.
        assert widths[1] < 0.75 * widths[0]


def test_bootstrap_counts_failed_replicates_and_is_reproducible():
    # With 3 runs, a replicate drawing fewer than 3 distinct sizes cannot fit all five
    # parameters; it must be skipped and counted, not crash the bootstrap.
    N, D, L, ids = synthetic_runs(n_runs=3, n_checkpoints=10)
    full = fit_chinchilla(N, D, L, run_ids=ids)
    first = bootstrap(full, n_boot=30, seed=4, scheme="runs")
    assert first.n_failed > 0 and len(first.param_samples) == 30 - first.n_failed
    assert first.failures == {"too few distinct sizes drawn": first.n_failed}
    again = bootstrap(full, n_boot=30, seed=4, scheme="runs")
    np.testing.assert_array_equal(first.param_samples, again.param_samples)
    samples = first.predict_samples([1e9, 1e10], 1e11)
    assert samples.shape == (len(first.param_samples), 2)
    low, high = first.param_interval("alpha")
    assert low <= high


def test_bootstrap_gives_positive_width_with_three_sizes():
    # k = 3: resampling runs leaves only permutations of the data (zero width) or failures; the
    # default keeps all three sizes and resamples checkpoints in blocks, so no replicate fails
    # and the band has positive width.
    N, D, L, ids = synthetic_runs(n_runs=3, n_checkpoints=10, noise=0.01, seed=1)
    full = fit_chinchilla(N, D, L, run_ids=ids)
    runs_boot = bootstrap(full, n_boot=40, seed=0, scheme="runs")
    survivors = runs_boot.predict_samples(TARGET_N, TARGET_D)
    assert runs_boot.n_failed > 20 and np.ptp(survivors) < 1e-6 * survivors.mean()  # the bug being fixed
    default = bootstrap(full, n_boot=40, seed=0)
    assert default.scheme == "blocks" and default.n_failed == 0 and len(default.param_samples) == 40
    lower, upper = default.band(TARGET_N, TARGET_D, level=0.9)
    assert upper - lower > 1e-3 * full.predict(TARGET_N, TARGET_D)


def test_block_bootstrap_covers_the_true_curve_near_nominal():
    # Coverage of the 90% band of the fitted curve inside the data (parameter uncertainty only,
    # no extrapolation error) over independent noise draws of a known law.
    # The parameter intervals shown on the Fit page come from the same replicates: beta's too.
    covered, beta_covered = [], []
    for seed in range(10):
        N, D, L, ids = synthetic_runs(n_runs=4, n_checkpoints=12, noise=0.01, seed=100 + seed)
        boot = bootstrap_fit(N, D, L, ids, n_boot=30, seed=seed, scheme="blocks")
        lower, upper = boot.band(1e9, 1e11, level=0.9)
        covered.append(lower <= chinchilla_loss(1e9, 1e11, **TRUTH) <= upper)
        low, high = boot.param_interval("beta", 0.9)
        beta_covered.append(low <= TRUTH["beta"] <= high)
    assert np.mean(covered) >= 0.7
    assert np.mean(beta_covered) >= 0.6


def test_bootstrap_requires_run_ids(runs):
    N, D, L, _ = runs
    with pytest.raises(InvalidInputError, match="run_ids"):
        bootstrap(fit_chinchilla(N, D, L))
