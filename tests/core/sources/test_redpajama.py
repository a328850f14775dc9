"""RedPajama-INCITE adapter against the real mirror files (blog-figure curves)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from scaleplan.core.sources import redpajama

ROOT = Path("colpret/raw_data/redPajama")


@pytest.fixture(scope="module")
def frames(mirror):
    return redpajama.read(mirror)


def test_two_runs_one_family(frames):
    runs = frames.runs.set_index("run_id")
    assert runs["num_params"].to_dict() == {"redpajama/redpajama-2.4b": 2.4e9, "redpajama/redpajama-6.7b": 6.7e9}
    assert set(runs["family"]) == {"redpajama-incite"}
    assert frames.families.set_index("family")["default_metric"].to_dict() == {"redpajama-incite": "train/loss"}


def test_tokens_are_billions_and_artefacts_dropped(frames, mirror):
    obs = frames.observations
    raw_rows = sum(len((mirror / ROOT / f"{s}.csv").read_text().splitlines()) for s in ("2.4B", "6.7B"))
    assert raw_rows == 135
    # 6 flat points at 2.326 after the 2.4B curve's end and one 2.413 spike in the 6.7B file
    assert frames.bad_rows == {"digitisation artefact (loss > 0.1 above the curve's minimum so far)": 7}
    assert len(obs) == 128
    span = obs.groupby("run_id")["tokens_seen"].agg(["min", "max"])
    assert span.loc["redpajama/redpajama-6.7b", "max"] == pytest.approx(795.2e9, rel=1e-3)  # ~80 % of 1T
    assert span.loc["redpajama/redpajama-2.4b", "min"] == pytest.approx(63.5e9, rel=1e-3)
    # after the artefacts are gone each curve is (almost) monotone: jitter below 0.01 nats
    for _, curve in obs.sort_values("tokens_seen").groupby("run_id")["value"]:
        assert (curve.diff().dropna() < 0.01).all()
    n = obs["run_id"].map(frames.runs.set_index("run_id")["num_params"])
    assert np.allclose(obs["flops"], 6 * n * obs["tokens_seen"])


def test_malformed_rows_are_skipped_and_counted(mirror, tmp_path):
    (tmp_path / ROOT).mkdir(parents=True)
    for size in ("2.4B", "6.7B"):
        shutil.copy(mirror / ROOT / f"{size}.csv", tmp_path / ROOT / f"{size}.csv")
    with (tmp_path / ROOT / "2.4B.csv").open("a") as handle:
        handle.write("lots, 2.0\n-5, 2.0\n300.0, n/a\n")
    frames = redpajama.read(tmp_path)
    assert frames.bad_rows["non-numeric or non-positive token count"] == 2
    assert frames.bad_rows["non-numeric loss"] == 1
    assert len(frames.observations) == 128
