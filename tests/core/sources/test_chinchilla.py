"""Chinchilla adapter against the real mirror file (points digitised from the paper's figure)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from scaleplan.core.sources import chinchilla
from scaleplan.core.sources.base import METRIC_KINDS

POINTS = Path("colpret/raw_data/chinchila_extracted.csv")
# model sizes (millions of parameters) of the Chinchilla paper's Table A9 that the figure shows
TABLE_A9 = [
    57,
    74,
    90,
    106,
    117,
    140,
    163,
    175,
    196,
    217,
    251,
    278,
    306,
    425,
    489,
    509,
    552,
    587,
    632,
    664,
    724,
    816,
    893,
    1018,
    1143,
    1266,
    1424,
    1429,
    1593,
    1609,
    1731,
    1794,
    2007,
    2283,
    2298,
    2639,
    2980,
    4516,
    6796,
    9293,
    11452,
    12569,
    16183,
]


@pytest.fixture(scope="module")
def frames(mirror):
    return chinchilla.read(mirror)


def test_one_run_per_table_a9_size(frames):
    sizes = np.sort(frames.runs["num_params"].to_numpy()) / 1e6
    assert len(sizes) == 43
    assert np.allclose(sizes, TABLE_A9, rtol=1e-3, atol=0.5)
    # 1424M and 1429M are two models (0.3 % apart), not colour jitter of one
    assert {"chinchilla/chinchilla-1424M", "chinchilla/chinchilla-1429M"} <= set(frames.runs["run_id"])
    assert (frames.runs["family"] == "chinchilla").all() and frames.runs["num_params_derived"].all()


def test_tokens_from_flops(frames):
    obs = frames.observations
    assert len(obs) == 245 and not frames.bad_rows
    n = obs["run_id"].map(frames.runs.set_index("run_id")["num_params"])
    assert np.allclose(obs["tokens_seen"] * 6 * n, obs["flops"])
    assert obs["tokens_derived"].all() and not obs["flops_derived"].any()
    assert 1e18 < obs["flops"].min() and obs["flops"].max() < 2e22
    assert obs["value"].between(2.0, 5.1).all()


def test_invariants(frames):
    assert set(frames.metrics["kind"]) <= set(METRIC_KINDS)
    assert frames.families.set_index("family")["default_metric"].to_dict() == {"chinchilla": "train/loss"}
    assert not frames.observations.duplicated(["run_id", "tokens_seen", "metric"]).any()


def test_malformed_rows_are_skipped_and_counted(mirror, tmp_path):
    (tmp_path / POINTS).parent.mkdir(parents=True)
    shutil.copy(mirror / POINTS, tmp_path / POINTS)
    lines = (tmp_path / POINTS).read_text().splitlines()
    cells = lines[5].split(",")
    cells[3] = "big"  # Model Size
    lines[5] = ",".join(cells)
    cells = lines[6].split(",")
    cells[6] = ""  # loss
    lines[6] = ",".join(cells)
    (tmp_path / POINTS).write_text("\n".join(lines) + "\n")
    frames = chinchilla.read(tmp_path)
    assert frames.bad_rows == {"non-numeric or non-positive Model Size": 1, "non-numeric loss": 1}
    assert len(frames.observations) == 243
    assert len(frames.runs) == 43
