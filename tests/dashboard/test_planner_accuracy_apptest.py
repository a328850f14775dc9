"""The Budget planner's recommendation states the target's predicted 17-task average accuracy, the same
sentence core gives (core.task_prediction.target_average_accuracy), rendered as it is."""

from __future__ import annotations

from scaleplan.core import storage, task_prediction


def test_the_recommendation_states_the_average_accuracy_of_the_target(app_test, built_db, meta_db, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    at = app_test("planner.py", timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(str(e.value) for e in at.markdown).replace("\\", "")
    con = storage.connect(built_db)
    try:  # the page's default target: 70B parameters on 1.4T tokens, law besiroglu2024
        expected = task_prediction.target_average_accuracy(con, 70e9, 1.4e12, "besiroglu2024")
    finally:
        con.close()
    assert expected.predicted_points is not None and 0 < expected.predicted_points < 100
    assert f"average accuracy over Gadre et al.'s 17 tasks: {expected.predicted_points:.1f} points" in text
    assert f"{expected.lower_points:.1f}-{expected.upper_points:.1f}" in text
