"""scaleplan reproduce downstream: single-task predictions of the two testbeds' largest runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scaleplan.core import downstream
from scaleplan.core.cli import main


@pytest.fixture(scope="module")
def report(built_db, tmp_path_factory):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--db", str(built_db), "reproduce", "downstream", "--json"]) == 0
    return json.loads(out.getvalue())


def test_json_has_the_issue_shape(report):
    assert report["holdout"] == "source"
    assert {"tasks", "average", "holdout"} <= set(report)
    for task in report["tasks"]:
        assert {"task", "targets", "mean_abs_error_points", "coverage_90", "refused"} <= set(task)
        assert bool(task["targets"]) or task["refused"]  # answered somewhere or refused with reasons
        for refusal in task["refused"]:
            assert refusal["reason"] in downstream.REFUSAL_RULES
            assert refusal["message"]
    per_source = report["average"]["per_source"]
    assert set(per_source) == {"overtrain", "pythia"}
    assert per_source["overtrain"]["tasks"] == 46


def test_overtrain_targets_are_the_papers_and_their_actual_scores_the_eval_files(report, mirror):
    """The targets are the over-trained 1.4B and the 6.9B M=20 run of each training set, and the actual
    points are 100 x the accuracy in the testbed's own eval JSON (read here, not from the database)."""
    names = {
        ("overtrain-rpj", "1.4B-M640"): "rpj-open_lm_1b-32.0",
        ("overtrain-c4", "1.4B-M80"): "c4_original-open_lm_1b-4.0",
        ("overtrain-rw", "1.4B-M320"): "rw_original-open_lm_1b-16.0",
        ("overtrain-rpj", "6.9B-M20"): "rpj-open_lm_7b-1.0",
        ("overtrain-c4", "6.9B-M20"): "c4_original-open_lm_7b-1.0",
        ("overtrain-rw", "6.9B-M20"): "rw_original-open_lm_7b-1.0",
    }
    evals = mirror / "mlfoundations-scaling/exp_data/evals"
    seen = 0
    for task in report["tasks"]:
        if task["source"] != "overtrain":
            continue
        for target in task["targets"]:
            stem = names[(target["family"], target["target"])]
            icl = json.loads((evals / f"evaluation_{stem}_heavy.json").read_text())["eval_metrics"]["icl"]
            assert target["actual_points"] == pytest.approx(100 * icl[task["task"]], abs=1e-9)
            seen += 1
    assert seen == report["average"]["per_source"]["overtrain"]["answered_targets"] > 0


def test_mmlu_is_refused_at_chance_on_the_small_over_training_runs(report):
    """Gadre et al.: MMLU is at chance for these models (not in their 17-task subset)."""
    mmlu = next(t for t in report["tasks"] if t["source"] == "overtrain" and t["task"] == "mmlu_zeroshot")
    assert mmlu["targets"] == []
    assert {r["reason"] for r in mmlu["refused"]} == {"at_chance"}


def test_intervals_are_calibrated_on_the_other_source_only(report):
    """Each source's 90% interval is prediction +- q x scale with q the split conformal quantile of the
    *other* source's |error| / scale, recomputed here from the reported targets."""
    targets = {
        s: [t for task in report["tasks"] if task["source"] == s for t in task["targets"]]
        for s in ("overtrain", "pythia")
    }
    for source, other in (("overtrain", "pythia"), ("pythia", "overtrain")):
        scores = np.array([t["abs_error_points"] / t["scale_points"] for t in targets[other]])
        q = downstream.conformal_quantile(scores, 0.9)
        assert math.isfinite(q)
        assert report["average"]["conformal_quantile"][source] == pytest.approx(q)
        for t in targets[source]:
            assert t["lower_points"] == pytest.approx(max(0.0, t["predicted_points"] - q * t["scale_points"]))
            assert t["upper_points"] == pytest.approx(min(100.0, t["predicted_points"] + q * t["scale_points"]))
            assert t["covered_90"] == (t["lower_points"] <= t["actual_points"] <= t["upper_points"])
        covered = np.mean([t["covered_90"] for t in targets[source]])
        assert report["average"]["per_source"][source]["coverage_90"] == pytest.approx(covered)
        free = [abs(t["free_ceiling_points"] - t["actual_points"]) for t in targets[source] if t["free_ceiling_points"]]
        assert report["average"]["per_source"][source]["free_ceiling_mean_abs_error_points"] == pytest.approx(
            np.mean(free)
        )
        mae = np.mean([abs(t["predicted_points"] - t["actual_points"]) for t in targets[source]])
        assert report["average"]["per_source"][source]["mean_abs_error_points"] == pytest.approx(mae)


def test_gadre_average_is_reported_beside_the_single_tasks(report):
    rows = report["average"]["gadre_17_task_average_error"]
    assert len(rows) == 6
    for row in rows:
        assert row["abs_error_points"] == pytest.approx(100 * abs(row["predicted"] - row["actual"]))


def test_held_out_coverage_per_source_group_and_over_all_answered_targets(report):
    """Holding out the source group, the 90% intervals realise at least 75% in each group and 85-95%
    over every answered target (measured with the refusal rules of core.downstream: overtrain 83.3% of
    42, Pythia 94.3% of 35, all 88.3% of 77)."""
    per_source = report["average"]["per_source"]
    for source, row in per_source.items():
        assert row["answered_targets"] >= 30, source
        assert row["coverage_90"] >= 0.75, (source, row["coverage_90"])
    assert 0.85 <= report["average"]["all"]["coverage_90"] <= 0.95


def test_refused_tasks_are_listed_counted_and_explained(report):
    """Every task without an answered target is named in its source's refused_task_names and counted in
    refused_tasks; each refusal names a declared rule; refusals_by_reason adds up the refusals."""
    for source, row in report["average"]["per_source"].items():
        tasks = [t for t in report["tasks"] if t["source"] == source]
        unanswered = sorted(t["task"] for t in tasks if not t["targets"])
        assert row["refused_task_names"] == unanswered
        assert row["refused_tasks"] == len(unanswered) == row["tasks"] - row["answered_tasks"]
        assert sum(row["refusals_by_reason"].values()) == sum(len(t["refused"]) for t in tasks)
        assert set(row["refusals_by_reason"]) <= set(downstream.REFUSAL_RULES)
    # an extrapolation refusal is one target's, and only that target is missing from its task
    for task in report["tasks"]:
        for refusal in task["refused"]:
            if refusal["reason"] == "extrapolation":
                assert refusal["target"] not in {
                    t["target"] for t in task["targets"] if t["family"] == refusal["family"]
                }
            else:
                assert refusal["target"] is None and all(t["family"] != refusal["family"] for t in task["targets"])
