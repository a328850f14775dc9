"""Pile-T5 adapter against the real ColPret file."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import t5_pile
from scaleplan.core.sources.base import METRIC_KINDS

COLUMNS = [
    "model_name",
    "steps",
    "cross_ent_loss",
    "cross_ent_loss_per_all_target_tokens",
    "timing/seqs",
    "val_perplexity",
]


@pytest.fixture(scope="module")
def frames(mirror):
    return t5_pile.read(mirror)


@pytest.fixture(scope="module")
def raw(mirror):
    return pd.read_csv(mirror / t5_pile.CSV, usecols=COLUMNS)


def test_four_runs_with_colpret_parameter_counts(frames):
    runs = frames.runs.set_index("run_id")
    assert list(runs.index) == [f"t5_pile/pile-t5-{s}" for s in ("base", "large", "xl", "xxl")]
    assert list(runs["num_params"]) == [247_586_304, 783_173_632, 2_849_804_288, 11_135_426_560]
    assert not runs["num_params_derived"].any()
    assert (runs["architecture"] == "encoder-decoder").all() and (runs["family"] == "pile-t5").all()
    assert (runs["planned_tokens"] == 2e12).all()
    assert t5_pile.PATTERNS == ("colpret/aggregated_eval/t5_pile.csv",)  # raw event files not ingested


def test_tokens_are_steps_times_a_million(frames, raw):
    obs = frames.observations
    assert obs["tokens_seen"].min() == 10_000 * 1e6 and obs["tokens_seen"].max() == 2e12
    assert obs["tokens_derived"].all() and obs["flops_derived"].all()
    params = frames.runs.set_index("run_id")["num_params"]
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(params) * obs["tokens_seen"])
    # every checkpoint after step 0 appears (xxl has three extra 100-step windows after a restart)
    assert obs[obs["metric"] == "val/pile_r_denoiser/perplexity"].groupby("run_id").size().to_dict() == {
        "t5_pile/pile-t5-base": 200,
        "t5_pile/pile-t5-large": 200,
        "t5_pile/pile-t5-xl": 200,
        "t5_pile/pile-t5-xxl": 203,
    }


def test_per_token_columns_overflowed_and_the_reconstruction(raw):
    """cross_ent_loss is a per-step sum over 2048 x 114 target tokens; the logged per-token value
    divides the window sum by an int32 token count that wrapped around."""
    init = raw[raw["steps"] == 0]  # validation summaries at step 0: no overflow
    assert np.allclose(init["cross_ent_loss"] / (2048 * 114), init["cross_ent_loss_per_all_target_tokens"], rtol=1e-6)
    window = raw[(raw["steps"] > 0) & (raw["timing/seqs"] == 2048 * 10_000)].dropna()
    assert (window["cross_ent_loss_per_all_target_tokens"] < 0).mean() > 0.99
    steps_in_window = window["timing/seqs"] / 2048
    wrapped = window["cross_ent_loss"] * steps_in_window / window["cross_ent_loss_per_all_target_tokens"]
    normal = window["cross_ent_loss"] < 1e7  # skip the xxl loss spike at step 600k
    assert np.allclose(wrapped[normal] + 2**32, 114 * window["timing/seqs"][normal], rtol=1e-5)


def test_train_loss_values(frames):
    obs = frames.observations
    train = obs[obs["metric"] == "train/loss"]
    final = train[train["tokens_seen"] == 2e12].set_index("run_id")["value"]
    assert list(final.sort_values(ascending=False).index) == [
        "t5_pile/pile-t5-base",
        "t5_pile/pile-t5-large",
        "t5_pile/pile-t5-xl",
        "t5_pile/pile-t5-xxl",
    ]
    assert final["t5_pile/pile-t5-base"] == pytest.approx(218572.25 / 233472, rel=1e-6)
    assert train["value"].between(0.5, 3.0).all()
    xxl = train[train["run_id"] == "t5_pile/pile-t5-xxl"]
    assert len(xxl) == 203 - 1 - 7  # the 600k spike is skipped, 620k-680k have no train loss
    assert frames.bad_rows == {"train cross-entropy window mean > 20 nats/token (loss spike)": 1}


def test_log_ppl_is_ln_of_the_perplexity(frames):
    wide = frames.observations.pivot_table(index=["run_id", "tokens_seen"], columns="metric", values="value")
    assert np.allclose(wide["val/pile_r_denoiser/log_ppl"], np.log(wide["val/pile_r_denoiser/perplexity"]))
    assert wide["val/pile_r_denoiser/perplexity"].between(1.0, 1.2).all()


def test_metrics(frames):
    kinds = frames.metrics.set_index("metric")["kind"]
    assert set(kinds) <= set(METRIC_KINDS)
    assert kinds["train/loss"] == "loss" and kinds["val/pile_r_denoiser/perplexity"] == "perplexity"
    assert list(frames.families["default_metric"]) == ["train/loss"]
    assert set(frames.observations["metric"]) == set(kinds.index)


def test_malformed_row_is_counted_and_the_rest_kept(mirror, tmp_path):
    target = tmp_path / t5_pile.CSV
    target.parent.mkdir(parents=True)
    shutil.copyfile(mirror / t5_pile.CSV, target)
    raw = pd.read_csv(target)
    row = raw.index[(raw["model_name"] == "base") & (raw["steps"] == 50_000)][0]
    raw["steps"] = raw["steps"].astype(object)
    raw.loc[row, "steps"] = "fifty thousand"
    raw.to_csv(target, index=False)
    frames = t5_pile.read(tmp_path)
    assert frames.bad_rows["non-numeric or negative steps"] == 1
    base = frames.observations[frames.observations["run_id"] == "t5_pile/pile-t5-base"]
    assert 50_000 * 1e6 not in set(base["tokens_seen"]) and base["tokens_seen"].nunique() == 199
    assert len(frames.runs) == 4


def test_missing_file_raises_with_its_name(tmp_path):
    with pytest.raises(ValueError, match="t5_pile.csv"):
        t5_pile.read(tmp_path)
