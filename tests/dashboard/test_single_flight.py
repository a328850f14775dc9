"""common.single_flight: one computation per key while other callers wait for it."""

import threading

import pandas as pd
import pytest
import streamlit as st

from scaleplan.dashboard import common


def _memoised(calls: list, gate: threading.Event):
    """A stand-in for an st.cache_data function: a dict cache and a body that blocks on ``gate``."""
    cache: dict = {}

    def compute(version, frame, _ignored=None):
        key = (version, None if frame is None else frame.to_csv())
        if key not in cache:
            calls.append(key)
            gate.wait(timeout=10)
            cache[key] = len(calls)
        return cache[key]

    return common.single_flight(compute)


def _run_concurrently(function, argument_sets) -> list:
    results = [None] * len(argument_sets)

    def worker(i, args):
        results[i] = function(*args)

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(argument_sets)]
    for thread in threads:
        thread.start()
    return threads, results


def test_same_arguments_compute_once():
    calls, gate = [], threading.Event()
    function = _memoised(calls, gate)
    frame = pd.DataFrame({"a": [1, 2, 3]})
    # Equal frames (different objects) and a different underscore argument share one key.
    threads, results = _run_concurrently(function, [(1, frame.copy(), object()) for _ in range(8)])
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert results == [1] * 8


def test_different_arguments_do_not_wait_for_each_other():
    calls, gate = [], threading.Event()
    function = _memoised(calls, gate)
    threads, _ = _run_concurrently(function, [(1, None), (2, None), (1, pd.DataFrame({"a": [1]}))])
    # All three start computing while the gate is still closed: no key blocks another.
    for _ in range(200):
        if len(calls) == 3:
            break
        threading.Event().wait(0.01)
    assert len(calls) == 3
    gate.set()
    for thread in threads:
        thread.join(10)


def test_an_exception_releases_the_key():
    attempts = []

    @common.single_flight
    def flaky(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise ValueError("first call fails")
        return x * 2

    with pytest.raises(ValueError):
        flaky(3)
    assert flaky(3) == 6
    assert common._flights == {}


def test_wraps_st_cache_data():
    @common.single_flight
    @st.cache_data(show_spinner=False)
    def double(x, _unhashed):
        return 2 * x

    assert double(21, object()) == 42
    assert double(21, _unhashed=object()) == 42
    double.clear()
