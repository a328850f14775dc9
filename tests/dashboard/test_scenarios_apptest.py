"""The Scenarios page and the planner's "Save as scenario" control in Streamlit's AppTest."""

from __future__ import annotations

import dataclasses

from scaleplan.core import scenarios
from scaleplan.core.userstore import user_store

BASE = scenarios.PlanInputs(target_params=7e9, target_tokens=1.4e11, budget_dollars=20_000, accuracy_percent=5)


def _rendered(table):
    """A table as st.table shows it: its labels and cells are Markdown-escaped (common.inert_frame)."""
    plain = table.map(lambda cell: str(cell).replace("\\", ""))
    plain.index = [str(label).replace("\\", "") for label in table.index]
    plain.columns = [str(label).replace("\\", "") for label in table.columns]
    return plain


def _texts(at) -> str:
    return " ".join(
        str(e.value) for kind in ("info", "warning", "error", "success", "caption") for e in getattr(at, kind)
    )


def test_empty_store_says_how_to_save(app_test, store):
    at = app_test("scenarios.py")
    assert not at.exception
    assert "No scenario is saved yet" in _texts(at)
    assert not store.exists()  # looking creates no file


def test_planner_saves_a_scenario_the_page_then_compares(app_test, store):
    at = app_test("planner.py", query_params={"n": "7e9", "d": "1.4e11", "amount": "20000", "are": "5"}, timeout=180)
    at.text_input(key="scenarios.save_name").set_value("from the planner")
    at.button(key="scenarios.save").click().run()
    assert "Saved scenario" in _texts(at), _texts(at)
    at.button(key="scenarios.save").click().run()  # the name is taken now: the page's own control is named
    taken = " ".join(str(e.value) for e in at.error)
    assert "exists already" in taken and "--replace" not in taken, taken
    assert at.checkbox(key="scenarios.save_replace").label in taken
    with user_store(store, read_only=True) as con:
        saved = scenarios.get_scenario(con, "from the planner").inputs
    assert (saved.target_params, saved.target_tokens, saved.budget_dollars, saved.accuracy_percent) == (
        7e9,
        1.4e11,
        20_000,
        5,
    )
    with user_store(store) as con:
        scenarios.save_scenario(con, "gone study", dataclasses.replace(BASE, study="deleted", law="fit:deleted"))
    at = app_test("scenarios.py", timeout=180)
    at.multiselect(key="scenarios.compare").set_value(["from the planner", "gone study"]).run()
    assert not at.exception
    assert "gone study cannot be planned now" in _texts(at).replace("\\", "")
    assert "no longer exists" in _texts(at)
    tables = at.table
    assert len(tables) == 3  # the saved list (a static table: no column cut), the inputs, the outcomes
    outcomes = _rendered(tables[2].value)
    assert list(outcomes.columns) == ["from the planner", "gone study"]
    assert outcomes.loc["Pick's cost (US$, GPU-hours)", "gone study"].startswith("unavailable")


def test_a_damaged_scenario_is_named_and_left_out_while_the_others_compare(app_test, store):
    with user_store(store) as con:
        scenarios.save_scenario(con, "good one", BASE)
        scenarios.save_scenario(con, "good two", dataclasses.replace(BASE, budget_dollars=40_000))
        con.execute(  # a row another program damaged
            "INSERT INTO scenarios VALUES ('broken *one*', '{not json', '1', "
            "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
        )
    at = app_test("scenarios.py", timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    warning = " ".join(w.value for w in at.warning)
    assert "1 saved scenario cannot be read" in warning and "broken \\*one\\*" in warning
    assert at.multiselect(key="scenarios.compare").options == ["good one", "good two"]
    assert len(at.table) == 3  # the saved list of the readable ones, and the two compared (inputs, outcomes)
    assert list(_rendered(at.table[0].value).index) == ["good one", "good two"]
    with user_store(store, read_only=True) as con:  # the damaged row is kept as stored
        assert con.execute("SELECT inputs_json FROM scenarios WHERE name = 'broken *one*'").fetchone() == ("{not json",)
