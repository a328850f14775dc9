"""LLM360 K2 / Amber adapter against the real mirror files (colpret/raw_data/lm360, K2.csv)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import llm360
from scaleplan.core.sources.base import METRIC_KINDS

K2_DIR = Path("colpret/raw_data/lm360/K2")
AMBER_DIR = Path("colpret/raw_data/lm360/Amber")
K2_CSV = Path("colpret/aggregated_eval/K2.csv")
K2_LOSS_FILE = "wandb_export_2024-06-21T08_59_51.273-04_00.csv"


def llama_params(d: int, layers: int, hidden: int, vocab: int) -> int:
    """LLaMA block stack (q,k,v,o + gate/up/down, two RMSNorms per layer), final norm, untied head."""
    return layers * (4 * d * d + 3 * d * hidden + 2 * d) + d + 2 * vocab * d


@pytest.fixture(scope="module")
def frames(mirror):
    return llm360.read(mirror)


def _series(frames, run, metric):
    obs = frames.observations
    return obs[(obs["run_id"] == run) & (obs["metric"] == metric)].sort_values("tokens_seen")


def test_two_runs_two_families(frames):
    runs = frames.runs.set_index("run_id")
    assert sorted(runs.index) == ["llm360/Amber", "llm360/K2"]
    assert runs.loc["llm360/K2", "family"] == "llm360-k2"
    assert runs.loc["llm360/Amber", "family"] == "llm360-amber"
    assert frames.families.set_index("family")["default_metric"].to_dict() == {
        "llm360-k2": "train/loss",
        "llm360-amber": "val/pile/pile_cc/log_ppl",
    }


def test_parameter_counts_from_the_published_configs(frames):
    params = frames.runs.set_index("model_name")["num_params"]
    # LLM360/K2 config.json: hidden 8192, 80 layers, intermediate 22016, vocab 32032
    assert params["K2"] == llama_params(8192, 80, 22016, 32032) == 65_286_184_960
    # LLM360/Amber config.json (LLaMA-7B shape): hidden 4096, 32 layers, intermediate 11008, vocab 32000
    assert params["Amber"] == llama_params(4096, 32, 11008, 32000) == 6_738_415_616


def test_k2_loss_is_the_union_of_both_series_and_spans_stage_one(frames, mirror):
    raw = pd.read_csv(mirror / K2_DIR / K2_LOSS_FILE)
    both = raw[["k2 training - lm loss", "training spikes - lm loss"]].notna()
    assert both.any(axis=1).all()
    loss = _series(frames, "llm360/K2", "train/loss")
    assert len(loss) == len(raw) == 10_406
    # where both series logged a step they agree
    overlap = raw[both.all(axis=1)]
    assert len(overlap) == 14
    assert np.allclose(overlap["k2 training - lm loss"], overlap["training spikes - lm loss"])
    # first point: 2,040 samples (one batch), loss 12.0 at init; last: 1.3T (stage 1, K2 data card)
    assert loss["value"].iloc[0] == pytest.approx(12.009223937988281)
    assert loss["tokens_seen"].iloc[0] == pytest.approx(2040 * 1.3e12 / 495_195_720)
    assert loss["tokens_seen"].iloc[-1] == pytest.approx(1.3e12)


def test_k2_loss_agrees_with_colpret_k2_csv(frames, mirror):
    agg = pd.read_csv(mirror / K2_CSV, usecols=["Step", "k2 training - lm loss"]).dropna()
    loss = _series(frames, "llm360/K2", "train/loss")
    by_step = pd.Series(loss["value"].to_numpy(), index=np.round(loss["tokens_seen"] * 495_195_720 / 1.3e12))
    assert np.allclose(by_step.loc[agg["Step"].astype(float)].to_numpy(), agg["k2 training - lm loss"])


def test_k2_evals_by_checkpoint(frames):
    arc = _series(frames, "llm360/K2", "downstream/arc_easy@5/acc")
    # k2 eval: checkpoints 3, 6, ..., 360 (120); ministage: 361..380 (20); spike branches skipped
    assert len(arc) == 140
    first = arc.iloc[0]
    assert first["tokens_seen"] == pytest.approx(3 * 1.3e12 / 360) and first["value"] == pytest.approx(0.478)
    stage1_end = arc[arc["tokens_seen"] <= 1.3e12 + 1].iloc[-1]
    assert stage1_end["tokens_seen"] == pytest.approx(1.3e12) and stage1_end["value"] == pytest.approx(0.867)
    last = arc.iloc[-1]
    assert last["tokens_seen"] == pytest.approx(1.3e12 + 69.4e9)
    assert frames.runs.set_index("model_name").loc["K2", "planned_tokens"] == pytest.approx(1.3694e12)


def test_amber_final_evals_match_the_model_card(frames):
    # LLM360/Amber model card: HellaSwag 73.91, MMLU 28.53 (ARC-C 42.57 vs 42.58 logged)
    for metric, card in (
        ("downstream/hellaswag/acc", 0.7391),
        ("downstream/mmlu/acc", 0.2853),
        ("downstream/arc/acc", 0.4257),
    ):
        series = _series(frames, "llm360/Amber", metric)
        assert series["value"].iloc[-1] == pytest.approx(card, abs=2e-4), metric
        # W&B step 356 = ckpt_356: 357 of 360 data chunks of 1,259.13B tokens
        assert series["tokens_seen"].iloc[-1] == pytest.approx(357 * 1259.13e9 / 360)


def test_amber_tokens_and_perplexities(frames, mirror):
    ppl = _series(frames, "llm360/Amber", "val/pile/pile_cc/ppl")
    log_ppl = _series(frames, "llm360/Amber", "val/pile/pile_cc/log_ppl")
    assert len(ppl) == len(log_ppl) == 178  # checkpoints 0, 2, ..., 354
    assert ppl["tokens_seen"].iloc[0] == pytest.approx(1259.13e9 / 360)
    assert np.allclose(log_ppl["value"].to_numpy(), np.log(ppl["value"].to_numpy()))
    assert ppl["value"].iloc[0] == pytest.approx(161.23273487316882)
    files = list((mirror / AMBER_DIR).glob("*.csv"))
    assert len(files) == 40
    n = frames.observations.groupby("run_id").size()
    # 17 Pile subsets + "average per doc" (x2 with log_ppl) and 18 downstream at 178 checkpoints,
    # 4 leaderboard tasks at 356 checkpoints
    assert n["llm360/Amber"] == (18 * 2 + 18) * 178 + 4 * 356


def test_metrics_kinds_and_invariants(frames):
    metrics = frames.metrics.set_index("metric")
    obs = frames.observations
    assert set(metrics["kind"]) <= set(METRIC_KINDS)
    assert set(obs["metric"]) == set(metrics.index)
    assert metrics.loc["train/loss", "kind"] == "loss"
    assert metrics.loc["val/pile/pile_cc/log_ppl", "kind"] == "loss"
    assert metrics.loc["val/pile/pile_cc/ppl", "kind"] == "perplexity"
    assert metrics.loc["downstream/crowspairs/pct_stereotype", "kind"] == "other"
    acc = obs["metric"].map(metrics["kind"]) == "accuracy"
    assert obs.loc[acc, "value"].between(0, 1).all()
    assert not any("spike" in m for m in metrics.index)
    assert np.isfinite(obs["value"]).all() and (obs["tokens_seen"] > 0).all()
    assert obs["tokens_derived"].all() and obs["flops_derived"].all()
    n = frames.runs.set_index("run_id")["num_params"]
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(n) * obs["tokens_seen"])
    assert not frames.bad_rows


def test_malformed_rows_are_counted_not_fatal(mirror, tmp_path, frames):
    for folder in (K2_DIR, AMBER_DIR):
        shutil.copytree(mirror / folder, tmp_path / folder)
    (tmp_path / K2_CSV).parent.mkdir(parents=True)
    shutil.copy(mirror / K2_CSV, tmp_path / K2_CSV)
    amber = tmp_path / AMBER_DIR / "wandb_export_2023-12-27T16_39_20.563-05_00.csv"  # Pile-CC ppl
    lines = amber.read_text().splitlines(keepends=True)
    assert lines[0].startswith('"Step","perplexity_eval - Pile-CC"')
    lines[3] = '"x",' + lines[3].split(",", 1)[1]
    lines[4] = lines[4].split(",", 1)[0] + ',"oops","1","1"\n'
    amber.write_text("".join(lines))
    got = llm360.read(tmp_path)
    assert got.bad_rows["Amber W&B export: missing or non-numeric step"] == 1
    assert got.bad_rows["Amber W&B export: non-numeric value"] == 1
    # each dropped Pile-CC ppl value also removes its log_ppl
    assert len(got.observations) == len(frames.observations) - 4
    assert len(_series(got, "llm360/K2", "train/loss")) == 10_406


def test_k2_csv_alone_still_gives_the_loss_curve(mirror, tmp_path):
    (tmp_path / K2_CSV).parent.mkdir(parents=True)
    shutil.copy(mirror / K2_CSV, tmp_path / K2_CSV)
    got = llm360.read(tmp_path)
    loss = _series(got, "llm360/K2", "train/loss")
    # K2.csv has no "training spikes" values and 14 fewer "k2 training" rows than the raw export
    assert len(loss) == 9_986
    assert set(got.metrics["metric"]) >= {"train/loss", "val/pile/pile_cc/log_ppl"}
