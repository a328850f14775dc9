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


def _shipped_rows() -> pd.DataFrame:
    from pathlib import Path

    return pd.read_parquet(Path(__file__).resolve().parents[2] / "data" / "sweep_results.parquet")


def _protocol_pairs(rows: pd.DataFrame, column: str, with_value, without_value, held: str, held_value):
    """Tasks fitted both ways, recomputed here with plain pandas: the setting not compared held at the
    paper's standard (10B cutoff on, intermediate checkpoints), one row per (family, runs, fraction, objective)."""
    rows = rows[np.isclose(rows[held].astype(float), float(held_value))]
    key = ["family", "run_ids", "fraction", "objective"]
    a = rows[np.isclose(rows[column].astype(float), float(with_value))].set_index(key)
    b = rows[np.isclose(rows[column].astype(float), float(without_value))].set_index(key)
    return a.reset_index().merge(b.reset_index(), on=key, suffixes=("_a", "_b"))


@pytest.mark.parametrize(
    ("name", "column", "with_value", "without_value", "held", "held_value"),
    [
        ("checkpoints", "final_only", False, True, "min_tokens", 10e9),
        ("cutoff", "min_tokens", 10e9, 0.0, "final_only", False),
    ],
)
def test_bars_and_findings_table_show_one_paired_comparison(name, column, with_value, without_value, held, held_value):
    """The page's bars, their failure caption and the findings table's row state the same pair count, ARE and
    failure rates, each recomputed here from the shipped sweep rows; the failure rates are over every task
    fitted both ways (before: the bars paired 166 / 659 tasks, the table 348 / 1004, and the captions' rates
    left out the tasks both fits got right on the same points)."""
    rows = _shipped_rows()
    tasks = _protocol_pairs(rows, column, with_value, without_value, held, held_value)
    assert not tasks.duplicated(["family", "run_ids", "fraction", "objective"]).any()
    ok_a, ok_b = tasks["status_a"] == "ok", tasks["status_b"] == "ok"
    informative = tasks[ok_a & ok_b & (tasks["n_points_a"] != tasks["n_points_b"])]
    per_family = informative.groupby("family")[["are_mean_a", "are_mean_b"]].mean().mean()
    fail_a, fail_b = f"{(~ok_a).mean():.0%}", f"{(~ok_b).mean():.0%}"
    assert len(tasks) > len(informative) > 100

    bars = findings.matched_comparison(rows, name)
    assert list(bars["fits"]) == [len(informative)] * 2
    assert list(bars["tasks"]) == [len(tasks)] * 2
    assert bars["are_mean"].tolist() == pytest.approx([per_family["are_mean_a"], per_family["are_mean_b"]])
    assert [f"{v:.0%}" for v in bars["failure_rate"]] == [fail_a, fail_b]
    caption = findings.paired_comparison(rows, name).failure_sentence()
    assert f"Of the {len(tasks):,} tasks fitted both ways, fits fail in {fail_a} with" in caption
    assert f"and in {fail_b} with" in caption

    ours = findings.check_findings(rows).set_index("key").loc[name, "ours"]
    assert f"({len(informative):,} paired fits" in ours
    assert f"ARE {per_family['are_mean_a']:.1%}" in ours and f"vs {per_family['are_mean_b']:.1%}" in ours
    assert f"of all {len(tasks):,} designs fitted both ways, {fail_a} fail" in ours
    if name == "checkpoints":  # the decision rule's share: final-only failures among the designs that fit
        share = f"{(~ok_b[ok_a]).mean():.0%} of the {int(ok_a.sum()):,} designs that fit with all checkpoints"
        assert share in ours
        assert f"fails in {(~ok_b[ok_a]).mean():.0%} of the {int(ok_a.sum()):,} tasks that fit" in caption
