"""The dashboard queries of core.storage (the "# Dashboard queries" block)."""

from __future__ import annotations

import pytest

from scaleplan.core import storage


def test_family_metrics_defaults_first(con):
    metrics = storage.family_metrics(con, ["pythia", "olmo"])
    defaults = metrics[metrics["is_default"]]["metric"].tolist()
    assert set(defaults) == {"zero-shot/lambada_openai/log_ppl", "val/c4_en/loss"}
    assert metrics["is_default"].iloc[: len(defaults)].all()
    assert (metrics["num_points"] > 0).all()
    assert storage.family_metrics(con, []).empty


def test_explore_runs_filters(con):
    runs = storage.explore_runs(con, ["pythia"], "zero-shot/lambada_openai/log_ppl")
    assert len(runs) == 7 and runs["num_params"].is_monotonic_increasing
    assert (runs["num_points"] > 0).all() and runs["final_value"].notna().all()
    sized = storage.explore_runs(con, ["pythia"], "zero-shot/lambada_openai/log_ppl", min_params=1e8, max_params=2e9)
    assert sized["num_params"].between(1e8, 2e9).all() and len(sized) == 3
    assert storage.explore_runs(con, ["pythia"], "zero-shot/lambada_openai/log_ppl", architectures=["ssm"]).empty
    assert storage.explore_runs(con, ["pythia"], "zero-shot/lambada_openai/log_ppl", training_data=["x"]).empty
    mixed = storage.explore_runs(con, ["gpt3", "pile-t5"], "train/loss", architectures=["encoder-decoder"])
    assert set(mixed["family"]) == {"pile-t5"}


def test_unstated_training_data_is_filterable(con):
    family = con.execute("SELECT family FROM runs WHERE training_data IS NULL LIMIT 1").fetchone()
    assert family is not None, "the collection has runs whose training data is not stated"
    metric = con.execute("SELECT default_metric FROM families WHERE family = ?", [family[0]]).fetchone()[0]
    runs = storage.explore_runs(con, [family[0]], metric, training_data=[storage.UNSPECIFIED])
    assert not runs.empty and (runs["training_data"] == storage.UNSPECIFIED).all()


def test_downsampling_caps_points_and_keeps_ends(con):
    run_id, metric, total, first, last = con.execute("""
        SELECT run_id, metric, count(*), min(tokens_seen), max(tokens_seen) FROM observations
        WHERE family = 'llm360-mamba' AND metric = 'train/loss' GROUP BY ALL""").fetchone()
    assert total > 10_000
    curves = storage.downsampled_curves(con, [run_id], metric, max_points=400)
    assert 100 < len(curves) <= 400
    assert curves["tokens_seen"].iloc[0] == first and curves["tokens_seen"].iloc[-1] == last
    assert curves["tokens_seen"].is_monotonic_increasing and curves["tokens_seen"].is_unique
    assert (curves["points_in_run"] == total).all()
    final = con.execute(
        "SELECT value FROM observations WHERE run_id = ? AND metric = ? AND tokens_seen = ?", [run_id, metric, last]
    ).fetchone()[0]
    assert curves["value"].iloc[-1] == final


def test_downsampling_leaves_short_runs_alone(con):
    runs = storage.explore_runs(con, ["pythia"], "zero-shot/lambada_openai/log_ppl")
    curves = storage.downsampled_curves(con, runs["run_id"].tolist(), "zero-shot/lambada_openai/log_ppl")
    assert len(curves) == runs["num_points"].sum()
    assert curves.groupby("run_id").size().max() <= 400
    with pytest.raises(ValueError):
        storage.downsampled_curves(con, runs["run_id"].tolist(), "x", max_points=1)


def test_single_point_runs(con):
    runs = storage.explore_runs(con, ["overtrain-c4"], "val/c4_val/loss")
    curves = storage.downsampled_curves(con, runs["run_id"].tolist(), "val/c4_val/loss", max_points=2)
    assert len(curves) == len(runs)


def test_hostile_values_are_harmless(con):
    hostile = "x'; DROP TABLE runs; --"
    assert storage.family_metrics(con, [hostile]).empty
    assert storage.explore_runs(con, [hostile], hostile, architectures=[hostile], training_data=[hostile]).empty
    assert storage.downsampled_curves(con, [hostile], hostile).empty
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
