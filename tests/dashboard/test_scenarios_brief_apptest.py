"""The Scenarios page's brief download says which characters the PDF's font cannot draw (AppTest)."""

from __future__ import annotations

from scaleplan.core import brief, scenarios
from scaleplan.core.userstore import user_store
from tests.dashboard.test_scenarios_apptest import BASE


def _compare(app_test, names):
    at = app_test("scenarios.py", timeout=180)
    at.multiselect(key="scenarios.compare").set_value(names).run()
    assert not at.exception
    return at


def test_the_page_warns_of_characters_the_pdf_draws_as_squares(app_test, store):
    with user_store(store) as con:
        scenarios.save_scenario(con, "模型 *big*", BASE)
        scenarios.save_scenario(con, "plain", BASE)
    at = _compare(app_test, ["模型 *big*"])
    warnings = [str(w.value) for w in at.warning if "PDF" in str(w.value)]
    assert len(warnings) == 1, [str(w.value) for w in at.warning]
    shown = warnings[0]
    assert "'模型'" in shown and "'\u25a1'" in shown and "PowerPoint" in shown
    assert "font \\(DejaVu Sans\\)" in shown  # Markdown-escaped
    at = _compare(app_test, ["plain"])
    assert not [w for w in at.warning if "PDF" in str(w.value)]


def test_the_warning_names_the_question_mark_without_dejavu(app_test, store, tmp_path, monkeypatch):
    monkeypatch.setattr(brief, "_FONT_DIR", tmp_path / "no-fonts-here")
    with user_store(store) as con:
        scenarios.save_scenario(con, "模型", BASE)
    at = _compare(app_test, ["模型"])
    shown = " ".join(str(w.value) for w in at.warning if "PDF" in str(w.value))
    assert "Helvetica" in shown and "'?'" in shown and "\u25a1" not in shown, shown
