"""BiMix adapter against the real mirror pickles (280M data-mixture runs on Pile / SlimPajama)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import bimix
from scaleplan.core.sources.base import METRIC_KINDS

ROOT = Path("colpret/raw_data/bimix-law")
MIXTURES = {"Baseline", "DoReMi", "SE", "JE", "CE", "VNE"}


@pytest.fixture(scope="module")
def frames(mirror):
    return bimix.read(mirror)


def test_runs_per_mixture_and_families_per_corpus(frames):
    runs = frames.runs
    assert set(runs["run_id"]) == {f"bimix/{c}/{m}" for c in ("pile", "slimpajama") for m in MIXTURES}
    assert runs.groupby("family").size().to_dict() == {"bimix-pile": 6, "bimix-slimpajama": 6}
    assert (runs["num_params"] == 280e6).all() and runs["num_params_derived"].all()
    assert frames.families.set_index("family")["default_metric"].to_dict() == {
        "bimix-pile": "val/pile/avg/log_ppl",
        "bimix-slimpajama": "val/slimpajama/avg/log_ppl",
    }


def test_steps_to_tokens(frames):
    obs = frames.observations
    per_run = obs.groupby("run_id")["tokens_seen"].agg(["min", "max", "nunique"])
    assert (per_run["min"] == 10_000 * 512 * 1024).all()  # first evaluation at step 10k
    assert (per_run["max"] == 200_000 * 512 * 1024).all()  # 200k steps of 512 x 1024 tokens
    assert (per_run["nunique"] == 20).all()
    assert (frames.runs["planned_tokens"] == 200_000 * 512 * 1024).all()
    assert np.allclose(obs["flops"], 6 * 280e6 * obs["tokens_seen"])


def test_values_are_log_perplexities_not_perplexities(frames):
    obs = frames.observations
    # nats/token: a 280M model's Pile perplexity is ~10-30, i.e. ln(ppl) ~ 2.3-3.4; the stored
    # values sit there and none is near a real perplexity, so no further log is taken
    assert obs["value"].between(0.5, 5).all()
    # 'avg' is the uniform mean over the domains (DoReMi's uniform_avg_log_perplexity)
    wide = obs.pivot_table(index=["run_id", "tokens_seen"], columns="metric", values="value")
    pile = wide.loc[wide.index.get_level_values(0).str.startswith("bimix/pile/")]
    domains = [c for c in pile.columns if c.startswith("val/pile/") and "/avg/" not in c]
    assert len(domains) == 22
    assert np.allclose(pile[domains].mean(axis=1), pile["val/pile/avg/log_ppl"])
    # loss falls with training
    base = obs[(obs["run_id"] == "bimix/pile/Baseline") & (obs["metric"] == "val/pile/avg/log_ppl")]
    assert base.sort_values("tokens_seen")["value"].is_monotonic_decreasing


def test_invariants(frames):
    assert len(frames.observations) == 6 * 20 * (22 + 1) + 6 * 20 * (7 + 1)
    assert set(frames.metrics["kind"]) == {"loss"}
    assert set(frames.metrics["kind"]) <= set(METRIC_KINDS)
    assert not frames.bad_rows


def test_malformed_rows_are_skipped_and_counted(mirror, tmp_path):
    for corpus in ("Pile", "SlimPajama"):
        (tmp_path / ROOT / corpus).mkdir(parents=True)
        for kind in ("ppls", "ratios"):
            shutil.copy(mirror / ROOT / corpus / f"{kind}.pkl", tmp_path / ROOT / corpus / f"{kind}.pkl")
    ppls = pd.read_pickle(tmp_path / ROOT / "Pile" / "ppls.pkl")
    frame = ppls["CE"].astype(object)
    frame.loc[0, "global_step"] = "ten thousand"
    frame.loc[1, "ArXiv"] = "n/a"
    ppls["CE"] = frame
    pd.to_pickle(ppls, tmp_path / ROOT / "Pile" / "ppls.pkl")
    frames = bimix.read(tmp_path)
    assert frames.bad_rows == {"non-numeric or non-positive global_step": 1, "non-numeric loss cell": 1}
    ce = frames.observations[frames.observations["run_id"] == "bimix/pile/CE"]
    assert ce["tokens_seen"].nunique() == 19
    assert len(ce) == 19 * 23 - 1
