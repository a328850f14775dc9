"""scaleplan fit --family F --task NAME: the target's accuracy on a task, two steps, with its interval."""

from __future__ import annotations

import json

import pytest

from scaleplan.core.cli import main


def _run(built_db, capsys, *extra):
    code = main(["--db", str(built_db), "fit", "--family", "pythia", "--bootstrap", "0", *extra])
    return code, capsys.readouterr()


def test_fit_task_predicts_the_12b_accuracy_with_an_interval(built_db, capsys, mirror):
    code, out = _run(built_db, capsys, "--task", "zero-shot/arc_easy", "--json")
    assert code == 0
    task = json.loads(out.out)["task"]
    assert task["refused"] is False and task["reason"] is None
    assert task["task"] == "zero-shot/arc_easy" and task["shots"] == 0 and task["chance_points"] == 25.0
    assert 25.0 < task["predicted_points"] < 100.0
    assert task["low_points"] < task["predicted_points"] < task["high_points"]
    assert "held-out errors of overtrain" in task["interval_basis"]  # Pythia's interval learned without Pythia
    # the actual accuracy is the 12B run's final file (step 143000), read here from the mirror
    results = json.loads((mirror / "pythia/evals/pythia-v1/pythia-12b/zero-shot/12b_step143000.json").read_text())
    assert task["actual_points"] == pytest.approx(100 * results["results"]["arc_easy"]["acc"])


def test_a_task_at_chance_is_refused_with_its_reason_next_to_the_loss(built_db, capsys):
    """A refused prediction is an answer (exit 0): the reason is printed, the loss prediction stands."""
    code, out = _run(built_db, capsys, "--task", "zero-shot/hendrycksTest-anatomy")
    assert code == 0, out.err
    refusal = next(line for line in out.out.splitlines() if line.startswith("no accuracy prediction"))
    assert "sit at chance" in refusal and "hendrycksTest-anatomy" in refusal
    assert any(line.startswith("predicted loss: ") for line in out.out.splitlines())
    code, out = _run(built_db, capsys, "--task", "zero-shot/hendrycksTest-anatomy", "--json")
    assert code == 0, out.err
    doc = json.loads(out.out)
    task = doc["task"]
    assert task["refused"] is True and task["reason"] == "at_chance" and "sit at chance" in task["message"]
    assert task["task"] == "zero-shot/hendrycksTest-anatomy" and task["predicted_points"] is None
    # the loss prediction is the one the same fit gives without --task
    code, alone = _run(built_db, capsys, "--json")
    assert code == 0 and doc["prediction"] == json.loads(alone.out)["prediction"]


def test_an_unknown_task_names_the_familys_tasks(built_db, capsys):
    code, out = _run(built_db, capsys, "--task", "mmlu")
    assert code == 2
    assert "has no accuracy on that task" in out.err and "arc_challenge" in out.err


def test_a_task_with_two_shot_counts_names_both_choices_once(built_db, capsys):
    """Pythia scores arc_easy zero- and five-shot (the mirror's evals/<model>/{zero-shot,five-shot})."""
    code, out = _run(built_db, capsys, "--task", "arc_easy")
    assert code == 2
    assert "scores it with 0 and 5 shots; name one: zero-shot/arc_easy or five-shot/arc_easy" in out.err
    assert "did you mean" not in out.err  # the choices are named once
