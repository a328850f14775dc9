"""Property-based tests: every fitting entry point ends in a sane result or a typed FitError."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleplan.core import fitting

FUZZ = settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

value = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-3, 1e15), st.just(0.0), st.just(-1.0))
positive = st.floats(1e6, 1e12)


def _check_success(result, n, d):
    params = np.array(list(result.params.values()), dtype=float)
    assert np.isfinite(params).all()
    if "alpha" in result.params:
        assert result.params["alpha"] > 0 and result.params["beta"] > 0
    prediction = result.predict(np.max(n) * 10, np.max(d) * 10)
    assert np.isfinite(prediction) and prediction > 0


@FUZZ
@given(
    st.integers(0, 14).flatmap(
        lambda k: st.tuples(
            st.lists(value, min_size=k, max_size=k),
            st.lists(value, min_size=k, max_size=k),
            st.lists(value, min_size=k, max_size=k),
        )
    )
)
def test_fit_chinchilla_adversarial_arrays(arrays):
    n, d, y = (np.array(a, dtype=float) for a in arrays)
    try:
        result = fitting.fit_chinchilla(n, d, y, n_starts=1)
    except fitting.FitError as error:
        assert str(error)
        return
    _check_success(result, n, d)


@FUZZ
@given(
    sizes=st.lists(positive, min_size=1, max_size=5),
    loss=st.floats(0.5, 10),
    slope=st.floats(-0.5, 0.5),
    noise=st.floats(0, 0.3),
    seed=st.integers(0, 2**16),
)
def test_fit_chinchilla_degenerate_but_valid_point_sets(sizes, loss, slope, noise, seed):
    rng = np.random.default_rng(seed)
    n = np.repeat(sizes, 4)
    d = np.tile(np.geomspace(1e9, 1e11, 4), len(sizes))
    y = loss * (d / 1e9) ** (-abs(slope) * 0.1) * (1 + noise * rng.standard_normal(len(d)))
    y = np.abs(y) + 1e-3
    try:
        result = fitting.fit_chinchilla(n, d, y, n_starts=1)
    except fitting.FitError as error:
        assert str(error)
        return
    _check_success(result, n, d)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 8).flatmap(
        lambda k: st.tuples(st.lists(value, min_size=k, max_size=k), st.lists(value, min_size=k, max_size=k))
    )
)
def test_fit_downstream_adversarial(arrays):
    loss, err = (np.array(a, dtype=float) for a in arrays)
    try:
        result = fitting.fit_downstream(loss, err, n_starts=1)
    except fitting.FitError as error:
        assert str(error)
        return
    assert np.isfinite(list(result.params.values())).all()


def test_downstream_fit_that_runs_away_is_a_typed_error():
    # Found by the fuzzer: an exponent past exp's range used to raise OverflowError.
    try:
        result = fitting.fit_downstream(
            np.array([1.0, 1.0, 2.0, 2839130848.0]), np.array([0.0, 0.0, 0.0, -1.0]), n_starts=1
        )
    except fitting.FitError as error:
        assert str(error)
    else:
        assert np.isfinite(list(result.params.values())).all()
