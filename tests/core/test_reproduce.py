"""Reproductions checked against values published in the papers."""

import json

import pytest

from scaleplan.core import cli, reproduce


def test_overtraining_reproduces_gadre_et_al(con):
    rows = reproduce.overtraining(con)
    assert {(r["dataset"], r["quantity"]) for r in rows} == {
        (d, q) for d in ("c4", "rpj", "rw") for q in ("loss", "avg_err_17")
    }
    rpj_loss = {r["target"]: r for r in rows if r["dataset"] == "rpj" and r["quantity"] == "loss"}
    # Paper: ~1% relative error for both loss predictions (RedPajama, 1.4B M=640 and 6.9B M=20),
    # from roughly 300x less compute.
    assert set(rpj_loss) == {"1.4B-M640", "6.9B-M20"}
    assert all(r["rel_error"] < 0.02 for r in rpj_loss.values())
    assert all(r["fit_compute_ratio"] > 200 for r in rpj_loss.values())
    # Every loss prediction within 5%, downstream average error within 10% ("a few percent").
    assert all(r["rel_error"] < 0.05 for r in rows if r["quantity"] == "loss")
    assert all(r["rel_error"] < 0.10 for r in rows if r["quantity"] == "avg_err_17")


def test_reproduce_overtraining_json(built_db, capsys):
    assert cli.main(["--db", str(built_db), "reproduce", "overtraining", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"dataset", "target", "quantity", "predicted", "actual", "rel_error"} <= set(rows[0])


def test_cli_fit_family_json_and_errors(built_db, capsys, tmp_path, monkeypatch):
    from scaleplan.core import meta

    monkeypatch.setattr(meta.shipped, "shipped_results_info", lambda: None)  # no results here and none shipped
    missing = tmp_path / "no-meta.duckdb"
    assert (
        cli.main(
            [
                "--db",
                str(built_db),
                "--meta",
                str(missing),
                "fit",
                "--family",
                "pythia-deduped",
                "--bootstrap",
                "20",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["prediction"] > 0 and doc["interval"]["low"] is None and "meta run" in doc["interval"]["refused"]
    assert doc["bootstrap"]["replicates"] == 20 and doc["bootstrap"]["failed"] >= 0
    assert 0 <= doc["are_final"] < 0.2
    assert cli.main(["--db", str(built_db), "fit", "--family", "x'; DROP TABLE runs; --"]) == 2
    assert "has no family" in capsys.readouterr().err  # named, not run as SQL
    assert cli.main(["--db", str(built_db), "fit", "--family", "pythia", "--fraction", "0"]) == 2
    assert "fraction" in capsys.readouterr().err


def test_cli_fit_calibrated_interval_and_level(built_db, meta_db, capsys):
    base = ["--db", str(built_db), "--meta", str(meta_db), "fit", "--family", "opt", "--bootstrap", "0"]
    assert cli.main(base + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    interval = doc["interval"]
    assert interval["level"] == 0.9 and interval["low"] < doc["prediction"] < interval["high"]
    assert "conformal" in interval["method"] and isinstance(doc["warnings"], list)
    assert cli.main(base + ["--json", "--level", "0.5"]) == 0
    narrow = json.loads(capsys.readouterr().out)["interval"]
    assert interval["low"] <= narrow["low"] < narrow["high"] <= interval["high"]
    assert cli.main(base + ["--num-runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "90% interval" in out and "warning: Exactly 3 model sizes" in out
    assert "warning: E = " in out and "lower bound" in out  # OPT with 3 runs: E collapses to ~1e-8
    assert cli.main(base + ["--level", "1.5"]) == 2
    assert "--level" in capsys.readouterr().err


def test_reproduce_calibration_json(built_db, meta_db, capsys):
    assert (
        cli.main(["--db", str(built_db), "--meta", str(meta_db), "reproduce", "calibration", "--json", "--no-sweep"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [level["nominal"] for level in doc["levels"]] == [0.5, 0.8, 0.9, 0.95]
    assert [level["nominal"] for level in doc["baseline"]] == [0.5, 0.8, 0.9, 0.95]
    assert doc["families"] == 5 and doc["cells"] > 500 and 0 <= doc["refused"] < doc["cells"]
    for level in doc["levels"]:
        assert 0 <= level["realised"] <= 1 and level["median_rel_width"] > 0 and level["cells"] > 0
    # The default holds out whole source groups: each group is listed with its families and coverage.
    assert doc["holdout"] == "source"
    assert {g["group"] for g in doc["groups"]} <= {"pythia", "opt", "gpt3", "overtrain", "chinchilla"}
    assert sum(g["designs"] for g in doc["groups"]) == doc["cells"]
    assert all({"group", "families", "designs", "realised_90"} <= set(g) for g in doc["groups"])
    assert [p["nominal"] for p in doc["planner"]] == [0.5, 0.8, 0.9]
    assert all(p["realised"] is None or 0 <= p["realised"] <= 1 for p in doc["planner"])
    # Mid-schedule fits (the first share of every run's checkpoints), per share and group: every answered
    # design is counted once.
    answered = next(level["cells"] for level in doc["levels"] if level["nominal"] == 0.9)
    assert sum(row["designs"] for row in doc["schedule"]) == answered
    assert {row["fraction"] for row in doc["schedule"]} <= {"0-0.3", "0.3-0.6", "0.6-0.99", "1 (final)"}
    by_family = ["--db", str(built_db), "--meta", str(meta_db), "reproduce", "calibration", "--holdout", "family"]
    assert cli.main(by_family + ["--json"]) == 0
    family_doc = json.loads(capsys.readouterr().out)
    assert family_doc["holdout"] == "family" and family_doc["cells"] == doc["cells"]
    assert cli.main(by_family) == 0
    text = capsys.readouterr().out
    assert "per held-out source group" in text and "share of the schedule" in text


def test_cli_fit_user_runs(tmp_path, capsys):
    from tests.core.synthetic import synthetic_family, true_loss

    curves = synthetic_family(noise=0.0)
    curves = curves[curves.num_params < 1e9].rename(columns={"value": "loss", "run_id": "run_name"})
    path = tmp_path / "runs.csv"
    curves.to_csv(path, index=False)
    assert (
        cli.main(
            [
                "fit",
                "--runs",
                str(path),
                "--predict-n",
                "7e9",
                "--predict-d",
                "1.4e11",
                "--min-tokens",
                "0",
                "--bootstrap",
                "0",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["prediction"] == pytest.approx(true_loss(7e9, 1.4e11), rel=0.01)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert cli.main(["fit", "--runs", str(bad), "--predict-n", "1e9", "--predict-d", "1e10"]) == 2
    err = capsys.readouterr().err
    assert "missing required column(s): num_params" in err and "also as params" in err


def test_cli_fit_user_runs_under_10b_tokens_fit_with_the_uploads_default_cutoff(tmp_path, capsys):
    """Runs that stop before 10B tokens fit without --min-tokens (the paper's cutoff would drop all)."""
    from tests.core.synthetic import synthetic_family, true_loss

    curves = synthetic_family(noise=0.0)
    curves = curves[(curves.num_params < 1e9) & (curves.tokens_seen <= 8e9)]
    curves = curves.rename(columns={"value": "loss", "run_id": "run_name"})
    assert curves.tokens_seen.max() < 10e9 and curves.run_name.nunique() >= 3
    path = tmp_path / "runs.csv"
    curves.to_csv(path, index=False)
    assert (
        cli.main(
            ["fit", "--runs", str(path), "--predict-n", "7e9", "--predict-d", "1.4e11", "--bootstrap", "0", "--json"]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "10% of your shortest run" in captured.err
    assert json.loads(captured.out)["prediction"] == pytest.approx(true_loss(7e9, 1.4e11), rel=0.01)


def test_cli_fit_on_a_fresh_machine_uses_the_shipped_results(built_db, capsys, tmp_path):
    """No sweep on this machine: the calibrated interval comes from the results shipped with scaleplan."""
    assert (
        cli.main(
            [
                "--db",
                str(built_db),
                "--meta",
                str(tmp_path / "never-run.duckdb"),
                "fit",
                "--family",
                "opt",
                "--bootstrap",
                "0",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    interval = doc["interval"]
    assert interval["low"] is not None or interval["refused"], interval
    assert "meta run" not in (interval.get("refused") or "")
    assert not (tmp_path / "never-run.duckdb").exists()


def test_reproduce_hitchhiker_json(built_db, meta_db, capsys):
    from scaleplan.core import findings, meta

    assert cli.main(["--db", str(built_db), "--meta", str(meta_db), "reproduce", "hitchhiker", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    results = meta.load_results(meta_db)
    assert doc["fits"] == {"total": len(results), "ok": int((results["status"] == "ok").sum())}
    # Every finding decided here is one of the paper's statements, in the table's order, with its rule.
    keys = [f["key"] for f in doc["findings"]]
    assert keys == [k for k in findings.STATEMENTS if k in keys] and {"checkpoints", "cutoff", "floor"} <= set(keys)
    for f in doc["findings"]:
        statement = findings.STATEMENTS[f["key"]]
        assert (f["finding"], f["paper"], f["criterion"]) == (statement.finding, statement.paper, statement.criterion)
        assert isinstance(f["holds"], bool) and f["ours"]
    for grid in doc["grids"].values():
        assert len(grid["are"]) == len(grid["max_params"]) and all(
            len(r) == len(grid["fractions"]) for r in grid["are"]
        )
