"""scaleplan.core.findings on a synthetic meta-analysis frame whose answers are known by construction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import findings


def synthetic(
    *,
    intermediate_better=True,
    cutoff_better=True,
    more_runs_better=True,
    floor=0.03,
    final_only_fails=False,
    same_points=False,
    offset_b=0.01,
) -> pd.DataFrame:
    """Two families x windows x fractions x checkpoints x cutoff; ARE set by simple rules.

    ARE = floor + family offset + 0.01 (fraction < 1) + 0.01 per run away from the best count
    + 0.05 for the worse checkpoint option + 0.04 for the worse cutoff option.
    """
    rng = np.random.default_rng(0)
    rows = []
    for family, offset in (("fam-a", 0.0), ("fam-b", offset_b)):
        for k in (3, 4, 6, 8):
            run_ids = json.dumps([f"{family}/run{i}" for i in range(k)])
            for fraction in (0.3, 1.0):
                for final_only in (False, True):
                    for min_tokens in (10e9, 0.0):
                        are = floor + offset + (0.01 if fraction < 1 else 0.0)
                        are += 0.01 * ((8 - k) if more_runs_better else (k - 3))
                        are += 0.05 if final_only == intermediate_better else 0.0
                        are += 0.0 if (min_tokens > 0) == cutoff_better else 0.04
                        # Parameters on a 2-dimensional manifold.
                        t, u = rng.normal(size=2)
                        params = {
                            "E": np.exp(0.5 + 0.1 * t),
                            "A": np.exp(5 + t + u),
                            "B": np.exp(6 + u),
                            "alpha": 0.3 + 0.05 * t,
                            "beta": 0.3 + 0.05 * u,
                        }
                        failed = final_only_fails and final_only
                        points = k if (final_only or same_points) else 10 * k - (3 * k if min_tokens > 0 else 0)
                        rows.append(
                            {
                                "family": family,
                                "run_ids": run_ids,
                                "num_runs": k,
                                "fraction": fraction,
                                "final_only": final_only,
                                "min_tokens": min_tokens,
                                "objective": "huber",
                                "status": "InsufficientDataError" if failed else "ok",
                                "n_points": points,
                                "are_mean": np.nan if failed else are,
                                "compute_share": 10.0 ** (-3 + k / 10),
                                "min_params_used": 1e7,
                                "max_params_used": 1e7 * 2**k,
                                **params,
                            }
                        )
    return pd.DataFrame(rows)


def holds(table: pd.DataFrame, marker: str):
    row = table[table["finding"].str.contains(marker, regex=False)]
    assert len(row) == 1, (marker, list(table["finding"]))
    return row["holds"].iloc[0]


def test_all_hold_when_built_to_hold():
    table = findings.check_findings(synthetic())
    assert list(table.columns) == findings.FINDINGS_COLUMNS
    assert holds(table, "intermediate checkpoints") is True
    assert holds(table, "10B tokens") is True
    assert holds(table, "4% ARE") is True
    assert holds(table, "smaller runs") is True
    assert holds(table, "three directions") is True
    assert holds(table, "30%") is None and holds(table, "borrow") is None
    assert (table["criterion"].str.len() > 0).all()


def test_each_finding_can_fail():
    table = findings.check_findings(synthetic(intermediate_better=False, cutoff_better=False, more_runs_better=False))
    assert holds(table, "intermediate checkpoints") is False
    assert holds(table, "10B tokens") is False
    assert holds(table, "smaller runs") is False
    assert holds(findings.check_findings(synthetic(floor=0.0001, offset_b=0.0)), "4% ARE") is False  # far below 1%


def test_matched_comparison_numbers():
    table = findings.matched_comparison(synthetic(), "checkpoints")
    with_row, without_row = table.iloc[0], table.iloc[1]
    assert without_row["are_mean"] - with_row["are_mean"] == pytest.approx(0.05)
    assert with_row["fits"] == 2 * 4 * 2  # families x windows x fractions (cutoff held at 10B)
    assert with_row["families"] == 2
    by = findings.matched_comparison(synthetic(), "cutoff", by="num_runs")
    assert sorted(by["num_runs"].unique()) == [3, 4, 6, 8]
    gap = by.pivot(index="num_runs", columns="option", values="are_mean")
    assert np.allclose(gap["Keep all checkpoints"] - gap["Drop checkpoints at or below 10B tokens"], 0.04)


def test_uninformative_pairs_are_left_out():
    # Runs that report one value each: final-only and all checkpoints are the same fit.
    table = findings.matched_comparison(synthetic(same_points=True), "checkpoints")
    assert (table["fits"] == 0).all()
    pairs = findings.matched_pairs(synthetic(same_points=True), "checkpoints", informative_only=False)
    assert len(pairs) == 16 and not pairs["informative"].any()


def test_failures_count_against_an_option():
    frame = synthetic(final_only_fails=True)
    table = findings.matched_comparison(frame, "checkpoints")
    assert table.iloc[1]["failure_rate"] == 1.0 and table.iloc[0]["failure_rate"] == 0.0
    assert table.iloc[0]["fits"] == 0
    result = findings.check_findings(frame)
    assert holds(result, "intermediate checkpoints") is True  # final-only never succeeds
    assert "could not be fitted" in result[result["finding"].str.contains("intermediate")]["ours"].iloc[0]


def test_measured_findings_replace_the_placeholders():
    measured = [
        findings.Finding("partial_target", "mean ARE 2.0% over 5 families", True),
        findings.Finding("checkpoints", "a sweep finding is not replaced", False),
    ]
    table = findings.check_findings(synthetic(), measured=measured)
    assert holds(table, "intermediate checkpoints") is True
    assert holds(table, "30%") is True
    assert holds(table, "borrow") is None
    assert len(table[table["finding"].str.contains("30%")]) == 1


def test_empty_results():
    table = findings.check_findings(pd.DataFrame())
    assert len(table) == 7
    assert table["holds"].isna().all()
    assert (table["ours"].str.len() > 0).all()
