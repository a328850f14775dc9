"""``scaleplan scenario`` and ``scaleplan brief`` end to end on the real database and a small sweep."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from scaleplan.core import cli, storage

PLAN_FLAGS = ["--target-params", "7B", "--target-tokens", "140B", "--accuracy", "5", "--law-boot", "2"]


@pytest.fixture()
def run(built_db, meta_db, tmp_path, capsys, monkeypatch):
    locations = [
        "--db",
        str(built_db),
        "--meta",
        str(meta_db),
        "--user-db",
        str(tmp_path / "user.duckdb"),
        "--log-dir",
        str(tmp_path / "log"),
    ]

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main([*argv, *locations])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_save_list_compare_remove(run):
    assert run("scenario", "save", "--name", "small", "--budget-dollars", "20000", *PLAN_FLAGS)[0] == 0
    assert run("scenario", "save", "--name", "large", "--budget-dollars", "2e6", "--mfu", "0.5", *PLAN_FLAGS)[0] == 0
    code, _, err = run("scenario", "save", "--name", "small", "--budget-dollars", "1", *PLAN_FLAGS)
    assert code == 2 and "exists already" in err and err.count("\n") == 1
    code, out, _ = run("scenario", "list", "--json")
    assert [s["name"] for s in json.loads(out)["scenarios"]] == ["large", "small"]

    code, out, err = run("scenario", "compare", "small", "large", "--json", "--law-boot", "2")
    assert code == 0, err
    result = json.loads(out)
    assert [s["name"] for s in result["scenarios"]] == ["small", "large"]
    assert result["scenarios"][1]["inputs"]["mfu"] == 0.5
    assert {r["label"] for r in result["inputs_that_differ"]} == {"Study budget", "MFU"}
    # the pick is plan --json's pick for the same flags
    for name, budget, extra in (("small", "20000", []), ("large", "2e6", ["--mfu", "0.5"])):
        code, out, _ = run("plan", "--budget-dollars", budget, *extra, *PLAN_FLAGS, "--json")
        plan = json.loads(out)
        mine = next(s for s in result["scenarios"] if s["name"] == name)
        assert plan["pick"] is not None and mine["pick"] == plan["pick"]
        assert mine["compute_optimal"] == plan["compute_optimal"]

    assert run("scenario", "rename", "large", "large $2M")[0] == 0
    assert run("scenario", "duplicate", "small", "copy")[0] == 0
    assert run("scenario", "remove", "copy")[0] == 0
    code, _, err = run("scenario", "remove", "copy")
    assert code == 2 and "no scenario named 'copy'" in err
    code, out, _ = run("scenario", "list")
    assert "large $2M:" in out and "small:" in out and "copy" not in out


def test_scenarios_survive_a_database_rebuild(run, mirror, tmp_path, built_db, meta_db):
    """A rebuilt collection database leaves the user store (another file) as it was."""
    user_db = tmp_path / "user.duckdb"
    assert run("scenario", "save", "--name", "kept", "--budget-dollars", "20000", *PLAN_FLAGS)[0] == 0
    before = user_db.read_bytes()
    rebuilt = tmp_path / "scaleplan.duckdb"
    shutil.copyfile(built_db, rebuilt)
    storage.build_database(rebuilt, mirror=mirror, progress=False)  # a rebuild over the existing database
    assert user_db.read_bytes() == before
    code = cli.main(["scenario", "list", "--json", "--db", str(rebuilt), "--user-db", str(user_db)])
    assert code == 0


def test_a_scenario_whose_study_is_gone_says_so(run, tmp_path):
    from scaleplan.core import formats, studies
    from tests.core.synthetic import synthetic_family

    flags = [*PLAN_FLAGS, "--budget-dollars", "20000", "--study", "my sweep", "--law", "fit:my sweep"]
    code, _, err = run("scenario", "save", "--name", "mine", *flags)
    assert code == 2 and "no stored study named 'my sweep'" in err
    csv = synthetic_family(checkpoints=8).rename(columns={"run_id": "run_name", "value": "loss"}).to_csv().encode()
    store = tmp_path / "user.duckdb"
    studies.save_study(store, "my sweep", formats.parse_runs(csv), sha256=studies.sha256_of(csv))
    assert run("scenario", "save", "--name", "mine", *flags)[0] == 0
    studies.delete_study(store, "my sweep")
    code, out, _ = run("scenario", "compare", "mine", "--json", "--law-boot", "2")
    assert code == 0
    only = json.loads(out)["scenarios"][0]
    assert only["available"] is False and "'my sweep', no longer exists" in only["reason"]


def test_brief_writes_both_files_and_refuses_to_overwrite(run, tmp_path):
    assert run("scenario", "save", "--name", "one", "--budget-dollars", "20000", *PLAN_FLAGS)[0] == 0
    pdf, pptx = tmp_path / "b.pdf", tmp_path / "b.pptx"
    code, out, err = run("brief", "--scenario", "one", "--pdf", str(pdf), "--pptx", str(pptx), "--law-boot", "2")
    assert code == 0, err
    assert pdf.read_bytes()[:5] == b"%PDF-" and pptx.read_bytes()[:2] == b"PK"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Recommendation" in text and "C = 6 N D" in text and "scaleplan 0.1.0" in text
    pdf.write_bytes(b"mine")
    code, _, err = run("brief", "--scenario", "one", "--pdf", str(pdf))
    assert code == 2 and "exists already" in err and pdf.read_bytes() == b"mine"
    code, _, err = run("brief", "--scenario", "one", "--pdf", str(pdf), "--force", "--law-boot", "2")
    assert code == 0 and pdf.read_bytes()[:5] == b"%PDF-"


def test_save_refuses_the_plan_flags_it_would_not_store(run, tmp_path):
    runs = tmp_path / "runs.csv"
    runs.write_text("num_params,tokens,seeds\n1e8,2e9,1\n")
    for flag, value in (("--runs-file", str(runs)), ("--from-study", "ladder"), ("--task", "arc_easy")):
        code, _, err = run("scenario", "save", "--name", "x", flag, value, *PLAN_FLAGS)
        assert code == 2 and f"scenario save does not store {flag}" in err and err.count("\n") == 1
    code, out, _ = run("scenario", "list", "--json")
    assert json.loads(out)["scenarios"] == []  # nothing was saved
