"""Over-training adapter against the real mlfoundations-scaling files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaleplan.core.sources import overtrain
from scaleplan.core.sources.base import METRIC_KINDS

EXP = Path("mlfoundations-scaling/exp_data")


@pytest.fixture(scope="module")
def frames(mirror):
    return overtrain.read(mirror)


def test_104_runs_in_three_dataset_families(frames):
    runs = frames.runs
    assert len(runs) == 104 and runs["run_id"].str.startswith("overtrain/").all()
    assert runs["family"].value_counts().to_dict() == {"overtrain-rpj": 35, "overtrain-rw": 35, "overtrain-c4": 34}
    assert set(runs["training_data"]) == {"C4", "RedPajama", "RefinedWeb"}
    assert set(frames.families["family"]) == set(runs["family"])
    assert (frames.families["default_metric"] == "val/c4_val/loss").all()
    assert not frames.bad_rows
    # six sizes, 0.011B to 6.9B
    assert runs["num_params"].nunique() == 6
    assert runs["num_params"].min() == 10_569_312 and runs["num_params"].max() == 6_889_410_560


def test_the_papers_targets_exist(frames):
    """methods/README: 1.4B at M=640 (RedPajama), 80 (C4), 320 (RefinedWeb); 6.9B at M=20 on all three."""
    names = frames.runs.set_index("run_id")["model_name"]
    assert names["overtrain/rpj-open_lm_1b-32.0"] == "open_lm_1b M=640"
    assert names["overtrain/c4_original-open_lm_1b-4.0"] == "open_lm_1b M=80"
    assert names["overtrain/rw_original-open_lm_1b-16.0"] == "open_lm_1b M=320"
    for data in ("c4_original", "rpj", "rw_original"):
        assert names[f"overtrain/{data}-open_lm_7b-1.0"] == "open_lm_7b M=20"
    assert names["overtrain/c4_original-d=96_l=8_h=4-1.0"] == "d=96_l=8_h=4 M=20"
    tokens = frames.runs.set_index("run_id")["planned_tokens"]
    assert 8.5e11 < tokens["overtrain/rpj-open_lm_1b-32.0"] < 9.5e11  # ~900B tokens
    assert 1.3e11 < tokens["overtrain/rpj-open_lm_7b-1.0"] < 1.45e11  # ~138B tokens


def test_eight_losses_and_46_accuracies_per_run(frames):
    kinds = frames.metrics.set_index("metric")["kind"]
    assert set(kinds) <= set(METRIC_KINDS)
    per_run = frames.observations.assign(kind=frames.observations["metric"].map(kinds))
    counts = per_run.groupby(["run_id", "kind"]).size().unstack()
    assert (counts["loss"] == 8).all() and (counts["accuracy"] == 46).all()
    assert len(counts) == 104
    acc = per_run["kind"] == "accuracy"
    assert per_run.loc[acc, "value"].between(0, 1).all()
    assert per_run.loc[~acc, "value"].between(1, 10).all()  # cross-entropies in nats/token


def test_tokens_flops_and_multipliers(frames, mirror):
    obs = frames.observations
    runs = frames.runs.set_index("run_id")
    assert (obs["tokens_seen"] == obs["run_id"].map(runs["planned_tokens"])).all()
    assert not obs["tokens_derived"].any() and obs["flops_derived"].all()
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(runs["num_params"]) * obs["tokens_seen"])
    mult = overtrain.multipliers(mirror).set_index("run_id")
    assert list(mult.columns) == ["token_multiplier", "dataset"] and len(mult) == 104
    assert set(mult["dataset"]) == {"c4", "rpj", "rw"}
    assert mult["token_multiplier"].min() == 5 and mult["token_multiplier"].max() == 640
    # M is D/N (up to rounding of D)
    ratio = runs["planned_tokens"] / runs["num_params"]
    assert np.allclose(ratio[mult.index], mult["token_multiplier"], rtol=0.01)


def test_c4_loss_falls_with_size_at_m20(frames, mirror):
    obs = frames.observations
    mult = overtrain.multipliers(mirror).set_index("run_id")["token_multiplier"]
    c4 = obs[obs["metric"] == "val/c4_val/loss"].set_index("run_id")["value"]
    runs = frames.runs.set_index("run_id")
    for family, group in runs[mult[runs.index] == 20].groupby("family"):
        assert c4[group.sort_values("num_params").index].is_monotonic_decreasing, family


def test_metric_domains_use_the_task_metadata(frames):
    domain = frames.metrics.set_index("metric")["domain"]
    assert "random baseline 50%" in domain["downstream/piqa/acc"]
    assert "C4 eval" in domain["val/c4_val/loss"]


def _copy(mirror: Path, tmp_path: Path) -> Path:
    shutil.copytree(mirror / EXP, tmp_path / EXP, copy_function=shutil.copyfile)
    return tmp_path


def test_malformed_rows_are_counted_and_the_rest_kept(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    models = root / EXP / "models"
    one = models / "rpj-d=96_l=8_h=4-1.0.json"
    data = json.loads(one.read_text())
    data["results"][1]["loss"] = "NaN-ish"
    one.write_text(json.dumps(data))
    two = models / "rw_original-d=512_l=8_h=4-2.0.json"
    data = json.loads(two.read_text())
    data["hyperparameters"]["params"] = -1
    two.write_text(json.dumps(data))
    frames = overtrain.read(root)
    assert frames.bad_rows["non-numeric or non-finite value"] == 1
    assert frames.bad_rows["model file with missing or non-positive params/tokens/multiplier"] == 1
    assert frames.bad_rows["value of a run without a valid model file"] == 46  # its eval file
    assert len(frames.runs) == 103
    per_run = frames.observations.groupby("run_id").size()
    assert per_run["overtrain/rpj-d=96_l=8_h=4-1.0"] == 53
    assert "overtrain/rpj-d=96_l=8_h=4-1.0" in set(
        frames.observations.loc[frames.observations["metric"] == "val/paloma_c4_en/loss", "run_id"]
    )


def test_unreadable_file_raises_with_its_name(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    (root / EXP / "evals" / "evaluation_rpj-open_lm_7b-1.0_heavy.json").write_text("not json")
    with pytest.raises(ValueError, match="evaluation_rpj-open_lm_7b-1.0_heavy.json"):
        overtrain.read(root)
