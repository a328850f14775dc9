"""Pythia adapter against the real mirror files (pythia/evals/pythia-v1)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaleplan.core.sources import pythia
from scaleplan.core.sources.base import METRIC_KINDS

EVALS = Path("pythia/evals/pythia-v1")
FULL_RUN_TOKENS = 299_892_736_000  # 143,000 steps x 2,097,152 tokens (Pythia paper / model cards)


@pytest.fixture(scope="module")
def frames(mirror):
    return pythia.read(mirror)


def test_runs_and_families_match_the_mirror_folders(frames, mirror):
    folders = sorted(p.name for p in (mirror / EVALS).iterdir() if p.is_dir())
    assert sorted(frames.runs["run_id"]) == sorted(f"pythia/{f}" for f in folders)
    assert len(frames.runs) == 21
    by_family = frames.runs.groupby("family")["model_name"].apply(set).to_dict()
    # no standard pythia-1b folder in this snapshot: 7 standard sizes, 8 deduped
    assert by_family["pythia"] == {f"pythia-{s}" for s in ("70m", "160m", "410m", "1.4b", "2.8b", "6.9b", "12b")}
    assert len(by_family["pythia-deduped"]) == 8
    assert by_family["pythia-0.5MtokBS"] == {"pythia-160m-0.5MtokBS", "pythia-410m-0.5MtokBS", "pythia-1b-0.5MtokBS"}
    assert set(by_family) == {
        "pythia",
        "pythia-deduped",
        "pythia-0.25MtokBS",
        "pythia-0.5MtokBS",
        "pythia-1MtokBS",
        "pythia-bf16",
    }
    assert set(frames.families["family"]) == set(by_family)
    deduped = frames.runs["family"] == "pythia-deduped"
    assert (frames.runs.loc[deduped, "training_data"] == "the Pile (deduplicated)").all()
    assert (frames.runs.loc[~deduped, "training_data"] == "the Pile").all()
    assert (frames.runs["architecture"] == "decoder").all()


def test_exact_parameter_counts_from_the_pythia_readme(frames):
    params = frames.runs.set_index("model_name")["num_params"]
    assert params["pythia-70m"] == 70_426_624
    assert params["pythia-12b-deduped"] == 11_846_072_320
    assert params["pythia-1b-bf16"] == 1_011_781_632
    assert params["pythia-1.4b-1MtokBS"] == 1_414_647_808
    assert not frames.runs["num_params_derived"].any()


def test_tokens_per_step_follow_the_batch_size(frames):
    obs = frames.observations
    assert (obs["tokens_seen"] > 0).all() and obs["tokens_derived"].all() and obs["flops_derived"].all()
    # every run, whatever its batch size, ends at 143,000 x 2M tokens
    assert (obs.groupby("run_id")["tokens_seen"].max() == FULL_RUN_TOKENS).all()
    assert (frames.runs["planned_tokens"] == FULL_RUN_TOKENS).all()
    first = obs.groupby("run_id")["tokens_seen"].min()
    assert first["pythia/pythia-70m"] == 2_097_152  # step 1 of a 2M-token batch
    assert first["pythia/pythia-160m-0.5MtokBS"] == 12_000 * 524_288
    assert first["pythia/pythia-70m-0.25MtokBS"] == 24_000 * 262_144
    assert first["pythia/pythia-1.4b-1MtokBS"] == 6_000 * 1_048_576
    n = frames.runs.set_index("run_id")["num_params"]
    assert np.allclose(obs["flops"], 6 * obs["run_id"].map(n) * obs["tokens_seen"])


def test_step_zero_is_skipped_and_counted(frames):
    assert frames.bad_rows["step 0 (no tokens seen)"] > 0
    assert set(frames.bad_rows) == {"step 0 (no tokens seen)"}


def test_metric_names_distinguish_shots_and_have_kinds(frames):
    metrics = frames.metrics.set_index("metric")
    assert {"zero-shot/piqa/acc", "five-shot/piqa/acc", "zero-shot/lambada_openai/ppl"} <= set(metrics.index)
    assert not any("stderr" in m for m in metrics.index)
    assert set(metrics["kind"]) <= set(METRIC_KINDS)
    assert set(frames.observations["metric"]) == set(metrics.index)
    assert metrics.loc["zero-shot/lambada_openai/log_ppl", "kind"] == "loss"
    assert "not the Pile validation loss" in metrics.loc["zero-shot/lambada_openai/log_ppl", "domain"]
    acc = frames.observations["metric"].map(metrics["kind"]) == "accuracy"
    assert frames.observations.loc[acc, "value"].between(0, 1).all()


def test_shot_count_comes_from_the_config(frames):
    """Four files named 1b-bf16-5shot_* in zero-shot/ are 0-shot runs; variant folders hold 5-shot runs."""
    obs = frames.observations
    bf16 = obs[(obs["run_id"] == "pythia/pythia-1b-bf16") & (obs["metric"] == "zero-shot/piqa/acc")]
    assert len(bf16) == 26  # 27 zero-shot checkpoints, step 0 dropped
    variant = obs[obs["run_id"] == "pythia/pythia-160m-0.5MtokBS"]["metric"]
    assert variant.str.startswith("five-shot/").all()


def test_values_match_the_raw_file_and_log_ppl_is_ln_ppl(frames, mirror):
    raw = json.loads((mirror / EVALS / "pythia-70m/zero-shot/70m_step143000.json").read_text())["results"]
    obs = frames.observations
    final = obs[(obs["run_id"] == "pythia/pythia-70m") & (obs["tokens_seen"] == FULL_RUN_TOKENS)].set_index("metric")[
        "value"
    ]
    assert final["zero-shot/piqa/acc"] == raw["piqa"]["acc"]
    assert final["zero-shot/lambada_openai/ppl"] == raw["lambada_openai"]["ppl"]
    assert math.isclose(final["zero-shot/lambada_openai/log_ppl"], math.log(raw["lambada_openai"]["ppl"]))


def test_default_metric_falls_with_size_in_the_standard_family(frames):
    families = frames.families.set_index("family")["default_metric"]
    assert families["pythia"] == "zero-shot/lambada_openai/log_ppl"
    assert families["pythia-0.5MtokBS"] == "five-shot/lambada_openai/log_ppl"  # no 0-shot files there
    kinds = frames.metrics.set_index("metric")["kind"]
    assert (families.map(kinds) == "loss").all()
    obs = frames.observations
    final = obs[(obs["metric"] == families["pythia"]) & (obs["tokens_seen"] == FULL_RUN_TOKENS)]
    final = final.set_index("run_id")["value"]
    runs = frames.runs[frames.runs["family"] == "pythia"].sort_values("num_params")["run_id"]
    assert final[runs].is_monotonic_decreasing


def _copy(mirror: Path, tmp_path: Path, folder: str) -> Path:
    shutil.copytree(mirror / EVALS / folder, tmp_path / EVALS / folder, copy_function=shutil.copyfile)
    return tmp_path


def test_malformed_value_is_counted_and_the_rest_kept(mirror, tmp_path):
    root = _copy(mirror, tmp_path, "pythia-70m")
    target = root / EVALS / "pythia-70m/zero-shot/70m_step1000.json"
    data = json.loads(target.read_text())
    data["results"]["piqa"]["acc"] = "not a number"
    target.write_text(json.dumps(data))
    frames = pythia.read(root)
    assert frames.bad_rows["non-numeric or non-finite value"] == 1
    obs = frames.observations
    piqa = obs[obs["metric"] == "zero-shot/piqa/acc"]
    assert len(piqa) == 25 and 1000 * 2_097_152 not in set(piqa["tokens_seen"])
    assert ((obs["tokens_seen"] == 1000 * 2_097_152) & (obs["metric"] == "zero-shot/arc_easy/acc")).sum() == 1
    assert list(frames.runs["run_id"]) == ["pythia/pythia-70m"]


def test_unreadable_file_raises_with_its_name(mirror, tmp_path):
    root = _copy(mirror, tmp_path, "pythia-70m")
    (root / EVALS / "pythia-70m/five-shot/70m-5shot_step3000.json").write_text("{ truncated")
    with pytest.raises(ValueError, match="70m-5shot_step3000.json"):
        pythia.read(root)
