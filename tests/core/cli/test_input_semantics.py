"""What the CLI makes of inputs that are valid numbers and names but not what was meant: a size typed
without its suffix, flags that conflict or would be ignored, names that are nearly right (review 5)."""

from __future__ import annotations

import json

import pandas as pd

from scaleplan.core import cli, units
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
    assert "inside the size range of your runs: an interpolation in model size" in err
    # review7/review8: inside the sizes is still a reach in compute, said with the factor (6 N D over the
    # most expensive run's); and no claim that every run is used
    assert "every run is used" not in err and "extrapolation to" not in err  # cheaper than the dearest run
    code, _, err = _run(
        capsys,
        *_base(tmp_path),
        "fit",
        "--runs",
        str(plain),
        "--bootstrap",
        "0",
        "--predict-n",
        "100M",
        "--predict-d",
        "2T",
    )
    rows = pd.read_csv(plain)
    reach = 6 * 100e6 * 2e12 / (6 * rows["num_params"] * rows["tokens_seen"]).max()
    assert f"an interpolation in model size, but an extrapolation to {units.format_ratio(reach)} the compute" in err
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--predict-n", "1B")
    assert "inside the size range" not in err and "lies below" not in err


def test_one_output_gives_one_hint_that_sizes_take_a_suffix(tmp_path, capsys, built_db):
    few = tmp_path / "few.csv"  # 3 sizes of 10M-100M, 3 budgets each: too few for a backtest
    few.write_text(
        "run_name,num_params,tokens_seen,loss\n"
        + "".join(
            f"r{n:.0f},{n:.0f},{d:.0f},{1.7 + 400 / n**0.34 + 410 / d**0.28:.5f}\n"
            for n in (1e7, 3e7, 1e8)
            for d in (2e8, 4e8, 8e8)
        )
    )
    plain = _wandb_and_csv(tmp_path)[1]  # 20M to 320M, enough for a backtest
    for runs, backtested in ((few, False), (plain, True)):
        for mode in ([], ["--json"]):
            fit = ["fit", "--runs", str(runs), "--predict-d", "20B", "--bootstrap", "0", "--predict-n", "7", *mode]
            where = ["--db", str(built_db), "--meta", str(tmp_path / "meta.duckdb")]  # the shipped calibration
            code, out, err = _run(capsys, *_base(tmp_path), *where, *fit)
            assert code == 0, err
            hints = (out + err).count("did you mean 7B?") + (out + err).count("sizes take a suffix")
            assert hints == 1, (runs.name, mode, out, err)
            # Core's hint is in the interval's refusal when the backtest reaches the target, else the note's.
            assert ("sizes take a suffix" in out) == backtested, (runs.name, mode)
            assert ("did you mean 7B?" in err) != ("sizes take a suffix" in out)


def _long_file(tmp_path):
    path = tmp_path / "long.csv"  # steps, no tokens: --tokens-per-step is what makes them tokens
    path.write_text(
        "run,seed,n_params,step,loss\nsmall,0,70_000_000,1000,3.90\nsmall,0,70_000_000,2000,3.61\n"
        "big,0,410_000_000,1000,3.52\nbig,0,410_000_000,2000,3.20\n"
    )
    return path


def test_tokens_per_step_below_one_is_refused_and_small_ones_warn_and_are_stated_unrounded(tmp_path, capsys):
    add = ["runs", "add", str(_long_file(tmp_path))]
    code, _, err = _run(capsys, *_base(tmp_path), *add, "--name", "half", "--tokens-per-step", "0.5")
    assert code == cli.EXIT_USER_ERROR and "'0.5' is below 1 token per step" in err and "like 2M" in err
    code, out, err = _run(capsys, *_base(tmp_path), *add, "--name", "odd", "--tokens-per-step", "2.5")
    assert code == 0, err
    assert "did you mean 2.5M?" in err
    assert "step x 2.5 tokens per step" in out  # 2,500 and 5,000 tokens: not "2 tokens per step"
    code, out, err = _run(capsys, *_base(tmp_path), *add, "--name", "ok", "--tokens-per-step", "2097152")
    assert code == 0 and "did you mean" not in err and "step x 2,097,152 tokens per step" in out
    export = tmp_path / "odd.csv"
    assert _run(capsys, *_base(tmp_path), "runs", "export", "odd", "--to", str(export))[0] == 0
    rows = [line.split(",") for line in export.read_text().splitlines()]
    tokens = {(row[0], float(row[5])): float(row[3]) for row in rows[1:]}  # (run, step) -> tokens
    assert tokens == {("small", 1000): 2500, ("small", 2000): 5000, ("big", 1000): 2500, ("big", 2000): 5000}


