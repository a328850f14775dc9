"""Summaries of a sweep's rows: family-averaged scores, compute-share bins and headline counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def family_averaged(results: pd.DataFrame, by: list[str], value: str = "are_mean") -> pd.DataFrame:
    """Mean of ``value`` within each family first, then across families (the paper's averaging)."""
    ok = results[results["status"] == "ok"]
    per_family = ok.groupby(by + ["family"], observed=True)[value].mean().reset_index()
    out = per_family.groupby(by, observed=True).agg(value=(value, "mean"), families=("family", "nunique"))
    return out.reset_index().rename(columns={"value": value})


COMPUTE_SHARE_BINS = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, np.inf)
COMPUTE_SHARE_LABELS = ("<0.01%", "0.01-0.1%", "0.1-1%", "1-10%", "10-100%", ">100%")


def with_compute_bins(results: pd.DataFrame) -> pd.DataFrame:
    """Add a categorical ``compute_bin`` column (share of the target's compute)."""
    out = results.copy()
    out["compute_bin"] = pd.cut(out["compute_share"], COMPUTE_SHARE_BINS, labels=COMPUTE_SHARE_LABELS, right=False)
    return out


@dataclass(frozen=True)
class SweepCounts:
    """Headline counts of a sweep's rows; every page that states them uses this one definition."""

    fits: int  # rows (tasks) in the sweep, successful or not
    succeeded: int  # rows with status "ok"
    families: int  # families with at least one successful fit (the ones any average is over)
    families_tried: int  # families with at least one row


def sweep_counts(results: pd.DataFrame) -> SweepCounts:
    """Fits, successful fits and families of the sweep ``results`` (rows of :func:`load_results`)."""
    ok = results[results["status"] == "ok"]
    return SweepCounts(
        fits=int(len(results)),
        succeeded=int(len(ok)),
        families=int(ok["family"].nunique()),
        families_tried=int(results["family"].nunique()),
    )
