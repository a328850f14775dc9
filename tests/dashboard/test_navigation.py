"""scaleplan.dashboard.navigation: pages are registered only when their files exist."""

from __future__ import annotations

from scaleplan.dashboard import navigation


def test_current_pages_registered():
    files = [spec.file for spec in navigation.registered_specs()]
    assert files[:3] == ["overview.py", "explore.py", "your_runs.py"]
    defaults = [spec for spec in navigation.PAGES if spec.default]
    assert len(defaults) == 1 and defaults[0].title == "Overview"


def test_planned_pages_drop_in(tmp_path):
    for name in ("overview.py", "explore.py", "fit.py"):
        (tmp_path / name).write_text("")
    specs = navigation.registered_specs(tmp_path)
    assert [s.file for s in specs] == ["overview.py", "explore.py", "fit.py"]
    assert [s.url_path for s in specs] == ["overview", "explore", "fit"]
    assert {s.file for s in navigation.PAGES} >= {"fit.py", "planner.py", "reliability.py"}
    assert len({s.url_path for s in navigation.PAGES}) == len(navigation.PAGES)
