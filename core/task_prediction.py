"""A target's accuracy on one task from a loss fit: the two-step prediction behind ``fit --task`` and the Fit page.

Given a loss analysis (:class:`core.analysis.Analysis`: the study points and the target's predicted
loss), the task's scores at the study points' checkpoints are joined to their loss, the chance-floor
link acc = c + (a - c) / (1 + exp(-k (L0 - L))) (ceiling a = 1, or fitted when an F test on the study
points asks for it) is fitted by binomial likelihood and held to the refusal rules
(:func:`core.downstream.fit_task_link`, :func:`core.downstream.check_extrapolation`) and evaluated at
the predicted loss. The interval is
p +- q s (points), s = sqrt(se_link^2 + max(1, phi) p (1 - p) / n), with q the split conformal
quantile of |error| / s over the targets of ``scaleplan reproduce downstream`` from *other* source
groups than the family's (the same holdout whose realised coverage that command reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import downstream, storage
from scaleplan.core.errors import UserError

SHOT_PREFIXES = {"zero-shot": 0, "five-shot": 5}


class TaskNotFound(UserError, ValueError):
    """The task is not scored on the family."""


@dataclass(frozen=True)
class TaskChoice:
    """A task as the user names it: ``task`` (e.g. ``arc_easy``) with optional shots (``five-shot/arc_easy``)."""

    task: str
    shots: int | None

    @property
    def label(self) -> str:
        prefix = {v: k for k, v in SHOT_PREFIXES.items()}.get(self.shots) if self.shots is not None else None
        return f"{prefix}/{self.task}" if prefix else self.task


def parse_task(name: str) -> TaskChoice:
    """``arc_easy`` -> (arc_easy, any shots); ``zero-shot/arc_easy`` -> (arc_easy, 0)."""
    prefix, sep, rest = name.partition("/")
    if sep and prefix in SHOT_PREFIXES:
        return TaskChoice(rest, SHOT_PREFIXES[prefix])
    return TaskChoice(name, None)


def family_tasks(con: duckdb.DuckDBPyConnection, family: str) -> list[str]:
    """Task labels scored by accuracy on ``family`` (with a shot prefix where the family has several)."""
    tasks = storage.downstream_tasks(con, [family])
    tasks = tasks[tasks["metric"] == "acc"]
    several = tasks.groupby("task")["shots"].transform("nunique") > 1
    shot_names = {v: k for k, v in SHOT_PREFIXES.items()}
    labels = [
        f"{shot_names.get(int(s), f'{int(s)}-shot')}/{t}" if multi and pd.notna(s) else str(t)
        for t, s, multi in zip(tasks["task"], tasks["shots"], several)
    ]
    return sorted(set(labels))


@dataclass(frozen=True)
class TaskPrediction:
    """The target's predicted accuracy on ``task`` in points, its interval and the link behind it.

    ``study``: the study points (run_id, tokens_seen, loss in nats/token, accuracy as a fraction);
    ``lower_points``/``upper_points``: the ``level`` interval (None with ``interval_note`` saying why);
    ``actual_points``: the target's measured accuracy when it is a run of the collection.
    """

    family: str
    task: str
    shots: int
    chance: float
    link: downstream.LinkFit
    study: pd.DataFrame
    predicted_loss: float
    predicted_points: float
    scale_points: float
    level: float
    quantile: float
    lower_points: float | None
    upper_points: float | None
    interval_note: str
    actual_points: float | None


def predict_task(
    con: duckdb.DuckDBPyConnection,
    family: str,
    task_name: str,
    study_run_ids: np.ndarray,
    study_tokens: np.ndarray,
    study_loss: np.ndarray,
    predicted_loss: float,
    *,
    target_run: str | None = None,
    quantile: float = float("nan"),
    level: float = 0.9,
    quantile_basis: str = "",
) -> TaskPrediction:
    """The two-step prediction of the target's accuracy on ``task_name`` (see the module docstring).

    Raises :class:`TaskNotFound` for a task the family has no scores of and
    :class:`core.downstream.TaskRefused` (with its reason) when the study cannot support a link or the
    target lies too far beyond it.
    """
    choice = parse_task(task_name)
    scores = storage.downstream_scores(con, [family], choice.task, "acc", choice.shots)
    if scores.empty:
        known = ", ".join(family_tasks(con, family)[:12])
        raise TaskNotFound(
            f"--task {task_name}: the family {family!r} has no accuracy on that task"
            + (f"; its tasks include {known}" if known else "; it has no downstream scores")
        )
    shots = sorted(int(s) for s in scores["shots"].dropna().unique())
    if len(shots) > 1:
        raise TaskNotFound(
            f"--task {task_name}: the family scores it with {shots} shots; name one, e.g. zero-shot/{choice.task}"
        )
    points = pd.DataFrame({"run_id": study_run_ids, "tokens_seen": study_tokens, "loss": study_loss})
    study = scores.merge(points, on=["run_id", "tokens_seen"], how="inner")
    chance = float(scores["chance"].iloc[0])
    link = downstream.fit_task_link(
        choice.task,
        study["loss"],
        study["value"],
        study["n_questions"],
        chance,
        compute_flops=study["flops"],
        run_ids=list(study["run_id"]),
    )
    downstream.check_extrapolation(link, predicted_loss)
    p = float(link.predict(predicted_loss))
    n_target = float(np.nanmedian(scores["n_questions"])) if scores["n_questions"].notna().any() else 1.0
    se = float(link.standard_error(predicted_loss)[0])
    scale = 100 * math.sqrt(se**2 + max(1.0, link.dispersion) * p * (1 - p) / max(n_target, 1.0))
    lower: float | None = None
    upper: float | None = None
    if math.isfinite(quantile):
        lower, upper = max(0.0, 100 * p - quantile * scale), min(100.0, 100 * p + quantile * scale)
        note = quantile_basis
    else:
        note = quantile_basis or "no calibrated interval: no held-out errors of another source group"
    actual = None
    if target_run is not None:
        final = scores[scores["run_id"] == target_run].sort_values("tokens_seen")
        actual = None if final.empty else 100 * float(final["value"].iloc[-1])
    return TaskPrediction(
        family=family,
        task=choice.label if choice.shots is not None else choice.task,
        shots=shots[0] if shots else 0,
        chance=chance,
        link=link,
        study=study[["run_id", "tokens_seen", "loss", "value", "n_questions"]].rename(columns={"value": "accuracy"}),
        predicted_loss=predicted_loss,
        predicted_points=100 * p,
        scale_points=scale,
        level=level,
        quantile=quantile,
        lower_points=lower,
        upper_points=upper,
        interval_note=note,
        actual_points=actual,
    )


def held_out_quantile(con: duckdb.DuckDBPyConnection, family: str, level: float = 0.9) -> tuple[float, str]:
    """q for a family: the conformal quantile of |error| / s over the reproduction's targets of the other
    source groups, and a sentence saying what it was learned on and the realised coverage measured."""
    from scaleplan.core import reproduce_downstream

    group = storage.family_source_groups(con).get(family, family)
    report = reproduce_downstream.report_json(reproduce_downstream.downstream_report(con, level))
    others = [
        t["abs_error_points"] / t["scale_points"]
        for task in report["tasks"]
        if storage.source_group(task["source"]) != group
        for t in task["targets"]
    ]
    q = downstream.conformal_quantile(others, level)
    sources = sorted({task["source"] for task in report["tasks"] if storage.source_group(task["source"]) != group})
    measured = report["average"]["per_source"].get(group)
    coverage = (
        f"; held out this way, {level:.0%} intervals covered {measured['coverage_90']:.0%} of {group}'s "
        f"{measured['answered_targets']} reproduced targets"
        if measured and measured.get("coverage_90") is not None
        else ""
    )
    return q, (
        f"{level:.0%} interval: conformal quantile of {len(others)} held-out errors of {', '.join(sources)} "
        f"(scaleplan reproduce downstream){coverage}"
    )
