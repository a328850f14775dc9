"""Stored studies: saved, listed, reopened, renamed, exported and deleted, in the user store only."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from scaleplan.core import formats, studies, userstore
from scaleplan.core.errors import UserError
from tests.core.test_formats import LONG_CSV, SWEEP_CSV


def _save(path, name, data=SWEEP_CSV, **kwargs):
    return studies.save_study(path, name, formats.parse_runs(data), sha256=studies.sha256_of(data), **kwargs)


def test_saved_study_reopens_with_its_record_and_rows(tmp_path):
    path = tmp_path / "user.duckdb"
    when = dt.datetime(2026, 12, 2, 21, 0, tzinfo=dt.UTC)
    info = _save(path, "iso sweep", filename="sweep.csv", now=when)
    assert info.sha256 == studies.sha256_of(SWEEP_CSV) and info.num_runs == 6 and info.num_rows == 6
    assert info.uploaded_at == when and info.format == "csv" and info.filename == "sweep.csv"
    study = studies.load_study(path, "iso sweep")
    assert study.info == info
    assert study.info.mapping.as_dict()["num_params"] == "Params"
    original = formats.parse_runs(SWEEP_CSV).table
    pd.testing.assert_frame_equal(study.table[list(original.columns)], original, check_dtype=False)


def test_list_rename_delete_only_touch_their_study(tmp_path):
    path = tmp_path / "user.duckdb"
    _save(path, "a", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    _save(path, "b", data=LONG_CSV, now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert [s.name for s in studies.list_studies(path)] == ["b", "a"]
    studies.rename_study(path, "a", "a2")
    assert {s.name for s in studies.list_studies(path)} == {"a2", "b"}
    before = studies.load_study(path, "b").table
    studies.delete_study(path, "a2")
    assert [s.name for s in studies.list_studies(path)] == ["b"]
    pd.testing.assert_frame_equal(studies.load_study(path, "b").table, before)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(DISTINCT study_id) FROM study_rows").fetchone() == (1,)
    con.close()


def test_name_rules(tmp_path):
    path = tmp_path / "user.duckdb"
    _save(path, "a")
    with pytest.raises(studies.StudyError, match="exists already"):
        _save(path, " a ")
    _save(path, "a", data=LONG_CSV, replace=True)
    assert studies.load_study(path, "a").info.num_runs == 3
    _save(path, "b")
    with pytest.raises(studies.StudyError, match="exists already"):
        studies.rename_study(path, "a", "b")
    for bad, message in (("", "needs a name"), ("x" * 81, "at most 80"), ("a\nb", "control characters")):
        with pytest.raises(studies.StudyError, match=message):
            _save(path, bad)
    with pytest.raises(studies.StudyError, match="no study named"):
        studies.load_study(path, "missing")
    with pytest.raises(studies.StudyError, match="no study named"):
        studies.delete_study(path, "missing")
    assert issubclass(studies.StudyError, UserError)


def test_a_name_is_a_value_not_sql(tmp_path):
    path = tmp_path / "user.duckdb"
    name = "x'); DROP TABLE studies; --"
    _save(path, name)
    assert [s.name for s in studies.list_studies(path)] == [name]


def test_export_reads_back_to_the_same_rows(tmp_path):
    path = tmp_path / "user.duckdb"
    for name, data in (("sweep", SWEEP_CSV), ("long", LONG_CSV)):
        _save(path, name, data=data)
        study = studies.load_study(path, name)
        again = formats.parse_runs(studies.export_csv(study)).table
        pd.testing.assert_frame_equal(again[list(study.table.columns)], study.table, check_dtype=False)


def test_listing_a_store_that_does_not_exist_creates_nothing(tmp_path):
    path = tmp_path / "none" / "user.duckdb"
    assert studies.list_studies(path) == ()
    assert not path.exists()


def test_a_foreign_store_is_refused(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(SWEEP_CSV)
    with pytest.raises(userstore.UserStoreError):
        _save(path, "a")
    assert path.read_bytes() == SWEEP_CSV


# Runs a spreadsheet would misread: a seed of -1, names and a schedule that start like formulas.
TRICKY_CSV = (
    b"run_name,seed,num_params,tokens_seen,loss,schedule\n"
    b"=baseline,-1,1e8,1e9,3.2,-cosine\n"
    b"=baseline,-1,1e8,2e9,3.0,-cosine\n"
    b"+wide,0,2e8,1e9,3.1,@wsd\n"
    b"'tis,3,4e8,1e9,2.9,cosine\n"
    b"plain,-7,4e8,1e9,2.8,cosine\n"
)


def test_upload_export_upload_gives_the_same_runs(tmp_path):
    path = tmp_path / "user.duckdb"
    first = formats.parse_runs(TRICKY_CSV)
    assert first.rejected_rows == 0
    assert sorted(first.table["run_id"].unique()) == [
        "upload/'tis/seed3",
        "upload/+wide/seed0",
        "upload/=baseline/seed-1",
        "upload/plain/seed-7",
    ]
    _save(path, "tricky", data=TRICKY_CSV)
    exported = studies.export_csv(studies.load_study(path, "tricky"))
    again = formats.parse_runs(exported)
    assert again.rejected_rows == 0 and again.messages == ()
    columns = ["run_id", "run_name", "seed", "num_params", "tokens_seen", "value", "schedule"]
    pd.testing.assert_frame_equal(again.table[columns], first.table[columns], check_dtype=False)
    # A spreadsheet opening the export runs none of the user's text; the numbers stay numbers.
    lines = exported.decode().splitlines()
    assert lines[1] == "'=baseline,-1,100000000.0,1000000000.0,3.2,'-cosine"
    assert "\n'tis,3," in exported.decode() and "\nplain,-7," in exported.decode()


def test_a_rename_counts_the_saved_scenarios_that_follow_the_study(tmp_path):
    from scaleplan.core import scenarios
    from scaleplan.core.userstore import user_store

    path = tmp_path / "user.duckdb"
    _save(path, "a")
    _save(path, "other", data=LONG_CSV)
    base = scenarios.PlanInputs(target_params=7e9, target_tokens=1.4e11, budget_dollars=20_000, accuracy_percent=5)
    on_a = scenarios.PlanInputs(
        target_params=7e9, target_tokens=1.4e11, budget_dollars=20_000, accuracy_percent=5, study="a", law="fit:a"
    )
    with user_store(path) as con:
        scenarios.save_scenario(con, "one", on_a)
        scenarios.save_scenario(con, "two", on_a)
        scenarios.save_scenario(con, "collection", base)  # plans on the collection: does not follow
    renamed = studies.rename_study(path, "a", "a2")
    assert (renamed.name, renamed.old_name, renamed.scenarios_carried) == ("a2", "a", 2)
    assert renamed.info == studies.load_study(path, "a2").info
    assert renamed.scenarios_text == "2 saved scenarios follow it"
    alone = studies.rename_study(path, "other", "other2")  # no scenario uses it
    assert alone.scenarios_carried == 0 and alone.scenarios_text == "no saved scenario uses it"
    with user_store(path) as con:
        scenarios.delete_scenario(con, "two")
    assert studies.rename_study(path, "a2", "a3").scenarios_text == "1 saved scenario follows it"


def test_runs_marking_no_end_of_schedule_are_named_when_left_out_of_the_isoflop_analysis():
    # 2 runs mark their end of schedule, 4 leave the cell empty (false): approach 2 and 3 use only the 2,
    # and the report must say which runs it left out rather than drop them silently
    lines = SWEEP_CSV.decode().splitlines()
    text = "\n".join(lines[:3] + [line.rsplit(",", 1)[0] + "," for line in lines[3:]]) + "\n"
    table = formats.parse_runs(text.encode()).table
    assert table["final_of_schedule"].tolist() == [True, True, False, False, False, False]
    report = studies.analyse_study(table, studies.StudyTarget(compute_flops=1e21), n_boot=20, approach3_boot=0)
    note = next(w for w in report.warnings if "mark no checkpoint as the end of the schedule" in w)
    assert note.startswith("4 runs (iso-1e18-200M, iso-1e19-100M, iso-1e19-200M, iso-1e19-400M)")


@pytest.mark.parametrize(
    ("num_params", "tokens", "budget"),
    [
        (1e8, 2e9, 2e20),  # 6 N D = 1.2e18; 100x = 1.2e20, up to one digit
        (1e8, 1e9 / 6, 1e19),  # 6 N D = 1e17 exactly (to round-off): 100x stays 1e19
        (3e8, 5e9, 9e20),  # 9e18 -> 9e20
        (3.5e8, 5e9, 2e21),  # 1.05e19 -> 1.05e21 -> 2e21
    ],
)
def test_the_default_target_is_100x_the_largest_run_up_to_one_digit(num_params, tokens, budget):
    table = pd.DataFrame({"num_params": [num_params / 10, num_params], "tokens_seen": [tokens, tokens]})
    target = studies.default_target(table)
    assert target.compute_flops == pytest.approx(budget, rel=1e-12)
    assert f"{target.flops:.0e}" == f"{budget:.0e}"  # the page's field shows it exactly
    assert target.flops >= 100 * 6 * num_params * tokens * (1 - 1e-9)


def test_the_default_target_reads_back_exactly_from_the_pages_field():
    """Every one-digit budget from 1e15 to 1e27 FLOPs: the field's text parses back to the same float
    (a product 1 * 10.0**23 is 1.0000000000000001e23, one step off)."""
    for exponent in range(13, 26):
        for digit in range(1, 10):
            compute = digit * 10.0**exponent  # the largest run's 6ND; the target is 100x, rounded up
            table = pd.DataFrame({"num_params": [compute / 6e10], "tokens_seen": [1e10]})
            flops = studies.default_target(table).flops
            assert float(f"{flops:.0e}") == flops and flops >= 100 * compute * (1 - 1e-9)
