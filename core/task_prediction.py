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

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import downstream, laws, storage
from scaleplan.core.errors import UserError
from scaleplan.core.units import format_count, format_flops, format_level, format_ratio

SHOT_PREFIXES = {"zero-shot": 0, "five-shot": 5}


class TaskNotFound(UserError, ValueError):
    """The task is not scored on the family."""


class AmbiguousTask(TaskNotFound):
    """The family scores the task with several shot counts; the message names each choice (no hint needed)."""


@dataclass(frozen=True)
class TaskChoice:
    """A task as the user names it: ``task`` (e.g. ``arc_easy``) with optional shots (``five-shot/arc_easy``)."""

    task: str
    shots: int | None

    @property
    def label(self) -> str:
        prefix = {v: k for k, v in SHOT_PREFIXES.items()}.get(self.shots) if self.shots is not None else None
        return f"{prefix}/{self.task}" if prefix else self.task


def _and(words: Iterable[str], conjunction: str = "and") -> str:
    """ "a, b and c" (or "a or b")."""
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


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

    ``study``: the study points (run_id, tokens_seen, loss in the family's loss unit, nats/token or nats/word; accuracy as a fraction);
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
        raise AmbiguousTask(
            f"--task {task_name}: the family scores it with {_and(map(str, shots))} shots; name one: "
            + _and((TaskChoice(choice.task, s).label for s in shots), "or")
        )
    points = pd.DataFrame({"run_id": study_run_ids, "tokens_seen": study_tokens, "loss": study_loss})
    study = scores.merge(points, on=["run_id", "tokens_seen"], how="inner")
    chance = float(scores["chance"].iloc[0])
    label = choice.label  # the task as the user named it (with its shots): refusals and the result say it so
    link = downstream.fit_task_link(
        label,
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
        task=label,
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
    source groups, and a sentence saying what it was learned on and the realised coverage measured.

    The report is computed once per data version and code (:func:`core.downstream_cache.report_json`:
    kept in the process and in the user's cache folder), not on every call."""
    from scaleplan.core import downstream_cache

    group = storage.family_source_groups(con).get(family, family)
    report = downstream_cache.report_json(con, level)
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
        f"; held out this way, {format_level(level)} intervals covered {measured['coverage_90']:.0%} of {group}'s "
        f"{measured['answered_targets']} reproduced targets"
        if measured and measured.get("coverage_90") is not None
        else ""
    )
    return q, (
        f"{format_level(level)} interval: conformal quantile of {len(others)} held-out errors of {', '.join(sources)} "
        f"(scaleplan reproduce downstream){coverage}"
    )


# ---------------------------------------------------------------------------------------------
# The planner's hypothetical target: accuracy on one task, or Gadre et al.'s 17-task average

PLAN_TASK_FAMILIES = ("overtrain-rpj", "pythia")
"""Where a plan's task link comes from when its reference law borrows no family that scores the task:
the over-training testbed's reference data set (:data:`core.reproduce.GADRE_FAMILY`, the planner's
over-training law, 46 tasks) first, then Pythia (65 lm-eval tasks at every checkpoint). A plan's study
runs do not exist yet, so no link can be fitted on them: the link is fitted on collection runs that
score the task, and the target's loss is predicted in *their* loss metric by their own loss law (a
link maps one loss metric to accuracy; the reference law's loss is another metric)."""

PLAN_TASK_EXAMPLES = ("arc_easy", "hellaswag", "piqa", "zero-shot/arc_easy")
"""Task names a plan's unknown-task message offers when none is close to what was typed."""

AVERAGE_NAME = "17-task average"
"""Gadre et al.'s average top-1 accuracy over 17 tasks (``colpret/downstream/avg17/err``)."""


@dataclass(frozen=True)
class TargetAccuracy:
    """A hypothetical target's predicted accuracy (percentage points), as the planner states it.

    ``name``: the task label, or :data:`AVERAGE_NAME`; ``family``: the collection family whose runs
    the link (or Gadre et al.'s Err(L)) and the target's loss were fitted on, ``source`` why that family,
    ``fitted_on`` what was fitted on which of its runs; ``predicted_loss`` (in ``loss_metric``'s unit: nats/token, or nats/word for a per-word loss); ``lower_points``/``upper_points``: the
    interval (None without one), ``interval_label`` what it is (e.g. "90% interval") and
    ``interval_basis`` how it was calibrated and what coverage was measured held out. A refused
    prediction has ``refused``, ``reason`` (a :data:`core.downstream.REFUSAL_RULES` key, or
    ``loss_fit``) and ``message``, and no points. ``beyond_reach``: the clause of ``interval_basis``
    saying that the target's compute lies beyond the runs the interval's coverage was measured on
    (:func:`reach_note`; empty when it lies within), for screens that show the interval without its basis.
    """

    name: str
    family: str
    source: str
    fitted_on: str
    loss_metric: str
    predicted_loss: float | None
    predicted_points: float | None
    lower_points: float | None
    upper_points: float | None
    level: float
    interval_label: str
    interval_basis: str
    refused: bool = False
    reason: str | None = None
    message: str = ""
    beyond_reach: str = ""

    @property
    def sentence(self) -> str:
        """One plain sentence (two with an interval's basis) for the recommendation."""
        what = (
            "average accuracy over Gadre et al.'s 17 tasks" if self.name == AVERAGE_NAME else f"accuracy on {self.name}"
        )
        origin = f"{self.fitted_on}; {self.source}"
        if self.refused or self.predicted_points is None:
            return f"No prediction of the target's {what}: {self.message} (from {origin})."
        loss = f" at a predicted loss of {self.predicted_loss:.3f} ({self.loss_metric})" if self.predicted_loss else ""
        if self.lower_points is not None and self.upper_points is not None:
            band = f", {self.interval_label} {self.lower_points:.1f}-{self.upper_points:.1f}"
            basis = f" The interval: {self.interval_basis}."
        else:
            band, basis = " (no interval)", f" No interval: {self.interval_basis}."
        return f"The target's predicted {what}: {self.predicted_points:.1f} points{band}{loss} (from {origin}).{basis}"

    def as_dict(self) -> dict[str, object]:
        """The ``task`` / ``average_accuracy`` object of ``scaleplan plan --json``."""
        has_interval = self.lower_points is not None and self.upper_points is not None
        return {
            "name": self.name,
            "predicted_accuracy_points": self.predicted_points,
            "interval_90": [self.lower_points, self.upper_points] if has_interval and self.level == 0.9 else None,
            "interval": [self.lower_points, self.upper_points] if has_interval else None,
            "interval_label": self.interval_label,
            "interval_basis": self.interval_basis,
            "level": self.level,
            "refused": self.refused,
            "reason": self.reason,
            "message": self.message or None,
            "family": self.family,
            "source": self.source,
            "fitted_on": self.fitted_on,
            "loss_metric": self.loss_metric,
            "predicted_loss": self.predicted_loss,
            "beyond_reach": self.beyond_reach or None,
        }


def _law_family(law_name: str) -> str | None:
    """The collection family a planner law borrows (``gadre-rpj`` -> overtrain-rpj, ``fit:F`` -> F), or None."""
    from scaleplan.core.planning import reference

    if law_name in reference.GADRE_LAWS:
        return reference.GADRE_LAWS[law_name]
    if law_name.startswith(reference.FAMILY_LAW_PREFIX):
        return law_name[len(reference.FAMILY_LAW_PREFIX) :]
    return None


def plan_task_family(con: duckdb.DuckDBPyConnection, task_name: str, law_name: str) -> tuple[str, str]:
    """The family whose runs a plan's task link is fitted on, and why: the family the reference law
    borrows when it scores the task, else the first of :data:`PLAN_TASK_FAMILIES` that does.

    Raises :class:`TaskNotFound` when none scores it (naming tasks they do score).
    """
    choice = parse_task(task_name)
    borrowed = _law_family(law_name)
    candidates = ([borrowed] if borrowed else []) + [f for f in PLAN_TASK_FAMILIES if f != borrowed]
    for family in candidates:
        if not storage.downstream_scores(con, [family], choice.task, "acc", choice.shots).empty:
            why = (
                f"the reference law {law_name} is fitted on it"
                if family == borrowed
                else f"the reference law {law_name} borrows no family that scores {task_name}; "
                f"{family} is the first of {', '.join(PLAN_TASK_FAMILIES)} that does"
            )
            return family, why
    labels = sorted({label for family in candidates for label in family_tasks(con, family)})
    close = difflib.get_close_matches(task_name, labels, n=5, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(close)}?" if close else f"{len(labels)} tasks, e.g. {', '.join(PLAN_TASK_EXAMPLES)}"
    )
    raise TaskNotFound(
        f"--task {task_name}: no collection family the planner can fit a link on ({', '.join(candidates)}) "
        f"scores that task; {hint}"
    )


def _refused(
    name: str,
    family: str,
    source: str,
    fitted_on: str,
    metric: str,
    loss: float | None,
    reason: str,
    message: str,
    level: float,
) -> TargetAccuracy:
    return TargetAccuracy(
        name=name,
        family=family,
        source=source,
        fitted_on=fitted_on,
        loss_metric=metric,
        predicted_loss=loss,
        predicted_points=None,
        lower_points=None,
        upper_points=None,
        level=level,
        interval_label="",
        interval_basis="",
        refused=True,
        reason=reason,
        message=message,
    )


def target_task_accuracy(
    con: duckdb.DuckDBPyConnection,
    task_name: str,
    target_params: float,
    target_tokens: float,
    law_name: str,
    *,
    level: float = 0.9,
) -> TargetAccuracy:
    """A hypothetical target's (N parameters, D tokens) accuracy on ``task_name`` for the planner.

    The family is :func:`plan_task_family`'s. On an over-training family the protocol is
    ``reproduce downstream``'s: Gadre et al.'s L(C, M) on their loss-law fit set predicts the target's
    C4 eval loss at C = 6 N D, M = D / N, and the link is fitted on their downstream set (that set plus
    the 1.4B M = 20 run) from its measured loss. On another family (e.g. Pythia) it is ``fit --family F
    --predict-n N --predict-d D --task``'s: the family's Chinchilla fit on every run (checkpoints above
    10B tokens, its fitting metric) and the link on the same checkpoints. Then
    :func:`predict_task` (refusal rules, then the link at the predicted loss) with the interval of
    :func:`held_out_quantile` (errors of other source groups' reproduced targets).

    Raises :class:`TaskNotFound`; a refusal is returned (``refused``) with its reason.
    """
    from scaleplan.core import analysis, fitting, reproduce
    from scaleplan.core.selection import Selection, SelectionError

    family, why = plan_task_family(con, task_name, law_name)
    if family in reproduce.OVERTRAIN_DATASETS.values():
        metric = reproduce.OVERTRAIN_LOSS
        try:
            gadre = reproduce.fit_gadre(con, family)
        except fitting.FitError as error:
            return _refused(task_name, family, why, "", metric, None, "loss_fit", str(error), level)
        runs = gadre.runs[reproduce.gadre_downstream_mask(gadre.runs["num_params"], gadre.runs["M"])]
        predicted = _gadre_loss(gadre.loss_fit, target_params, target_tokens)
        study = (runs["run_id"].to_numpy(), runs["tokens_seen"].to_numpy(float), runs["loss"].to_numpy(float))
        fitted_on = (
            f"a link fitted on {len(runs)} {family} runs up to {format_count(runs['num_params'].max())} parameters "
            f"(Gadre et al.'s downstream set, as scaleplan reproduce downstream fits it), the target's loss "
            f"from Gadre et al.'s L(C, M) on {len(gadre.fit_set)} of them"
        )
    else:
        listed = storage.list_families(con)
        metric = str(listed.loc[listed["family"] == family, "default_metric"].iloc[0])
        curves = storage.family_curves(con, family)
        try:
            result = analysis.analyse(
                curves,
                Selection(),
                target_params=target_params,
                target_tokens=target_tokens,
                check_identifiability=False,
            )
        except (fitting.FitError, SelectionError) as error:
            return _refused(task_name, family, why, "", metric, None, "loss_fit", str(error), level)
        points = result.points
        predicted = float(result.predicted_loss)
        study = (points.run_ids, points.tokens_seen, points.loss)
        fitted_on = (
            f"a link fitted on {len(points.loss)} checkpoints (above 10B tokens) of {len(points.runs)} {family} "
            f"runs, the target's loss from the Chinchilla law fitted on the same checkpoints (as scaleplan fit "
            f"--family {family} --task does)"
        )
    try:
        predict_task(con, family, task_name, *study, predicted, level=level)  # refusals first: cheap
        q, basis = held_out_quantile(con, family, level)
        pred = predict_task(con, family, task_name, *study, predicted, quantile=q, level=level, quantile_basis=basis)
    except downstream.TaskRefused as refusal:
        return _refused(task_name, family, why, fitted_on, metric, predicted, refusal.reason, str(refusal), level)
    reach = reach_note(
        float(laws.compute_from(target_params, target_tokens)), _group_reach(con, family), "reproduced targets"
    )
    return TargetAccuracy(
        name=pred.task,
        family=family,
        source=why,
        fitted_on=fitted_on + ("; the link's ceiling fitted" if pred.link.ceiling_fitted else ""),
        loss_metric=metric,
        predicted_loss=predicted,
        predicted_points=pred.predicted_points,
        lower_points=pred.lower_points,
        upper_points=pred.upper_points,
        level=level,
        interval_label=f"{format_level(level)} interval" if pred.lower_points is not None else "",
        interval_basis=pred.interval_note.removeprefix(f"{format_level(level)} interval: ") + reach,
        beyond_reach=reach.removeprefix("; "),
    )


def _group_reach(con: duckdb.DuckDBPyConnection, family: str) -> float:
    """The largest compute (FLOPs) of a scored run in ``family``'s source group: ``reproduce downstream``
    predicts each group's largest runs, so this is how far its measured coverage reaches."""
    groups = storage.family_source_groups(con)
    members = [f for f, g in groups.items() if g == groups.get(family, family)] or [family]
    flops = storage.downstream_family_scores(con, members)["flops"]
    return float(flops.max()) if flops.notna().any() else float("nan")


def reach_note(target_flops: float, reach_flops: float, what: str) -> str:
    """The clause an interval gets when its target lies beyond the compute its coverage was measured at
    (``reach_flops``, the largest of the ``what``); empty otherwise."""
    if not target_flops > reach_flops:
        return ""
    return (
        f"; the {what} reach {format_flops(reach_flops)}, the target's {format_flops(target_flops)} is "
        f"{format_ratio(target_flops / reach_flops)} beyond, where the coverage is not measured"
    )


def _gadre_loss(loss_fit: object, num_params: float, tokens: float) -> float:
    """Gadre et al.'s L(C, M) at C = 6 N D, M = D / N (nats/token)."""
    from scaleplan.core import fitting

    assert isinstance(loss_fit, fitting.FitResult)
    value = loss_fit.predict(laws.compute_from(num_params, tokens), laws.multiplier_from(num_params, tokens))
    return float(np.asarray(value, dtype=float).reshape(-1)[0])


@dataclass(frozen=True)
class AverageHoldout:
    """How Gadre et al.'s 17-task average is calibrated and how that held, on the over-training testbed.

    Held-out targets of a data set (c4, rpj, rw): its runs outside Gadre et al.'s downstream fit set whose
    compute exceeds the largest of the loss-law fit set (extrapolations in compute, as a plan's target
    is). A target's error is |Err(L_hat) - Err_actual| in points, L_hat the loss law's prediction. A data
    set's half-width ``quantiles[family]`` is the split conformal quantile (:func:`core.downstream.
    conformal_quantile`) of the *other* data sets' errors; ``covered``/``targets`` how many of all
    data sets' targets fell within their own data set's half-width; ``largest_flops`` the largest held-out
    target's compute (coverage beyond it is not measured). The testbed is the one source with
    the 17-task average, so this holds out a data set (a training corpus), not a source group.
    """

    level: float
    quantiles: dict[str, float]
    errors: dict[str, tuple[float, ...]]
    covered: int
    targets: int
    largest_flops: float = float("nan")

    @property
    def coverage(self) -> float:
        return self.covered / self.targets if self.targets else float("nan")


def average_holdout(con: duckdb.DuckDBPyConnection, level: float = 0.9) -> AverageHoldout:
    """The leave-one-data-set-out calibration of the 17-task average (see :class:`AverageHoldout`); a data
    set that cannot be fitted is left out."""
    from scaleplan.core import fitting, reproduce

    errors: dict[str, tuple[float, ...]] = {}
    largest_held = float("nan")
    for family in reproduce.OVERTRAIN_DATASETS.values():
        try:
            gadre = reproduce.fit_gadre(con, family)
        except fitting.FitError:
            continue
        if gadre.downstream_fit is None:
            continue
        runs = gadre.runs.dropna(subset=["err17"])
        compute = laws.compute_from(runs["num_params"], runs["tokens_seen"])
        fit_set = gadre.fit_set
        largest = float(laws.compute_from(fit_set["num_params"], fit_set["tokens_seen"]).max())
        held = ~reproduce.gadre_downstream_mask(runs["num_params"], runs["M"]) & (compute > largest)
        held_runs = runs[held]
        if held.any():
            largest_held = float(np.nanmax([largest_held, float(np.max(compute[held]))]))
        loss = gadre.loss_fit.predict(
            laws.compute_from(held_runs["num_params"], held_runs["tokens_seen"]), held_runs["M"]
        )
        predicted = np.asarray(gadre.downstream_fit.predict(np.asarray(loss, dtype=float)), dtype=float)
        errors[family] = tuple(float(e) for e in 100 * np.abs(predicted - held_runs["err17"].to_numpy(float)))
    quantiles, covered, total = holdout_quantiles(errors, level)
    return AverageHoldout(level, quantiles, errors, covered, total, largest_held)


def holdout_quantiles(errors: dict[str, tuple[float, ...]], level: float) -> tuple[dict[str, float], int, int]:
    """Leave one group out: each group's half-width is the split conformal quantile of the *other* groups'
    errors (:func:`core.downstream.conformal_quantile`); returns them, the errors within their own group's
    half-width and the errors in all."""
    quantiles = {
        group: downstream.conformal_quantile([e for g, es in errors.items() if g != group for e in es], level)
        for group in errors
    }
    covered = sum(int(e <= quantiles[g]) for g, es in errors.items() for e in es)
    return quantiles, covered, sum(len(es) for es in errors.values())


def target_average_accuracy(
    con: duckdb.DuckDBPyConnection,
    target_params: float,
    target_tokens: float,
    law_name: str,
    *,
    level: float = 0.9,
) -> TargetAccuracy:
    """A hypothetical target's average accuracy over Gadre et al.'s 17 tasks, 100 (1 - Err(L_hat)) points.

    Err(L) = eps - k exp(-gamma L) (:mod:`core.laws.downstream`) and L(C, M) fitted as
    ``reproduce overtraining`` does, on the over-training data set the reference law borrows
    (``gadre-c4``/``-rpj``/``-rw``, or ``fit:overtrain-*``), else on :data:`core.reproduce.GADRE_FAMILY`;
    L_hat = L(6 N D, D / N) in C4 eval loss. The interval is 100 (1 - Err) +- q, q the half-width of
    :func:`average_holdout` for that data set (learned on the other two), with the coverage it realised.
    Refused (``extrapolation``) when L_hat lies below the Err fit's losses by more than
    :data:`core.downstream.MAX_EXTRAPOLATION` times their range (the rule single tasks are held to).
    """
    from scaleplan.core import fitting, reproduce

    borrowed = _law_family(law_name)
    family: str = (
        borrowed
        if borrowed is not None and borrowed in reproduce.OVERTRAIN_DATASETS.values()
        else reproduce.GADRE_FAMILY
    )
    metric = reproduce.OVERTRAIN_LOSS
    why = (
        f"the reference law {law_name} is fitted on it"
        if family == borrowed
        else f"the over-training testbed is the one source with this average, {family} the planner's data set of it"
    )
    try:
        gadre = reproduce.fit_gadre(con, family)
    except fitting.FitError as error:
        return _refused(AVERAGE_NAME, family, why, "", metric, None, "loss_fit", str(error), level)
    if gadre.downstream_fit is None:
        message = "too few 17-task averages to fit Err(L)"
        return _refused(AVERAGE_NAME, family, why, "", metric, None, "no_fit", message, level)
    down = gadre.downstream_fit
    predicted_loss = _gadre_loss(gadre.loss_fit, target_params, target_tokens)
    fitted_on = (
        f"Err(L) = eps - k exp(-gamma L) on {len(down.observed)} {family} runs and L(C, M) on "
        f"{len(gadre.fit_set)} of them, as reproduce overtraining fits them"
    )
    low, high = float(np.min(down.loss)), float(np.max(down.loss))
    beyond = (low - predicted_loss) / (high - low) if high > low else float("inf")
    if beyond > downstream.MAX_EXTRAPOLATION:
        return _refused(
            AVERAGE_NAME,
            family,
            why,
            fitted_on,
            metric,
            predicted_loss,
            "extrapolation",
            f"the target's predicted loss {predicted_loss:.3f} lies below the losses Err(L) was fitted on "
            f"({low:.3f}-{high:.3f}) by {beyond:.1f} times their range; trusted to {downstream.MAX_EXTRAPOLATION:g}",
            level,
        )
    points = 100 * (1 - float(np.asarray(down.predict(predicted_loss), dtype=float).reshape(-1)[0]))
    holdout = average_holdout(con, level)
    q = holdout.quantiles.get(family, float("inf"))
    others = sum(len(es) for f, es in holdout.errors.items() if f != family)
    measured = (
        f"held out by data set it covered {holdout.covered} of {holdout.targets} ({holdout.coverage:.0%}), "
        "not held out by source group (one source has this average)"
    )
    reach = reach_note(float(laws.compute_from(target_params, target_tokens)), holdout.largest_flops, "held-out runs")
    measured += reach
    calibrated = math.isfinite(q)  # else too few held-out errors: the point without an interval
    return TargetAccuracy(
        name=AVERAGE_NAME,
        family=family,
        source=why,
        fitted_on=fitted_on,
        loss_metric=metric,
        predicted_loss=predicted_loss,
        predicted_points=points,
        lower_points=max(0.0, points - q) if calibrated else None,
        upper_points=min(100.0, points + q) if calibrated else None,
        level=level,
        interval_label=f"{format_level(level)} interval" if calibrated else "",
        interval_basis=(
            f"+-{q:.1f} points, the conformal quantile of the errors of {others} held-out runs of the other "
            f"over-training data sets; {measured}"
            if calibrated
            else measured
        ),
        beyond_reach=reach.removeprefix("; "),
    )
