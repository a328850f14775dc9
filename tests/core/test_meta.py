import json

import pandas as pd
import pytest

from scaleplan.core import meta, storage
from tests.core.synthetic import synthetic_family


def test_plan_tasks_windows_have_at_least_three_sizes_below_the_target():
    curves = synthetic_family()
    tasks = meta.plan_tasks("syn", curves)
    assert tasks
    sizes = curves.groupby("run_id").num_params.first()
    for task in tasks:
        assert sizes[list(task.run_ids)].nunique() >= 3
        assert "syn/3.2e+09" not in task.run_ids
    keys = {t.key("v1") for t in tasks}
    assert len(keys) == len(tasks)  # every task is distinct
    assert tasks[0].key("v1") != tasks[0].key("v2")  # a new data version invalidates results


def test_run_task_records_failures_as_rows_not_exceptions():
    curves = synthetic_family()
    task = meta.SweepTask("syn", ("syn/5e+07", "syn/1e+08", "syn/2e+08"), 1.0, False, 1e15)
    row = meta.run_task(task, curves, "v1")
    assert row["status"] == "SelectionError" and row["are_mean"] is None
    good = meta.run_task(
        meta.SweepTask("syn", ("syn/5e+07", "syn/1e+08", "syn/2e+08", "syn/4e+08"), 1.0, False, 0.0), curves, "v1"
    )
    assert good["status"] == "ok" and good["are_mean"] < 0.05 and 0 < good["compute_share"] < 1


def test_sweep_is_stored_incremental_and_resumable(built_db, tmp_path):
    results_path = tmp_path / "meta.duckdb"
    first = meta.run_sweep(built_db, results_path, families=["pythia-deduped"], n_jobs=1, limit=30, progress=False)
    ran = first.fitted + first.failed  # the limit counts designs; tasks sharing a design come with it
    assert ran >= 30 and 0 < first.designs <= 30
    second = meta.run_sweep(built_db, results_path, families=["pythia-deduped"], n_jobs=2, progress=False)
    assert second.skipped == ran
    stored = meta.load_results(results_path)
    assert len(stored) == first.planned == second.planned
    assert stored["key"].is_unique
    ok = stored[stored.status == "ok"]
    assert len(ok) > 0 and (ok.are_mean >= 0).all() and ok[["E", "A", "B", "alpha", "beta"]].notna().all().all()
    third = meta.run_sweep(built_db, results_path, families=["pythia-deduped"], n_jobs=1, progress=False)
    assert third.fitted + third.failed == 0


def test_family_averaging_weights_families_equally():
    rows = pd.DataFrame({"family": ["a"] * 3 + ["b"], "status": "ok", "num_runs": 3, "are_mean": [0.1, 0.1, 0.1, 0.3]})
    out = meta.family_averaged(rows, ["num_runs"])
    assert out["are_mean"].iloc[0] == pytest.approx(0.2)


def test_sweep_counts_count_families_with_a_successful_fit():
    rows = pd.DataFrame(
        {"family": ["a", "a", "b", "c", "c", "c"], "status": ["ok", "failed", "ok", "failed", "failed", "failed"]}
    )
    counts = meta.sweep_counts(rows)
    assert (counts.fits, counts.succeeded, counts.families, counts.families_tried) == (6, 2, 2, 3)
    empty = meta.sweep_counts(pd.DataFrame(columns=list(meta.RESULT_COLUMNS)))
    assert (empty.fits, empty.succeeded, empty.families, empty.families_tried) == (0, 0, 0, 0)


# ------------------------------------------------------------- configuration
def test_config_file_sets_the_design_space(tmp_path):
    curves = synthetic_family()
    path = tmp_path / "sweep.toml"
    path.write_text(
        'families = ["syn"]\nfractions = [0.5, 1]\ncheckpoints = ["final"]\ncutoffs = [0]\n'
        "window_sizes = [3]\nall_sizes = false\n"
    )
    config = meta.SweepConfig.from_file(path)
    tasks = config.plan("syn", curves)
    assert tasks and {t.fraction for t in tasks} == {0.5, 1.0}
    assert all(t.final_only and t.min_tokens == 0.0 for t in tasks)
    sizes = curves.groupby("run_id").num_params.first()
    assert all(sizes[list(t.run_ids)].nunique() == 3 for t in tasks)
    # the default configuration plans exactly the built-in sweep, and JSON reads the same keys
    assert [t.key("v") for t in meta.SweepConfig().plan("syn", curves)] == [
        t.key("v") for t in meta.plan_tasks("syn", curves)
    ]
    as_json = tmp_path / "sweep.json"
    as_json.write_text(
        json.dumps(
            {"fractions": [0.5, 1], "checkpoints": ["final"], "cutoffs": [0], "window_sizes": [3], "all_sizes": False}
        )
    )
    assert meta.SweepConfig.from_file(as_json).plan("syn", curves) == tasks


