import json

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import meta, storage
from tests.core.synthetic import synthetic_family


def test_plan_tasks_windows_have_at_least_three_sizes_below_the_target():
    curves = synthetic_family()
    tasks = meta.plan_tasks("syn", curves)
    assert tasks
    sizes = curves.groupby("run_id").num_params.first()
    for task in tasks:
        assert sizes[list(task.run_ids)].nunique() >= 3
        assert "syn/3.2e+09" not in task.run_ids
    keys = {t.key("v1") for t in tasks}
    assert len(keys) == len(tasks)  # every task is distinct
    assert tasks[0].key("v1") != tasks[0].key("v2")  # a new data version invalidates results


def test_run_task_records_failures_as_rows_not_exceptions():
    curves = synthetic_family()
    task = meta.SweepTask("syn", ("syn/5e+07", "syn/1e+08", "syn/2e+08"), 1.0, False, 1e15)
    row = meta.run_task(task, curves, "v1")
    assert row["status"] == "SelectionError" and row["are_mean"] is None
    good = meta.run_task(meta.SweepTask("syn", ("syn/5e+07", "syn/1e+08", "syn/2e+08", "syn/4e+08"), 1.0, False, 0.0),
                         curves, "v1")
    assert good["status"] == "ok" and good["are_mean"] < 0.05 and 0 < good["compute_share"] < 1


def test_sweep_is_stored_incremental_and_resumable(built_db, tmp_path):
    results_path = tmp_path / "meta.duckdb"
    first = meta.run_sweep(built_db, results_path, families=["pythia-deduped"], n_jobs=1, limit=30, progress=False)
    assert first.fitted + first.failed == 30
    second = meta.run_sweep(built_db, results_path, families=["pythia-deduped"], n_jobs=2, progress=False)
    assert second.skipped == 30
    stored = meta.load_results(results_path)
    assert len(stored) == first.planned == second.planned
    assert stored["key"].is_unique
    ok = stored[stored.status == "ok"]
    assert len(ok) > 0 and (ok.are_mean >= 0).all() and ok[["E", "A", "B", "alpha", "beta"]].notna().all().all()
    third = meta.run_sweep(built_db, results_path, families=["pythia-deduped"], n_jobs=1, progress=False)
    assert third.fitted + third.failed == 0


def test_family_averaging_weights_families_equally():
    rows = pd.DataFrame({"family": ["a"] * 3 + ["b"], "status": "ok", "num_runs": 3, "are_mean": [0.1, 0.1, 0.1, 0.3]})
    out = meta.family_averaged(rows, ["num_runs"])
    assert out["are_mean"].iloc[0] == pytest.approx(0.2)


def test_expected_are_uses_matching_rows():
    rows = pd.DataFrame({"family": ["a", "a", "b", "b"], "status": "ok", "num_runs": [3, 3, 3, 8],
                         "compute_share": [0.01, 0.012, 0.011, 0.5], "final_only": False, "min_tokens": 1e10,
                         "fraction": 1.0, "are_mean": [0.02, 0.04, 0.06, 0.5]})
    result = meta.expected_are(rows, num_runs=3, compute_share=0.01)
    assert result["families"] == 2 and result["fits"] == 3
    assert result["are_median"] == pytest.approx((0.03 + 0.06) / 2)
    assert np.isnan(meta.expected_are(rows.iloc[:0], 3, 0.01)["are_median"])


def test_sweep_counts_count_families_with_a_successful_fit():
    rows = pd.DataFrame({"family": ["a", "a", "b", "c", "c", "c"],
                         "status": ["ok", "failed", "ok", "failed", "failed", "failed"]})
    counts = meta.sweep_counts(rows)
    assert (counts.fits, counts.succeeded, counts.families, counts.families_tried) == (6, 2, 2, 3)
    empty = meta.sweep_counts(pd.DataFrame(columns=list(meta.RESULT_COLUMNS)))
    assert (empty.fits, empty.succeeded, empty.families, empty.families_tried) == (0, 0, 0, 0)
