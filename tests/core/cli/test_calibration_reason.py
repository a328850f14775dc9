"""One calibration loader for the command line: ``fit`` and ``plan`` give the same reason when the
calibration cannot be loaded, each after its own noun ("no calibrated interval" / "no expected accuracy")."""

from __future__ import annotations

import json
from pathlib import Path

from scaleplan.core import cli, meta
from tests.core.test_results_in_use import _runs_file
from tests.helpers import held_for_writing


def test_fit_and_plan_say_the_same_about_a_results_file_in_use(built_db, tmp_path, capsys):
    results = tmp_path / "meta.duckdb"
    meta.open_results(results).close()
    where = ["--db", str(built_db), "--meta", str(results), "--log-dir", str(tmp_path / "log")]
    plan = ["plan", "--target-params", "7B", "--target-tokens", "140B", "--budget-dollars", "20000"]
    fit = ["fit", "--runs", str(_runs_file(Path(tmp_path))), "--predict-n", "7B", "--predict-d", "1.4T"]
    with held_for_writing(results):
        assert cli.main([*where, *plan, "--accuracy", "5", "--law-boot", "2", "--json"]) == 0
        planned = json.loads(capsys.readouterr().out)["message"]
        assert cli.main([*where, *fit, "--bootstrap", "0", "--json"]) == 0
        fitted = json.loads(capsys.readouterr().out)["interval"]["refused"]
    # What is wrong, and what to do, in the same words; only what goes missing differs.
    reason = f"the results file {results} is in use by another program"
    assert planned.startswith(f"no expected accuracy: {reason}"), planned
    assert fitted.startswith(f"no calibrated interval: {reason}"), fitted
    assert planned.split(": ", 1)[1].replace("expected accuracy", "X") == fitted.split(": ", 1)[1].replace(
        "calibrated interval", "X"
    )
    assert "close that program and run this again" in planned
