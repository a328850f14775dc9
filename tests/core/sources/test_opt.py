"""OPT adapter against the real ColPret files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import opt
from scaleplan.core.sources.base import METRIC_KINDS

SIZES = {"125m": 125e6, "1.3b": 1.3e9, "6.7b": 6.7e9, "13b": 13e9, "30b": 30e9, "175b": 175e9}
BATCH = {"125m": 0.5e6, "1.3b": 1e6, "6.7b": 2e6, "13b": 4e6, "30b": 4e6, "175b": 2e6}  # OPT paper, Table 1


@pytest.fixture(scope="module")
def frames(mirror):
    return opt.read(mirror)


def test_one_run_per_size_in_one_family(frames):
    runs = frames.runs.set_index("run_id")
    assert list(runs.index) == [f"opt/opt-{s}" for s in SIZES]
    assert list(runs["num_params"]) == list(SIZES.values())
    assert runs["num_params_derived"].all() and (runs["family"] == "opt").all()
    assert (runs["planned_tokens"] == 300e9).all()
    assert list(frames.families["family"]) == ["opt"]
    assert list(frames.families["default_metric"]) == ["val/log_ppl"]


def test_tokens_follow_the_opt_batch_sizes(mirror, frames):
    bench = pd.read_csv(mirror / opt.BIGBENCH, index_col=0)
    assert np.array_equal(bench["tokens"], bench["steps"] * bench["size"].map(BATCH))
    traj = pd.read_csv(mirror / opt.TRAJECTORIES)
    tokens = traj["steps"] * traj["model_size"].map(BATCH)
    assert np.allclose(10 ** traj["num_token"], tokens, rtol=1e-9)  # num_token is log10(tokens)
    assert np.allclose(10 ** traj["flops"], 6 * traj["model_size"].map(SIZES) * tokens, rtol=1e-9)
    obs = frames.observations
    ppl = obs[obs["metric"] == "val/perplexity"].sort_values(["run_id", "tokens_seen"])
    expected = pd.DataFrame({"run_id": "opt/opt-" + traj["model_size"], "tokens_seen": tokens})
    assert np.array_equal(
        ppl[["run_id", "tokens_seen"]].to_numpy(), expected.sort_values(["run_id", "tokens_seen"]).to_numpy()
    )
    assert obs["tokens_derived"].all() and obs["flops_derived"].all()
    params = frames.runs.set_index("run_id")["num_params"]
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(params) * obs["tokens_seen"])


def test_perplexity_and_log_ppl(mirror, frames):
    wide = frames.observations.pivot_table(index=["run_id", "tokens_seen"], columns="metric", values="value")
    pair = wide[["val/perplexity", "val/log_ppl"]].dropna()
    assert len(pair) == 142
    assert np.allclose(pair["val/log_ppl"], np.log(pair["val/perplexity"]))
    first = wide.loc["opt/opt-125m"].sort_index()["val/perplexity"].dropna()
    assert first.iloc[0] == pytest.approx(67.52265444265277)  # 125m at step 2000 = 1B tokens
    assert first.index[0] == 1e9


def test_bigbench_accuracies_are_fractions(mirror, frames):
    bench = pd.read_csv(mirror / opt.BIGBENCH, index_col=0)
    obs = frames.observations
    acc = obs[obs["metric"].str.startswith("downstream/bigbench_")]
    assert len(acc) == 147 * 6 and acc["value"].between(0, 1).all()
    # accuracies: k correct out of each task's BIG-bench example count
    for task, n in {
        "codelinedescription": 60,
        "humanorganssenses": 42,
        "implicatures": 492,
        "phraserelatedness": 100,
        "whatisthetao": 36,
        "swahilienglishproverbs": 153,
    }.items():
        correct = acc[acc["metric"] == f"downstream/bigbench_{task}/acc"]["value"] * n
        assert len(correct) == 147 and np.allclose(correct, correct.round(), atol=1e-6), task
    assert np.allclose(
        np.sort(acc[acc["metric"] == "downstream/bigbench_whatisthetao/acc"]["value"]),
        np.sort(bench["bigbench__whatisthetao"] / 100),
    )
    kinds = frames.metrics.set_index("metric")["kind"]
    assert set(kinds) <= set(METRIC_KINDS)
    assert (kinds[kinds.index.str.startswith("downstream/")] == "accuracy").all()
    assert kinds["val/log_ppl"] == "loss" and kinds["val/perplexity"] == "perplexity"
    assert not frames.bad_rows


def _copy(mirror: Path, tmp_path: Path) -> Path:
    for rel in opt.PATTERNS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / rel, tmp_path / rel)
    return tmp_path


def test_malformed_rows_are_counted_and_the_rest_kept(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    traj = pd.read_csv(root / opt.TRAJECTORIES)
    traj["ppl"] = traj["ppl"].astype(object)
    traj.loc[3, "ppl"] = "oops"
    traj["steps"] = traj["steps"].astype(object)
    traj.loc[4, "steps"] = "-"
    traj.to_csv(root / opt.TRAJECTORIES, index=False)
    frames = opt.read(root)
    assert frames.bad_rows == {
        "opt_trajectories.csv: non-numeric ppl": 1,
        "opt_trajectories.csv: non-numeric or non-positive steps": 1,
    }
    assert (frames.observations["metric"] == "val/perplexity").sum() == 140
    assert len(frames.runs) == 6


def test_missing_file_raises_with_its_name(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    (root / opt.BIGBENCH).unlink()
    with pytest.raises(ValueError, match="opt.csv"):
        opt.read(root)
