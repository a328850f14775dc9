"""``scaleplan runs``: add, list, show (--json), rename, export, remove; a rebuild keeps the studies."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from scaleplan.core import cli, studies
from tests.core.test_formats import LONG_CSV
from tests.core.test_isoflop import TARGET, sweep, true_optimum


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _sweep_file(tmp_path):
    frame = sweep(np.random.default_rng(11)).rename(
        columns={"run_id": "run", "compute_flops": "FLOPs", "value": "Loss"}
    )
    path = tmp_path / "isoflop.csv"
    frame.rename(columns={"num_params": "Params", "tokens_seen": "Tokens"}).to_csv(path, index=False)
    return path


def test_add_list_show_rename_export_remove(tmp_path, capsys):
    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--db", str(tmp_path / "none.duckdb"), "--log-dir", str(tmp_path / "log")]
    code, out, _ = _run(capsys, *base, "runs", "add", str(_sweep_file(tmp_path)), "--name", "sweep A")
    assert code == 0 and "35 runs" in out and "num_params         <- Params" in out
    long_file = tmp_path / "long.csv"
    long_file.write_bytes(LONG_CSV)
    assert _run(capsys, *base, "runs", "add", str(long_file), "--name", "ladder")[0] == 0

    code, out, _ = _run(capsys, *base, "runs", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert set(listed) == {"sweep A", "ladder"} and listed["sweep A"]["runs"] == 35

    code, out, _ = _run(capsys, *base, "runs", "show", "sweep A", "--target-flops", str(TARGET), "--json")
    assert code == 0
    doc = json.loads(out)
    methods = {row["method"]: row for row in doc["compute_optimal"]}
    assert set(methods) == {"approach2", "approach3", "hoffmann2022", "besiroglu2024"}
    two = methods["approach2"]
    assert two["has_interval"] and two["num_params_low"] < two["num_params"] < two["num_params_high"]
    assert abs(np.log(two["num_params"] / true_optimum(TARGET))) < 0.3  # this sweep's seed; coverage: test_isoflop
    assert doc["target"]["num_params"] == methods["approach3"]["num_params"]  # a budget is predicted at approach 3's N*
    assert doc["prediction"]["loss"] > 0 and doc["isoflop"]["exponent_a"] > 0
    # the text names the predicted loss's fit as the Your runs page does (the checkpoint fit, not approach 3)
    code, out, _ = _run(capsys, *base, "runs", "show", "sweep A", "--target-flops", str(TARGET))
    assert code == 0 and "predicted loss (checkpoint fit on " in out and "predicted loss (approach 3)" not in out
    # without a target: the Your runs page's default (one rule, studies.default_target)
    code, out, _ = _run(capsys, *base, "runs", "show", "sweep A", "--json")
    expected = studies.default_target(studies.load_study(store, "sweep A").table).flops
    assert code == 0 and json.loads(out)["target"]["compute_flops"] == pytest.approx(expected, rel=1e-12)
    assert doc["study"]["sha256"] == listed["sweep A"]["sha256"]

    code, out, _ = _run(capsys, *base, "runs", "rename", "ladder", "ladder v2")
    assert code == 0 and out == "renamed 'ladder' to 'ladder v2' (no saved scenario uses it)\n"
    exported = tmp_path / "out.csv"
    assert _run(capsys, *base, "runs", "export", "ladder v2", "--to", str(exported))[0] == 0
    code, _, err = _run(capsys, *base, "runs", "export", "ladder v2", "--to", str(exported))
    assert code == cli.EXIT_USER_ERROR and "does not overwrite" in err

    assert _run(capsys, *base, "runs", "remove", "ladder v2")[0] == 0
    assert [s.name for s in studies.list_studies(store)] == ["sweep A"]
    code, _, err = _run(capsys, *base, "runs", "remove", "ladder v2")
    assert code == cli.EXIT_USER_ERROR and err.count("\n") == 1 and "no study named" in err


def test_a_bad_file_is_one_line_and_keeps_the_stored_study(tmp_path, capsys):
    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--log-dir", str(tmp_path / "log")]
    assert _run(capsys, *base, "runs", "add", str(_sweep_file(tmp_path)), "--name", "a")[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"size,amount\n1,2\n")
    code, _, err = _run(capsys, *base, "runs", "add", str(bad), "--name", "a", "--replace")
    assert code == cli.EXIT_USER_ERROR and err.count("\n") == 1 and "missing required column" in err
    assert studies.load_study(store, "a").info.num_runs == 35


def test_a_forced_rebuild_keeps_the_studies(tmp_path, capsys, mirror):
    data_dir = tmp_path / "data"
    base = ["--data-dir", str(data_dir), "--log-dir", str(tmp_path / "log")]
    assert _run(capsys, *base, "runs", "add", str(_sweep_file(tmp_path)), "--name", "kept")[0] == 0
    before = (data_dir / "user.duckdb").read_bytes()
    assert _run(capsys, *base, "data", "build", "--force", "--mirror", str(mirror))[0] == 0
    assert (data_dir / "scaleplan.duckdb").is_file()
    assert (data_dir / "user.duckdb").read_bytes() == before
    assert [s.name for s in studies.list_studies(data_dir / "user.duckdb")] == ["kept"]


def test_fit_runs_gives_the_same_numbers_as_runs_show(tmp_path, capsys):
    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--db", str(tmp_path / "none.duckdb"), "--log-dir", str(tmp_path / "log")]
    path = _sweep_file(tmp_path)
    assert _run(capsys, *base, "runs", "add", str(path), "--name", "s")[0] == 0
    target = ["--predict-n", "2e9", "--predict-d", "4e10"]
    code, out, _ = _run(capsys, *base, "runs", "show", "s", *target, "--json")
    shown = json.loads(out)
    code, out, _ = _run(capsys, *base, "fit", "--runs", str(path), *target, "--bootstrap", "0", "--json")
    assert code == 0
    fitted = json.loads(out)
    assert fitted["prediction"] == shown["prediction"]["loss"]
    assert fitted["compute_optimal"] == shown["compute_optimal"]
    assert fitted["isoflop"] == shown["isoflop"]


def test_fit_runs_next_budget_inside_the_sizes_gets_the_backtest_interval(tmp_path, capsys, built_db):
    # The sweep's next budget (3.16e20 FLOPs) at a size it already trained: the collection's calibration
    # measured no such target, the study's own backtest gives the interval (core.backtest).
    from tests.core.test_isoflop import BUDGETS

    base = ["--db", str(built_db), "--log-dir", str(tmp_path / "log")]  # the shipped calibration needs the data
    path = _sweep_file(tmp_path)
    n_t = 2e9
    d_t = BUDGETS[-1] ** 2 / BUDGETS[-2] / 6 / n_t
    code, out, _ = _run(capsys, *base, "fit", "--runs", str(path), "--predict-n", "2e9", "--predict-d", f"{d_t:.6g}",
                        "--bootstrap", "0", "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    interval = doc["interval"]
    assert interval["method"].startswith("in-study backtest"), interval
    assert interval["low"] < doc["prediction"] < interval["high"]
    assert interval["designs"] >= 10 and "refits inside your runs" in interval["basis"]


def test_an_exported_study_adds_again_as_the_same_runs(tmp_path, capsys):
    from tests.core.test_studies import TRICKY_CSV

    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--log-dir", str(tmp_path / "log")]
    original = tmp_path / "tricky.csv"
    original.write_bytes(TRICKY_CSV)
    assert _run(capsys, *base, "runs", "add", str(original), "--name", "first")[0] == 0
    exported = tmp_path / "exported.csv"
    assert _run(capsys, *base, "runs", "export", "first", "--to", str(exported))[0] == 0
    code, _, err = _run(capsys, *base, "runs", "add", str(exported), "--name", "again")
    assert code == 0 and "warning" not in err
    first, again = studies.load_study(store, "first").table, studies.load_study(store, "again").table
    assert again.equals(first)


def _wandb_and_csv(tmp_path):
    """The same five runs as a W&B export (sizes in four names, one not) and as a plain CSV."""
    sizes = {"run-20m": 20e6, "run-40m": 40e6, "run-80m": 80e6, "run-160m": 160e6, "mystery": 320e6}
    steps = [500, 1000, 2000, 4000, 8000]
    per_step = 2e6  # tokens per step, given as --tokens-per-step 2M

    def loss(n, d):  # Chinchilla's published law
        return 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28

    header = ["Step"] + [f"{run} - train/loss" for run in sizes]
    wide = [",".join(header)] + [
        ",".join([str(step)] + [f"{loss(n, step * per_step):.6f}" for n in sizes.values()]) for step in steps
    ]
    long = ["run_name,num_params,tokens_seen,loss"] + [
        f"{run},{n!r},{step * per_step!r},{loss(n, step * per_step):.6f}" for run, n in sizes.items() for step in steps
    ]
    (tmp_path / "export.csv").write_text("\n".join(wide) + "\n")
    (tmp_path / "plain.csv").write_text("\n".join(long) + "\n")
    return tmp_path / "export.csv", tmp_path / "plain.csv"


def test_fit_runs_reads_a_wandb_export_with_tokens_per_step_and_params(tmp_path, capsys):
    export, plain = _wandb_and_csv(tmp_path)
    base = ["--db", str(tmp_path / "none.duckdb"), "--log-dir", str(tmp_path / "log")]
    target = ["--predict-n", "1B", "--predict-d", "20B", "--bootstrap", "0", "--json"]
    code, out, err = _run(capsys, *base, "fit", "--runs", str(plain), *target)
    assert code == 0, err
    expected = json.loads(out)
    code, out, err = _run(
        capsys, *base, "fit", "--runs", str(export), "--tokens-per-step", "2M", "--params", "mystery=320M", *target
    )
    assert code == 0, err
    fitted = json.loads(out)
    assert fitted["prediction"] == expected["prediction"] and fitted["points"] == expected["points"]
    assert sorted(fitted["runs"]) == sorted(expected["runs"])
    # Without them: the message names the flags this command has.
    code, _, err = _run(capsys, *base, "fit", "--runs", str(export), *target)
    assert code == cli.EXIT_USER_ERROR and "--tokens-per-step" in err and err.count("\n") == 1
    code, _, err = _run(capsys, *base, "fit", "--runs", str(export), "--tokens-per-step", "2M", *target)
    assert code == cli.EXIT_USER_ERROR and "'mystery'" in err and "--params" in err
    code, _, err = _run(capsys, *base, "fit", "--family", "pythia", "--tokens-per-step", "2M")
    assert code == cli.EXIT_USER_ERROR and "are for a --runs file" in err


def test_runs_add_params_take_suffixes_and_refuse_what_is_not_a_size(tmp_path, capsys):
    export, _ = _wandb_and_csv(tmp_path)
    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--log-dir", str(tmp_path / "log")]
    add = ["runs", "add", str(export), "--tokens-per-step", "2M"]
    for i, size in enumerate(["320M", "0.32B", "3.2e8", "320,000,000"]):
        code, _, err = _run(capsys, *base, *add, "--name", f"s{i}", "--params", f"mystery={size}")
        assert code == 0, err
        table = studies.load_study(store, f"s{i}").table
        assert table.loc[table["run_name"] == "mystery", "num_params"].unique().tolist() == [320e6]
    for size in ["-5", "inf", "nan", "0", "lots", "1e20", ""]:
        code, _, err = _run(capsys, *base, *add, "--name", "bad", "--params", f"mystery={size}")
        assert code == cli.EXIT_USER_ERROR and err.count("\n") == 1, (size, err)
        assert "--params" in err and "Traceback" not in err
    assert {s.name for s in studies.list_studies(store)} == {"s0", "s1", "s2", "s3"}  # nothing stored for "bad"


def test_runs_add_refuses_a_wandb_export_with_a_repeated_column(tmp_path, capsys):
    # The review's repro: two columns of one run's series (or two Step columns) were an internal error.
    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--db", str(tmp_path / "none.duckdb"), "--log-dir", str(tmp_path / "log")]
    for header, repeated in (
        ("Step,pythia-410m - loss,pythia-410m - loss", "'pythia-410m - loss'"),
        ("Step,Step,pythia-410m - loss", "'Step'"),
    ):
        export = tmp_path / "w.csv"
        export.write_text(header + "\n1,3.0,3.1\n2,2.9,3.0\n")
        code, out, err = _run(capsys, *base, "runs", "add", str(export), "--name", "x", "--tokens-per-step", "1M")
        assert code == cli.EXIT_USER_ERROR and out == "", err
        assert f"more than one column named {repeated}" in err and "Traceback" not in err and err.count("\n") == 1
    assert not store.exists() or "x" not in {s.name for s in studies.list_studies(store)}


def test_rename_says_how_many_saved_scenarios_follow_the_study(tmp_path, capsys):
    from scaleplan.core import scenarios
    from scaleplan.core.userstore import user_store

    store = tmp_path / "user.duckdb"
    base = ["--user-db", str(store), "--log-dir", str(tmp_path / "log")]
    assert _run(capsys, *base, "runs", "add", str(_sweep_file(tmp_path)), "--name", "sweep A")[0] == 0
    on_sweep = scenarios.PlanInputs(
        target_params=7e9, target_tokens=1.4e11, budget_dollars=20_000, accuracy_percent=5, study="sweep A"
    )
    with user_store(store) as con:
        for name in ("small", "large"):
            scenarios.save_scenario(con, name, dataclasses.replace(on_sweep, law="fit:sweep A"))
    code, out, err = _run(capsys, *base, "runs", "rename", "sweep A", "sweep B")
    assert (code, err) == (0, "")
    assert out == "renamed 'sweep A' to 'sweep B' (2 saved scenarios follow it)\n"
