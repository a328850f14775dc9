"""Datablations adapter against the real ColPret files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import datablations as db
from scaleplan.core.sources.base import METRIC_KINDS

FILES = (db.LOSSES, db.CONTOUR, db.CODE)


@pytest.fixture(scope="module")
def frames(mirror):
    return db.read(mirror)


def _runs(frames, prefix: str) -> pd.DataFrame:
    return frames.runs[frames.runs["run_id"].str.startswith(f"datablations/{prefix}")]


def test_run_and_family_counts(frames):
    repetition = _runs(frames, "gpt2-").loc[lambda r: ~r["run_id"].str.contains("python")]
    assert len(repetition) == 48  # 3 sizes x {c4, oscar} x 8 epoch settings, one TensorBoard id each
    assert len(_runs(frames, "contour-")) == 229 - 1  # one mis-parsed row skipped
    assert len(frames.runs[frames.runs["run_id"].str.contains("python")]) == 9  # C4 share 10..90 %
    assert frames.runs["run_id"].is_unique
    epoch_families = frames.families[frames.families["family"].str.fullmatch(r"datablations-(c4|oscar)-\d+ep")]
    assert len(epoch_families) == 16
    for family in epoch_families["family"]:
        sizes = sorted(frames.runs.loc[frames.runs["family"] == family, "num_params"])
        assert sizes == [2.8e9, 4.2e9, 8.7e9], family
    assert set(frames.runs["family"]) == set(frames.families["family"])


def test_known_runs_tokens_and_budgets(frames):
    runs = frames.runs.set_index("run_id")
    assert runs.loc["datablations/gpt2-8.7b-c4-1ep", "planned_tokens"] == pytest.approx(178e9)
    assert runs.loc["datablations/gpt2-2.8b-oscar-44ep", "planned_tokens"] == pytest.approx(55e9)
    assert runs.loc["datablations/gpt2-2.8b-oscar-44ep", "family"] == "datablations-oscar-44ep"
    tiny = runs.loc["datablations/contour-14m100m100m"]
    assert tiny["num_params"] == 14.1e6 and tiny["family"] == "datablations-c4-100m-unique"
    assert runs.loc["datablations/contour-2b855b4b", "family"] == "datablations-c4-4b-unique"
    assert (runs["num_params_derived"]).all() and (runs["architecture"] == "decoder").all()
    obs = frames.observations
    big = obs[obs["run_id"] == "datablations/gpt2-8.7b-c4-1ep"]
    assert big["tokens_seen"].max() == 177_999_970_304 and set(big["metric"]) == {"val/c4/loss"}
    assert len(obs[obs["run_id"].str.contains("/gpt2-") & ~obs["run_id"].str.contains("python")]) == 9261
    assert len(obs[obs["run_id"].str.contains("/contour-")]) == 228
    assert len(obs[obs["run_id"].str.contains("python")]) == 296  # 148 rows per eval set
    oscar = obs[obs["run_id"].str.contains("-oscar-")]
    assert set(oscar["metric"]) == {"val/oscar/loss"}


def test_file_flops_are_not_cumulative_so_we_use_6nd(mirror, frames):
    raw = pd.read_csv(mirror / db.LOSSES)
    # the file's flops fall as tokens grow: flops * token_num is one constant per run
    product = raw["flops"] * raw["token_num"]
    spread = product.groupby(raw["model_args"]).agg(lambda p: p.max() / p.min())
    assert np.allclose(spread, 1.0)
    first = raw.groupby("model_args")["flops"].first()
    last = raw.groupby("model_args")["flops"].last()
    assert (first > last).all()
    obs = frames.observations.merge(frames.runs[["run_id", "num_params"]], on="run_id")
    assert np.allclose(obs["flops"], 6 * obs["num_params"] * obs["tokens_seen"], rtol=1e-12)
    assert obs["flops_derived"].all() and not obs["tokens_derived"].any()
    contour = pd.read_csv(mirror / db.CONTOUR)
    assert np.allclose(contour["flops"], 6 * contour["num_params"] * contour["token_num"])


def test_mis_parsed_contour_row_is_skipped(frames):
    assert frames.bad_rows == {
        "datablations_contour_losses.csv: name disagrees with token_num/epochs (mis-parsed unique tokens)": 1
    }
    assert "datablations/contour-2b855b1b25" not in set(frames.runs["run_id"])


def test_code_mix_share_is_c4_and_seed_is_the_eval_set(frames):
    obs = frames.observations
    code = obs[obs["run_id"].str.contains("python")]
    final = code.loc[code.groupby(["run_id", "metric"])["tokens_seen"].idxmax()]
    final = final.assign(c4=final["run_id"].str.extract(r"-(\d+)pct-c4")[0].astype(int))
    c4 = final[final["metric"] == "val/c4/loss"].sort_values("c4")["value"].to_numpy()
    py = final[final["metric"] == "val/python/loss"].sort_values("c4")["value"].to_numpy()
    assert (np.diff(c4) < 0).all()  # more C4 in the mix -> lower C4 loss
    assert (np.diff(py) > 0).all()  # less Python -> higher Python loss
    assert py.max() < 1.0 < c4.min()  # code is far more predictable than web text
    pure = obs[obs["run_id"] == "datablations/gpt2-4.2b-c4-1ep"]
    assert abs(c4[-1] - pure.loc[pure["tokens_seen"].idxmax(), "value"]) < 0.05  # 90 % C4 ~ pure C4
    fam = frames.families.set_index("family")
    assert fam.loc["datablations-90pct-c4-10pct-python", "default_metric"] == "val/c4/loss"


def test_metrics_and_defaults(frames):
    assert set(frames.metrics["metric"]) == {"val/c4/loss", "val/oscar/loss", "val/python/loss"}
    assert set(frames.metrics["kind"]) <= set(METRIC_KINDS)
    kinds = frames.metrics.set_index("metric")["kind"]
    assert (kinds[frames.families["default_metric"]] == "loss").all()
    assert frames.observations["value"].between(0.3, 12).all()


def _copy(mirror: Path, tmp_path: Path) -> Path:
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / rel, tmp_path / rel)
    return tmp_path


def test_malformed_row_is_counted_and_the_rest_kept(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    raw = pd.read_csv(root / db.LOSSES)
    raw["token_num"] = raw["token_num"].astype(object)
    raw.loc[5, "token_num"] = "n/a"
    raw.to_csv(root / db.LOSSES, index=False)
    frames = db.read(root)
    assert (
        frames.bad_rows["datablations_losses.csv: non-numeric or non-positive token_num/loss/epochs/tokens_per_epoch"]
        == 1
    )
    obs = frames.observations
    assert len(obs[obs["run_id"].str.contains("/gpt2-") & ~obs["run_id"].str.contains("python")]) == 9260
    assert len(frames.runs) == 285


def test_missing_file_raises_with_its_name(mirror, tmp_path):
    root = _copy(mirror, tmp_path)
    (root / db.CODE).unlink()
    with pytest.raises(ValueError, match="datablations_code_losses.csv"):
        db.read(root)


def test_runs_state_their_unique_tokens(frames):
    """Unique tokens as the paper sets them up: budget / epochs, and the contour names' last label."""
    runs = frames.runs.set_index("run_id")
    # 2.8B on 55B tokens over 44 epochs sees 1.25B unique tokens; the 1-epoch run all 55B
    assert runs.loc["datablations/gpt2-2.8b-c4-44ep", "unique_tokens"] == pytest.approx(55e9 / 44, rel=1e-3)
    assert runs.loc["datablations/gpt2-2.8b-c4-1ep", "unique_tokens"] == pytest.approx(55e9, rel=1e-3)
    assert runs.loc["datablations/contour-2b855b4b", "unique_tokens"] == pytest.approx(4e9, rel=1e-2)
    assert runs.loc[runs.index.str.contains("python"), "unique_tokens"].isna().all()
    assert (runs["unique_tokens"].dropna() <= runs.loc[runs["unique_tokens"].notna(), "planned_tokens"] * 1.001).all()