@pytest.mark.parametrize(
    "text, message",
    [
        ("fractions = [0, 0.5]", "fractions must be a share of training in \\(0, 1\\], got 0"),
        ("fractions = 0.5", "fractions must be a non-empty list"),
        ('checkpoints = ["some"]', 'checkpoints must be "all" or "final"'),
        ("cutoffs = [-1]", "cutoffs must be a token count >= 0"),
        ("window_sizes = [2]", "window_sizes must be a whole number of model sizes >= 3"),
        ("window_sizes = [3.5]", "window_sizes must be a whole number"),
        ("all_sizes = 1", "all_sizes must be true or false"),
        ("fraction = [0.5]", "unknown setting\\(s\\) 'fraction'"),
        ("fractions = [0.5", "not valid TOML"),
    ],
)
def test_config_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    with pytest.raises(meta.SweepConfigError, match=message):
        meta.SweepConfig.from_file(path)


def test_config_file_type_and_existence_are_checked(tmp_path):
    with pytest.raises(meta.SweepConfigError, match="cannot read"):
        meta.SweepConfig.from_file(tmp_path / "missing.toml")
    (tmp_path / "sweep.yaml").write_text("fractions: [0.5]")
    with pytest.raises(meta.SweepConfigError, match=".toml or .json"):
        meta.SweepConfig.from_file(tmp_path / "sweep.yaml")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(meta.SweepConfigError, match="table/object"):
        meta.SweepConfig.from_file(tmp_path / "bad.json")


def test_cli_reports_a_bad_config_and_an_unknown_family(built_db, tmp_path, capsys):
    from scaleplan.core import cli

    bad = tmp_path / "sweep.json"
    bad.write_text('{"fractions": [2]}')
    base = ["--db", str(built_db), "--meta", str(tmp_path / "meta.duckdb"), "meta", "run", "--quiet"]
    assert cli.main(base + ["--config", str(bad)]) == 2
    assert "fractions must be a share of training" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('families = ["no-such-family"]')
    assert cli.main(base + ["--config", str(unknown)]) == 2
    assert "no-such-family" in capsys.readouterr().err
    small = tmp_path / "small.toml"
    small.write_text(
        'families = ["gpt3"]\nfractions = [1.0]\nwindow_sizes = [3]\nall_sizes = false\n'
        'max_windows_end = 1\ncheckpoints = ["all"]\ncutoffs = [10e9]\n'
    )
    assert cli.main(base + ["--config", str(small), "--jobs", "1"]) == 0
    stored = meta.load_results(tmp_path / "meta.duckdb")
    assert len(stored) >= 1 and set(stored["family"]) == {"gpt3"} and (stored["fraction"] == 1.0).all()


def test_prepared_family_gives_the_same_rows_as_the_table():
    curves = synthetic_family()
    tasks = meta.plan_tasks("syn", curves)[:12]
    data = meta.FamilyData.from_frame("syn", curves)
    for task in tasks:
        a, b = meta.run_task(task, curves, "v1"), meta.run_task(task, data, "v1")
        a.pop("fit_seconds"), b.pop("fit_seconds")
        assert a == b


def test_tasks_sharing_a_design_share_one_fit_and_keep_their_own_fields():
    """Grouping by design changes no row: every task's row equals its own run_task row."""
    curves = synthetic_family()
    data = meta.FamilyData.from_frame("syn", curves)
    # cutoffs below every checkpoint select the same points: at least these pairs must group
    tasks = meta.plan_tasks("syn", curves, fractions=(1.0,), cutoffs=(0.0, 1.0))
    groups = meta.group_by_design(tasks, data)
    assert sum(len(g.tasks) for g in groups) == len(tasks)
    assert any(len(g.tasks) > 1 for g in groups)
    for group, has_points in groups:
        shared = meta.run_design(group, data, "v1")
        assert has_points == (shared[0]["status"] != "SelectionError")
        assert [row["key"] for row in shared] == [t.key("v1") for t in group]
        assert [row["fit_seconds"] > 0 for row in shared] == [True] + [False] * (len(group) - 1)
        for task, row in zip(group, shared):
            alone = meta.run_task(task, data, "v1")
            row, alone = dict(row), dict(alone)
            row.pop("fit_seconds"), alone.pop("fit_seconds")
            assert row == alone


