import numpy as np
import pytest

from scaleplan.core import fitting
from scaleplan.core.analysis import analyse
from scaleplan.core.evaluation import absolute_relative_error, evaluate_target
from scaleplan.core.selection import Selection, SelectionError
from tests.core.synthetic import TRUE, synthetic_family, true_loss


def test_are_closed_form():
    assert absolute_relative_error(2.2, 2.0) == pytest.approx(0.1)
    assert absolute_relative_error([1.8], [2.0])[0] == pytest.approx(0.1)


def test_evaluate_target_with_the_true_law_has_zero_error_and_uses_last_30_percent():
    curves = synthetic_family(noise=0.0)
    target = "syn/3.2e+09"
    ev = evaluate_target(lambda n, d: true_loss(n, d), curves, target, fit_compute_flops=6 * 3.2e9 * 1.28e11 * 0.01)
    assert ev.are_mean == pytest.approx(0, abs=1e-12) and ev.are_final == pytest.approx(0, abs=1e-12)
    final = curves[curves.run_id == target].tokens_seen.max()
    n_last = (curves[curves.run_id == target].tokens_seen >= 0.7 * final).sum()
    assert ev.num_checkpoints == n_last
    assert ev.compute_share == pytest.approx(0.01)


def test_analyse_recovers_the_truth_on_synthetic_data():
    curves = synthetic_family(noise=0.003, seed=1)
    result = analyse(curves, Selection(min_tokens=0), n_boot=30)
    assert result.evaluation.are_mean < 0.01
    assert result.fit.params["alpha"] == pytest.approx(TRUE["alpha"], abs=0.08)
    lo, hi = result.band
    assert lo <= result.predicted_loss <= hi
    assert 0 < result.compute_share < 1


def test_hypothetical_target_and_borrowed_parameters():
    curves = synthetic_family(noise=0.002, seed=2)
    result = analyse(
        curves,
        Selection(min_tokens=0),
        target_params=7e10,
        target_tokens=1.4e12,
        fixed={"alpha": TRUE["alpha"], "A": TRUE["A"]},
    )
    assert result.evaluation is None
    assert result.fit.params["alpha"] == TRUE["alpha"]
    assert result.predicted_loss == pytest.approx(true_loss(7e10, 1.4e12), rel=0.02)


def test_analyse_errors_are_typed():
    curves = synthetic_family()
    with pytest.raises(SelectionError):
        analyse(curves, Selection(min_tokens=0), target_params=-1, target_tokens=1e12)
    with pytest.raises(SelectionError):
        analyse(curves, Selection(min_tokens=0), target_params=1e9, target_tokens=None)
    with pytest.raises(ValueError, match="borrow"):
        analyse(curves, Selection(min_tokens=0), fixed={"gamma": 1.0})
    with pytest.raises(fitting.InsufficientDataError):
        analyse(curves, Selection(num_runs=1, min_tokens=0))
    with pytest.raises(SelectionError):
        analyse(curves, Selection(target_run="missing"))


def test_hypothetical_target_inside_the_runs_size_range_uses_every_run():
    """An isoFLOP sweep (final losses only, one compute budget) predicts a point inside its own size range."""
    budget = 1e19  # FLOPs, C = 6 N D
    sizes = np.geomspace(3e7, 1e9, 9)
    rows = [
        {
            "run_id": f"iso/{n:.3g}",
            "num_params": n,
            "tokens_seen": budget / (6 * n),
            "value": float(true_loss(n, budget / (6 * n))),
        }
        for n in sizes
    ]
    # Two more budgets so that the five parameters are identified.
    rows += [
        {
            "run_id": f"iso{c:.0e}/{n:.3g}",
            "num_params": n,
            "tokens_seen": c / (6 * n),
            "value": float(true_loss(n, c / (6 * n))),
        }
        for c in (1e18, 1e20)
        for n in sizes
    ]
    import pandas as pd

    curves = pd.DataFrame(rows)
    n_target, d_target = 2e8, budget / (6 * 2e8)  # between the sweep's smallest and largest model
    result = analyse(curves, Selection(min_tokens=0), target_params=n_target, target_tokens=d_target)
    assert set(result.points.run_ids) == set(curves["run_id"])  # the larger runs are used too
    assert result.predicted_loss == pytest.approx(float(true_loss(n_target, d_target)), rel=1e-3)
