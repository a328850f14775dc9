"""Held-out validation: each source group (or family) predicted by a calibration learned without it,
the naive baseline beside it, and the report of ``scaleplan reproduce calibration``."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleplan.core.calibration.base import LEVELS, METHOD, CalibrationError
from scaleplan.core.calibration.features import features_table
from scaleplan.core.calibration.model import fit_calibration, source_groups, usable_rows
from scaleplan.core.conformal import conformal_quantile

HOLDOUTS = ("source", "family")
"""What one held-out unit is: a whole source group (the use: a new lab's runs) or one family."""
PLANNER_LEVELS = (0.5, 0.8, 0.9)


def _check_holdout(holdout: str) -> None:
    if holdout not in HOLDOUTS:
        raise CalibrationError(f"holdout must be one of {', '.join(HOLDOUTS)}, got {holdout!r}")


def held_out_units(results: pd.DataFrame, holdout: str = "source") -> list[str]:
    """The units a validation holds out one at a time: source groups or families (sorted)."""
    _check_holdout(holdout)
    rows = usable_rows(results)
    units = source_groups(rows) if holdout == "source" else rows["family"].astype(str).to_numpy()
    return sorted(set(units))


def plan_table(table: pd.DataFrame) -> pd.DataFrame:
    """The same designs as a planner sees them, before any fit: no residual, no fitted exponents, no
    estimation error and no backtest of a fit."""
    return table.assign(
        fit_log_rmse=np.nan, exponent_distance=np.nan, prediction_log_se=np.nan, backtest_log_error=np.nan
    )


def evaluate_held_out(
    results: pd.DataFrame, unit: str, levels: tuple[float, ...] = LEVELS, *, holdout: str = "family"
) -> pd.DataFrame:
    """One hold-out step: calibrate without ``unit`` (a family, or with ``holdout="source"`` every
    family of a source group), evaluate on its designs.

    Pure and top-level, so it can be mapped over units by any executor. One row per held-out design
    with, for each level (as percent, e.g. 90): ``covered_90``, ``width_90`` (relative width, NaN if
    refused), ``refused_90``, the naive baseline's ``base_covered_90``, ``base_width_90`` (one global
    conformal quantile of |log ratio| on the other units), and for the planner's levels
    ``planner_ok_80`` (realised ARE at or below the planner's p80 for the same design before any fit;
    NaN where refused) and ``planner_refused``. ``calibration_families`` records which families the
    calibration used.
    """
    _check_holdout(holdout)
    rows = usable_rows(results)
    groups = source_groups(rows)
    held_mask = (groups if holdout == "source" else rows["family"].astype(str).to_numpy()) == unit
    held, others = rows[held_mask], rows[~held_mask]
    if holdout == "source":
        calibration = fit_calibration(results, exclude_group=unit)
    else:
        calibration = fit_calibration(results, exclude_family=unit)
    table = features_table(held)
    predicted = held["predicted_final"].to_numpy(float)
    actual = held["actual_final"].to_numpy(float)
    other_scores = np.abs(np.log(others["predicted_final"].to_numpy(float) / others["actual_final"].to_numpy(float)))
    out = pd.DataFrame(
        {
            "group": groups[held_mask],
            "family": held["family"].astype(str).to_numpy(),
            "key": held["key"].to_numpy() if "key" in held else np.arange(len(held)),
            "predicted": predicted,
            "actual": actual,
        },
        index=range(len(held)),
    )
    for column in table.columns:
        out[column] = table[column].to_numpy()
    out["calibration_families"] = ",".join(calibration.families)
    kinds = calibration.refusal_kinds(table)
    refused = np.array([k is not None for k in kinds])
    for level in levels:
        tag = f"{round(level * 100):d}"
        q = calibration.log_half_widths(table, level)
        refused_here = refused | ~np.isfinite(q)
        low = np.where(refused_here, np.nan, predicted * np.exp(-q))
        high = np.where(refused_here, np.nan, predicted * np.exp(q))
        out[f"refused_{tag}"] = refused_here
        out[f"covered_{tag}"] = np.where(refused_here, np.nan, (low <= actual) & (actual <= high))
        out[f"width_{tag}"] = (high - low) / predicted
        base_q = conformal_quantile(other_scores, level)
        out[f"base_covered_{tag}"] = (predicted * math.exp(-base_q) <= actual) & (
            actual <= predicted * math.exp(base_q)
        )
        out[f"base_width_{tag}"] = math.exp(base_q) - math.exp(-base_q)
    out["refusal_kind"] = kinds
    plan = plan_table(table)
    plan_refused = np.array([k is not None for k in calibration.plan_refusal_kinds(plan)])
    realised_are = np.abs(predicted / actual - 1.0)
    for level in PLANNER_LEVELS:
        tag = f"{round(level * 100):d}"
        expected = np.expm1(calibration.log_half_widths(plan, level))
        out[f"planner_are_{tag}"] = np.where(plan_refused, np.nan, expected)
        out[f"planner_ok_{tag}"] = np.where(plan_refused | ~np.isfinite(expected), np.nan, realised_are <= expected)
    out["planner_refused"] = plan_refused
    return out


Mapper = Callable[[Callable[[str], pd.DataFrame], list[str]], Iterable[pd.DataFrame]]


def leave_one_out(
    results: pd.DataFrame, holdout: str = "source", levels: tuple[float, ...] = LEVELS, *, mapper: Mapper = map
) -> pd.DataFrame:
    """:func:`evaluate_held_out` for every unit (source group or family) of ``results``.

    ``mapper(function, units)`` may be any map (e.g. a Dask client's ``map`` then gather): the step
    is a picklable partial of a top-level function.
    """
    units = held_out_units(results, holdout)
    step = functools.partial(evaluate_held_out, results, levels=levels, holdout=holdout)
    frames = list(mapper(step, units))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def leave_one_family_out(
    results: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, mapper: Mapper = map
) -> pd.DataFrame:
    """:func:`leave_one_out` holding out one family at a time (its source-group siblings stay in)."""
    return leave_one_out(results, "family", levels, mapper=mapper)


def leave_one_source_out(
    results: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, mapper: Mapper = map
) -> pd.DataFrame:
    """:func:`leave_one_out` holding out one whole source group at a time (the use: a new lab's runs)."""
    return leave_one_out(results, "source", levels, mapper=mapper)


@dataclass(frozen=True)
class LevelSummary:
    nominal: float
    realised: float
    cells: int
    median_rel_width: float


@dataclass(frozen=True)
class PlannerLevel:
    """Share of answered held-out designs whose realised ARE is at or below the planner's quantile."""

    nominal: float
    realised: float
    cells: int


@dataclass(frozen=True)
class CalibrationReport:
    """Held-out coverage of the calibrated interval, of the naive baseline and of the planner's
    expected ARE (``holdout``: each source group or each family predicted without itself)."""

    levels: tuple[LevelSummary, ...]
    baseline: tuple[LevelSummary, ...]
    refused: int
    families: int
    cells: int
    per_family: pd.DataFrame  # group, family, designs, covered_90, base_covered_90, width_90, refused, planner_80
    per_feature: pd.DataFrame  # feature, value, designs, covered_90, base_covered_90, width_90
    refusal_reasons: pd.Series  # refusal kind -> count
    holdout: str = "family"
    per_group: pd.DataFrame | None = None  # group, families, designs, covered_90, ..., planner_80
    planner: tuple[PlannerLevel, ...] = ()
    planner_refused: int = 0
    groups: int = 0
    # share of the schedule the fitted runs reached (the sweep's token fraction: fits on the first f of
    # every run's checkpoints, mid-schedule losses of cosine runs) x source group: designs, covered_90, width_90
    per_schedule: pd.DataFrame | None = None


def _bin_sizes(n: pd.Series) -> pd.Series:
    return pd.cut(n, [0, 3, 5, np.inf], labels=["3", "4-5", "6+"]).astype(str)


SCHEDULE_BINS = (0.0, 0.3, 0.6, 0.99, 1.0)
"""Bins of the share of the schedule a design's fitted runs reached (its token fraction)."""


def _schedule_bins(fraction: pd.Series) -> pd.Series:
    labels = [f"{low:g}-{high:g}" for low, high in zip(SCHEDULE_BINS[:-1], SCHEDULE_BINS[1:-1])] + ["1 (final)"]
    return pd.cut(fraction, list(SCHEDULE_BINS), labels=labels).astype(str)


def _per_schedule(answered: pd.DataFrame) -> pd.DataFrame:
    """Coverage at 90% per (schedule share, source group) of the answered designs."""
    fitted = answered[~answered["refused_90"].astype(bool)]
    return (
        fitted.assign(schedule=_schedule_bins(fitted["fraction"]))
        .groupby(["schedule", "group"])
        .agg(designs=("covered_90", "size"), covered_90=("covered_90", "mean"), width_90=("width_90", "median"))
        .reset_index()
    )


def _per_unit(answered: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return (
        answered.groupby(by)
        .agg(
            families=("family", "nunique"),
            designs=("covered_90", "size"),
            covered_90=("covered_90", "mean"),
            base_covered_90=("base_covered_90", "mean"),
            width_90=("width_90", "median"),
            refused=("refused_90", "sum"),
            planner_80=("planner_ok_80", "mean"),
        )
        .reset_index()
        .sort_values("covered_90")
    )


def summarise(frame: pd.DataFrame, levels: tuple[float, ...] = LEVELS, *, holdout: str = "family") -> CalibrationReport:
    """Pooled coverage over designs (each design of each held-out unit counts once), per source
    group, per family, per design feature, and the planner's realised quantiles."""
    out, base = [], []
    for level in levels:
        tag = f"{round(level * 100):d}"
        answered = frame[~frame[f"refused_{tag}"].astype(bool)]
        out.append(
            LevelSummary(
                level,
                float(answered[f"covered_{tag}"].astype(float).mean()),
                int(len(answered)),
                float(answered[f"width_{tag}"].median()),
            )
        )
        base.append(
            LevelSummary(
                level,
                float(frame[f"base_covered_{tag}"].astype(float).mean()),
                int(len(frame)),
                float(frame[f"base_width_{tag}"].median()),
            )
        )
    if "group" not in frame:
        frame = frame.assign(group=frame["family"])
    if "planner_ok_80" not in frame:
        frame = frame.assign(planner_ok_80=np.nan, planner_refused=True)
    answered = frame.assign(
        covered_90=frame["covered_90"].astype(float),
        base_covered_90=frame["base_covered_90"].astype(float),
        planner_ok_80=frame["planner_ok_80"].astype(float),
    )
    per_family = _per_unit(answered, ["group", "family"]).drop(columns="families")
    per_group = _per_unit(answered, ["group"])
    groups = {
        "sizes": _bin_sizes(answered["num_sizes"]),
        "param ratio": pd.cut(
            answered["param_ratio"],
            [1, 2, 4, 16, 64, np.inf],
            right=False,
            labels=["1-2x", "2-4x", "4-16x", "16-64x", ">=64x"],
        ).astype(str),
        "compute ratio": pd.cut(
            answered["compute_ratio"],
            [0, 10, 100, 1e3, 1e4, np.inf],
            right=False,
            labels=["<10x", "10-100x", "100-1000x", "1e3-1e4x", ">=1e4x"],
        ).astype(str),
        "checkpoints": np.where(answered["final_only"].astype(bool), "final only", "all"),
        "cutoff": np.where(answered["min_tokens"] > 0, "10B", "none"),
        "fraction": answered["fraction"].map(lambda p: f"{p:g}"),
    }
    parts = []
    for name, values in groups.items():
        g = (
            answered.assign(value=values)
            .groupby("value")
            .agg(
                designs=("covered_90", "size"),
                covered_90=("covered_90", "mean"),
                base_covered_90=("base_covered_90", "mean"),
                width_90=("width_90", "median"),
            )
            .reset_index()
        )
        g.insert(0, "feature", name)
        parts.append(g)
    planner = tuple(
        PlannerLevel(
            level,
            float(frame[f"planner_ok_{round(level * 100):d}"].astype(float).mean()),
            int(frame[f"planner_ok_{round(level * 100):d}"].notna().sum()),
        )
        for level in PLANNER_LEVELS
        if f"planner_ok_{round(level * 100):d}" in frame
    )
    return CalibrationReport(
        levels=tuple(out),
        baseline=tuple(base),
        refused=int(frame["refused_90"].sum()),
        families=int(frame["family"].nunique()),
        cells=int(len(frame)),
        per_family=per_family,
        per_feature=pd.concat(parts, ignore_index=True),
        refusal_reasons=frame["refusal_kind"].dropna().value_counts(),
        holdout=holdout,
        per_group=per_group,
        planner=planner,
        planner_refused=int(frame["planner_refused"].astype(bool).sum()),
        groups=int(frame["group"].nunique()),
        per_schedule=_per_schedule(answered),
    )


def report_json(report: CalibrationReport) -> dict[str, object]:
    """The report as plain JSON: ``holdout``, ``levels`` and ``baseline`` ({nominal, realised, cells,
    median_rel_width}), ``groups`` ({group, families, designs, realised_90}), ``refused``,
    ``refusal_reasons``, ``planner`` ({nominal, realised}), ``schedule`` ({fraction, group, designs,
    realised_90, median_rel_width_90}: fits on the first share of every run's schedule, i.e. mid-schedule
    losses, per source group) and the per-family and per-feature tables."""

    def number(value: object) -> float | None:
        if value is None:
            return None
        number_ = float(value)  # type: ignore[arg-type]  # a NumPy or Python number
        return number_ if np.isfinite(number_) else None

    def levels(summaries: tuple[LevelSummary, ...]) -> list[dict[str, object]]:
        return [
            {
                "nominal": s.nominal,
                "realised": number(s.realised),
                "cells": s.cells,
                "median_rel_width": number(s.median_rel_width),
            }
            for s in summaries
        ]

    def records(frame: pd.DataFrame) -> list[dict[str, object]]:
        """Rows as JSON objects: floats through ``number`` (NaN -> null), NumPy integers as int."""
        return [
            {
                k: number(v) if isinstance(v, (float, np.floating)) else (int(v) if isinstance(v, np.integer) else v)
                for k, v in row.items()
            }
            for row in frame.to_dict(orient="records")
        ]

    per_group = report.per_group if report.per_group is not None else pd.DataFrame()
    per_schedule = report.per_schedule if report.per_schedule is not None else pd.DataFrame()
    return {
        "method": METHOD,
        "holdout": report.holdout,
        "levels": levels(report.levels),
        "baseline": levels(report.baseline),
        "groups": [
            {
                "group": str(r["group"]),
                "families": int(r["families"]),
                "designs": int(r["designs"]),
                "realised_90": number(r["covered_90"]),
                "baseline_90": number(r["base_covered_90"]),
                "median_rel_width_90": number(r["width_90"]),
                "refused": int(r["refused"]),
                "planner_80": number(r["planner_80"]),
            }
            for _, r in per_group.iterrows()
        ],
        "schedule": [
            {
                "fraction": str(r["schedule"]),
                "group": str(r["group"]),
                "designs": int(r["designs"]),
                "realised_90": number(r["covered_90"]),
                "median_rel_width_90": number(r["width_90"]),
            }
            for _, r in per_schedule.iterrows()
        ],
        "refused": report.refused,
        "refusal_reasons": {str(k): int(v) for k, v in report.refusal_reasons.items()},
        "planner": [{"nominal": p.nominal, "realised": number(p.realised), "cells": p.cells} for p in report.planner],
        "planner_refused": report.planner_refused,
        "families": report.families,
        "cells": report.cells,
        "per_family": records(report.per_family),
        "per_feature": records(report.per_feature),
    }
