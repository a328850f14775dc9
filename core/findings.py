"""Do the Hitchhiker paper's findings hold on our meta-analysis results? (as a table)

Pure pandas/NumPy over the rows of :func:`core.meta.load_results` (one row per fit of the
sweep). The verdicts are those of :func:`core.reproduce.hitchhiker_report` (the same numbers
as ``scaleplan reproduce``), so the dashboard and the CLI never disagree; this module turns
them into a table with the decision rule spelled out, adds the parameter-correlation finding,
and provides the matched comparisons the reliability page draws as bars.

Every average follows the paper: the mean ARE within each family first, then across families.
Matched comparisons (:func:`paired_comparison`, the one computation behind both the page's bars and
the findings table) pair a fit with the fit of the same family, runs and fraction that differs only
in the compared option, the other option held at the paper's standard (intermediate checkpoints, 10B
cutoff). The ARE compares only pairs where both fits succeeded and saw a different number of points
("informative": for a family whose runs report one final value, final-only and all-checkpoints are
the same fit). A failed fit counts in the option's failure rate, which is over all paired tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from scaleplan.core.selection import DEFAULT_MIN_TOKENS

__all__ = [
    "COMPARISONS",
    "FINDINGS_COLUMNS",
    "STATEMENTS",
    "Finding",
    "FindingKey",
    "Statement",
    "PairedComparison",
    "matched_pairs",
    "matched_comparison",
    "paired_comparison",
    "check_findings",
]

FINDINGS_COLUMNS = ["key", "finding", "paper", "ours", "holds", "criterion"]

# name -> (column that differs, value "with", value "without", (label with, label without))
COMPARISONS = {
    "checkpoints": ("final_only", False, True, ("Intermediate checkpoints", "Final losses only")),
    "cutoff": (
        "min_tokens",
        DEFAULT_MIN_TOKENS,
        0.0,
        ("Drop checkpoints at or below 10B tokens", "Keep all checkpoints"),
    ),
}
_TASK_KEY = ("family", "run_ids", "fraction", "final_only", "min_tokens", "objective")
_NEEDED = {
    "status",
    "are_mean",
    "family",
    "run_ids",
    "final_only",
    "min_tokens",
    "num_runs",
    "compute_share",
    "fraction",
    "n_points",
    "objective",
    "min_params_used",
    "max_params_used",
}

FindingKey = Literal["checkpoints", "cutoff", "floor", "many_small", "partial_target", "borrow", "directions"]


# The decision rules' limits, each stated once: the criteria below are written from them and
# :func:`core.reproduce.hitchhiker_report` decides with them.
FINAL_ONLY_FAIL_SHARE = 0.5
"""Final-only loses when it fails in more than this share of the designs that fit with all checkpoints."""
FLOOR_ARE_RANGE = (0.01, 0.08)
"""The median best-decile ARE per family must lie in this range for the ~4% floor to hold."""
USEFUL_ARE = 0.2
"""ARE up to which a prediction is still useful (the paper's 20%)."""
MANY_RUNS = 4
"""'Several smaller runs': at least this many runs, against 3."""
PARTIAL_TARGET_MAX_ARE = 0.05
"""Most mean ARE for 'training the target to ~30% is very accurate'."""
BORROW_MAX_ARE = USEFUL_ARE
"""Most mean ARE for a one-run fit with borrowed A and alpha to count as usable."""
DIRECTIONS_MIN_SHARE = 0.9
"""Least variance share of the top 3 principal components for 'about three directions'."""


@dataclass(frozen=True)
class Statement:
    """One of the paper's findings: what it says and how we decide whether it holds on our data."""

    finding: str
    paper: str
    criterion: str


STATEMENTS: dict[FindingKey, Statement] = {
    "checkpoints": Statement(
        "Fitting on intermediate checkpoints beats final losses only",
        "much lower ARE with all checkpoints",
        "ARE (family-averaged, informative pairs) lower with all checkpoints, or final-only fits "
        f"fail in more than {FINAL_ONLY_FAIL_SHARE:.0%} of the designs that fit with all checkpoints",
    ),
    "cutoff": Statement(
        "Dropping checkpoints before 10B tokens helps",
        "early checkpoints are noisy; drop them",
        "ARE (family-averaged, informative pairs) lower with the cutoff than without",
    ),
    "floor": Statement(
        "About 4% ARE is the floor; up to 20% is still useful",
        "~4% seed-noise floor; <=20% useful",
        f"the median over families of each family's best-decile ARE lies between {FLOOR_ARE_RANGE[0]:.0%} "
        f"and {FLOOR_ARE_RANGE[1]:.0%}",
    ),
    "many_small": Statement(
        "Several smaller runs beat fewer larger ones at the same compute",
        "more models, even if smaller, often predict better",
        f"at matched compute-share bins, family-averaged ARE with {MANY_RUNS}+ runs below that with 3 runs",
    ),
    "directions": Statement(
        "Across fits the five parameters live in about three directions",
        "parameters strongly correlated; ~3 principal components explain nearly all variation",
        "top 3 principal components of the standardised (log E, log A, log B, alpha, beta) of the "
        f"fits (all checkpoints, 10B cutoff) explain at least {DIRECTIONS_MIN_SHARE:.0%} of the variance",
    ),
    "partial_target": Statement(
        "Training the target to ~30% and extrapolating is very accurate",
        "a target trained to ~30% of its data predicts its end well",
        f"mean ARE over families of fits on smaller runs plus the target's first 30% is at most "
        f"{PARTIAL_TARGET_MAX_ARE:.0%}",
    ),
    "borrow": Statement(
        "With one run of a new family, borrow A and alpha from a similar family",
        "borrowing makes a single-run fit usable",
        f"mean ARE over families of one-run fits with borrowed A and alpha is at most {BORROW_MAX_ARE:.0%}",
    ),
}
"""The paper's findings we check, in the order of the table; their wording and decision rules live only here."""

DATABASE_FINDINGS: tuple[FindingKey, ...] = ("partial_target", "borrow")
"""Decided by extra fits on the database (``hitchhiker_report`` with a connection)."""


@dataclass(frozen=True)
class Finding:
    """A finding of the paper as our data show it."""

    key: FindingKey
    ours: str  # what our data show, with the numbers
    holds: bool | None  # None when these results cannot decide it

    @property
    def statement(self) -> Statement:
        return STATEMENTS[self.key]

    def as_dict(self) -> dict[str, Any]:
        """One row of the findings table and of ``reproduce hitchhiker --json``: key, finding, paper, ours,
        holds, criterion."""
        s = self.statement
        return {
            "key": self.key,
            "finding": s.finding,
            "paper": s.paper,
            "ours": self.ours,
            "holds": self.holds,
            "criterion": s.criterion,
        }


_NOT_MEASURED = {
    "partial_target": "not measured from the sweep alone (it never fits on the target itself)",
    "borrow": "not measured from the sweep alone (try it on the Fit page)",
}


def _usable(results: pd.DataFrame | None) -> bool:
    return (
        results is not None
        and not results.empty
        and _NEEDED <= set(results.columns)
        and bool((results["status"] == "ok").any())
    )


def matched_pairs(
    results: pd.DataFrame,
    comparison: str,
    *,
    informative_only: bool = False,
    final_only: bool | None = False,
    min_tokens: float | None = DEFAULT_MIN_TOKENS,
) -> pd.DataFrame:
    """Tasks fitted both ways of ``comparison`` ("checkpoints" or "cutoff").

    One row per task: family, run_ids, fraction, num_runs, compute_share (of the "with" fit),
    status_with, status_without, are_with, are_without (NaN where a fit failed) and
    informative (both fitted, on different numbers of points). The setting that is not compared
    is held at ``final_only`` / ``min_tokens`` (None: any, which pairs each task once per value of
    that setting). With ``informative_only``, pairs that both succeeded on the same points are
    dropped (so failure rates over the rows left are not over all paired tasks; see
    :func:`paired_comparison`).
    """
    column, with_value, without_value, _ = COMPARISONS[comparison]
    frame = results
    if comparison == "cutoff" and final_only is not None:
        frame = frame[frame["final_only"] == final_only]
    if comparison == "checkpoints" and min_tokens is not None:
        frame = frame[np.isclose(frame["min_tokens"].astype(float), min_tokens)]
    key = [k for k in _TASK_KEY if k != column and k in frame.columns]
    keep = ["status", "are_mean", "compute_share", "num_runs", "n_points"]
    is_with = np.isclose(frame[column].astype(float), float(with_value))
    is_without = np.isclose(frame[column].astype(float), float(without_value))
    a = frame[is_with][key + keep].drop_duplicates(key)
    b = frame[is_without][key + keep].drop_duplicates(key)
    pairs = a.merge(b, on=key, suffixes=("_with", "_without"))
    pairs = pairs.rename(
        columns={
            "are_mean_with": "are_with",
            "are_mean_without": "are_without",
            "num_runs_with": "num_runs",
            "compute_share_with": "compute_share",
        }
    )
    pairs.loc[pairs["status_with"] != "ok", "are_with"] = np.nan
    pairs.loc[pairs["status_without"] != "ok", "are_without"] = np.nan
    both = (pairs["status_with"] == "ok") & (pairs["status_without"] == "ok")
    pairs["informative"] = both & (pairs["n_points_with"] != pairs["n_points_without"])
    if informative_only:
        pairs = pairs[~both | pairs["informative"]]
    return pairs.drop(columns=["num_runs_without", "compute_share_without"]).reset_index(drop=True)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


@dataclass(frozen=True)
class PairedComparison:
    """Both options of one matched comparison over the tasks fitted both ways (:func:`paired_comparison`).

    Counts are tasks (a design: family, runs, fraction of training, objective); shares are fractions in
    [0, 1]; ARE values are fractions of the actual loss, family-averaged (mean within each family, then
    across families) over the informative pairs, NaN without any.
    """

    comparison: str  # "checkpoints" or "cutoff"
    labels: tuple[str, str]  # the option "with", the option "without"
    tasks: int  # tasks fitted both ways, whatever the outcome: the denominator of the failure rates
    failed_with: int  # of those, tasks whose "with" fit failed
    failed_without: int  # ... whose "without" fit failed
    fitted_with: int  # tasks whose "with" fit succeeded
    without_failed_of_fitted_with: int  # of those, tasks whose "without" fit failed
    both_same_points: int  # tasks both fits succeeded on the same points (no comparison)
    pairs: int  # informative pairs: both fits succeeded, on different numbers of points
    families: int  # families of the informative pairs
    are_with: float
    are_without: float
    are_median_with: float  # family-averaged median ARE
    are_median_without: float
    with_better_share: float  # share of the informative pairs where "with" has the lower ARE

    @property
    def failure_rate_with(self) -> float:
        """Share of all paired tasks whose "with" fit failed (NaN without tasks)."""
        return _share(self.failed_with, self.tasks)

    @property
    def failure_rate_without(self) -> float:
        """Share of all paired tasks whose "without" fit failed (NaN without tasks)."""
        return _share(self.failed_without, self.tasks)

    @property
    def without_failed_share(self) -> float:
        """Share of the tasks that fit "with" whose "without" fit failed (the final-only rule's share)."""
        return _share(self.without_failed_of_fitted_with, self.fitted_with)

    def failure_sentence(self) -> str:
        """The failure rates in words, each with what it is over (Markdown-safe: no user text)."""
        first, second = (f"“{label}”" for label in self.labels)
        if not self.tasks:
            return "No task was fitted both ways."
        text = (
            f"Of the {self.tasks:,} tasks fitted both ways, fits fail in {self.failure_rate_with:.0%} with {first} "
            f"and in {self.failure_rate_without:.0%} with {second}"
        )
        if self.fitted_with:
            text += (
                f"; {second} fails in {self.without_failed_share:.0%} of the {self.fitted_with:,} tasks that "
                f"fit with {first}"
            )
        return text + "."

    def frame(self) -> pd.DataFrame:
        """The two options as rows for the bars: option, are_mean, are_median, fits (informative pairs),
        families, tasks, failure_rate (over all paired tasks)."""
        return pd.DataFrame(
            [
                {
                    "option": label,
                    "are_mean": are,
                    "are_median": median,
                    "fits": self.pairs,
                    "families": self.families,
                    "tasks": self.tasks,
                    "failure_rate": rate,
                }
                for label, are, median, rate in (
                    (self.labels[0], self.are_with, self.are_median_with, self.failure_rate_with),
                    (self.labels[1], self.are_without, self.are_median_without, self.failure_rate_without),
                )
            ],
            columns=_FRAME_COLUMNS,
        )


_FRAME_COLUMNS = ["option", "are_mean", "are_median", "fits", "families", "tasks", "failure_rate"]


def _summarise(pairs: pd.DataFrame, comparison: str) -> PairedComparison:
    ok_with = pairs["status_with"] == "ok"
    ok_without = pairs["status_without"] == "ok"
    informative = pairs[pairs["informative"]]
    if informative.empty:
        are = median = (float("nan"), float("nan"))
        better = float("nan")
    else:
        per_family = informative.groupby("family")[["are_with", "are_without"]]
        means, medians = per_family.mean().mean(), per_family.median().mean()
        are = (float(means["are_with"]), float(means["are_without"]))
        median = (float(medians["are_with"]), float(medians["are_without"]))
        better = float((informative["are_with"] < informative["are_without"]).mean())
    return PairedComparison(
        comparison=comparison,
        labels=COMPARISONS[comparison][3],
        tasks=int(len(pairs)),
        failed_with=int((~ok_with).sum()),
        failed_without=int((~ok_without).sum()),
        fitted_with=int(ok_with.sum()),
        without_failed_of_fitted_with=int((ok_with & ~ok_without).sum()),
        both_same_points=int((ok_with & ok_without & ~pairs["informative"]).sum()),
        pairs=int(len(informative)),
        families=int(informative["family"].nunique()),
        are_with=are[0],
        are_without=are[1],
        are_median_with=median[0],
        are_median_without=median[1],
        with_better_share=better,
    )


def paired_comparison(results: pd.DataFrame, comparison: str) -> PairedComparison:
    """The one paired comparison of two fitting options, for the reliability page's bars and the findings table.

    Pairing follows Choshen et al.'s protocol: their standard fit uses intermediate checkpoints and
    drops those at or below 10B tokens, and each finding varies one of the two while the other stays at
    that standard. So "checkpoints" (all checkpoints vs final losses only) pairs the fits with the 10B
    cutoff on, and "cutoff" (10B cutoff vs none) pairs the fits on intermediate checkpoints. Pooling
    the other setting's two values instead would count every design twice, once under a setting the
    paper does not use (the cutoff on final losses drops whole runs of at most 10B tokens).

    Every task fitted both ways counts in both failure rates; the ARE is compared on the informative
    pairs only (both fits succeeded, on different numbers of points: for a family whose runs report
    one final value, final-only and all checkpoints are the same fit).
    """
    return _summarise(matched_pairs(results, comparison), comparison)


def matched_comparison(results: pd.DataFrame, comparison: str, *, by: str | None = None) -> pd.DataFrame:
    """:func:`paired_comparison` as rows for the bars, optionally split by ``by`` (e.g. "num_runs").

    Columns: option (label), [by], are_mean (family-averaged mean ARE), are_median (family-averaged
    median), fits (informative pairs), families, tasks (paired tasks), failure_rate (share of the
    paired tasks where this option's fit failed).
    """
    if by is None:
        return paired_comparison(results, comparison).frame()
    pairs = matched_pairs(results, comparison)
    frames = [
        _summarise(pairs[pairs[by] == group], comparison).frame().assign(**{by: group})
        for group in sorted(pairs[by].dropna().unique())
    ]
    columns = ["option", by] + _FRAME_COLUMNS[1:]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _parameter_directions(results: pd.DataFrame) -> Finding:
    # Only successful fits: a failed row may lack its design columns (NULL final_only, min_tokens).
    fitted = results[results["status"] == "ok"]
    ok = fitted[
        ~fitted["final_only"].fillna(False).astype(bool)
        & np.isclose(fitted["min_tokens"].astype(float), DEFAULT_MIN_TOKENS)
    ]
    values = (
        ok[["E", "A", "B", "alpha", "beta"]].astype(float).to_numpy()
        if {"E", "A", "B", "alpha", "beta"} <= set(ok.columns)
        else np.empty((0, 5))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.column_stack([np.log(values[:, :3]), values[:, 3:]]) if len(values) else values
    logged = logged[np.all(np.isfinite(logged), axis=1)] if len(logged) else logged
    if len(logged) < 6:
        return Finding("directions", "fewer than 6 successful fits", None)
    std = logged.std(axis=0)
    z = (logged - logged.mean(axis=0)) / np.where(std > 0, std, 1.0)
    eig = np.sort(np.linalg.eigvalsh(np.cov(z, rowvar=False)))[::-1]
    share = float(eig[:3].sum() / eig.sum()) if eig.sum() > 0 else float("nan")
    return Finding(
        "directions",
        f"top 3 components explain {share:.1%} of the variance over {len(logged)} fits",
        bool(share >= DIRECTIONS_MIN_SHARE) if np.isfinite(share) else None,
    )


def check_findings(results: pd.DataFrame, measured: Sequence[Finding] | None = None) -> pd.DataFrame:
    """The paper's guidance, each with what our sweep shows and whether it holds.

    Columns: :data:`FINDINGS_COLUMNS` (key, finding, paper, ours, holds: True / False, or None when it
    cannot be decided from these results, criterion: the decision rule), one row per :data:`STATEMENTS`
    entry in its order. The sweep-based verdicts come from :func:`core.reproduce.hitchhiker_report`;
    ``measured`` may hold that function's findings computed with a database connection (the
    partial-target and borrowing experiments), which replace the "not measured" rows. Empty or
    incomplete ``results`` give every holds None.
    """
    from scaleplan.core.reproduce import hitchhiker_report  # local: reproduce imports fitting (scipy)

    found: dict[FindingKey, Finding] = {}
    if _usable(results):
        found.update((f.key, f) for f in hitchhiker_report(results).findings)
        found["directions"] = _parameter_directions(results)
    found.update((f.key, f) for f in measured or () if f.key in DATABASE_FINDINGS)
    missing = "too few comparable fits in these results" if _usable(results) else "no meta-analysis results"
    rows = [found.get(key, Finding(key, _NOT_MEASURED.get(key, missing), None)).as_dict() for key in STATEMENTS]
    table = pd.DataFrame(rows, columns=FINDINGS_COLUMNS)
    table["holds"] = table["holds"].astype(object).where(table["holds"].notna(), None)
    return table
