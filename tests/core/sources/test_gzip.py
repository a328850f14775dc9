"""gzip-complexity adapter against the real mirror file (150 runs on PCFG data)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from scaleplan.core.sources import gzip
from scaleplan.core.sources.base import METRIC_KINDS

RESULTS = Path("colpret/raw_data/gzip/results_new.jsonl")


def llama_params(vocab: int, hidden: int, inter: int, layers: int) -> int:
    """LlamaForCausalLM: untied embedding + head, per layer 4 h^2 attention, 3 h i MLP, 2 norms."""
    return 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inter + 2 * hidden) + hidden


@pytest.fixture(scope="module")
def frames(mirror):
    return gzip.read(mirror)


@pytest.fixture(scope="module")
def records(mirror):
    return pd.read_json(mirror / RESULTS, lines=True)


def test_one_run_per_record_grouped_by_data_setting(frames):
    runs = frames.runs
    assert len(runs) == 150 and runs["run_id"].is_unique
    assert runs.groupby("family").size().to_dict() == {
        f"gzip-pcfg-{g}": 30 for g in ("0.12", "0.23", "0.33", "0.45", "0.61")
    }
    # each family is a grid: 6 model sizes x 5 data budgets
    grid = runs.groupby("family").agg(sizes=("num_params", "nunique"), budgets=("planned_tokens", "nunique"))
    assert (grid["sizes"] == 6).all() and (grid["budgets"] == 5).all()
    assert "gzip/gzipscale-0.12-10M/h64-l2/D99695" in set(runs["run_id"])


def test_parameter_counts_match_the_llama_configs(frames, records):
    expected = records["model_stats"].map(
        lambda s: llama_params(s["vocab_size"], s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"])
    )
    assert (expected == records["model_size"]).all()
    assert set(frames.runs["num_params"]) == set(expected.astype(float))
    assert not frames.runs["num_params_derived"].any()


def test_train_curve_spans_the_budget(frames, records):
    obs = frames.observations
    train = obs[obs["metric"] == "train/loss"]
    assert len(train) == records["train_loss"].map(len).sum() == 64560
    per_run = train.groupby("run_id")["tokens_seen"].agg(["max", "size"])
    planned = frames.runs.set_index("run_id")["planned_tokens"]
    assert (per_run["max"] == planned[per_run.index]).all()  # last step ends at token_ct
    val = obs[obs["metric"] == "val/loss"].set_index("run_id")
    assert len(val) == 150 and (val["tokens_seen"] == planned[val.index]).all()
    first = records.iloc[0]
    assert val.loc["gzip/gzipscale-0.12-10M/h64-l2/D99695", "value"] == pytest.approx(sum(first["valid_loss"]) / 2)
    assert train["tokens_derived"].all() and not val["tokens_derived"].any()


def test_invariants(frames):
    assert set(frames.metrics["kind"]) <= set(METRIC_KINDS)
    assert set(frames.families["default_metric"]) == {"val/loss"}
    assert not frames.bad_rows
    assert not frames.observations.duplicated(["run_id", "tokens_seen", "metric"]).any()


def test_malformed_rows_are_skipped_and_counted(mirror, tmp_path):
    (tmp_path / RESULTS).parent.mkdir(parents=True)
    lines = (mirror / RESULTS).read_text().splitlines()
    lines[0] = lines[0][:40]  # truncated JSON
    record = json.loads(lines[1])
    record["model_size"] = -1
    lines[1] = json.dumps(record)
    record = json.loads(lines[2])
    record["train_loss"][3] = "nan?"
    lines[2] = json.dumps(record)
    (tmp_path / RESULTS).write_text("\n".join(lines) + "\n")
    frames = gzip.read(tmp_path)
    assert frames.bad_rows == {
        "unparseable JSON line": 1,
        "record without dataset, positive model_size/token_ct, model_stats or train_loss": 1,
        "non-numeric loss value": 1,
    }
    assert len(frames.runs) == 148