def test_sweep_config_names_a_registered_loss_law():
    from scaleplan.core import laws

    assert meta.SweepConfig.from_mapping({"law": "overtrain"}).law == "overtrain"
    assert meta.SweepConfig().law == "chinchilla"
    with pytest.raises(meta.SweepConfigError, match="law must be one of 'chinchilla'"):
        meta.SweepConfig.from_mapping({"law": "downstream"})  # not fitted to losses from N, D
    assert set(laws.loss_laws()) >= {"chinchilla", "overtrain"}


def test_a_chinchilla_task_keeps_the_key_it_had_before_laws_were_named():
    import hashlib
    import json

    task = meta.SweepTask("fam", ("a", "b"), 0.5, False, 1e10, "huber")
    # the payload of the releases before the law field (the shipped results are keyed by it)
    payload = {
        "family": "fam",
        "run_ids": ["a", "b"],
        "fraction": 0.5,
        "final_only": False,
        "min_tokens": 1e10,
        "objective": "huber",
        "data_version": "v",
    }
    assert task.key("v") == hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert meta.SweepTask("fam", ("a", "b"), 0.5, False, 1e10, "huber", "overtrain").key("v") != task.key("v")


def test_parameters_are_stored_long_for_any_law(built_db, tmp_path):
    con = storage.connect(built_db)
    try:
        version = storage.stored_data_version(con)
    finally:
        con.close()
    path = tmp_path / "meta.duckdb"
    config = meta.SweepConfig(
        families=("pythia",),
        fractions=(1.0,),
        checkpoints=("all",),
        cutoffs=(1e10,),
        window_sizes=(3,),
        all_sizes=False,
        max_windows_end=1,
        law="overtrain",
    )
    meta.run_sweep(built_db, path, n_jobs=1, progress=False, config=config)
    rows = meta.load_results(path, version, shipped=False)
    ok = rows[rows["status"] == "ok"]
    assert (
        len(ok) >= 1 and set(rows["law"]) == {"overtrain"} and ok[["E", "A", "B", "alpha", "beta"]].isna().all().all()
    )
    params = meta.load_parameters(path, version, shipped=False)
    assert set(params["name"]) == {"E", "a", "b", "eta"} and set(params["key"]) == set(ok["key"])
    assert (params["law"] == "overtrain").all()


def _row(key: str, version: str, status: str, num_sizes: int | None, **fields) -> dict:
    row = {c: None for c in meta.RESULT_COLUMNS}
    return {
        **row,
        "key": key,
        "data_version": version,
        "family": "syn",
        "status": status,
        "num_sizes": num_sizes,
        **fields,
    }


def test_the_results_store_skips_finished_rows_replaces_by_key_and_fills_source_groups(tmp_path):
    """The results file's statements (core.meta.store) on hand-made rows, without a sweep."""
    path = tmp_path / "meta.duckdb"
    con = meta.open_results(path)
    try:
        stored = meta.store.store_rows(
            con,
            [
                _row("failed", "v1", "SelectionError", None),
                _row("fitted", "v1", "ok", 4, law="overtrain", parameters={"E": 1.5, "eta": 0.3}),
                _row("before-calibration", "v1", "ok", None),  # an ok row without num_sizes is refitted
                _row("other-version", "v2", "ok", 4),
            ],
        )
        assert list(stored.columns) == list(meta.RESULT_COLUMNS) and len(stored) == 4
        assert meta.store.finished_keys(con, "v1") == {"failed", "fitted"}
        assert meta.store.finished_keys(con, "v3") == set()
        # a second batch with a stored key replaces that row
        meta.store.store_rows(con, [_row("before-calibration", "v1", "ok", 5)])
        assert meta.store.finished_keys(con, "v1") == {"failed", "fitted", "before-calibration"}
        con.execute("UPDATE sweep_results SET source_group = 'kept' WHERE key = 'fitted'")
        meta.store.fill_source_groups(con, ["syn", "absent"], {"syn": "group-a"})
    finally:
        con.close()
    rows = meta.store.read_rows(path).set_index("key")
    assert len(rows) == 4 and rows.loc["before-calibration", "num_sizes"] == 5
    assert rows["source_group"].to_dict() == {
        "failed": "group-a",
        "fitted": "kept",  # a stored group is left alone
        "before-calibration": "group-a",
        "other-version": "group-a",
    }
    assert meta.store.read_rows(path, "v2")["key"].tolist() == ["other-version"]
    params = meta.store.read_parameters(path)
    assert sorted(zip(params["key"], params["law"], params["name"], params["value"])) == [
        ("fitted", "overtrain", "E", 1.5),
        ("fitted", "overtrain", "eta", 0.3),
    ]


