"""The plain-language sentence of an expected accuracy: its numbers are the model's, and the held-out
figures it quotes are what leaving whole source groups out measures on the shipped sweep."""

from __future__ import annotations

import re

import pytest

from scaleplan.core import calibration, meta, planning, storage


def test_sentence_states_the_quantiles_cases_and_sources():
    e = planning.ExpectedARE(median=0.0237, p80=0.0781, p90=0.155, fits=3135, families=20, thin_support=False, groups=9)
    text = planning.plain_accuracy(e)
    assert text.startswith("In plain words: in 8 of 10 comparable past cases the predicted loss came within 7.8%")
    assert (
        "in half within 2.4%" in text
        and "learned on 3,135 fits of the collection, 20 model families in 9 source groups" in text
    )
    held, designs = planning.PLANNER_HELD_OUT[0.8]
    assert f"({held:.0%} of {designs:,})" in text
    one = planning.ExpectedARE(median=0.1, p80=0.2, p90=0.3, fits=40, families=1, thin_support=True)
    assert "40 fits of the collection, 1 model family)" in planning.plain_accuracy(one)


def test_held_out_figures_are_what_the_shipped_sweep_measures(built_db):
    con = storage.connect(built_db)
    try:
        version = storage.stored_data_version(con)
    finally:
        con.close()
    results = meta.shipped_results(version)
    # the shipped sweep belongs to the current data version (test_meta_shipped): none would be a bug, not a skip
    assert not results.empty, f"no shipped sweep results for data version {version}"
    report = calibration.summarise(calibration.leave_one_out(results, "source"), holdout="source")
    measured = {p.nominal: (p.realised, p.cells) for p in report.planner}
    # The shares are counts over designs, stored exactly: a share truncated to 3 digits (0.165 for 47/284)
    # rounds to the wrong whole percent in the sentence.
    for level, (share, designs) in planning.PLANNER_HELD_OUT.items():
        assert measured[level][1] == designs
        assert measured[level][0] == pytest.approx(share, rel=1e-12)
    groups = {g["group"]: g for g in calibration.report_json(report)["groups"]}
    frame = calibration.leave_one_out(results, "source")
    e = planning.ExpectedARE(median=0.02, p80=0.08, p90=0.15, fits=100, families=20, thin_support=False, groups=9)
    text = planning.plain_accuracy(e)
    for group, share, designs in planning.PLANNER_HELD_OUT_WORST:
        answered = frame.loc[(frame["group"] == group) & frame["planner_ok_80"].notna(), "planner_ok_80"]
        held = int(answered.sum())
        assert len(answered) == designs and share == pytest.approx(held / designs, rel=1e-12)
        assert groups[group]["planner_80"] == pytest.approx(share, rel=1e-12)
        # the whole percent the sentence quotes, rounded half up from the counts (47/284 = 16.55% -> 17%)
        assert f"{(200 * held + designs) // (2 * designs)}% of {group}" in text
    held_80, designs_80 = planning.PLANNER_HELD_OUT[0.8]
    assert f"({(200 * round(held_80 * designs_80) + designs_80) // (2 * designs_80)}% of {designs_80:,})" in text
    # the groups quoted are the worst of those with >= 10 designs the planner ranks
    others = frame[frame["planner_ok_80"].notna()].groupby("group")["planner_ok_80"].agg(["mean", "size"])
    others = others[(others["size"] >= 10) & ~others.index.isin([g for g, _, _ in planning.PLANNER_HELD_OUT_WORST])]
    assert (others["mean"] > max(share for _, share, _ in planning.PLANNER_HELD_OUT_WORST)).all()


def test_recommendation_carries_the_sentence_for_the_pick():
    from tests.core.test_planning import FakeCalibration

    plan = planning.plan_study(70e9, 1.4e12, budget_dollars=2e4, goal_are=0.05, calibration=FakeCalibration())
    text = planning.recommendation(plan)
    e = plan.picked.expected
    m = re.search(r"in 8 of 10 comparable past cases the predicted loss came within ([0-9.]+)%", text)
    assert m and float(m.group(1)) / 100 == pytest.approx(e.p80, abs=0.0005)


def test_support_is_the_error_models_set_with_one_count_format():
    from tests.core.test_planning import FakeCalibration

    class Learned(FakeCalibration):
        """An error model learned on 3,135 fits: every answer carries the whole set's count."""

        def are_quantiles(self, features):
            import dataclasses

            answer = super().are_quantiles(features)
            return dataclasses.replace(answer, cells=3135, families=20) if hasattr(answer, "median") else answer

    plan = planning.plan_study(70e9, 1.4e12, budget_dollars=2e4, goal_are=0.05, calibration=Learned())
    text = planning.recommendation(plan)
    assert "3135" not in text and "comparable fits from" not in text
    assert text.count("an error model learned on 3,135 fits of the collection, 20 model families") == 2
