"""``scaleplan reproduce downstream``: single-task accuracy of the two testbeds' largest runs, predicted.

Over-training testbed (Gadre et al. 2025), per training set: the loss law L(C, M) is fitted on the
0.011-0.411B runs at M = 20 plus the 0.011B run at M = 320 (:func:`core.reproduce.fit_gadre`); the
targets are the over-trained 1.4B run and the 6.9B M = 20 run; a task's link is fitted on the
downstream set of Gadre et al. (the loss-law fit set plus the 1.4B M = 20 run) from their measured
C4 eval loss, and the target's accuracy is the link at its *predicted* loss. Pythia, per family
(standard, deduplicated): Chinchilla's law on the checkpoints above 10B tokens of the runs smaller
than 12B (loss: the family's fitting metric, LAMBADA zero-shot last-word log-perplexity, for the 0- and
5-shot tasks alike, as ``fit --task`` and the Fit page use it), targets the 12B runs' final checkpoint,
the link fitted on the same checkpoints.

Two-step (loss law, then the chance-floor link in loss, ceiling 1) and direct (the same saturating
form in log10 compute) are both reported, and beside them the two-step link with a fitted ceiling
(Bhagia et al.'s free scale; no interval), in points (percentage points of accuracy). The 90% interval of a
two-step prediction is p +- q s, s = sqrt(se_link^2 + max(1, phi) p (1 - p) / n) (the link's
delta-method error and a new run's quasi-binomial question sampling, as fractions), q the split
conformal quantile of |error| / s over the *other* source's answered targets (holding out the
source group, as the loss intervals are measured). Realised coverage is reported as it falls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import downstream, fitting, laws, reproduce, storage

LEVEL = 0.9
PYTHIA_FAMILIES = ("pythia", "pythia-deduped")
PYTHIA_TARGET = 11e9  # runs above this many parameters (the 12B runs) are Pythia's targets
PYTHIA_CUTOFF = 10e9  # checkpoints at or below 10B tokens are dropped from fits (Hitchhiker protocol)
PYTHIA_SHOTS = {0: "zero-shot", 5: "five-shot"}


@dataclass(frozen=True)
class TargetPrediction:
    """One target's accuracy on one task: predicted (two-step and direct) and actual, in points."""

    family: str
    target: str
    predicted_loss: float
    actual_loss: float
    predicted_points: float
    actual_points: float
    scale_points: float
    direct_points: float | None
    free_ceiling_points: float | None = None
    lower_points: float = float("nan")
    upper_points: float = float("nan")

    @property
    def abs_error_points(self) -> float:
        return abs(self.predicted_points - self.actual_points)

    @property
    def covered(self) -> bool:
        return bool(self.lower_points <= self.actual_points <= self.upper_points)


@dataclass(frozen=True)
class Refusal:
    """A refused family (all its targets) or, for ``extrapolation``, one ``target``."""

    family: str
    reason: str
    message: str
    target: str | None = None


@dataclass(frozen=True)
class TaskResult:
    """A task of one source: its answered targets and its refusals (per family)."""

    source: str
    task: str
    shots: int
    chance: float
    targets: tuple[TargetPrediction, ...]
    refused: tuple[Refusal, ...] = field(default=())


def _target_prediction(
    fit: downstream.LinkFit,
    direct: downstream.LinkFit | None,
    free: downstream.LinkFit | None,
    family: str,
    target: str,
    predicted_loss: float,
    actual_loss: float,
    log10_flops: float,
    actual: float,
    n_questions: float,
) -> TargetPrediction:
    p = float(fit.predict(predicted_loss))
    se_link = float(fit.standard_error(predicted_loss)[0])
    sampling = max(1.0, fit.dispersion) * p * (1.0 - p) / max(n_questions, 1.0)
    return TargetPrediction(
        family=family,
        target=target,
        predicted_loss=predicted_loss,
        actual_loss=actual_loss,
        predicted_points=100 * p,
        actual_points=100 * actual,
        scale_points=100 * math.sqrt(se_link**2 + sampling),
        direct_points=None if direct is None else 100 * float(direct.predict(log10_flops)),
        free_ceiling_points=None if free is None else 100 * float(free.predict(predicted_loss)),
    )