def test_file_options_the_file_does_not_use_are_refused(tmp_path, capsys):
    export, plain = _wandb_and_csv(tmp_path)  # the W&B export's run 'mystery' has no size in its name
    fit = ["fit", "--predict-n", "1B", "--predict-d", "20B", "--bootstrap", "0"]
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--runs", str(plain), "--tokens-per-step", "2M")
    _one_line_error(code, err, "--tokens-per-step 2M is not used", "plain.csv gives its tokens (tokens_seen)")
    code, _, err = _run(capsys, *_base(tmp_path), *fit, "--runs", str(plain), "--params", "run-20m=20M")
    _one_line_error(code, err, "--params is not used", "plain.csv gives each run's size (num_params)")
    wandb = ["--runs", str(export), "--tokens-per-step", "2M", "--params", "mystery=320M"]
    code, _, err = _run(capsys, *_base(tmp_path), *fit, *wandb, "--params", "mystry=1B")
    _one_line_error(code, err, "has no run 'mystry'", "did you mean mystery?", "run-20m, run-40m")
    code, _, err = _run(capsys, *_base(tmp_path), *fit, *wandb, "--params", "mystery=1B")
    _one_line_error(code, err, "--params gives the size of 'mystery' more than once")
    code, _, err = _run(capsys, *_base(tmp_path), *fit, *wandb, "--metric", "nope")
    _one_line_error(code, err, "--metric nope is not used with --runs")
    assert _run(capsys, *_base(tmp_path), *fit, *wandb)[0] == 0


def test_fit_flags_that_are_alternatives_are_refused(tmp_path, capsys):
    plain = _wandb_and_csv(tmp_path)[1]
    code, _, err = _run(
        capsys, *_base(tmp_path), "fit", "--runs", str(plain), "--family", "pythia", "--predict-n", "1B",
        "--predict-d", "20B",
    )  # fmt: skip
    _one_line_error(code, err, "--family pythia is not used with --runs")
    target = ["--target", "pythia/pythia-6.9b", "--predict-n", "7B", "--predict-d", "1T"]
    code, _, err = _run(capsys, *_base(tmp_path), "fit", "--family", "pythia", *target)
    _one_line_error(code, err, "--target pythia/pythia-6.9b and --predict-n/--predict-d are alternatives")
    borrow = ["--borrow", "alpha=0.3", "--borrow", "alpha=0.4"]
    code, _, err = _run(capsys, *_base(tmp_path), "fit", "--family", "pythia", *borrow)
    _one_line_error(code, err, "--borrow alpha is given more than once")


def test_runs_show_refuses_a_budget_and_a_size_together(tmp_path, capsys):
    plain = _wandb_and_csv(tmp_path)[1]
    assert _run(capsys, *_base(tmp_path), "runs", "add", str(plain), "--name", "s")[0] == 0
    both = ["--predict-n", "7B", "--predict-d", "1T", "--target-flops", "1e23"]
    code, _, err = _run(capsys, *_base(tmp_path), "runs", "show", "s", *both)
    _one_line_error(code, err, "--target-flops and --predict-n/--predict-d are alternatives")


def test_plan_says_which_token_column_of_a_runs_file_is_used(tmp_path, capsys):
    from scaleplan.core.cli import plan

    path = tmp_path / "cand.csv"
    path.write_text("num_params,tokens,tokens_per_param,seeds\n1e8,2e9,30,1\n")
    plan.both_token_columns_note(str(path))
    assert "gives both tokens and tokens_per_param: each run's tokens column is used" in capsys.readouterr().err
    path.write_text("num_params,tokens,seeds\n1e8,2e9,1\n")
    plan.both_token_columns_note(str(path))
    assert capsys.readouterr().err == ""


PLAN = ["--target-params", "7B", "--target-tokens", "1T", "--budget-dollars", "1M", "--accuracy", "5"]


