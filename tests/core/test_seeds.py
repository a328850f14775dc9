"""Seeds: what the collection's multi-seed families say (nothing to measure on today) and what the planner does."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from scaleplan.core import cli, planning, storage


def test_no_multi_seed_family_means_no_gain_and_no_seeds_offered():
    evidence = planning.seed_evidence(pd.DataFrame(columns=["family", "source", "runs", "seeds"]), 117)
    assert not evidence.measured and evidence.gain is None and evidence.families == 0
    assert "No seed gain measured" in evidence.statement and "117 families" in evidence.statement
    assert planning.DEFAULT_SEEDS == (1,)
    assert {d.seeds for d in planning.study_designs(70e9, 1.4e12)} == {1}


def test_one_multi_seed_family_is_too_few_to_measure_held_out():
    frame = pd.DataFrame({"family": ["a", "a"], "source": ["s", "s"], "runs": [3, 3], "seeds": [3, 3]})
    evidence = planning.seed_evidence(frame, 10)
    assert not evidence.measured and evidence.families == 1 and evidence.groups == 1
    assert "only 1 multi-seed family in 1 source group" in evidence.statement


def test_seeds_of_entered_runs_cost_more_at_the_same_expected_are():
    from tests.core.test_planning import FakeCalibration

    runs = pd.DataFrame({"num_params": ["1B", "2B", "4B"], "tokens": ["20B", "40B", "80B"]})
    one = planning.candidate_design(runs)
    three = planning.candidate_design(runs.assign(seeds=3))
    cost = planning.CostModel()
    a1, a3 = (
        planning.assess_candidate(d, 70e9, 1.4e12, calibration=FakeCalibration(), cost=cost) for d in (one, three)
    )
    assert a3.cost.dollars == pytest.approx(3 * a1.cost.dollars, rel=1e-12)
    assert a3.expected == a1.expected


def test_reproduce_calibration_json_has_the_seeds_section(built_db, meta_db, tmp_path, capsys):
    locations = ["--db", str(built_db), "--meta", str(meta_db), "--log-dir", str(tmp_path)]
    assert cli.main(["reproduce", "calibration", "--json", *locations]) == 0
    seeds = json.loads(capsys.readouterr().out)["seeds"]
    con = storage.connect(built_db)
    try:
        runs = con.execute(
            "SELECT family, num_params, planned_tokens, architecture, training_data, seed FROM runs"
        ).df()
        families = len(storage.list_families(con))
    finally:
        con.close()
    # independent count: cells of one family, size, tokens, architecture and data with >= 2 distinct seeds
    known = runs.dropna(subset=["seed"])
    keys = ["family", "num_params", "planned_tokens", "architecture", "training_data"]
    cells = known.groupby(keys, dropna=False)["seed"].nunique()
    multi = cells[cells >= 2]
    assert seeds["multi_seed_families"] == multi.index.get_level_values("family").nunique()
    assert seeds["replicated_runs"] == len(multi)
    if seeds["multi_seed_families"] < 2:
        assert seeds["measured"] is False and seeds["expected_are_2_seeds"] == "same as 1 seed"
        assert f"of {families} families" in seeds["statement"]