def _fit_pair(
    task: str, study: pd.DataFrame, chance: float
) -> tuple[downstream.LinkFit, downstream.LinkFit | None, downstream.LinkFit | None]:
    """The two-step link (in loss; :func:`core.downstream.fit_task_link`, its ceiling 1 or fitted as the
    F test decides, held to the refusal rules), the direct form (in log10 compute, ceiling 1) and, for
    comparison, the two-step link with a fitted ceiling always (the fit the F test used:
    :func:`core.downstream.fit_task_links`), on one study frame."""
    ids = list(study["run_id"])
    fit, free = downstream.fit_task_links(
        task, study["loss"], study["value"], study["n_questions"], chance, compute_flops=study["flops"], run_ids=ids
    )
    try:
        direct = downstream.fit_link(
            task,
            np.log10(study["flops"]),
            study["value"],
            study["n_questions"],
            chance,
            variable="log10_flops",
            run_ids=ids,
        )
    except downstream.TaskRefused:
        direct = None
    return fit, direct, free


def overtrain_tasks(con: duckdb.DuckDBPyConnection) -> list[TaskResult]:
    """Every task of the over-training testbed, its 1.4B and 6.9B targets on each training set."""
    per_task: dict[str, dict[str, Any]] = {}
    for family in reproduce.OVERTRAIN_DATASETS.values():
        gadre = reproduce.fit_gadre(con, family)
        runs = gadre.runs
        n = runs["num_params"].to_numpy()
        study_ids = set(runs.loc[reproduce.gadre_downstream_mask(n, runs["M"]), "run_id"])
        big = runs[np.isclose(n, 1.4e9, rtol=reproduce.SIZE_RTOL)]
        targets = {
            f"1.4B-M{int(big['M'].max())}": big[big["M"] == big["M"].max()].iloc[0],
            "6.9B-M20": runs[np.isclose(n, 6.9e9, rtol=reproduce.SIZE_RTOL) & (runs["M"] == 20).to_numpy()].iloc[0],
        }
        predicted = {
            name: float(gadre.loss_fit.predict(laws.compute_from(t["num_params"], t["tokens_seen"]), t["M"]))
            for name, t in targets.items()
        }
        scores = storage.downstream_family_scores(con, [family])
        scores = scores.merge(runs[["run_id", "loss"]], on="run_id", how="inner")
        for task, group in scores.groupby("task", sort=True):
            entry = per_task.setdefault(
                str(task),
                {"shots": int(group["shots"].iloc[0]), "chance": float(group["chance"].iloc[0]), "t": [], "r": []},
            )
            study = group[group["run_id"].isin(study_ids)]
            try:
                fit, direct, free = _fit_pair(str(task), study, entry["chance"])
            except downstream.TaskRefused as refusal:
                entry["r"].append(Refusal(family, refusal.reason, str(refusal)))
                continue
            by_run = group.set_index("run_id")
            for name, target in targets.items():
                row = by_run.loc[target["run_id"]]
                try:
                    downstream.check_extrapolation(fit, predicted[name])
                except downstream.TaskRefused as refusal:
                    entry["r"].append(Refusal(family, refusal.reason, str(refusal), name))
                    continue
                entry["t"].append(
                    _target_prediction(
                        fit,
                        direct,
                        free,
                        family,
                        name,
                        predicted[name],
                        float(target["loss"]),
                        math.log10(float(row["flops"])),
                        float(row["value"]),
                        float(row["n_questions"]),
                    )
                )
    return [
        TaskResult("overtrain", task, e["shots"], e["chance"], tuple(e["t"]), tuple(e["r"]))
        for task, e in sorted(per_task.items())
    ]