def test_scenario_save_json_prints_the_saved_scenario(tmp_path, capsys):
    code, out, err = _run(capsys, *_base(tmp_path), "scenario", "save", "--name", "sc1", *PLAN, "--json")
    assert code == 0, err
    saved = json.loads(out)
    assert saved["name"] == "sc1" and saved["inputs"]["target_params"] == 7e9
    assert saved["inputs"]["budget_dollars"] == 1e6 and saved["inputs"]["accuracy_percent"] == 5
    code, out, _ = _run(capsys, *_base(tmp_path), "scenario", "list", "--json")
    assert json.loads(out)["scenarios"] == [saved]


def test_a_fit_law_on_a_study_needs_its_study_and_a_mistyped_family_gets_the_closest(tmp_path, capsys, built_db):
    base = [*_base(tmp_path), "--db", str(built_db)]
    plain = _wandb_and_csv(tmp_path)[1]
    assert _run(capsys, *base, "runs", "add", str(plain), "--name", "wb")[0] == 0
    save = ["scenario", "save", "--name", "sw", *PLAN, "--law", "fit:wb"]
    code, _, err = _run(capsys, *base, *save)
    _one_line_error(code, err, "'wb' is one of your stored studies, not a collection family", "add --study wb")
    code, out, _ = _run(capsys, *base, "scenario", "list", "--json")
    assert '"sw"' not in out  # nothing saved
    assert _run(capsys, *base, *save, "--study", "wb")[0] == 0
    code, _, err = _run(capsys, *base, "plan", *PLAN, "--quiet", "--law", "fit:wb")
    _one_line_error(code, err, "'wb' is one of your stored studies", "add --study wb")
    code, _, err = _run(capsys, *base, "plan", *PLAN, "--quiet", "--law", "fit:pythi")
    _one_line_error(code, err, "the collection has no family 'pythi'", "did you mean fit:pythia")
    code, _, err = _run(capsys, *base, "scenario", "save", "--name", "sp", *PLAN, "--law", "fit:pythi")
    _one_line_error(code, err, "did you mean fit:pythia")


def test_removing_a_study_that_saved_scenarios_use_is_refused_unless_forced(tmp_path, capsys):
    plain = _wandb_and_csv(tmp_path)[1]
    base = _base(tmp_path)
    assert _run(capsys, *base, "runs", "add", str(plain), "--name", "r7")[0] == 0
    assert _run(capsys, *base, "runs", "add", str(plain), "--name", "other")[0] == 0
    for name in ("sc1", "sc2"):
        assert (
            _run(capsys, *base, "scenario", "save", "--name", name, *PLAN, "--study", "r7", "--law", "fit:r7")[0] == 0
        )
    assert _run(capsys, *base, "scenario", "save", "--name", "sc3", *PLAN)[0] == 0  # the collection: not counted
    code, _, err = _run(capsys, *base, "runs", "remove", "r7")
    _one_line_error(code, err, "2 saved scenarios ('sc1', 'sc2') plan on the study 'r7'", "--force")
    assert "r7\t" in _run(capsys, *base, "runs", "list")[1]  # still stored
    code, out, _ = _run(capsys, *base, "runs", "remove", "other")  # used by none: removed as before
    assert code == 0 and out == "removed study 'other'; the other studies are unchanged\n"
    code, out, err = _run(capsys, *base, "runs", "remove", "r7", "--force")
    assert code == 0, err
    assert (
        out
        == "removed study 'r7'; the other studies are unchanged; 2 saved scenarios that used it are now unavailable\n"
    )
    assert "r7\t" not in _run(capsys, *base, "runs", "list")[1]


def test_a_target_outside_the_family_is_named_with_the_familys_runs(tmp_path, capsys, built_db):
    fit = [*_base(tmp_path), "--db", str(built_db), "fit", "--family", "pythia", "--bootstrap", "0", "--target"]
    code, _, err = _run(capsys, *fit, "opt/opt-13b")
    _one_line_error(code, err, "that run is in the family 'opt', not 'pythia'", "give --family opt")
    assert "pythia/pythia-12b" in err and "no observations" not in err
    code, _, err = _run(capsys, *fit, "nope")
    _one_line_error(code, err, "family 'pythia' has no run 'nope'", "pythia/pythia-70m", "pythia/pythia-12b")
    code, _, err = _run(capsys, *fit, "Pythia/pythia-12b")
    _one_line_error(code, err, "did you mean pythia/pythia-12b")
    code, out, err = _run(capsys, *fit, "pythia-12b", "--json")
    assert code == 0, err
    assert "read as pythia/pythia-12b" in err and '"run": "pythia/pythia-12b"' in out


