"""LLM360 Mamba-3B adapter against the real mirror file (colpret/aggregated_eval/llm360Mamba3B.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import mamba
from scaleplan.core.sources.base import METRIC_KINDS

SOURCE = Path("colpret/aggregated_eval/llm360Mamba3B.csv")


@pytest.fixture(scope="module")
def frames(mirror):
    return mamba.read(mirror)


def test_one_ssm_run(frames):
    run = frames.runs.iloc[0]
    assert len(frames.runs) == 1
    assert run["run_id"] == "mamba/llm360-mamba-3b" and run["family"] == "llm360-mamba"
    assert run["architecture"] == "ssm"
    assert run["num_params"] == 3e9 and run["num_params_derived"]  # from the "3B" label
    assert frames.families.set_index("family")["default_metric"].to_dict() == {"llm360-mamba": "train/loss"}


def test_every_row_gives_three_observations(frames, mirror):
    source = pd.read_csv(mirror / SOURCE)
    assert len(source) == 44_174
    counts = frames.observations.groupby("metric").size()
    assert counts.to_dict() == {"train/grad_norm": 44_174, "train/loss": 44_174, "train/lr": 44_174}
    assert not frames.bad_rows


def test_tokens_follow_the_colpret_convention(frames):
    loss = frames.observations[frames.observations["metric"] == "train/loss"].sort_values("tokens_seen")
    # ColPret get_llm360: tokens = step x 500B / 176,703; steps are logged every 4th step, 4..176,700
    assert loss["tokens_seen"].iloc[0] == pytest.approx(4 * 500e9 / 176_703)
    assert loss["tokens_seen"].iloc[-1] == pytest.approx(176_700 * 500e9 / 176_703)
    assert loss["tokens_seen"].iloc[-1] < frames.runs["planned_tokens"].iloc[0] == 500e9
    assert loss["value"].iloc[0] == pytest.approx(21.78346443176269)
    obs = frames.observations
    assert obs["tokens_derived"].all() and obs["flops_derived"].all()
    assert np.allclose(obs["flops"], 6 * 3e9 * obs["tokens_seen"])


def test_metric_kinds(frames):
    metrics = frames.metrics.set_index("metric")
    assert set(metrics["kind"]) <= set(METRIC_KINDS)
    assert metrics["kind"].to_dict() == {"train/loss": "loss", "train/lr": "other", "train/grad_norm": "other"}
    assert set(frames.observations["metric"]) == set(metrics.index)
    lr = frames.observations[frames.observations["metric"] == "train/lr"]["value"]
    assert lr.max() == pytest.approx(1e-4) and (lr > 0).all()
    assert np.isfinite(frames.observations["value"]).all()


def test_malformed_rows_are_counted_not_fatal(mirror, tmp_path):
    path = tmp_path / SOURCE
    path.parent.mkdir(parents=True)
    lines = (mirror / SOURCE).read_text().splitlines(keepends=True)
    assert lines[0].strip() == "step,loss,lr,grad_norm"
    lines[10] = "ten," + lines[10].split(",", 1)[1]  # bad step: whole row skipped
    lines[20] = lines[20].split(",")[0] + ",NaNx,1e-5,0.1\n"  # bad loss cell only
    lines[30] = "0," + lines[30].split(",", 1)[1]  # step 0: no tokens seen
    path.write_text("".join(lines))
    got = mamba.read(tmp_path)
    assert got.bad_rows["llm360Mamba3B.csv: missing or non-numeric step"] == 1
    assert got.bad_rows["llm360Mamba3B.csv: non-numeric value"] == 1
    assert got.bad_rows["llm360Mamba3B.csv: non-positive step"] == 1
    assert len(got.observations) == 3 * 44_174 - 3 - 1 - 3
