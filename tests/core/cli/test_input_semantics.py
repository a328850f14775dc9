"""What the CLI makes of inputs that are valid numbers and names but not what was meant: a size typed
without its suffix, flags that conflict or would be ignored, names that are nearly right (review 5)."""

from __future__ import annotations

from scaleplan.core import cli
from tests.core.cli.test_runs import _wandb_and_csv


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _base(tmp_path):
    return [
        "--db",
        str(tmp_path / "none.duckdb"),
        "--user-db",
        str(tmp_path / "user.duckdb"),
        "--log-dir",
        str(tmp_path / "log"),
    ]


def _one_line_error(code, err, *words):
    assert code == cli.EXIT_USER_ERROR, err
    lines = [line for line in err.splitlines() if line.startswith("scaleplan")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_a_target_below_every_run_is_a_downward_extrapolation_with_the_suffix_hint(tmp_path, capsys):
    plain = _wandb_and_csv(tmp_path)[1]  # runs of 20M to 320M parameters
    fit = ["fit", "--runs", str(plain), "--predict-d", "20B", "--bootstrap", "0"]
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--predict-n", "7")
    assert code == 0, err
    assert "inside the size range" not in err and "interpolation" not in err
    assert "lies below every run (smallest 20M params): a downward extrapolation" in err
    assert "did you mean 7B?" in err  # 7M is still below 20M
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--predict-n", "50")
    assert "did you mean 50M or 50B?" in err
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--predict-n", "10M")  # typed with its suffix: no hint
    assert "lies below every run" in err and "did you mean" not in err
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--predict-n", "100M")
    assert "inside the size range of your runs" in err
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--predict-n", "1B")
    assert "inside the size range" not in err and "lies below" not in err
