"""GPT-3 adapter against the real mirror files (curves digitised from the paper + Table 2.1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import gpt3
from scaleplan.core.sources.base import METRIC_KINDS

CURVES = Path("colpret/raw_data/gpt3/extracted.csv")
TABLE = Path("colpret/raw_data/gpt3/gpt3_metadata.xlsx")
# GPT-3 paper, Table 2.1 (n_params)
PAPER_SIZES = {
    "gpt3/gpt-3-small": 125e6,
    "gpt3/gpt-3-medium": 350e6,
    "gpt3/gpt-3-large": 760e6,
    "gpt3/gpt-3-xl": 1.3e9,
    "gpt3/gpt-3-2.7b": 2.7e9,
    "gpt3/gpt-3-6.7b": 6.7e9,
    "gpt3/gpt-3-13b": 13e9,
    "gpt3/gpt-3-175b": 175e9,
}


@pytest.fixture(scope="module")
def frames(mirror):
    return gpt3.read(mirror)


def test_eight_models_with_the_paper_sizes(frames):
    assert frames.runs.set_index("run_id")["num_params"].to_dict() == PAPER_SIZES
    assert (frames.runs["family"] == "gpt3").all() and (frames.runs["architecture"] == "decoder").all()
    assert (frames.runs["planned_tokens"] == 300e9).all()  # all GPT-3 models saw 300B tokens


def test_step_is_billions_of_tokens(frames):
    obs = frames.observations
    # the figure's x axis runs to 300B tokens; the digitised points start near 10B
    assert obs["tokens_seen"].max() == pytest.approx(300e9, rel=0.01)
    assert 9e9 < obs["tokens_seen"].min() < 13e9
    n = obs["run_id"].map(frames.runs.set_index("run_id")["num_params"])
    assert np.allclose(obs["flops"], 6 * n * obs["tokens_seen"])
    assert obs["flops_derived"].all() and not obs["tokens_derived"].any()


def test_points_per_pixel_are_collapsed_to_one(frames, mirror):
    raw = pd.read_csv(mirror / CURVES)
    expected = sum(raw.dropna(subset=[col]).groupby(["model", "step"]).ngroups for col in ("train_loss", "val_loss"))
    assert len(frames.observations) == expected
    assert not frames.observations.duplicated(["run_id", "tokens_seen", "metric"]).any()
    assert not frames.bad_rows


def test_final_losses_fall_with_size(frames):
    obs = frames.observations
    late = obs[(obs["metric"] == "val/loss") & (obs["tokens_seen"] > 280e9)]
    final = late.groupby("run_id")["value"].mean().reindex(list(PAPER_SIZES))
    assert final.is_monotonic_decreasing
    assert 1.7 < final["gpt3/gpt-3-175b"] < 1.85 and 2.6 < final["gpt3/gpt-3-small"] < 2.8


def test_invariants(frames):
    assert set(frames.metrics["kind"]) <= set(METRIC_KINDS)
    assert set(frames.metrics["metric"]) == {"val/loss", "train/loss"}
    assert frames.families.set_index("family")["default_metric"].to_dict() == {"gpt3": "val/loss"}


def test_malformed_rows_are_skipped_and_counted(mirror, tmp_path):
    for rel in (CURVES, TABLE):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mirror / rel, tmp_path / rel)
    lines = (tmp_path / CURVES).read_text().splitlines()
    lines[1] = "small,not-a-step,3.479039818,"
    lines[2] = "gpt-5,12.05258627,3.483370591,"
    lines[3] = "small,12.05258627,,"
    (tmp_path / CURVES).write_text("\n".join(lines) + "\n")
    frames = gpt3.read(tmp_path)
    assert frames.bad_rows == {
        "non-numeric or non-positive step": 1,
        "model not in the GPT-3 table": 1,
        "row without a numeric loss": 1,
    }
    assert len(frames.runs) == 8
    assert len(frames.observations) > 7000
