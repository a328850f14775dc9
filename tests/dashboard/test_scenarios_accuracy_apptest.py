"""The Scenarios page's comparison table and recommendation state each target's predicted 17-task average
accuracy, the same numbers core gives (core.task_prediction.target_average_accuracy), rendered as they are."""

from __future__ import annotations

import dataclasses

from scaleplan.core import scenarios, storage, task_prediction
from scaleplan.core.userstore import user_store

FAR = scenarios.PlanInputs(target_params=7e10, target_tokens=1.4e12, budget_dollars=20_000, accuracy_percent=5)
NEAR = dataclasses.replace(FAR, target_params=7e9, target_tokens=1.4e11)


def test_the_comparison_states_each_targets_average_accuracy(app_test, built_db, meta_db, tmp_path, monkeypatch):
    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    with user_store(store) as con:
        scenarios.save_scenario(con, "70B", FAR)  # the planner's default target, 70B on 1.4T tokens
        scenarios.save_scenario(con, "7B", NEAR)
    at = app_test("scenarios.py", query_params={"compare": ["70B", "7B"]}, timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    con = storage.connect(built_db)
    try:
        far, near = (
            task_prediction.target_average_accuracy(con, i.target_params, i.target_tokens, i.law) for i in (FAR, NEAR)
        )
    finally:
        con.close()
    # The table's text is Markdown-escaped (names stay text); read it as the browser shows it.
    shown = at.table[-1].value
    outcomes = shown.map(lambda v: str(v).replace("\\", ""))
    outcomes.index = [str(v).replace("\\", "") for v in shown.index]
    outcomes.columns = [str(v).replace("\\", "") for v in shown.columns]
    cells = outcomes.loc[scenarios.AVERAGE_ACCURACY_LABEL]
    for name, accuracy in (("70B", far), ("7B", near)):
        at_loss = (
            f" at {accuracy.family}'s {accuracy.loss_metric} {accuracy.predicted_loss:.3f}"  # the loss it is read at
        )
        assert cells[name].startswith(
            f"{accuracy.predicted_points:.1f} points{at_loss} (90% interval "
            f"{accuracy.lower_points:.1f}-{accuracy.upper_points:.1f}"
        )
    # the 70B lies beyond the compute the interval's coverage was measured on, and its cell says so
    assert far.beyond_reach and cells["70B"].endswith(f"; {far.beyond_reach})")
    assert not near.beyond_reach and cells["7B"].endswith(")") and "beyond" not in cells["7B"]
    text = " ".join(str(e.value) for e in at.markdown).replace("\\", "")
    assert f"predicted 17-task average accuracy {cells['70B']}." in text
    assert f"predicted 17-task average accuracy {cells['7B']}." in text


def test_scenario_names_in_the_comparison_tables_stay_text(app_test, built_db, meta_db, tmp_path, monkeypatch):
    """st.table renders Markdown in headers and cells: a name like an image or a link must not become one."""
    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    name = "![px](http://127.0.0.1:9/p.png) **b** [x](http://e.example)"
    with user_store(store) as con:
        scenarios.save_scenario(con, name, NEAR)
        scenarios.save_scenario(con, "7B", dataclasses.replace(NEAR, budget_dollars=40_000))
    at = app_test("scenarios.py", query_params={"compare": [name, "7B"]}, timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    saved = [t for t in at.table if t.value.index.name == "Scenario"]  # the saved list: names in its index
    assert len(saved) == 1
    listed = [str(i) for i in saved[0].value.index if str(i).replace("\\", "") == name]
    assert listed and all(h[i - 1] == "\\" for h in listed for i, ch in enumerate(h) if ch in "![]()*" and i > 0)
    compared = [t for t in at.table if t.value.index.name != "Scenario"]  # the comparison: names as columns
    assert compared
    for table in compared:
        headers = [str(c) for c in table.value.columns]
        named = [h for h in headers if h.replace("\\", "") == name]
        assert named, headers
        # every Markdown mark of the name is escaped, so nothing of it is an image, a link or bold
        assert all(h[i - 1] == "\\" for h in named for i, ch in enumerate(h) if ch in "![]()*" and i > 0)
        assert not named[0].startswith("!")
