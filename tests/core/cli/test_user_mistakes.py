"""Issue 25: every user mistake at the command line is one line and exit 2, quoting what was typed;
numbers read the same everywhere; JSON is JSON; a closed pipe ends quietly; a foreign file is never
written over."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scaleplan.core import cli

CSV = "my_runs.csv"
RUNS = "run_name,num_params,tokens_seen,loss\n" + "".join(
    f"r{n},{n},{d},{1.7 + 400 / n**0.34 + 410 / d**0.28:.5f}\n" for n in (1e7, 3e7, 1e8) for d in (2e8, 4e8, 8e8)
)


def _run(argv, tmp_path, capsys):
    code = cli.main(["--log-dir", str(tmp_path / "log"), "--data-dir", str(tmp_path / "data"), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_user_error(code, err):
    assert code == cli.EXIT_USER_ERROR, err
    assert "Traceback" not in err and "internal error" not in err
    assert err.strip().count("\n") <= 1, err  # argparse adds its usage line; ours is one line


@pytest.mark.parametrize("command", [["fit", "--family", "pythia"], ["data", "summary"]])
def test_a_db_path_at_a_csv_file_is_refused_and_left_byte_for_byte(tmp_path, capsys, command, mirror):
    target = tmp_path / CSV
    target.write_text(RUNS)
    before = target.read_bytes()
    code, _, err = _run(["--db", str(target), "--mirror", str(mirror), *command], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert str(target) in err and "--db" in err
    assert target.read_bytes() == before


def test_serve_at_a_foreign_db_stops_before_starting(tmp_path, capsys):
    target = tmp_path / CSV
    target.write_text(RUNS)
    code, _, err = _run(["--db", str(target), "serve", "--port", "1"], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert target.read_text() == RUNS


def test_data_build_force_never_writes_over_someone_elses_duckdb(tmp_path, capsys, mirror):
    import duckdb

    other = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE mine AS SELECT 42 AS answer")
    con.close()
    before = other.read_bytes()
    code, _, err = _run(["--db", str(other), "data", "build", "--force", "--mirror", str(mirror)], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert other.read_bytes() == before


def test_meta_at_a_non_database_file_is_a_user_error(tmp_path, capsys, built_db):
    bad = tmp_path / "notes.txt"
    bad.write_text("my notes\n")
    code, _, err = _run(["--db", str(built_db), "--meta", str(bad), "fit", "--family", "pythia"], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert "--meta" in err and str(bad) in err
    assert bad.read_text() == "my notes\n"


@pytest.mark.parametrize(
    "item, expected",
    [
        ("alpha=nan", "alpha=nan"),
        ("alpha=inf", "finite"),
        ("alpha=-5", "you gave -5"),
        ("alpha=3", "(0, 2]"),
        ("foo=1", "no parameter 'foo'"),
        ("alpha", "NAME=VALUE"),
        ("E=abc", "'abc' is not a number"),
    ],
)
def test_bad_borrow_values_are_user_errors_quoting_the_input(tmp_path, capsys, built_db, item, expected):
    code, _, err = _run(["--db", str(built_db), "fit", "--family", "pythia", "--borrow", item], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert f"--borrow {item}" in err and expected in err


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--bootstrap", "-5", "'-5'"),
        ("--bootstrap", "2.5", "whole number"),
        ("--predict-n", "-70B", "'-70B' must be a positive"),  # the CLI's own flag type
        ("--predict-n", "seven", "cannot read 'seven'"),
        ("--predict-d", "1e400", "not a finite number"),
        ("--fraction", "0", "'0' must be a positive"),
    ],
)
def test_bad_numeric_flags_quote_what_was_typed(tmp_path, capsys, built_db, flag, value, expected):
    code, _, err = _run(["--db", str(built_db), "fit", "--family", "pythia", flag, value], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert flag in err and expected in err


def test_plan_negative_target_params_gets_the_flags_own_message(tmp_path, capsys, built_db):
    argv = ["--db", str(built_db), "plan", "--target-params", "-70B", "--target-tokens", "1.4T"]
    code, _, err = _run([*argv, "--budget-dollars", "1e5", "--accuracy", "5"], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert "expected one argument" not in err and "'-70B'" in err


def test_plan_budget_beyond_any_study_quotes_the_budget_typed(tmp_path, capsys, built_db):
    argv = ["--db", str(built_db), "plan", "--target-params", "70B", "--target-tokens", "1.4T"]
    code, _, err = _run([*argv, "--budget-gpu-hours", "1e13", "--accuracy", "5", "--quiet"], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert "10T GPU-hours" in err and "1.19e+30" not in err


def test_fit_accepts_the_same_suffixes_as_plan_and_writes_valid_json(tmp_path, capsys, built_db):
    runs = tmp_path / CSV
    runs.write_text(RUNS)
    argv = ["--db", str(built_db), "fit", "--runs", str(runs), "--predict-n", "1B", "--predict-d", "20B"]
    code, out, err = _run([*argv, "--bootstrap", "0", "--json"], tmp_path, capsys)
    assert code == 0, err
    assert "NaN" not in out and "Infinity" not in out
    doc = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert doc["target"]["num_params"] == 1e9 and doc["target"]["tokens"] == 2e10


def test_jsonable_turns_non_finite_numbers_into_null():
    import numpy as np

    from scaleplan.core.cli._common import jsonable

    doc = {"a": float("nan"), "b": [np.float64("inf"), 1.5, np.int64(3)], "c": (None, "x"), "d": np.array([np.nan])}
    assert (
        json.dumps(jsonable(doc), allow_nan=False) == '{"a": null, "b": [null, 1.5, 3], "c": [null, "x"], "d": [null]}'
    )


def test_a_closed_pipe_ends_quietly(built_db, tmp_path):
    env = dict(os.environ, SCALEPLAN_DB=str(built_db), SCALEPLAN_LOG_DIR=str(tmp_path / "log"))
    env["SCALEPLAN_DATA_DIR"] = str(tmp_path / "data")
    command = f"{sys.executable} -m scaleplan.core.cli data summary --json | head -c 10"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, timeout=120
    )
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == ""
    assert done.returncode == 0


def test_plan_table_columns_are_separated(tmp_path, capsys, built_db, meta_db):
    argv = ["--db", str(built_db), "--meta", str(meta_db), "plan", "--target-params", "70B"]
    code, out, err = _run(
        [*argv, "--target-tokens", "1.4T", "--budget-dollars", "1e6", "--accuracy", "5", "--quiet"], tmp_path, capsys
    )
    assert code == 0, err
    rows = [line for line in out.splitlines() if " fits/" in line]
    assert rows, out
    for line in rows:
        # the fit count is its own word after the p90 column: "115.8%  3,135 fits", never "115.8%3,135 fits"
        # (thousands separated by commas, as every count is written)
        words = line[: line.index(" fits/")].split()
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", words[-1]) and words[-2].endswith("%"), line


def test_cli_messages_speak_cli_words(tmp_path, capsys, built_db):
    runs = tmp_path / CSV
    runs.write_text("size,tokens,loss\n1,2,3\n")
    argv = ["--db", str(built_db), "fit", "--runs", str(runs), "--predict-n", "1B", "--predict-d", "20B"]
    code, _, err = _run(argv, tmp_path, capsys)
    _one_line_user_error(code, err)
    assert "Download" not in err and "upload" not in err.lower() and "num_params" in err


def test_serve_beyond_loopback_needs_a_flag(tmp_path, capsys, built_db):
    code, _, err = _run(["--db", str(built_db), "serve", "--address", "0.0.0.0", "--port", "1"], tmp_path, capsys)
    _one_line_user_error(code, err)
    assert "--allow-remote" in err


def test_loopback_addresses_are_recognised():
    from scaleplan.core.cli.serve import is_loopback

    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))


def test_serve_sets_streamlits_upload_limit_from_the_one_limit():
    import tomllib

    from scaleplan.core import userdata
    from scaleplan.core.cli.serve import streamlit_options

    options = streamlit_options(port=1, address="localhost", open_browser=False)
    # Streamlit's MB is 2**20 bytes: its limit is never below ours, so our check (and message) speaks.
    assert options["server.maxUploadSize"] * 2**20 >= userdata.MAX_UPLOAD_BYTES
    config = tomllib.loads((Path(__file__).resolve().parents[3] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == userdata.MAX_UPLOAD_MB
    assert config["client"]["disableDataExport"] is True


def test_serve_passes_the_host_allow_list_to_streamlit():
    from scaleplan.core.cli.serve import streamlit_options

    options = streamlit_options(port=1, address="0.0.0.0", open_browser=False, allowed_hosts=("scaleplan.example.org",))
    assert options["server.allowedHosts"] == ["scaleplan.example.org"]
    assert "server.allowedHosts" not in streamlit_options(port=1, address="localhost", open_browser=False)


def test_a_level_is_printed_with_the_decimals_it_needs(tmp_path, capsys, built_db):
    # --level 0.995 is a 99.5% interval, never labelled "100%" (units.format_level)
    argv = ["--db", str(built_db), "--log-dir", str(tmp_path / "log"), "fit", "--family", "chinchilla"]
    code, out, err = _run([*argv, "--level", "0.995"], tmp_path, capsys)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("predicted loss"))
    assert "99.5% interval" in line and "100% interval" not in line


def test_fit_says_when_the_fitted_runs_cost_more_than_the_target(tmp_path, capsys, built_db):
    # a hypothetical target far smaller than the fitted runs: the share is above 100%, and the CLI says
    # what that means, as the Fit page does
    argv = ["--db", str(built_db), "--log-dir", str(tmp_path / "log"), "fit", "--family", "pythia"]
    code, out, err = _run([*argv, "--predict-n", "100M", "--predict-d", "1B"], tmp_path, capsys)
    assert code == 0, err
    assert "note: Above 100%: the fitted runs cost more than training" in out
    # a share from 1,000% up is a factor, and reads as one: '(12,300x the target's compute)', not 'x of the'
    fitted = next(x for x in out.splitlines() if x.startswith("fitted on"))
    assert re.search(r"\([0-9,.]+x the target's compute\)", fitted), fitted
    assert "e+" not in next(x for x in out.splitlines() if x.startswith("params: "))  # plain digits, A=348,700
    code, out, err = _run([*argv], tmp_path, capsys)  # the default target: the 12B run, a share below 100%
    assert code == 0, err
    assert "Above 100%" not in out
