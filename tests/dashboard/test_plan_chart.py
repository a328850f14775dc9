"""The planner's chart: one statistic (the 80th percentile) per mark, budget and goal lines, dollar ticks,
nothing beyond the axis without a marker."""

from __future__ import annotations

import pytest

from scaleplan.core import planning
from scaleplan.dashboard import analysis_charts
from tests.core.test_planning import FakeCalibration


@pytest.fixture(scope="module")
def plan():
    return planning.plan_study(70e9, 1.4e12, budget_dollars=2e4, goal_are=0.05, calibration=FakeCalibration(slope=0.2))


def test_every_mark_is_the_80th_percentile(plan):
    figure = analysis_charts.plan_figure(plan)
    top = figure.layout.meta["y_top"]
    p80 = {round(100 * a.expected.p80, 9) for a in plan.designs if a.expected is not None}
    drawn = 0
    for trace in figure.data:
        assert trace.meta["statistic"] == "p80"
        assert trace.error_y.array is None  # no median-to-p80 bars
        for y in trace.y:
            assert round(y, 9) in p80 or y == pytest.approx(top)
        drawn += len(trace.y) if "frontier" not in trace.name and "Pick" not in trace.name else 0
    assert drawn == sum(1 for a in plan.designs if a.expected is not None)  # each design once, clipped ones on the edge
    beyond = [t for t in figure.data if "beyond" in t.name]
    assert sum(len(t.y) for t in beyond) == sum(1 for a in plan.designs if a.expected and 100 * a.expected.p80 > top)
    assert figure.layout.yaxis.range[1] >= top


def test_budget_goal_lines_and_dollar_ticks(plan):
    figure = analysis_charts.plan_figure(plan)
    shapes = figure.layout.shapes
    assert any(s.x0 == plan.budget_dollars for s in shapes) and any(s.y0 == pytest.approx(5.0) for s in shapes)
    ticks = list(figure.layout.xaxis.ticktext)
    assert "$1k" in ticks and "$10k" in ticks
    assert all(t.startswith("$") for t in ticks)
