"""Fitting the sweep's tasks: one family's data shaped once (:class:`FamilyData`), tasks grouped by
the design they select (:func:`group_by_design`) and each design fitted once (:func:`run_design`)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from scaleplan.core import calibration, fitting, laws
from scaleplan.core.evaluation import absolute_relative_error, target_checkpoints
from scaleplan.core.meta.config import SweepTask
from scaleplan.core.meta.store import RESULT_COLUMNS
from scaleplan.core.selection import (
    FamilyCurves,
    FitPoints,
    SelectionError,
    select_points,
    target_of,
    unique_tokens_of,
)


@dataclass(frozen=True, eq=False)
class FamilyData:
    """One family's data, selected from DuckDB and shaped into NumPy arrays once per sweep.

    ``curves`` is the selection-ready :class:`FamilyCurves`; the target (the largest run)
    and its checkpoints in the last 30% of training (where ARE is averaged, see
    :mod:`core.evaluation`) are worked out here once instead of once per design.
    """

    family: str
    curves: FamilyCurves
    target_run: str
    target_params: float
    target_num_params: np.ndarray  # the target's evaluated checkpoints
    target_tokens: np.ndarray
    target_loss: np.ndarray
    source_group: str | None = None  # core.sources.source_group of the family's adapter
    unique_by_run: Mapping[str, float] | None = None  # unique tokens of each run, where the family states them

    def unique_tokens(self, run_ids: np.ndarray) -> np.ndarray | None:
        """Unique tokens of each run in ``run_ids`` (NaN where unknown), None if the family has none."""
        if self.unique_by_run is None:
            return None
        return np.array([self.unique_by_run.get(str(r), np.nan) for r in run_ids], dtype=float)

    @classmethod
    def from_frame(cls, family: str, curves: pd.DataFrame, source_group: str | None = None) -> FamilyData:
        prepared = FamilyCurves.from_frame(curves)
        target = target_of(prepared)
        last = target_checkpoints(curves, target)
        runs = curves["run_id"].drop_duplicates().to_numpy(dtype=object)
        unique = unique_tokens_of(curves, runs)
        return cls(
            family=family,
            curves=prepared,
            target_run=target,
            target_params=float(last["num_params"].iloc[0]),
            target_num_params=last["num_params"].to_numpy(dtype=float),
            target_tokens=last["tokens_seen"].to_numpy(dtype=float),
            target_loss=last["value"].to_numpy(dtype=float),
            source_group=source_group,
            unique_by_run=None if unique is None else dict(zip(map(str, runs), unique.tolist())),
        )


class DesignGroup(NamedTuple):
    """Tasks that select the same design: fitted once (:func:`run_design`).

    ``has_points`` is False for a task whose selection fails (no fit runs; a group of its own).
    """

    tasks: tuple[SweepTask, ...]
    has_points: bool


def group_by_design(tasks: Iterable[SweepTask], data: FamilyData) -> list[DesignGroup]:
    """Tasks grouped by the design they select: same points, in the same order, same objective.

    About half of the grid's tasks select a design another task already selected (a fraction
    or a cutoff that drops no checkpoint of the window, a window whose extra run has no
    checkpoint left). The fitter is deterministic, so a design is fitted once and its
    outcome shared (:func:`run_design`). A task whose selection fails is a group of its own.
    Groups keep the tasks' first-seen order.
    """
    groups: dict[bytes | SweepTask, list[SweepTask]] = {}
    for task in tasks:
        try:
            points = select_points(data.curves, task.selection())
        except SelectionError:
            signature: bytes | SweepTask = task  # no design: a group of its own
        else:
            digest = hashlib.sha1(f"{task.objective}\x1f{task.law}".encode())
            for array in (points.num_params, points.tokens_seen, points.loss):
                digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
            digest.update("\x1f".join(map(str, points.run_ids)).encode())
            signature = digest.digest()
        groups.setdefault(signature, []).append(task)
    return [DesignGroup(tuple(group), isinstance(key, bytes)) for key, group in groups.items()]


def run_design(tasks: Sequence[SweepTask], data: FamilyData, data_version: str) -> list[dict[str, Any]]:
    """One row per task of a group that selects the same design, fitted once.

    The first task's row is :func:`run_task`'s; the others copy its fit and scores and keep
    their own task fields. ``fit_seconds`` is the time spent: the first row's, 0 for the copies.
    """
    first = run_task(tasks[0], data, data_version)
    return [first] + [{**first, **_task_fields(task, data_version), "fit_seconds": 0.0} for task in tasks[1:]]


def _task_fields(task: SweepTask, data_version: str) -> dict[str, Any]:
    """The fields of a result row that describe the task rather than the fitted design."""
    return dict(
        key=task.key(data_version),
        data_version=data_version,
        family=task.family,
        num_runs=len(task.run_ids),
        fraction=task.fraction,
        final_only=task.final_only,
        min_tokens=task.min_tokens,
        objective=task.objective,
        run_ids=json.dumps(task.run_ids),
        law=task.law,
    )


def run_task(task: SweepTask, curves: pd.DataFrame | FamilyData, data_version: str) -> dict[str, Any]:
    """Fit one task; a failed fit is a row with its status and message (never an exception).

    Same protocol as :func:`core.analysis.analyse` with the default target (select, fit,
    ARE over the target's last 30%), on data prepared once per family.
    """
    data = curves if isinstance(curves, FamilyData) else FamilyData.from_frame(task.family, curves)
    row = {**{c: None for c in RESULT_COLUMNS}, **_task_fields(task, data_version), "source_group": data.source_group}
    t0 = time.perf_counter()
    try:
        points = select_points(data.curves, task.selection())
        unique = data.unique_tokens(points.run_ids)
        fit = fitting.fit(
            task.law,
            laws.standard_inputs(points.num_params, points.tokens_seen, unique),
            points.loss,
            run_ids=points.run_ids,
            objective=task.objective,
        )
        target_unique = data.unique_tokens(np.array([data.target_run], dtype=object))
        predicted = np.asarray(fit.predict_at(data.target_num_params, data.target_tokens, target_unique), dtype=float)
        if not (np.isfinite(predicted[-1]) and predicted[-1] > 0):
            raise fitting.DegenerateFitError(f"the fit predicts a non-physical loss ({predicted[-1]}) for the target")
    except (SelectionError, fitting.FitError) as error:
        row.update(status=type(error).__name__, message=str(error)[:300])
    else:
        are = absolute_relative_error(predicted, data.target_loss)
        target_compute = float(laws.compute_from(data.target_num_params[-1], data.target_tokens[-1]))
        row.update(
            status="ok",
            message="",
            target_run=data.target_run,
            target_params=data.target_params,
            n_points=len(points),
            max_params_used=float(points.num_params.max()),
            min_params_used=float(points.num_params.min()),
            **(dict(fit.params) if task.law == "chinchilla" else {}),
            parameters=dict(fit.params),
            predicted_final=float(predicted[-1]),
            actual_final=float(data.target_loss[-1]),
            are_final=float(are[-1]),
            are_mean=float(np.mean(are)),
            compute_share=float(points.compute_flops / target_compute),
            num_sizes=int(np.unique(points.num_params).size),
            target_tokens=float(data.target_tokens[-1]),
            fit_log_rmse=_log_rmse(fit, points, unique),
            prediction_log_se=fitting.prediction_log_se(
                fit,
                data.target_num_params[-1],
                data.target_tokens[-1],
                None if target_unique is None else target_unique[-1],
            ),
            backtest_log_error=fitting.largest_size_backtest(fit),
        )
    row["fit_seconds"] = time.perf_counter() - t0
    return row


def _log_rmse(fit: fitting.FitResult, points: FitPoints, unique_tokens: np.ndarray | None = None) -> float:
    """Root mean square of log(L_fit / L_obs) over the fitted points (dimensionless)."""
    return calibration.log_rmse(fit.predict_at(points.num_params, points.tokens_seen, unique_tokens), points.loss)


def _run_chunk(groups: list[DesignGroup], data: FamilyData, data_version: str) -> list[dict[str, Any]]:
    return [row for group in groups for row in run_design(group.tasks, data, data_version)]