def test_fits_stored_before_an_output_column_existed_are_refitted_not_read_as_unknown(tmp_path):
    """A results file written before backtest_log_error: on open its ok rows (NULL there, which would read as
    'too small to backtest') are marked unfinished, so a resumed sweep refits them; failures stay finished.
    A file that already has every column keeps its rows finished."""
    path = tmp_path / "older.duckdb"
    con = meta.open_results(path)
    try:
        meta.store.store_rows(con, [_row("failed", "v1", "SelectionError", None), _row("fitted", "v1", "ok", 4)])
        con.execute("ALTER TABLE sweep_results DROP COLUMN backtest_log_error")
    finally:
        con.close()
    con = meta.open_results(path)
    try:
        assert meta.store.finished_keys(con, "v1") == {"failed"}
        meta.store.store_rows(con, [_row("fitted", "v1", "ok", 4, backtest_log_error=0.01)])
    finally:
        con.close()
    con = meta.open_results(path)
    try:
        assert meta.store.finished_keys(con, "v1") == {"failed", "fitted"}
    finally:
        con.close()


def test_a_results_file_without_the_parameter_table_reads_as_no_parameters(tmp_path):
    """Files written before sweep_parameters existed: no table, no error; load_parameters falls back
    to the wide Chinchilla columns of their ok rows."""
    path = tmp_path / "old.duckdb"
    con = meta.open_results(path)
    try:
        meta.store.store_rows(con, [_row("old", "v1", "ok", 4, E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)])
        con.execute("DROP TABLE sweep_parameters")
    finally:
        con.close()
    assert meta.store.read_parameters(path).empty
    params = meta.load_parameters(path, "v1", shipped=False)
    assert dict(zip(params["name"], params["value"])) == {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}
    assert set(params["law"]) == {"chinchilla"}


def _collection(families: dict[str, pd.DataFrame], unobserved: dict[str, float] | None = None):
    """An in-memory database of the collection's schema holding synthetic loss ``families`` (curves as
    synthetic_family's), plus, per family, one run of the given size with no loss observation."""
    import duckdb

    con = duckdb.connect()
    con.execute(storage.SCHEMA_SQL)
    con.execute("INSERT INTO metrics VALUES ('loss', 'loss', false, 'synthetic')")
    for family, curves in families.items():
        con.execute("INSERT INTO families (family, source, default_metric) VALUES (?, 'syn', 'loss')", [family])
        runs = curves.groupby("run_id", sort=False)["num_params"].first()
        extra = {f"{family}/no-loss": unobserved[family]} if unobserved and family in unobserved else {}
        for run_id, n in {**{f"{family}:{r}": n for r, n in runs.items()}, **extra}.items():
            con.execute(
                "INSERT INTO runs (run_id, source, family, architecture, num_params) VALUES (?, 'syn', ?, 'decoder', ?)",
                [run_id, family, n],
            )
        obs = pd.DataFrame({"family": family, "run_id": family + ":" + curves["run_id"], "metric": "loss"}).assign(
            tokens_seen=curves["tokens_seen"], value=curves["value"], source="syn"
        )
        con.register("obs", obs)
        con.execute(
            "INSERT INTO observations (family, run_id, metric, tokens_seen, value, source) "
            "SELECT family, run_id, metric, tokens_seen, value, source FROM obs"
        )
        con.unregister("obs")
    return con


def test_a_family_is_eligible_exactly_when_the_sweep_plans_tasks_for_it():
    three = synthetic_family(sizes=(1e8, 2e8, 4e8), checkpoints=5)
    four = synthetic_family(sizes=(1e8, 2e8, 4e8, 8e8), checkpoints=5)
    # four sizes in the runs table, but the fourth run has no loss curve: three sizes the sweep can use
    con = _collection({"three": three, "four": four, "three-plus-unmeasured": three}, {"three-plus-unmeasured": 8e8})
    assert meta.eligible_families(con) == ["four"]
    planned = {f: meta.plan_tasks(f, storage.family_curves(con, f)) for f in ("three", "four", "three-plus-unmeasured")}
    assert planned["three"] == [] and planned["three-plus-unmeasured"] == []
    # four sizes: one window, the three runs below the 800M target, in every option of the default design
    assert {t.run_ids for t in planned["four"]} == {("four:syn/1e+08", "four:syn/2e+08", "four:syn/4e+08")}
    assert len(planned["four"]) == len(meta.DEFAULT_FRACTIONS) * len(meta.DEFAULT_CHECKPOINTS) * len(
        meta.DEFAULT_CUTOFFS
    )
    # the target and the three sizes that identify E, A and alpha; the package re-exports the rule
    assert meta.MIN_FAMILY_SIZES == meta.config.MIN_FAMILY_SIZES == 4
    con.close()
