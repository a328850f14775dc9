"""ColPret's overtrain_downstreams.csv adapter, checked against the mlfoundations files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleplan.core.sources import overtrain
from scaleplan.core.sources import overtrain_downstreams as od

CSV = Path("colpret/raw_data/overtrain/overtrain_downstreams.csv")
VAL_SETS = (
    "openlm",
    "c4_val",
    "paloma_c4_en",
    "paloma_dolma_100_programing_languages",
    "paloma_falcon-refinedweb",
    "paloma_ptb",
    "paloma_redpajama",
    "val_de-en_100",
)


@pytest.fixture(scope="module")
def frames(mirror):
    return od.read(mirror)


@pytest.fixture(scope="module")
def base(mirror):
    return overtrain.read(mirror)


def _wide(frames) -> pd.DataFrame:
    return frames.observations.pivot(index="run_id", columns="metric", values="value")


def test_same_104_runs_as_overtrain(frames, base):
    assert len(frames.runs) == 104
    assert set(frames.runs["run_id"]) <= set(base.runs["run_id"])
    mine = frames.runs.set_index("run_id")
    theirs = base.runs.set_index("run_id").loc[mine.index]
    for column in ("family", "model_name", "num_params", "planned_tokens", "training_data"):
        assert (mine[column] == theirs[column]).all(), column
    assert frames.families.empty and not frames.bad_rows
    # same (run, tokens) coordinates, so the build merges the observations onto one point per run
    tokens = frames.observations.groupby("run_id")["tokens_seen"].unique()
    assert (tokens.map(len) == 1).all()
    assert (tokens.map(lambda t: t[0]) == theirs["planned_tokens"][tokens.index]).all()


def test_only_new_metrics_under_colpret_names(frames, base):
    names = set(frames.metrics["metric"])
    assert all(n.startswith("colpret/") for n in names)
    assert not names & set(base.metrics["metric"])
    kinds = frames.metrics.set_index("metric")["kind"]
    assert (kinds[[n for n in names if n.endswith("/err")]] == "error").all()
    assert len([n for n in names if n.endswith("/err")]) == 48  # 46 tasks + two averages
    assert len([n for n in names if "/loss_" in n]) == 16  # upper and lower bound of 8 sets
    assert set(frames.observations["metric"]) == names


def test_skipped_losses_are_the_mlfoundations_losses(mirror, base):
    """Why loss_<set> is not stored again: it equals val/<set>/loss of the overtrain adapter."""
    csv = pd.read_csv(mirror / CSV).set_index("name")
    wide = _wide(base)
    for val in VAL_SETS:
        ours = wide[f"val/{val}/loss"]
        theirs = csv[f"loss_{val}"].rename(lambda n: f"overtrain/{n}")[ours.index]
        assert np.allclose(ours, theirs, rtol=0, atol=1e-12), val


def test_errors_are_one_minus_accuracy_and_bounds_bracket_the_loss(frames, base):
    mine, theirs = _wide(frames), _wide(base).loc[_wide(frames).index]
    tasks = [m.split("/")[1] for m in theirs.columns if m.startswith("downstream/")]
    assert len(tasks) == 46
    for task in tasks:
        assert np.allclose(mine[f"colpret/downstream/{task}/err"], 1 - theirs[f"downstream/{task}/acc"], atol=1e-9)
    errors = mine[[f"colpret/downstream/{t}/err" for t in tasks]]
    assert np.allclose(mine["colpret/downstream/avg46/err"], errors.mean(axis=1))
    for val in VAL_SETS:
        loss = theirs[f"val/{val}/loss"]
        assert (mine[f"colpret/val/{val}/loss_lower95"] <= loss).all()
        assert (loss <= mine[f"colpret/val/{val}/loss_upper95"]).all()


def test_malformed_rows_are_counted_and_the_rest_kept(mirror, tmp_path):
    target = tmp_path / CSV
    target.parent.mkdir(parents=True)
    shutil.copyfile(mirror / CSV, target)
    frame = pd.read_csv(target, dtype=str, keep_default_na=False)
    frame.loc[3, "N"] = "abc"
    frame.loc[5, "err_piqa"] = "oops"
    frame.to_csv(target, index=False)
    frames = od.read(tmp_path)
    assert frames.bad_rows["row without name or with non-numeric / non-positive N or D"] == 1
    assert frames.bad_rows["non-numeric value"] == 1
    assert len(frames.runs) == 103
    broken = f"overtrain/{frame.loc[5, 'name']}"
    per_run = frames.observations.groupby("run_id").size()
    assert per_run[broken] == 63 and (per_run.drop(broken) == 64).all()
