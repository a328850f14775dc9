"""Revisiting-neural-scaling-laws benchmark adapter against the real ColPret files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import revisiting as rv
from scaleplan.core.sources.base import METRIC_KINDS


@pytest.fixture(scope="module")
def frames(mirror):
    return rv.read(mirror)


def test_92_evaluations_as_runs(frames):
    runs = frames.runs
    assert len(runs) == 92  # the benchmark README: 92 evaluations
    assert runs["run_id"].is_unique
    assert (runs["domain"] == "vision").sum() == 72 and (runs["domain"] == "language").sum() == 20
    assert (runs["run_id"].str.startswith("revisiting/ic-") == (runs["domain"] == "vision")).all()
    assert runs["num_params_derived"].all() and runs["planned_tokens"].isna().all()


def test_parameter_counts_from_the_benchmark_table(frames):
    params = frames.runs.set_index("run_id")["num_params"]
    assert params["revisiting/ic-vit-b-16/inet_5shot"] == 110e6
    assert params["revisiting/ic-bit-101-3/c_25shot"] == 494e6
    assert params["revisiting/ic-mix-l-16/cal_10shot"] == 226e6
    assert params["revisiting/lm-1.07e+09/val_loss"] == 1.07e9
    assert params["revisiting/lm-1.68e+07/val_loss"] == 1.68e7
    assert params["revisiting/bb-262m/date_1shot"] == 262e6
    assert (params[params.index.str.startswith("revisiting/nmt-")] == 300e6).all()


def test_architectures(frames):
    arch = frames.runs.set_index("run_id")["architecture"]
    nmt = arch[arch.index.str.startswith("revisiting/nmt-")]
    assert (nmt == "encoder-decoder").sum() == 4 and nmt["revisiting/nmt-dec-only/log_perplexity"] == "decoder"
    assert (arch[~arch.index.str.startswith("revisiting/nmt-")] == "decoder").all()


def test_families_and_metrics(frames):
    fam = frames.families.set_index("family")
    assert len(fam) == 24  # 12 IC tasks, 10 BB tasks, LM, NMT
    sizes = frames.runs[frames.runs["family"] == "revisiting-lm-val_loss"]["num_params"]
    assert sorted(sizes) == [1.68e7, 1.34e8, 2.62e8, 4.53e8, 1.07e9]
    assert (frames.runs.groupby("family").size()[[f for f in fam.index if "-ic-" in f]] == 6).all()
    kinds = frames.metrics.set_index("metric")["kind"]
    assert set(kinds) <= set(METRIC_KINDS)
    assert kinds["val/lm/loss"] == "loss" and kinds["val/nmt/log_ppl"] == "loss"
    assert kinds["downstream/inet_5shot/error"] == "error"
    assert kinds["downstream/bigbench_unit_2shot/error"] == "error"
    assert fam.loc["revisiting-ic-inet_5shot", "default_metric"] == "downstream/inet_5shot/error"
    assert set(frames.observations["metric"]) == set(kinds.index)
    assert not frames.metrics["higher_is_better"].any()


def test_observations_keep_the_benchmark_axis(mirror, frames):
    obs = frames.observations
    assert len(obs) == (1399 - 687) + 18883
    assert obs["tokens_derived"].all() and obs["flops_derived"].all()
    nmt = obs[obs["run_id"] == "revisiting/nmt-6-enc-6-dec/log_perplexity"].sort_values("tokens_seen")
    assert nmt["tokens_seen"].iloc[0] == 5e5 and nmt["tokens_seen"].iloc[-1] == 5.12e8
    assert nmt["value"].iloc[-1] == pytest.approx(0.340156)
    errors = obs[obs["metric"].str.endswith("/error")]["value"]
    assert errors.between(0, 1).all()
    params = frames.runs.set_index("run_id")["num_params"]
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(params) * obs["tokens_seen"])


def test_duplicate_lm_rows_are_counted(frames):
    assert frames.bad_rows == {"revisiting_lang.csv: exact duplicate row": 687}
    lm = frames.observations[frames.observations["metric"] == "val/lm/loss"]
    assert lm.groupby("run_id").size().to_dict() == {
        "revisiting/lm-1.07e+09/val_loss": 21,
        "revisiting/lm-1.34e+08/val_loss": 24,
        "revisiting/lm-1.68e+07/val_loss": 119,
        "revisiting/lm-2.62e+08/val_loss": 44,
        "revisiting/lm-4.53e+08/val_loss": 21,
    }


def _copy(mirror: Path, tmp_path: Path) -> Path:
    for rel in rv.PATTERNS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / rel, tmp_path / rel)
    return tmp_path


def test_malformed_rows_are_counted_and_the_rest_kept(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    vision = pd.read_csv(root / rv.VISION)
    vision["Loss"] = vision["Loss"].astype(object)
    vision.loc[0, "Loss"] = "nan?"
    vision.loc[1, "Model"] = "ViT/H/14"  # not in the benchmark's parameter table
    vision.to_csv(root / rv.VISION, index=False)
    frames = rv.read(root)
    assert frames.bad_rows["non-numeric or non-positive Seen Examples, non-numeric Loss, or no Domain/Task/Model"] == 1
    assert frames.bad_rows["model without a known parameter count"] == 1
    assert len(frames.observations) == (1399 - 687) + 18883 - 2
    assert len(frames.runs) == 92


def test_missing_file_raises_with_its_name(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    (root / rv.VISION).unlink()
    with pytest.raises(ValueError, match="revisiting_vision.csv"):
        rv.read(root)
