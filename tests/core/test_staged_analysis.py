"""core.analysis' typed seam: FitRequest and StagedAnalysis (stages computed once, on first use).

Truths: a synthetic family drawn from a known Chinchilla law (tests/core/synthetic.py); the staged
stages equal a one-shot ``analyse`` with the same inputs; each stage runs its refits once.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from scaleplan.core import analysis, calibration, fitting, laws
from scaleplan.core.analysis import AnalysisFailure, FitRequest, StagedAnalysis
from scaleplan.core.selection import Selection, below_target
from tests.core.synthetic import TRUE, synthetic_family, true_loss


@pytest.fixture(scope="module")
def curves():
    return synthetic_family(noise=0.0)


def _request(curves, **changes) -> FitRequest:
    runs = tuple(sorted(set(curves["run_id"]) - {"syn/3.2e+09"}))
    return FitRequest(run_ids=runs, **{"target_run": "syn/3.2e+09", "min_tokens": 0.0, **changes})


def test_fitted_stage_recovers_the_law_and_predicts_the_target(curves):
    staged = StagedAnalysis(curves, _request(curves), n_boot=0)
    result = staged.fitted
    assert isinstance(result, analysis.Analysis)
    for name, value in TRUE.items():
        assert result.fit.params[name] == pytest.approx(value, rel=2e-2), name
    target_tokens = curves.loc[curves["run_id"] == "syn/3.2e+09", "tokens_seen"].max()
    assert result.predicted_loss == pytest.approx(float(true_loss(3.2e9, target_tokens)), rel=1e-3)
    assert result.bootstrap is None and result.interval is None and result.warnings == ()
    # C = 6 N D, one constant
    assert result.compute_share == pytest.approx(result.points.compute_flops / (6.0 * 3.2e9 * target_tokens))


def test_stages_run_once_and_equal_one_shot_analyse(curves, monkeypatch):
    calls = {"fit": 0, "profile": 0, "bootstrap": 0}
    originals = {"fit": fitting.fit, "profile": analysis.flat_direction, "bootstrap": fitting.bootstrap}

    def counted(name):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return originals[name](*args, **kwargs)

        return wrapper

    monkeypatch.setattr(fitting, "fit", counted("fit"))
    monkeypatch.setattr(analysis, "flat_direction", counted("profile"))
    monkeypatch.setattr(fitting, "bootstrap", counted("bootstrap"))
    staged = StagedAnalysis(curves, _request(curves), n_boot=8, seed=3)
    seen = [(staged.fitted, staged.warnings, staged.bootstrap, staged.band) for _ in range(3)]
    assert all(a is b for a, b in zip(seen[0], seen[2], strict=True))  # the kept objects, not recomputed
    # the profile refits go through fitting.fit too: 1 base fit + up to 7 profile refits, never twice
    fits_after_stages = calls["fit"]
    assert calls["profile"] == 1 and calls["bootstrap"] == 1 and fits_after_stages <= 1 + 7
    staged.complete()
    assert calls["fit"] == fits_after_stages  # complete() assembles kept stages, refits nothing
    monkeypatch.undo()
    one_shot = analysis.analyse(curves, _request(curves).selection(), n_boot=8, seed=3)
    complete = staged.complete()
    assert complete.predicted_loss == one_shot.predicted_loss
    assert complete.band == one_shot.band
    assert [w.kind for w in complete.warnings] == [w.kind for w in one_shot.warnings]
    assert dict(complete.fit.params) == dict(one_shot.fit.params)


def test_threads_asking_for_one_stage_compute_it_once(curves, monkeypatch):
    calls = []
    original = fitting.bootstrap

    def slow(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fitting, "bootstrap", slow)
    staged = StagedAnalysis(curves, _request(curves), n_boot=4)
    got = []
    threads = [threading.Thread(target=lambda: got.append(staged.bootstrap)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(b) for b in got}) == 1


def test_failures_are_typed_not_raised(curves):
    nothing = StagedAnalysis(curves, FitRequest(run_ids=()), n_boot=0)
    assert nothing.fitted == AnalysisFailure("Choose at least one run to fit on", "selection")
    assert nothing.warnings == () and nothing.band is None and nothing.parameter_intervals() == {}
    with pytest.raises(analysis.SelectionError, match="at least one run"):
        nothing.complete()
    smaller = StagedAnalysis(curves, _request(curves, target_run="syn/5e+07"), n_boot=0)
    assert isinstance(smaller.fitted, AnalysisFailure) and "smaller than every run chosen" in smaller.fitted.message
    tiny = StagedAnalysis(
        curves, FitRequest(run_ids=tuple(curves["run_id"].unique()), target_params=1e6, target_tokens=1e9)
    )
    assert isinstance(tiny.fitted, AnalysisFailure) and tiny.fitted.kind == "selection"


def test_a_law_other_than_chinchilla_is_refused_a_calibrated_interval(curves):
    staged = StagedAnalysis(curves, _request(curves, law="overtrain"), n_boot=0)
    refused = staged.interval(object(), 0.9)  # type: ignore[arg-type]  # never consulted for this law
    assert isinstance(refused, str) and "learned on Chinchilla fits, not overtrain" in refused
    assert calibration.law_refusal("chinchilla") is None
    assert staged.interval(None) is None


def test_below_target_is_the_one_rule():
    assert below_target([1e8, 2e8, 3e8], 2e8).tolist() == [True, False, False]
    assert below_target(np.array([1.0, 5.0]), np.array([2.0, 4.0])).tolist() == [True, False]
    # the selection applies it: a run the size of the target is never in the pool
    curves = synthetic_family(sizes=(1e8, 2e8, 2e8, 4e8), noise=0.0)
    curves.loc[curves.index[curves["num_params"] == 2e8][:30], "run_id"] = "twin"
    points = analysis.select_points(curves, Selection(target_run="twin", min_tokens=0.0))
    assert set(points.run_ids) == {"syn/1e+08"}
    assert laws.compute_from(2.0, 3.0) == 6.0 * 2.0 * 3.0


class _RefusingCalibration:
    """A calibration that covers nothing (every design refused), to reach the backtest rule."""

    def interval(self, predicted, features, level=0.9):
        return calibration.Refusal("stub: nothing covered", "param_ratio")


def test_a_target_inside_the_fitted_sizes_gets_the_same_backtest_interval_as_analyse():
    curves = synthetic_family(noise=0.01, seed=4)
    runs = tuple(sorted(curves["run_id"].unique()))
    # a longer run of a size already trained: inside the fitted sizes, so the runs' own backtest decides
    request = FitRequest(run_ids=runs, target_params=4e8, target_tokens=1e11, min_tokens=0.0)
    staged = StagedAnalysis(curves, request, n_boot=0)
    stub = _RefusingCalibration()
    staged_interval = staged.interval(stub, 0.8)  # type: ignore[arg-type]
    one_shot = analysis.analyse(
        curves, request.selection(), target_params=4e8, target_tokens=1e11, calibration=stub, level=0.8
    )  # type: ignore[arg-type]
    assert staged_interval == one_shot.interval
    assert not (isinstance(staged_interval, calibration.Refusal) and "stub" in staged_interval.reason)
    assert staged.interval(stub, 0.5) is not None and staged.backtest_scores is staged.backtest_scores


def test_the_flat_direction_states_its_range_of_losses_with_their_unit(curves):
    # review4/5: "predict 213 to 2.947e+04 for the target", a range with no unit. The fit is any fit; the
    # flat direction is given: equally good fits predicting 213 to 29,470 where the best predicts 753.
    fit = StagedAnalysis(curves, _request(curves), n_boot=0).fitted.fit
    flat = analysis.FlatDirection(low=213.0, high=29_470.0, predicted=753.0, tolerance=0.05, profile=())
    (with_unit,) = [
        w.message
        for w in analysis.identifiability_warnings(fit, 3.2e9, 1e11, flat=flat, loss_unit="nats/word")
        if w.kind == "flat_direction"
    ]
    assert "predict a loss of 213 to 29,470 nats/word for the target" in with_unit, with_unit
    (without,) = [
        w.message for w in analysis.identifiability_warnings(fit, 3.2e9, 1e11, flat=flat) if w.kind == "flat_direction"
    ]
    assert "213 to 29,470 (in the unit of the loss fitted)" in without, without
