"""A damaged user store or results file is a user error (exit 2, one line, the file named and left
byte for byte), never an internal error; commands that can go on without the calibration do so, as
`fit` does (review 5: A2, A3)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import cli, meta, userstore
from tests.helpers import data_version_of

RUNS = "run_name,num_params,tokens_seen,loss\n" + "".join(
    f"r{n:.0f},{n:.0f},{d:.0f},{1.7 + 400 / n**0.34 + 410 / d**0.28:.5f}\n"
    for n in (1e7, 3e7, 1e8)
    for d in (2e8, 4e8, 8e8)
)


def _truncated(path, keep: float = 0.5):
    """``path`` cut to ``keep`` of its bytes, as a copy that stopped midway leaves it."""
    data = path.read_bytes()
    damaged = path.with_name("damaged-" + path.name)
    damaged.write_bytes(data[: int(len(data) * keep)])
    return damaged


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(tmp_path, capsys, *argv):
    code = cli.main(["--log-dir", str(tmp_path / "log"), "--data-dir", str(tmp_path / "data"), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _user_error(code, err, *words):
    assert code == cli.EXIT_USER_ERROR, err
    assert "internal error" not in err and "Traceback" not in err and err.strip().count("\n") == 0, err
    for word in words:
        assert word in err, err


@pytest.fixture()
def damaged_store(tmp_path):
    """A user store with enough saved rows to span several blocks, cut in half."""
    path = tmp_path / "user.duckdb"
    with userstore.user_store(path) as con:
        userstore.ensure_tables(con, userstore.STUDY_TABLES_SQL)
        con.execute(
            "INSERT INTO studies (name, sha256, filename, format, uploaded_at, mapping, num_runs, num_rows) "
            "VALUES ('mine', 'x', 'f.csv', 'csv', now(), '[]', 100, 200000)"
        )
        con.execute(
            "INSERT INTO study_rows SELECT 1, i, 'run-' || (i % 100), 'run-' || (i % 100), NULL, 1e7 + i, "
            "1e9 + i * 7, 3.0 + random(), NULL, NULL, NULL, NULL FROM range(200000) t(i)"
        )
    return _truncated(path)


@pytest.mark.parametrize(
    "argv", [["runs", "list"], ["runs", "add", "RUNS", "--name", "x"], ["scenario", "list"], ["runs", "show", "mine"]]
)
def test_a_damaged_user_store_is_refused_and_left_byte_for_byte(tmp_path, capsys, damaged_store, argv):
    runs = tmp_path / "runs.csv"
    runs.write_text(RUNS)
    before = _sha(damaged_store)
    argv = [str(runs) if a == "RUNS" else a for a in argv]
    code, out, err = _cli(tmp_path, capsys, "--user-db", str(damaged_store), *argv)
    _user_error(code, err, str(damaged_store), "damaged", "did not change it")
    assert _sha(damaged_store) == before
    assert sorted(p.name for p in damaged_store.parent.iterdir() if "damaged" in p.name) == [damaged_store.name]


def test_a_healthy_store_still_opens(tmp_path):
    path = tmp_path / "user.duckdb"
    with userstore.user_store(path) as con:
        userstore.ensure_tables(con, userstore.STUDY_TABLES_SQL)
    userstore.check_readable(path)
    with userstore.user_store(path, read_only=True) as con:
        assert userstore.study_records(con) == []


@pytest.fixture(scope="module")
def damaged_results(built_db, tmp_path_factory):
    """A results file of the built database's data version, with enough rows for several blocks, cut in half."""
    version = data_version_of(built_db)
    n = 20000
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({c: [None] * n for c in meta.RESULT_COLUMNS})
    rows["key"] = [f"k{i}-{rng.random()}" for i in range(n)]
    rows["data_version"], rows["family"], rows["status"] = version, "pythia", "ok"
    for column in ("E", "A", "B", "alpha", "beta", "predicted_final", "actual_final", "are_final", "are_mean"):
        rows[column] = rng.random(n)
    rows["message"] = [f"note {rng.random()}" for _ in range(n)]
    path = tmp_path_factory.mktemp("results") / "meta.duckdb"
    results = meta.open_results(path)
    try:
        results.register("rows", rows)
        results.execute("INSERT INTO sweep_results SELECT * FROM rows")
    finally:
        results.close()
    return _truncated(path)


PLAN = ["plan", "--target-params", "7B", "--target-tokens", "140B", "--budget-dollars", "100000", "--accuracy", "5"]


@pytest.mark.parametrize(
    "argv",
    [
        ["meta", "run", "--limit", "1", "--quiet", "--jobs", "1"],
        ["meta", "export", "--to", "OUT"],
        ["reproduce", "calibration", "--json"],
    ],
)
def test_commands_that_need_a_damaged_results_file_stop_with_a_message(
    tmp_path, capsys, built_db, damaged_results, argv
):
    before = _sha(damaged_results)
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    code, out, err = _cli(tmp_path, capsys, "--db", str(built_db), "--meta", str(damaged_results), *argv)
    _user_error(code, err, str(damaged_results), "damaged", "did not change it")
    assert _sha(damaged_results) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [PLAN, ["fit", "--family", "pythia"]])
def test_commands_that_can_go_on_without_the_calibration_do(tmp_path, capsys, built_db, damaged_results, argv):
    before = _sha(damaged_results)
    code, out, err = _cli(tmp_path, capsys, "--db", str(built_db), "--meta", str(damaged_results), *argv)
    assert code == 0, err
    assert "damaged" in out and str(damaged_results) in out
    assert _sha(damaged_results) == before


def test_scenario_compare_goes_on_without_the_calibration(tmp_path, capsys, built_db, damaged_results):
    store = ["--user-db", str(tmp_path / "user.duckdb"), "--db", str(built_db), "--meta", str(damaged_results)]
    code, out, err = _cli(tmp_path, capsys, *store, "scenario", "save", "--name", "a", *PLAN[1:])
    assert code == 0, err
    before = _sha(damaged_results)
    code, out, err = _cli(tmp_path, capsys, *store, "scenario", "compare", "a")
    assert code == 0, err
    assert "damaged" in out
    assert _sha(damaged_results) == before