def pythia_tasks(con: duckdb.DuckDBPyConnection) -> list[TaskResult]:
    """Every accuracy task of Pythia (acc, 0- and 5-shot), the 12B runs predicted from the smaller ones."""
    per_task: dict[str, dict[str, Any]] = {}
    for family in PYTHIA_FAMILIES:
        scores = storage.downstream_family_scores(con, [family])
        scores = scores[scores["metric"] == "acc"]
        # The family's fitting metric for every shot setting, as fit --task and the Fit page predict it
        # (the loss law of the family, then the link from that loss), so the coverage measured here is
        # that of the interval they show.
        loss = storage.family_curves(con, family)  # its default_metric
        if loss.empty:
            continue
        study_loss = loss[(loss["num_params"] < PYTHIA_TARGET) & (loss["tokens_seen"] > PYTHIA_CUTOFF)]
        law = fitting.fit_chinchilla(
            study_loss["num_params"], study_loss["tokens_seen"], study_loss["value"], run_ids=study_loss["run_id"]
        )
        final = loss[loss["num_params"] >= PYTHIA_TARGET].sort_values("tokens_seen").groupby("run_id").tail(1)
        for shots, shot_name in PYTHIA_SHOTS.items():
            merged = scores[scores["shots"] == shots].merge(
                loss[["run_id", "tokens_seen", "value"]].rename(columns={"value": "loss"}),
                on=["run_id", "tokens_seen"],
                how="inner",
            )
            for task, group in merged.groupby("task", sort=True):
                key = f"{shot_name}/{task}"
                entry = per_task.setdefault(
                    key, {"shots": shots, "chance": float(group["chance"].iloc[0]), "t": [], "r": []}
                )
                study = group[(group["num_params"] < PYTHIA_TARGET) & (group["tokens_seen"] > PYTHIA_CUTOFF)]
                try:
                    fit, direct, free = _fit_pair(key, study, entry["chance"])
                except downstream.TaskRefused as refusal:
                    entry["r"].append(Refusal(family, refusal.reason, str(refusal)))
                    continue
                for target in final.itertuples():
                    row = group[(group["run_id"] == target.run_id) & (group["tokens_seen"] == target.tokens_seen)]
                    if row.empty:
                        continue
                    predicted_loss = float(law.predict(target.num_params, target.tokens_seen))
                    name = str(target.run_id).removeprefix("pythia/")
                    try:
                        downstream.check_extrapolation(fit, predicted_loss)
                    except downstream.TaskRefused as refusal:
                        entry["r"].append(Refusal(family, refusal.reason, str(refusal), name))
                        continue
                    entry["t"].append(
                        _target_prediction(
                            fit,
                            direct,
                            free,
                            family,
                            name,
                            predicted_loss,
                            float(target.value),
                            math.log10(float(row["flops"].iloc[0])),
                            float(row["value"].iloc[0]),
                            float(row["n_questions"].iloc[0]),
                        )
                    )
    return [
        TaskResult("pythia", task, e["shots"], e["chance"], tuple(e["t"]), tuple(e["r"]))
        for task, e in sorted(per_task.items())
    ]


def _with_intervals(results: list[TaskResult], q: float) -> list[TaskResult]:
    out = []
    for result in results:
        targets = tuple(
            TargetPrediction(
                **{
                    **t.__dict__,
                    "lower_points": max(0.0, t.predicted_points - q * t.scale_points),
                    "upper_points": min(100.0, t.predicted_points + q * t.scale_points),
                }
            )
            for t in result.targets
        )
        out.append(TaskResult(result.source, result.task, result.shots, result.chance, targets, result.refused))
    return out


def _scores(results: list[TaskResult]) -> np.ndarray:
    return np.array([t.abs_error_points / t.scale_points for r in results for t in r.targets], dtype=float)


@dataclass(frozen=True)
class DownstreamReport:
    tasks: tuple[TaskResult, ...]
    quantiles: dict[str, float]  # source -> conformal quantile learned on the other source
    gadre_average: tuple[dict[str, Any], ...]


