"""``scaleplan plan --task NAME``: the target's predicted accuracy on a task (or the 17-task average) in the
recommendation and the JSON."""

from __future__ import annotations

import json

import pytest

from scaleplan.core import cli

TARGET = ["--target-params", "7B", "--target-tokens", "140B", "--law-boot", "2", "--quiet"]
PLAN = ["--budget-dollars", "20000", "--accuracy", "5"]


@pytest.fixture()
def run(built_db, tmp_path, capsys):
    # no meta-analysis results: the plan has no expected ARE, which the task prediction does not need
    locations = ["--db", str(built_db), "--meta", str(tmp_path / "none.duckdb"), "--log-dir", str(tmp_path / "log")]

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["plan", *PLAN, *argv, *TARGET, *locations])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _in_points(value) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 100.0


def test_plan_task_json_states_the_accuracy_its_interval_and_its_source(run):
    code, out, err = run("--task", "arc_easy", "--json")
    assert code == 0, err
    doc = json.loads(out)
    task = doc["task"]
    assert task["name"] == "arc_easy" and task["refused"] is False and task["reason"] is None
    low, high = task["interval_90"]
    assert all(_in_points(v) for v in (task["predicted_accuracy_points"], low, high))
    assert low < task["predicted_accuracy_points"] < high
    # the link is fitted on collection runs that score the task (the default law borrows none)
    assert task["family"] == "overtrain-rpj" and "overtrain-rpj runs" in task["fitted_on"]
    assert "borrows no family" in task["source"] and "held-out errors of pythia" in task["interval_basis"]
    assert f"{task['predicted_accuracy_points']:.1f} points" in doc["recommendation"]
    average = doc["average_accuracy"]  # stated in the JSON with or without --task
    assert _in_points(average["predicted_accuracy_points"]) and average["name"] == "17-task average"


def test_a_refused_task_gives_its_reason_and_exit_0(run):
    code, out, err = run("--task", "mmlu", "--json")
    assert code == 0, err
    task = json.loads(out)["task"]
    assert task["refused"] is True and task["reason"] == "at_chance" and "sit at chance" in task["message"]
    assert task["predicted_accuracy_points"] is None and task["interval_90"] is None


def test_an_unknown_task_is_one_line_and_exit_2(run):
    code, _, err = run("--task", "no_such_task")
    assert code == 2 and err.count("\n") == 1 and "no_such_task" in err


def test_without_task_the_recommendation_states_the_17_task_average(run):
    code, out, err = run()
    assert code == 0, err
    assert "predicted average accuracy over Gadre et al.'s 17 tasks" in out and "90% interval" in out
    assert "not held out by source group" in out
