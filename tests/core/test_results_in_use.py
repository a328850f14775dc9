"""A meta-analysis results file held by another process is "in use" (exit 2, untouched), never an internal error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scaleplan.core import cli, errors, meta
from tests.core.test_storage_in_use import _siblings
from tests.helpers import held_for_writing


@pytest.fixture
def held_results(tmp_path: Path) -> Iterator[Path]:
    """A healthy results file (scaleplan's own tables, no rows) that another process holds for writing."""
    path = tmp_path / "meta.duckdb"
    meta.open_results(path).close()
    with held_for_writing(path):
        yield path


def _runs_file(tmp_path: Path) -> Path:
    """Six sizes, five checkpoints each, on a Chinchilla-shaped surface (a fit that succeeds)."""
    lines = ["run_name,num_params,tokens_seen,loss"]
    for n in (20e6, 40e6, 80e6, 160e6, 320e6, 640e6):
        for d in (2e8, 5e8, 1e9, 3e9, 8e9):
            lines.append(f"r{n:.0f},{n:.0f},{d:.0f},{1.69 + 406.4 / n**0.34 + 410.7 / d**0.28:.5f}")
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("read_only", [True, False])
def test_open_results_says_in_use(held_results: Path, read_only: bool) -> None:
    before = (held_results.read_bytes(), _siblings(held_results))
    with pytest.raises(meta.ResultsInUseError, match="in use by another program") as caught:
        meta.open_results(held_results, read_only=read_only)
    assert isinstance(caught.value, errors.UserError)
    assert "PID" in str(caught.value) and "--meta" in str(caught.value)
    assert "Conflicting lock" not in str(caught.value)
    assert (held_results.read_bytes(), _siblings(held_results)) == before


@pytest.mark.parametrize("command", [["reproduce", "hitchhiker"], ["meta", "run", "--quiet", "--limit", "1"]])
def test_cli_exits_2_on_a_results_file_in_use(
    held_results: Path, built_db: Path, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = (held_results.read_bytes(), _siblings(held_results))
    where = ["--db", str(built_db), "--meta", str(held_results), "--log-dir", str(tmp_path / "log")]
    assert cli.main([*where, *command]) == 2
    err = capsys.readouterr().err
    assert "in use by another program" in err and "internal error" not in err
    assert not (tmp_path / "log").exists()  # nothing was logged as a bug
    assert (held_results.read_bytes(), _siblings(held_results)) == before


def test_fit_says_the_interval_waits_for_the_results_file(
    held_results: Path, built_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--db", str(built_db), "--meta", str(held_results), "--log-dir", str(tmp_path / "log")]
    target = ["--predict-n", "7B", "--predict-d", "1.4T", "--bootstrap", "0"]
    assert cli.main([*where, "fit", "--runs", str(_runs_file(tmp_path)), *target]) == 0
    out = capsys.readouterr().out
    assert "no calibrated interval: the results file" in out and "in use by another program" in out
    assert "IO Error" not in out and "Conflicting lock" not in out


def test_plan_prices_the_study_while_the_results_file_is_in_use(
    held_results: Path, built_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--db", str(built_db), "--meta", str(held_results), "--log-dir", str(tmp_path / "log")]
    plan = ["plan", "--target-params", "7B", "--target-tokens", "140B", "--budget-dollars", "20000"]
    assert cli.main([*where, *plan, "--accuracy", "5", "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    text = json.dumps(doc)
    assert "in use by another program" in text and "Conflicting lock" not in text
    # 7B on 140B tokens: C = 6 N D = 5.88e21 FLOPs, whatever the error model.
    assert doc["target"]["flops"] == pytest.approx(6 * 7e9 * 140e9)
