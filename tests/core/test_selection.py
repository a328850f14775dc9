import numpy as np
import pytest

from scaleplan.core.selection import Selection, SelectionError, select_points, target_of
from tests.core.synthetic import synthetic_family


def test_default_target_is_largest_and_pool_excludes_it():
    curves = synthetic_family()
    points = select_points(curves, Selection(min_tokens=0))
    assert target_of(curves) == "syn/3.2e+09"
    assert points.num_params.max() < 3.2e9
    assert set(points.runs["run_id"]) == set(curves["run_id"]) - {"syn/3.2e+09"}


def test_fraction_is_relative_to_longest_chosen_run_and_cutoff_drops_early_points():
    curves = synthetic_family()
    points = select_points(curves, Selection(fraction=0.5, min_tokens=10e9))
    longest = curves[curves.run_id != "syn/3.2e+09"].tokens_seen.max()
    assert points.tokens_seen.max() <= 0.5 * longest
    assert points.tokens_seen.min() > 10e9


def test_num_runs_picks_smallest_or_largest_window():
    curves = synthetic_family()
    small = select_points(curves, Selection(num_runs=2, min_tokens=0))
    assert sorted(np.unique(small.num_params)) == [5e7, 1e8]
    large = select_points(curves, Selection(num_runs=2, max_params=4e8, pick="largest", min_tokens=0))
    assert sorted(np.unique(large.num_params)) == [2e8, 4e8]


def test_final_only_keeps_one_point_per_run_and_compute_is_6nd():
    curves = synthetic_family()
    points = select_points(curves, Selection(final_only=True, min_tokens=0))
    assert len(points) == 5
    expected = sum(6 * n * curves[curves.num_params == n].tokens_seen.max() for n in (5e7, 1e8, 2e8, 4e8, 8e8))
    assert points.compute_flops == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs", [{"fraction": 0}, {"fraction": 1.5}, {"num_runs": 0}, {"min_tokens": -1}, {"pick": "middle"}]
)
def test_invalid_selection_is_rejected(kwargs):
    with pytest.raises(SelectionError):
        Selection(**kwargs)


def test_empty_selection_is_a_clear_error():
    curves = synthetic_family()
    with pytest.raises(SelectionError, match="no checkpoint"):
        select_points(curves, Selection(min_tokens=1e15))
    with pytest.raises(SelectionError, match="smaller than the target"):
        select_points(curves, Selection(max_params=1e6))
    with pytest.raises(SelectionError, match="no observations"):
        target_of(curves.iloc[:0])


def test_a_tiny_fraction_is_stated_in_tokens_not_rounded_to_zero_percent():
    curves = synthetic_family()
    longest = curves[curves.run_id != "syn/3.2e+09"].tokens_seen.max()
    with pytest.raises(SelectionError) as error:
        select_points(curves, Selection(fraction=1e-9, min_tokens=0))
    message = str(error.value)
    limit = 1e-9 * longest  # the limit the fraction sets, in tokens
    assert f"at most {limit:,.0f} tokens" in message
    assert " 0% " not in message and "e+" not in message
