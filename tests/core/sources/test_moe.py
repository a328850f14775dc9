"""ModuleFormer MoE adapter against the real mirror files (IBM_MoE.csv + the 0-shot sheet)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaleplan.core.sources import moe
from scaleplan.core.sources.base import METRIC_KINDS

MOE_CSV = Path("colpret/raw_data/IBM_MoE.csv")
SHEET_CSV = Path("colpret/aggregated_eval/LLMs - 0-shot.csv")


@pytest.fixture(scope="module")
def frames(mirror):
    return moe.read(mirror)


def _obs(frames, run_id, metric):
    obs = frames.observations
    return obs[(obs["run_id"] == run_id) & (obs["metric"] == metric)].set_index("tokens_seen")["value"]


def test_runs_cover_both_files(frames):
    runs = frames.runs.set_index("run_id")
    # the 7 (Model, data) runs of IBM_MoE.csv ...
    from_moe_csv = {
        "moe/ST-k2",
        "moe/ST-k2/ibm-pile",
        "moe/ST-h1/codegen_shuffled",
        "moe/h1-k4",
        "moe/st-deep-48l",
        "moe/gmm-k4",
        "moe/obsidian-17B",
    }
    # ... plus the runs only the 0-shot sheet has (the obsidian-4B ablations have no size: skipped)
    from_sheet = {
        "moe/ST-h1/codegen",
        "moe/ST-48L",
        "moe/ST-wide",
        "moe/gmm",
        "moe/48L-k4",
        "moe/Obsidian-4B-normalized",
        "moe/LLAMA-7B",
    }
    assert set(runs.index) == from_moe_csv | from_sheet
    assert runs.loc["moe/LLAMA-7B", "architecture"] == "decoder"
    assert runs.loc["moe/LLAMA-7B", "family"] == "llama"
    assert (runs.drop("moe/LLAMA-7B")["architecture"] == "moe").all()
    assert runs.loc["moe/ST-k2/ibm-pile", "family"] == "moduleformer-ibm-pile"
    assert runs.loc["moe/ST-k2/ibm-pile", "training_data"] == "IBM Pile"
    assert set(frames.families["family"]) == {"moduleformer", "moduleformer-ibm-pile", "llama"}


def test_active_parameters_are_used_when_reported(frames):
    params = frames.runs.set_index("run_id")["num_params"]
    assert params["moe/obsidian-17B"] == 4e9  # 16.7B total, 4B effective
    assert params["moe/h1-k4"] == 700e6  # 4B total, 700M effective
    assert params["moe/st-deep-48l"] == 700e6  # 8B total, 700M effective
    assert params["moe/ST-h1/codegen_shuffled"] == 350e6
    assert params["moe/ST-k2"] == 4e9  # no effective count: the total
    assert params["moe/LLAMA-7B"] == 7e9
    assert frames.runs["num_params_derived"].all()


def test_trajectories_tokens_and_flops(frames):
    obs = frames.observations
    st_k2 = sorted(obs.loc[obs["run_id"] == "moe/ST-k2", "tokens_seen"].unique())
    assert st_k2 == [t * 1e9 for t in (64, 95, 130, 165, 185, 200, 239, 275, 310, 350)]
    ibm = sorted(obs.loc[obs["run_id"] == "moe/ST-k2/ibm-pile", "tokens_seen"].unique())
    assert ibm == [t * 1e9 for t in (41, 70, 105, 140, 220, 250, 285, 320)]
    assert set(obs.loc[obs["run_id"] == "moe/LLAMA-7B", "tokens_seen"]) == {1e12}
    n = obs["run_id"].map(frames.runs.set_index("run_id")["num_params"])
    assert np.allclose(obs["flops"], 6 * n * obs["tokens_seen"])
    assert obs["flops_derived"].all() and not obs["tokens_derived"].any()


def test_values_percentages_and_log_ppl(frames):
    wiki = _obs(frames, "moe/ST-k2", "val/wikitext/ppl")
    assert wiki[64e9] == pytest.approx(18.6648)
    assert _obs(frames, "moe/ST-k2", "val/wikitext/log_ppl")[64e9] == pytest.approx(math.log(18.6648))
    assert _obs(frames, "moe/ST-k2", "downstream/hellaswag/acc")[64e9] == pytest.approx(0.3452)
    assert _obs(frames, "moe/LLAMA-7B", "val/wikitext/ppl")[1e12] == pytest.approx(9.4201)
    assert _obs(frames, "moe/LLAMA-7B", "downstream/hellaswag/acc_norm")[1e12] == pytest.approx(0.7619)
    kinds = frames.metrics.set_index("metric")["kind"]
    acc = frames.observations["metric"].map(kinds) == "accuracy"
    assert frames.observations.loc[acc, "value"].between(0, 1).all()
    # wikitext loss falls over training
    log_ppl = _obs(frames, "moe/st-deep-48l", "val/wikitext/log_ppl").sort_index()
    assert log_ppl.iloc[-1] < log_ppl.iloc[0]


def test_skipped_rows_are_counted(frames):
    bad = frames.bad_rows
    # final 'Pile'/'IBM Pile' rows: ST-k2 x2, ST-h1, h1-k4, st-deep-48l
    assert bad["IBM_MoE.csv: no token count (final 'Pile' rows, dense baselines)"] == 5
    # the 62 checkpoints of IBM_MoE.csv all reappear in the sheet
    assert bad["0-shot sheet row already in IBM_MoE.csv (kept that copy)"] == 62
    assert bad["'Random' reference row (chance accuracies)"] == 1
    assert bad["no parameter count (Params and Effective Params empty)"] == 4


def test_invariants(frames):
    assert frames.runs["run_id"].str.startswith("moe/").all()
    assert set(frames.metrics["kind"]) <= set(METRIC_KINDS)
    assert set(frames.observations["metric"]) <= set(frames.metrics["metric"])
    kinds = frames.metrics.set_index("metric")["kind"]
    assert (frames.families["default_metric"].map(kinds) == "loss").all()
    assert set(frames.runs["family"]) == set(frames.families["family"])
    assert not frames.observations.duplicated(["run_id", "tokens_seen", "metric"]).any()


def test_malformed_rows_are_skipped_and_counted(mirror, tmp_path):
    for rel in (MOE_CSV, SHEET_CSV):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mirror / rel, tmp_path / rel)
    text = (tmp_path / MOE_CSV).read_text()
    assert text.count(",64B,") == 1 and text.count("17.6699") == 1
    text = text.replace(",64B,", ",sixty-four,").replace("17.6699", "abc")
    (tmp_path / MOE_CSV).write_text(text)
    frames = moe.read(tmp_path)
    bad = frames.bad_rows
    assert bad["IBM_MoE.csv: no token count (final 'Pile' rows, dense baselines)"] == 6
    assert bad["non-numeric metric cell"] == 1
    # the sheet copies of the two broken rows no longer match, and have no named row: skipped
    assert bad["0-shot continuation row without a named row in its block"] == 2
    st_k2 = frames.observations[frames.observations["run_id"] == "moe/ST-k2"]
    assert sorted(st_k2["tokens_seen"].unique())[0] == 95e9
    at_95 = set(st_k2.loc[st_k2["tokens_seen"] == 95e9, "metric"])
    assert "downstream/hellaswag/acc" in at_95 and "val/wikitext/ppl" not in at_95
    assert len(frames.runs) == 14