def test_a_small_mfu_without_a_percent_sign_gets_a_note(capsys):
    import argparse

    from scaleplan.core.cli import plan

    def notes(mfu):
        return plan.percent_flags(argparse.Namespace(mfu=mfu, accuracy="5"))[2]

    (note,) = notes("1")
    assert "--mfu: 1 was read as 1%" in note and "40x dearer than the default 40%" in note and "100" in note
    assert notes("1%") == [] and notes("40") == [] and notes(40.0) == []  # a % sign says it is meant
    assert "was read as a fraction, 40%" in notes("0.4")[0]  # the fraction rule is unchanged


def test_dollar_amounts_take_a_leading_dollar_sign_and_say_dollars(tmp_path, capsys):
    save = [*_base(tmp_path), "scenario", "save", "--name", "d", *PLAN[:4], "--accuracy", "5", "--json"]
    code, out, err = _run(capsys, *save, "--budget-dollars", "$1M")
    assert code == 0, err
    assert json.loads(out)["inputs"]["budget_dollars"] == 1e6
    code, out, err = _run(capsys, *save, "--budget-dollars", "$1,000", "--replace")  # as the pages write amounts
    assert code == 0, err
    assert json.loads(out)["inputs"]["budget_dollars"] == 1000
    code, _, err = _run(capsys, *save, "--budget-dollars", "a lot", "--replace")
    assert code == cli.EXIT_USER_ERROR and "cannot read 'a lot'; give an amount in dollars like 20000 or 20k" in err
    code, _, err = _run(capsys, *save, "--budget-dollars", "1M", "--dollars-per-gpu-hour", "0", "--replace")
    assert code == cli.EXIT_USER_ERROR and "must be more than $0, got $0.00" in err and "0 $" not in err


def test_a_task_in_another_case_or_with_spaces_gets_did_you_mean(tmp_path, capsys, built_db):
    fit = [*_base(tmp_path), "--db", str(built_db), "fit", "--family", "pythia", "--bootstrap", "0", "--task"]
    for typed in ("Arc_Easy", " arc_easy"):
        code, _, err = _run(capsys, *fit, typed)
        _one_line_error(code, err, "did you mean five-shot/arc_easy, zero-shot/arc_easy?")
    plan = [*_base(tmp_path), "--db", str(built_db), "plan", *PLAN, "--quiet", "--law-boot", "20", "--task"]
    code, _, err = _run(capsys, *plan, "ARC_EASY")
    _one_line_error(code, err, "did you mean arc_easy")


def test_a_scenario_named_twice_is_named(tmp_path, capsys):
    assert _run(capsys, *_base(tmp_path), "scenario", "save", "--name", "sc1", *PLAN)[0] == 0
    code, _, err = _run(capsys, *_base(tmp_path), "scenario", "compare", "sc1", "sc1")
    _one_line_error(code, err, "the scenario 'sc1' is named more than once")


def test_a_sweep_family_in_another_case_gets_did_you_mean(tmp_path, capsys, built_db):
    where = [*_base(tmp_path), "--db", str(built_db), "--meta", str(tmp_path / "meta.duckdb")]
    run = [*where, "meta", "run", "--quiet", "--limit", "1", "--family"]
    code, _, err = _run(capsys, *run, "Pythia")
    _one_line_error(code, err, "not a family with a loss metric", "Pythia", "(did you mean pythia")
    code, _, err = _run(capsys, *run, "pythia", "--family", "OPT", "--family", "Pyhtia")  # several: each its own
    _one_line_error(code, err, "OPT: did you mean opt?", "Pyhtia: did you mean pythia")
    config = tmp_path / "sweep.toml"
    config.write_text('families = ["Pythia"]\n')
    code, _, err = _run(capsys, *where, "meta", "run", "--quiet", "--limit", "1", "--config", str(config))
    _one_line_error(code, err, "(did you mean pythia")
    code, _, err = _run(capsys, *where, "meta", "export", "--to", str(tmp_path / "out"), "--family", "Pythia")
    _one_line_error(code, err, "(did you mean pythia")
    assert not (tmp_path / "meta.duckdb").exists() and not (tmp_path / "out").exists()  # nothing written
