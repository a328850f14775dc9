"""`scaleplan brief`: no brief of error text when no named scenario can be planned, and each output flag
writes the kind of file its name says (review 5: E13, E14)."""

from __future__ import annotations

import pytest

from scaleplan.core import cli, scenarios

RUNS = "run_name,num_params,tokens_seen,loss\n" + "".join(
    f"r{n:.0f},{n:.0f},{d:.0f},{1.7 + 400 / n**0.34 + 410 / d**0.28:.5f}\n"
    for n in (1e7, 3e7, 1e8, 3e8)
    for d in (2e8, 4e8, 8e8)
)
PLAN = ["--target-params", "7B", "--target-tokens", "140B", "--budget-dollars", "100000", "--accuracy", "5"]


def _cli(tmp_path, capsys, built_db, *argv):
    base = ["--log-dir", str(tmp_path / "log"), "--data-dir", str(tmp_path / "data"), "--db", str(built_db)]
    code = cli.main([*base, "--user-db", str(tmp_path / "user.duckdb"), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_brief_of_scenarios_none_of_which_can_be_planned_is_refused(tmp_path, capsys, built_db):
    runs = tmp_path / "runs.csv"
    runs.write_text(RUNS)
    assert _cli(tmp_path, capsys, built_db, "runs", "add", str(runs), "--name", "st")[0] == 0
    for name in ("sc3", "sc4"):
        code, _, err = _cli(
            tmp_path, capsys, built_db, "scenario", "save", "--name", name, "--study", "st", "--law", "fit:st", *PLAN
        )
        assert code == 0, err
    # removing a study that saved scenarios plan on takes --force (b415812)
    assert _cli(tmp_path, capsys, built_db, "runs", "remove", "st", "--force")[0] == 0
    pdf = tmp_path / "sc3.pdf"
    code, out, err = _cli(
        tmp_path, capsys, built_db, "brief", "--scenario", "sc3", "--scenario", "sc4", "--pdf", str(pdf), "--quiet"
    )
    assert code == cli.EXIT_USER_ERROR, err
    assert "no brief was written" in err and "'sc3'" in err and "'sc4'" in err and "st" in err
    assert err.strip().count("\n") == 0 and "internal error" not in err
    assert not pdf.exists()


def test_the_refusal_names_each_scenario_and_a_brief_with_one_plannable_scenario_goes_on():
    inputs = scenarios.PlanInputs(
        target_params=7e9, target_tokens=1.4e11, budget_dollars=1e5, accuracy_percent=5.0, study="gone"
    )
    gone = scenarios.ScenarioUnavailable(name="a", inputs=inputs, reason="its study 'gone' is not stored")
    from scaleplan.core.cli import brief as brief_cli

    message = brief_cli.unavailable_message([gone])
    assert message is not None and "'a': its study 'gone' is not stored" in message
    planned = object.__new__(scenarios.ScenarioOutcome)  # any outcome that could be planned
    assert brief_cli.unavailable_message([gone, planned]) is None


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--pdf", "out/x.pptx"], "--pdf"),
        (["--pptx", "out/x.pdf"], "--pptx"),
        (["--pdf", "out/x"], "--pdf"),
        (["--pdf", "out/x.pdf", "--pptx", "out/x.ppt"], "--pptx"),
        (["--pdf", ""], "--pdf"),
    ],
)
def test_an_output_whose_name_says_another_kind_of_file_is_refused(tmp_path, capsys, built_db, flags, named):
    (tmp_path / "out").mkdir()
    flags = [str(tmp_path / f) if f.startswith("out/") else f for f in flags]
    code, out, err = _cli(tmp_path, capsys, built_db, "brief", "--scenario", "any", *flags, "--quiet")
    assert code == cli.EXIT_USER_ERROR, err
    assert err.startswith(f"scaleplan: error: {named} ") and ".pdf" in err and ".pptx" in err
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("flags", [["--pdf", "B.PDF"], ["--pptx", "deck.PPTX"], ["--pdf", "a.Pdf", "--pptx", "a.pPtx"]])
def test_the_suffix_is_compared_case_insensitively(tmp_path, capsys, built_db, flags):
    flags = [str(tmp_path / f) if f.endswith(("PDF", "PPTX", "Pdf", "pPtx")) else f for f in flags]
    code, out, err = _cli(tmp_path, capsys, built_db, "brief", "--scenario", "nosuch", *flags, "--quiet")
    assert code == cli.EXIT_USER_ERROR and "nosuch" in err and "must end in" not in err  # got past the names
