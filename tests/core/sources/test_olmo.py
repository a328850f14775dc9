"""OLMo adapter against the real mirror files (colpret/aggregated_eval/olmo.csv, raw_data/OLMO)."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import olmo
from scaleplan.core.sources.base import METRIC_KINDS

AGGREGATED = Path("colpret/aggregated_eval/olmo.csv")
RAW = Path("colpret/raw_data/OLMO")


def olmo_params(d_model: int, n_layers: int, mlp_hidden: int, tied: bool, vocab: int = 50_304) -> int:
    """Parameters of an OLMo block stack: q,k,v,o + SwiGLU (ff_proj d->hidden, ff_out hidden/2->d),
    no biases, non-parametric layer norm (configs/official/OLMo-*.yaml)."""
    per_layer = 4 * d_model * d_model + d_model * mlp_hidden + (mlp_hidden // 2) * d_model
    return n_layers * per_layer + (1 if tied else 2) * vocab * d_model


@pytest.fixture(scope="module")
def frames(mirror):
    return olmo.read(mirror)


@pytest.fixture(scope="module")
def revisions(mirror):
    """(model, step) -> tokens from the 'stepN-tokensXB' revision strings of olmo.csv."""
    df = pd.read_csv(mirror / AGGREGATED)
    df["model_name"] = df["model_name"].str.strip()
    rev = df["checkpoint"].dropna().map(lambda c: ast.literal_eval(c)["revision"])
    parsed = rev.str.extract(r"^step(?P<step>\d+)-tokens(?P<tokens>\d+)B$").astype(float)
    out = pd.concat([df.loc[rev.index, ["model_name", "Step"]], parsed], axis=1)
    assert (out["step"] == out["Step"]).all()
    return out


def test_three_runs_two_families(frames):
    runs = frames.runs.set_index("run_id")
    assert sorted(runs.index) == ["olmo/OLMo-1B", "olmo/OLMo-7B", "olmo/OLMo-7B-Twin-2T"]
    assert runs.loc["olmo/OLMo-1B", "family"] == runs.loc["olmo/OLMo-7B", "family"] == "olmo"
    assert runs.loc["olmo/OLMo-7B-Twin-2T", "family"] == "olmo-twin-2t"
    assert (runs["architecture"] == "decoder").all()
    fams = frames.families.set_index("family")["default_metric"]
    assert fams.to_dict() == {"olmo": "val/c4_en/loss", "olmo-twin-2t": "val/c4_en/log_ppl"}


def test_parameter_counts_from_the_architecture(frames):
    params = frames.runs.set_index("model_name")["num_params"]
    # OLMo-1B: d=2048, 16 layers, mlp_ratio 8, tied; OLMo-7B: d=4096, 32 layers, hidden 22016, untied
    assert params["OLMo-1B"] == olmo_params(2048, 16, 16384, tied=True) == 1_176_764_416
    assert params["OLMo-7B"] == olmo_params(4096, 32, 22016, tied=False) == 6_888_095_744
    assert params["OLMo-7B-Twin-2T"] == params["OLMo-7B"]
    assert not frames.runs["num_params_derived"].any()


def test_olmo_7b_token_range_matches_the_revision_strings(frames, revisions):
    obs = frames.observations
    seven = obs[obs["run_id"] == "olmo/OLMo-7B"]
    rev = revisions[revisions["model_name"] == "OLMo-7B"]
    # first and last checkpoints: step21000-tokens93B and step556000-tokens2460B
    assert rev["step"].min() == 21_000 and rev["step"].max() == 556_000
    assert abs(seven["tokens_seen"].min() - 93e9) <= 0.5e9
    assert abs(seven["tokens_seen"].max() - 2460e9) <= 0.5e9
    # every 7B (and Twin) revision: tokens in whole billions, rounded -> within 0.5B
    for model in ("OLMo-7B", "OLMo-7B-Twin-2T"):
        r = revisions[revisions["model_name"] == model]
        tokens = r["step"] * olmo.TOKENS_PER_STEP_7B
        assert (np.abs(tokens - r["tokens"] * 1e9) <= 0.5e9 + 1).all(), model


def test_olmo_1b_revision_strings_are_the_7b_ones_so_1b_uses_its_own_batch(frames, revisions):
    r1 = revisions[revisions["model_name"] == "OLMo-1B"].set_index("step")["tokens"]
    r7 = revisions[revisions["model_name"] == "OLMo-7B"].set_index("step")["tokens"]
    common = r1.index.intersection(r7.index)
    assert len(common) > 400 and (r1[common] == r7[common]).all()
    one = frames.observations[frames.observations["run_id"] == "olmo/OLMo-1B"]
    assert one["tokens_seen"].min() == 1_000 * 2048 * 2048
    assert one["tokens_seen"].max() == 738_000 * 2048 * 2048  # last logged step; 3.1T planned
    assert frames.runs.set_index("model_name").loc["OLMo-1B", "planned_tokens"] == 739_328 * 2048 * 2048


def test_raw_exports_fix_the_doubled_twin_values(frames):
    obs = frames.observations
    twin = obs[(obs["run_id"] == "olmo/OLMo-7B-Twin-2T") & (obs["metric"] == "val/4chan/loss")]
    at = twin.set_index("tokens_seen")["value"]
    # raw export: runs 009 and 010 both logged 2.1552 at step 158000; olmo.csv has their sum 4.3104
    assert at[158_000 * olmo.TOKENS_PER_STEP_7B] == pytest.approx(2.155195713043213)
    # 15 Twin metrics x 11 overlapping steps (158k..168k)
    assert frames.bad_rows["olmo.csv value differs from the raw W&B export (restart overlap summed); raw kept"] == 165


def test_raw_exports_add_the_7b_ptb_curve(frames):
    obs = frames.observations
    ptb = obs[(obs["run_id"] == "olmo/OLMo-7B") & (obs["metric"] == "val/ptb/loss")]
    assert len(ptb) == 529  # olmo.csv only has the 117 steps from 433k on
    assert ptb["tokens_seen"].min() == 21_000 * olmo.TOKENS_PER_STEP_7B


def test_counts_and_default_metric_coverage(frames):
    obs = frames.observations
    n = obs.groupby("run_id").size()
    # 1B: 31 series x 735 steps + ln(pile ppl); 7B: 32 series x 529 (twitterAEE 117);
    # Twin: 19 series (ice/m2d2_s2orc/pile/twitterAEE from step 237k) + 2 x 444 log_ppl
    assert n["olmo/OLMo-1B"] == 31 * 735 + 735
    assert n["olmo/OLMo-7B"] == 30 * 529 + 2 * 117
    assert n["olmo/OLMo-7B-Twin-2T"] == 15 * 444 + 4 * 208 + 2 * 444
    default = obs[obs["metric"] == "val/c4_en/loss"].groupby("run_id").size()
    assert default.to_dict() == {"olmo/OLMo-1B": 735, "olmo/OLMo-7B": 529}
    twin_default = obs[obs["metric"] == "val/c4_en/log_ppl"]
    assert set(twin_default["run_id"]) == {"olmo/OLMo-7B-Twin-2T"}


def test_log_ppl_is_ln_of_the_perplexity_and_equals_the_loss_where_both_exist(frames):
    obs = frames.observations
    twin = obs[obs["run_id"] == "olmo/OLMo-7B-Twin-2T"].pivot_table(
        index="tokens_seen", columns="metric", values="value"
    )
    assert np.allclose(twin["val/c4_en/log_ppl"], np.log(twin["val/c4_en/ppl"]))
    seven = obs[obs["run_id"] == "olmo/OLMo-7B"].pivot_table(index="tokens_seen", columns="metric", values="value")
    assert np.allclose(np.log(seven["val/c4_en/ppl"]), seven["val/c4_en/loss"], atol=1e-6)
    assert "val/c4_en/log_ppl" not in seven.columns


def test_metrics_kinds_and_invariants(frames):
    metrics = frames.metrics.set_index("metric")
    obs = frames.observations
    assert set(metrics["kind"]) <= set(METRIC_KINDS)
    assert set(obs["metric"]) == set(metrics.index)
    assert not metrics.index.duplicated().any()
    assert metrics.loc["val/v3/dolma_books/loss", "kind"] == "loss"
    assert metrics.loc["val/c4_en/ppl", "kind"] == "perplexity"
    assert metrics.loc["downstream/piqa/acc_len_norm", "kind"] == "accuracy"
    assert metrics.loc["downstream/mrpc/f1", "kind"] == "other"
    acc = obs["metric"].map(metrics["kind"]) == "accuracy"
    assert obs.loc[acc, "value"].between(0, 1).all()
    assert np.isfinite(obs["value"]).all() and (obs["tokens_seen"] > 0).all()
    assert obs["tokens_derived"].all() and obs["flops_derived"].all()
    n = frames.runs.set_index("run_id")["num_params"]
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(n) * obs["tokens_seen"])
    assert not obs.duplicated(["run_id", "tokens_seen", "metric"]).any()


def _copy(mirror: Path, root: Path, raw: bool = True) -> None:
    (root / AGGREGATED).parent.mkdir(parents=True)
    shutil.copy(mirror / AGGREGATED, root / AGGREGATED)
    if raw:
        shutil.copytree(mirror / RAW, root / RAW)


def test_malformed_rows_are_counted_not_fatal(mirror, tmp_path, frames):
    _copy(mirror, tmp_path)
    victim = tmp_path / RAW / "wandb_export_2024-02-23T15_17_30.564-05_00.csv"  # 1B v2-small-c4_en loss
    lines = victim.read_text().splitlines(keepends=True)
    assert lines[1].startswith('"1000",')
    lines[1] = '"abc",' + lines[1].split(",", 1)[1]
    lines[2] = re.sub(r'^("2000"),"[^"]*"', r'\1,"oops"', lines[2])
    victim.write_text("".join(lines))
    got = olmo.read(tmp_path)
    assert got.bad_rows["raw W&B export: missing or non-numeric step"] == 1
    assert got.bad_rows["raw W&B export: non-numeric value"] == 1
    # the corrupted cells were also in olmo.csv, which fills them back in
    base = frames.observations
    assert len(got.observations) == len(base)
    c4 = got.observations[
        (got.observations["run_id"] == "olmo/OLMo-1B") & (got.observations["metric"] == "val/c4_en/loss")
    ]
    assert len(c4) == 735


def test_malformed_aggregate_row_without_raw_exports(mirror, tmp_path):
    _copy(mirror, tmp_path, raw=False)
    path = tmp_path / AGGREGATED
    lines = path.read_text().splitlines(keepends=True)
    lines[5] = "not-a-step," + lines[5].split(",", 1)[1]
    path.write_text("".join(lines))
    got = olmo.read(tmp_path)
    assert got.bad_rows["olmo.csv: missing or non-numeric step"] == 1
    assert sorted(got.runs["run_id"]) == ["olmo/OLMo-1B", "olmo/OLMo-7B", "olmo/OLMo-7B-Twin-2T"]
    # without the raw exports the Twin's doubled overlap values come through unchanged
    twin = got.observations[
        (got.observations["run_id"] == "olmo/OLMo-7B-Twin-2T") & (got.observations["metric"] == "val/4chan/loss")
    ].set_index("tokens_seen")["value"]
    assert twin[158_000 * olmo.TOKENS_PER_STEP_7B] == pytest.approx(2 * 2.155195713043213)
    assert len(got.observations) > 45_000