def downstream_report(con: duckdb.DuckDBPyConnection, level: float = LEVEL) -> DownstreamReport:
    """Both testbeds' tasks predicted, with 90% intervals calibrated holding out the source group."""
    by_source = {"overtrain": overtrain_tasks(con), "pythia": pythia_tasks(con)}
    quantiles = {}
    calibrated: list[TaskResult] = []
    for source, results in by_source.items():
        others = [r for s, rs in by_source.items() if s != source for r in rs]
        q = downstream.conformal_quantile(_scores(others), level)
        quantiles[source] = q
        calibrated += _with_intervals(results, q)
    average = tuple(
        {**row, "abs_error_points": 100 * abs(row["predicted"] - row["actual"])}
        for row in reproduce.overtraining(con)
        if row["quantity"] == "avg_err_17"
    )
    return DownstreamReport(tuple(calibrated), quantiles, average)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _summary(results: list[TaskResult]) -> dict[str, Any]:
    targets = [t for r in results for t in r.targets]
    direct = [abs(t.direct_points - t.actual_points) for t in targets if t.direct_points is not None]
    free = [abs(t.free_ceiling_points - t.actual_points) for t in targets if t.free_ceiling_points is not None]
    reasons: dict[str, int] = {}
    for r in results:
        for refusal in r.refused:
            reasons[refusal.reason] = reasons.get(refusal.reason, 0) + 1
    return {
        "tasks": len(results),
        "answered_tasks": sum(1 for r in results if r.targets),
        "refused_tasks": sum(1 for r in results if not r.targets),
        "refused_task_names": sorted(r.task for r in results if not r.targets),
        "partly_refused_task_names": sorted(r.task for r in results if r.targets and r.refused),
        "refusals_by_reason": reasons,
        "answered_targets": len(targets),
        "mean_abs_error_points": _mean([t.abs_error_points for t in targets]),
        "median_abs_error_points": float(np.median([t.abs_error_points for t in targets])) if targets else None,
        "within_2_points": _mean([float(t.abs_error_points <= 2.0) for t in targets]),
        "direct_mean_abs_error_points": _mean(direct),
        "free_ceiling_mean_abs_error_points": _mean(free),
        "coverage_90": _mean([float(t.covered) for t in targets]),
        "median_width_90_points": float(np.median([t.upper_points - t.lower_points for t in targets]))
        if targets
        else None,
    }


def report_json(report: DownstreamReport) -> dict[str, Any]:
    """The JSON of ``reproduce downstream --json``: tasks, averages per source, the holdout unit."""
    tasks = []
    for r in report.tasks:
        targets = [
            {
                "family": t.family,
                "target": t.target,
                "predicted_loss": t.predicted_loss,
                "actual_loss": t.actual_loss,
                "predicted_points": t.predicted_points,
                "lower_points": t.lower_points,
                "upper_points": t.upper_points,
                "actual_points": t.actual_points,
                "abs_error_points": t.abs_error_points,
                "scale_points": t.scale_points,
                "covered_90": t.covered,
                "direct_points": t.direct_points,
                "free_ceiling_points": t.free_ceiling_points,
            }
            for t in r.targets
        ]
        tasks.append(
            {
                "source": r.source,
                "task": r.task,
                "shots": r.shots,
                "chance_points": 100 * r.chance,
                "targets": targets,
                "mean_abs_error_points": _mean([t.abs_error_points for t in r.targets]),
                "direct_mean_abs_error_points": _mean(
                    [abs(t.direct_points - t.actual_points) for t in r.targets if t.direct_points is not None]
                ),
                "free_ceiling_mean_abs_error_points": _mean(
                    [
                        abs(t.free_ceiling_points - t.actual_points)
                        for t in r.targets
                        if t.free_ceiling_points is not None
                    ]
                ),
                "coverage_90": _mean([float(t.covered) for t in r.targets]),
                "refused": [
                    {"family": x.family, "target": x.target, "reason": x.reason, "message": x.message}
                    for x in r.refused
                ],
            }
        )
    sources = sorted({r.source for r in report.tasks})
    average: dict[str, Any] = {
        "per_source": {s: _summary([r for r in report.tasks if r.source == s]) for s in sources},
        "all": _summary(list(report.tasks)),
        "conformal_quantile": report.quantiles,
        "gadre_17_task_average_error": list(report.gadre_average),
    }
    return {"tasks": tasks, "average": average, "holdout": "source", "level": LEVEL}
