"""One scaling-law analysis: select points, fit, bootstrap, evaluate on the target.

This is the unit of work shared by the CLI, the dashboard and the meta-analysis:
``analyse(curves, selection)`` where ``curves`` is a family's table of (run_id,
num_params, tokens_seen, value) points (from :func:`core.storage.family_curves` or an
uploaded :class:`core.userdata.RunsTable`).

With a :class:`core.calibration.Calibration` the prediction gets a calibrated interval (or a
refusal when the design lies outside what the collection covers), and every analysis carries
its identifiability warnings (:func:`identifiability_warnings`): exactly 3 sizes, a parameter
at a bound, flat directions of the objective, failed bootstrap replicates.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar, overload

import numpy as np
import pandas as pd

from scaleplan.core import backtest, fitting, laws, units
from scaleplan.core import calibration as calibration_module
from scaleplan.core.errors import UserError
from scaleplan.core.evaluation import TargetEvaluation, evaluate_target
from scaleplan.core.formats import ScheduleReach
from scaleplan.core.parameters import Parameters
from scaleplan.core.selection import (
    DEFAULT_MIN_TOKENS,
    FitPoints,
    Selection,
    SelectionError,
    below_target,
    select_points,
    target_of,
    unique_tokens_of,
)
from scaleplan.core.units import format_number


@dataclass(frozen=True)
class Analysis:
    """A fitted law for one target, with its uncertainty and (when known) its error."""

    target_run: str
    target_params: float
    target_tokens: float
    points: FitPoints
    fit: fitting.FitResult
    bootstrap: fitting.BootstrapResult | None
    evaluation: TargetEvaluation | None  # None for a hypothetical target
    predicted_loss: float
    band: tuple[float, float] | None  # 90% bootstrap band of the predicted loss (None if zero width)
    compute_share: float  # fit compute / target compute (6 N D)
    features: calibration_module.DesignFeatures | None = None
    interval: calibration_module.PredictionInterval | calibration_module.Refusal | None = None
    warnings: tuple[IdentifiabilityWarning, ...] = ()
    target_unique: float | None = None  # the target's unique tokens, where known (for a law that takes them)
    largest_size: fitting.HeldOutSize | None = None  # the largest fitted size predicted by a refit without it

    def backtest_note(
        self, interval: calibration_module.PredictionInterval | calibration_module.Refusal | None = None
    ) -> str:
        """The family's own evidence behind a calibrated interval, in words: what the law refitted without
        the largest fitted size predicts for that size's most-trained loss, against what was measured
        (:func:`core.fitting.hold_out_largest_size`). Empty when the fit is too small to backtest or the
        interval (``interval``, default the analysis' own) is not the collection's calibration, the one
        that conditions on it."""
        held = self.largest_size
        interval = self.interval if interval is None else interval
        calibrated = isinstance(interval, calibration_module.PredictionInterval) and not interval.basis
        if held is None or not calibrated:
            return ""
        miss = abs(held.relative_error)
        # two decimals below 1% (0.04%), so a small miss does not read as none
        shown = "within 0.01%" if miss < 1e-4 else units.format_percent(miss, 1 if miss >= 0.01 else 2)
        side = "" if miss < 1e-4 else (" low" if held.relative_error < 0 else " high")
        return (
            f"Refitted without its largest size ({units.format_params(held.num_params)}), the law predicts that "
            f"size's last loss {shown}{side} ({held.predicted:.4g} where {held.observed:.4g} was measured): "
            "the larger this miss, the wider the interval."
        )


@dataclass(frozen=True)
class IdentifiabilityWarning:
    """Why a fitted law may not be pinned down by its data. ``kind`` is one of
    ``three_sizes``, ``at_bound``, ``flat_direction``, ``bootstrap_failures``, ``zero_width``."""

    kind: str
    message: str


@dataclass(frozen=True)
class FlatDirection:
    """The spread of the target's prediction among fits almost as good as the best (a profile over E).

    E is held at fractions of the smallest observed loss and the other parameters refitted; fits
    whose objective is within ``tolerance`` (relative) of the best are "equally good", and
    ``low``/``high`` are the extreme predictions among them (including the best fit's).
    """

    low: float
    high: float
    predicted: float
    tolerance: float
    profile: tuple[tuple[float, float, float], ...]  # (E, objective / best objective, prediction)

    @property
    def relative_spread(self) -> float:
        return max(self.predicted - self.low, self.high - self.predicted) / self.predicted


ABOVE_TARGET_NOTE = (
    "Above 100%: the fitted runs cost more than training the target, so this is an interpolation or a "
    "benchmark of the law, not a saving."
)
"""What a compute share above 100% (fit compute / target compute) means, as the Fit page and ``fit`` say it."""
FLAT_OBJECTIVE_TOLERANCE = 0.05  # "equally good": objective within 5% of the best
FLAT_PREDICTION_SPREAD = 0.02  # warn when such fits move the prediction by more than 2%
PROFILE_E_FRACTIONS = (0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)  # of the smallest observed loss


def flat_direction(
    fit: fitting.FitResult,
    target_params: float,
    target_tokens: float,
    tolerance: float = FLAT_OBJECTIVE_TOLERANCE,
    target_unique: float | None = None,
) -> FlatDirection | None:
    """Profile the objective over E (the direction that trades off against B/D^beta and A/N^alpha).

    For each E in PROFILE_E_FRACTIONS x min(observed loss), the other free parameters are refitted
    (warm start, 2 starts); returns None when E is not free or the law has no E. ``target_unique``
    is the target's unique tokens, for a law that takes them.
    """
    if "E" not in fit.parameters.free_names or fit.law.observed_name != "loss":
        return None
    best = max(fit.objective_value, 1e-300)
    predicted = float(fit.predict_at(target_params, target_tokens, target_unique))
    warm = fit.parameters.with_values(
        {n: v for n, v in fit.params.items() if n in fit.parameters.free_names and n != "E"}
    )
    floor = float(np.min(fit.observed))
    profile, predictions = [], [predicted]
    for fraction in PROFILE_E_FRACTIONS:
        e = fraction * floor
        try:
            refit = fitting.fit(
                fit.law,
                fit.inputs,
                fit.observed,
                parameters=warm.fix("E", e),
                objective=fit.objective,
                huber_delta=fit.huber_delta,
                n_starts=2,
            )
        except fitting.FitError:
            continue
        ratio = refit.objective_value / best
        value = float(refit.predict_at(target_params, target_tokens, target_unique))
        profile.append((e, ratio, value))
        if ratio <= 1 + tolerance and math.isfinite(value):
            predictions.append(value)
    return FlatDirection(
        low=min(predictions), high=max(predictions), predicted=predicted, tolerance=tolerance, profile=tuple(profile)
    )


def identifiability_warnings(
    fit: fitting.FitResult,
    target_params: float,
    target_tokens: float,
    boot: fitting.BootstrapResult | None = None,
    flat: FlatDirection | None = None,
    target_unique: float | None = None,
    loss_unit: str | None = None,
) -> tuple[IdentifiabilityWarning, ...]:
    """Every reason the data may not pin the law down, as messages for the UI, CLI and report.

    ``loss_unit`` (e.g. "nats/token") is the fitted loss's unit, which the flat direction's range of
    predicted losses states; without it the message says the range is in the unit of the loss fitted."""
    out: list[IdentifiabilityWarning] = []
    if "num_params" in fit.inputs:
        sizes = np.unique(fit.num_params).size
        free = set(fit.parameters.free_names)
        if sizes == 3 and {"E", "A", "alpha"} <= free:
            out.append(
                IdentifiabilityWarning(
                    "three_sizes",
                    "Exactly 3 model sizes: E, A and alpha are then determined exactly by the data, "
                    "so the fit cannot show how uncertain they are.",
                )
            )
    min_observed = float(np.min(fit.observed)) if fit.observed.size else math.nan
    for name in fit.parameters.free_names:
        value, p = fit.params[name], fit.parameters[name]
        span = max(abs(p.max - p.min), 1.0) if math.isfinite(p.max - p.min) else max(abs(value), 1.0)
        at_floor = value <= p.min + 1e-6 * span or (name == "E" and value < 1e-3 * min_observed)
        at_ceiling = math.isfinite(p.max) and value >= p.max - 1e-6 * span
        if at_floor or at_ceiling:
            bound = "lower" if at_floor else "upper"
            out.append(
                IdentifiabilityWarning(
                    "at_bound",
                    f"{name} = {value:.3g} is at its {bound} bound"
                    + (" (0)" if at_floor and p.min == 0 else f" ({p.min if at_floor else p.max:g})")
                    + ": the data do not determine it, and predictions lean on that bound.",
                )
            )
    if flat is not None and flat.relative_spread > FLAT_PREDICTION_SPREAD:
        unit = f" {loss_unit}" if loss_unit else " (in the unit of the loss fitted)"
        out.append(
            IdentifiabilityWarning(
                "flat_direction",
                f"Flat direction: fits within {flat.tolerance:.0%} of the best objective (E held at "
                f"other values, the rest refitted) predict a loss of {format_number(flat.low)} to "
                f"{format_number(flat.high)}{unit} for the target (up to {flat.relative_spread:.1%} from the "
                "best fit's prediction).",
            )
        )
    if boot is not None:
        out.extend(bootstrap_warnings(boot, target_params, target_tokens, target_unique))
    return tuple(out)


def bootstrap_warnings(
    boot: fitting.BootstrapResult, target_params: float, target_tokens: float, target_unique: float | None = None
) -> tuple[IdentifiabilityWarning, ...]:
    """What a run bootstrap says about the fit: replicates that failed; no spread at the target.

    Part of :func:`identifiability_warnings`; on its own for a page that shows the fit's warnings
    first and adds the bootstrap's when its refits are done.
    """
    out: list[IdentifiabilityWarning] = []
    if boot.n_failed:
        reasons = ", ".join(f"{count} {reason}" for reason, count in boot.failures.items())
        out.append(
            IdentifiabilityWarning(
                "bootstrap_failures",
                f"{boot.n_failed} of {boot.n_boot} bootstrap replicates failed to fit"
                + (f" ({reasons})" if reasons else "")
                + "; parameter intervals use the "
                f"other {boot.n_boot - boot.n_failed}.",
            )
        )
    samples = boot.predict_samples_at(target_params, target_tokens, target_unique)
    if np.ptp(samples) <= 1e-9 * abs(float(np.mean(samples))):
        out.append(
            IdentifiabilityWarning(
                "zero_width",
                "The bootstrap replicates all give the same prediction (nothing left to resample), "
                "so no bootstrap band is shown.",
            )
        )
    return tuple(out)


class BorrowError(UserError, ValueError):
    """A borrowed parameter is unknown, not finite or outside the law's bounds."""


def _band(
    boot: fitting.BootstrapResult, law: laws.Law, target_inputs: dict[str, Any], predicted: float
) -> tuple[float, float] | None:
    """The 90% bootstrap band of the target's prediction, or None when it has zero width (never shown)."""
    lo, hi = boot.band(*(target_inputs[n] for n in law.input_names), level=0.9)
    return (float(lo), float(hi)) if hi - lo > 1e-9 * predicted else None


def borrowed_parameters(fixed: dict[str, float] | None, law: str | laws.Law = "chinchilla") -> Parameters:
    """A law's default parameters with some held at values borrowed from another fit."""
    law = laws.get(law)
    parameters = law.defaults()
    for name, value in (fixed or {}).items():
        if name not in law.param_names:
            raise BorrowError(f"cannot borrow {name!r}; choose from {', '.join(law.param_names)}")
        bound = parameters[name]
        if not np.isfinite(value) or value <= 0 or not bound.min <= value <= bound.max:
            raise BorrowError(
                f"borrowed {name} must be a positive finite number within [{bound.min:g}, {bound.max:g}], got {value}"
            )
        parameters = parameters.fix(name, float(value))
    return parameters


def needs_backtest(
    interval: calibration_module.PredictionInterval | calibration_module.Refusal | None,
    features: calibration_module.DesignFeatures,
    law: str,
) -> bool:
    """Whether a refused interval is replaced by the study's own backtest (:mod:`core.backtest`).

    A Chinchilla target inside the fitted sizes (``param_ratio <= 1``: a next isoFLOP budget, a
    longer run of a trained size): no design of the collection measured that, so the runs fitted
    are backtested instead.
    """
    return isinstance(interval, calibration_module.Refusal) and features.param_ratio <= 1 and law == "chinchilla"


def design_features(
    fit: fitting.FitResult,
    points: FitPoints,
    selection: Selection,
    target_params: float,
    target_tokens: float,
    target_unique: float | None = None,
    *,
    schedule: ScheduleReach | None = None,
    held_out: fitting.HeldOutSize | None | Literal["refit"] = "refit",
) -> calibration_module.DesignFeatures:
    """The calibration's features of a fit of ``points`` predicting a target of ``target_params`` x
    ``target_tokens`` (the one rule for the Fit page, ``fit`` and the planner's laws fitted on runs):
    the design, the fit's residual and exponents, its own standard error at the target and how far a refit
    without its largest size misses that size (``held_out``: that refit's answer when already made)."""
    if held_out == "refit":
        held_out = fitting.hold_out_largest_size(fit)
    return calibration_module.DesignFeatures.from_points(
        points,
        target_params,
        target_tokens,
        final_only=selection.final_only,
        fraction=selection.fraction if schedule is None else min(selection.fraction, schedule.fraction),
        min_tokens=selection.min_tokens,
        fitted_loss=fit.predict_at(points.num_params, points.tokens_seen, fit.unique_tokens),
        # the calibration conditions on Chinchilla's exponents; a law without them has none
        exponents=(fit.params["alpha"], fit.params["beta"]) if {"alpha", "beta"} <= set(fit.params) else None,
        prediction_log_se=_finite_or_none(fitting.prediction_log_se(fit, target_params, target_tokens, target_unique)),
        backtest_log_error=None if held_out is None else held_out.log_error,
    )


def analyse(
    curves: pd.DataFrame,
    selection: Selection,
    *,
    target_params: float | None = None,
    target_tokens: float | None = None,
    fixed: dict[str, float] | None = None,
    objective: fitting.Objective = "huber",
    n_boot: int = 0,
    seed: int = 0,
    calibration: calibration_module.Calibration | None = None,
    level: float = 0.9,
    check_identifiability: bool = True,
    law: str | laws.Law = "chinchilla",
    schedule: ScheduleReach | None = None,
) -> Analysis:
    """Fit a loss law (default Chinchilla's; any of :func:`core.laws.loss_laws`) on the selected points and predict the target.

    With ``target_params`` and ``target_tokens`` the target is hypothetical: every run of
    ``curves`` may be used and no error is computed. Otherwise the target is
    ``selection.target_run`` (default: the largest run) and its ARE is evaluated.
    With ``calibration`` the prediction gets a calibrated interval at ``level`` (or a refusal);
    ``check_identifiability`` adds the identifiability warnings (the flat-direction profile over E
    costs 7 refits). ``schedule`` (:func:`core.formats.schedule_reach` of an upload) says that runs
    end mid-schedule: the calibration then treats the design as a fit on that share of training
    (never more than ``selection.fraction``) and a ``mid_schedule`` warning says so.
    A law that takes unique tokens reads them from ``curves``' ``unique_tokens`` column (per run;
    the hypothetical target is taken to repeat no data).
    Raises :class:`SelectionError` or :class:`core.fitting.FitError` with a clear message.
    """
    law = laws.get(law)
    hypothetical = target_params is not None or target_tokens is not None
    if hypothetical:
        if target_params is None or target_tokens is None:
            raise SelectionError("a hypothetical target needs both N (parameters) and D (tokens)")
        if not (np.isfinite(target_params) and np.isfinite(target_tokens)) or target_params <= 0 or target_tokens <= 0:
            raise SelectionError("the target's N and D must be positive numbers")
        # The placeholder target is infinitely large so that every run may be used: a target inside the
        # runs' size range (e.g. a point of an isoFLOP sweep) is an interpolation in N, not refused.
        ghost = pd.DataFrame(
            {"run_id": ["__target__"], "num_params": [np.inf], "tokens_seen": [float(target_tokens)], "value": [np.nan]}
        )
        points = select_points(
            pd.concat([curves, ghost], ignore_index=True),
            Selection(**{**selection.__dict__, "target_run": "__target__"}),
        )
        target_run, n_t, d_t = "hypothetical", float(target_params), float(target_tokens)
        u_t = None
    else:
        target_run = target_of(curves, selection.target_run)
        points = select_points(curves, selection)
        target = curves[curves["run_id"] == target_run]
        n_t, d_t = float(target["num_params"].iloc[0]), float(target["tokens_seen"].max())
        if not below_target(points.num_params, n_t).all():
            raise SelectionError("the target must be larger than every run used for the fit")
        target_unique = unique_tokens_of(curves, np.array([target_run], dtype=object))
        u_t = None if target_unique is None else float(target_unique[0])
    unique = unique_tokens_of(curves, points.run_ids)
    fit = fitting.fit(
        law,
        laws.standard_inputs(points.num_params, points.tokens_seen, unique),
        points.loss,
        run_ids=points.run_ids,
        parameters=borrowed_parameters(fixed, law),
        objective=objective,
    )
    target_inputs = laws.standard_inputs(n_t, d_t, u_t)
    predicted = float(fit.predict_at(n_t, d_t, u_t))
    if not np.isfinite(predicted) or predicted <= 0:
        raise fitting.DegenerateFitError(f"the fit predicts a non-physical loss ({predicted}) for the target")
    boot, band = None, None
    if n_boot and len(np.unique(points.run_ids)) >= 2:
        boot = fitting.bootstrap(fit, n_boot=n_boot, seed=seed)
        band = _band(boot, law, target_inputs, predicted)
    evaluation = None
    if not hypothetical:
        evaluation = evaluate_target(lambda n, d: fit.predict_at(n, d, u_t), curves, target_run, points.compute_flops)
    held_out = fitting.hold_out_largest_size(fit)
    features = design_features(fit, points, selection, n_t, d_t, u_t, schedule=schedule, held_out=held_out)
    interval = calibration.interval(predicted, features, level) if calibration is not None else None
    if needs_backtest(interval, features, law.name):
        scores = backtest.backtest_scores(points.num_params, points.tokens_seen, points.loss, points.run_ids)
        interval = backtest.backtest_interval(predicted, n_t, d_t, scores, level)
    warnings: tuple[IdentifiabilityWarning, ...] = ()
    if check_identifiability:
        flat = flat_direction(fit, n_t, d_t, target_unique=u_t)
        warnings = identifiability_warnings(fit, n_t, d_t, boot, flat, target_unique=u_t)
    if schedule is not None:
        warnings = (*warnings, IdentifiabilityWarning("mid_schedule", schedule.message))
    return Analysis(
        target_run=target_run,
        target_params=n_t,
        target_tokens=d_t,
        points=points,
        fit=fit,
        bootstrap=boot,
        evaluation=evaluation,
        predicted_loss=predicted,
        band=band,
        compute_share=points.compute_flops / float(laws.compute_from(n_t, d_t)),
        features=features,
        interval=interval,
        warnings=warnings,
        target_unique=u_t,
        largest_size=held_out,
    )


# ---------------------------------------------------------------------------------------------
# The typed seam: a request, and an analysis computed in stages (the pages' unit of caching)

DEFAULT_N_BOOT = 100  # run-bootstrap replicates of a staged analysis (the parameter intervals)


@dataclass(frozen=True)
class FitRequest:
    """What to fit on a family's curves and what to predict: the inputs of one analysis, hashable.

    ``run_ids`` are the runs the fit may use (the smaller runs' checkpoints are then filtered by
    ``fraction``, ``final_only`` and ``min_tokens`` in tokens, as :class:`core.selection.Selection`).
    The target is ``target_run`` (a run of the curves, default the largest) or, with
    ``target_params`` (N, parameters) and ``target_tokens`` (D, tokens), a hypothetical model.
    ``fixed`` holds borrowed parameters as sorted (name, value) pairs; ``law`` is a name of
    :func:`core.laws.loss_laws`.
    """

    run_ids: tuple[str, ...]
    target_run: str | None = None
    target_params: float | None = None
    target_tokens: float | None = None
    fraction: float = 1.0
    final_only: bool = False
    min_tokens: float = DEFAULT_MIN_TOKENS
    fixed: tuple[tuple[str, float], ...] = ()
    law: str = "chinchilla"
    objective: fitting.Objective = "huber"

    @property
    def hypothetical(self) -> bool:
        return self.target_params is not None or self.target_tokens is not None

    def selection(self) -> Selection:
        return Selection(
            target_run=None if self.hypothetical else self.target_run,
            run_ids=tuple(self.run_ids),
            fraction=float(self.fraction),
            final_only=bool(self.final_only),
            min_tokens=float(self.min_tokens),
        )

    def check(self, curves: pd.DataFrame) -> None:
        """The request's mistakes a page can state before fitting; raises :class:`SelectionError`.

        No run chosen; a real target no chosen run is smaller than; a hypothetical target no run of
        the family is smaller than (the rule is :func:`core.selection.below_target`).
        """
        if not self.run_ids:
            raise SelectionError("choose at least one run to fit on")
        if curves.empty:
            return
        if self.hypothetical:
            if self.target_params is not None and not below_target(curves["num_params"], self.target_params).any():
                raise SelectionError("the hypothetical target is smaller than every run of the family; give a larger N")
            return
        chosen = curves.loc[curves["run_id"].isin(self.run_ids), "num_params"]
        target_size = curves.loc[curves["run_id"] == self.target_run, "num_params"]
        if not target_size.empty and not chosen.empty and not below_target(chosen, target_size.iloc[0]).any():
            raise SelectionError(
                "the target is smaller than every run chosen for the fit; pick a larger target or smaller runs"
            )


@dataclass(frozen=True)
class AnalysisFailure:
    """Why a stage of an analysis has no result: a user's selection (``kind="selection"``: choose
    differently) or a fit that failed on its data (``kind="fit"``). ``message`` starts with a capital."""

    message: str
    kind: Literal["selection", "fit"]

    @classmethod
    def of(cls, error: Exception) -> AnalysisFailure:
        text = str(error).strip() or type(error).__name__
        kind: Literal["selection", "fit"] = "selection" if isinstance(error, SelectionError) else "fit"
        return cls(text[:1].upper() + text[1:], kind)


_FAILURES = (SelectionError, fitting.FitError, ValueError)
_T = TypeVar("_T")


class _Stage(Generic[_T]):
    """A lazily computed, kept attribute of a :class:`StagedAnalysis` (like ``functools.cached_property``).

    Each stage of each analysis has its own lock: threads asking for a stage being computed wait
    for it rather than compute it again, and never wait for another stage or another analysis.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, owner: None, cls: type) -> _Stage[_T]: ...
    @overload
    def __get__(self, owner: StagedAnalysis, cls: type) -> _T: ...
    def __get__(self, owner: StagedAnalysis | None, cls: type) -> _T | _Stage[_T]:
        if owner is None:
            return self
        done = owner._done
        if self.name not in done:
            with owner._lock_of(self.name):
                if self.name not in done:
                    done[self.name] = self.compute(owner)
        value: _T = done[self.name]
        return value


@dataclass(eq=False)
class StagedAnalysis:
    """One analysis of ``curves`` for ``request``, computed stage by stage and kept.

    Stages, each computed on first use: :attr:`fitted` (select, fit, predict, evaluate: an
    :class:`Analysis` without bootstrap, interval or warnings, or an :class:`AnalysisFailure`);
    :meth:`interval` (the calibration's lookup at a level: no refit); :attr:`warnings` (the
    identifiability checks with the flat-direction profile, 7 refits); :attr:`bootstrap`
    (``n_boot`` run-bootstrap refits, for the parameter intervals and the bootstrap's own
    warnings). A page shows the prediction and its interval first and the rest as they finish;
    :meth:`complete` assembles what :func:`analyse` returns with everything asked for.
    """

    curves: pd.DataFrame
    request: FitRequest
    n_boot: int = DEFAULT_N_BOOT
    seed: int = 0
    loss_unit: str | None = None  # the curves' loss unit ("nats/token"), for the warnings' texts only
    _done: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _locks: dict[str, threading.RLock] = field(default_factory=dict, init=False, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _lock_of(self, name: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(name, threading.RLock())

    @_Stage
    def fitted(self) -> Analysis | AnalysisFailure:
        """The fit and the target's prediction (and its error for a real target), or why there is none."""
        request = self.request
        try:
            request.check(self.curves)
            return analyse(
                self.curves,
                request.selection(),
                target_params=request.target_params,
                target_tokens=request.target_tokens,
                fixed=dict(request.fixed) or None,
                objective=request.objective,
                check_identifiability=False,
                law=request.law,
            )
        except _FAILURES as error:
            return AnalysisFailure.of(error)

    def interval(
        self, calibration: calibration_module.Calibration | None, level: float = calibration_module.DEFAULT_LEVEL
    ) -> calibration_module.PredictionInterval | calibration_module.Refusal | str | None:
        """The calibrated interval of the prediction at ``level``: an interval, a refusal (the design lies
        outside what the collection covers), the reason the law has none (text), or None without a
        calibration or a fit. A lookup on the fitted stage's design features: no refit."""
        result = self.fitted
        if isinstance(result, AnalysisFailure) or calibration is None or result.features is None:
            return None
        refused = calibration_module.law_refusal(result.fit.law.name)
        if refused is not None:
            return refused
        interval = calibration.interval(result.predicted_loss, result.features, level)
        if needs_backtest(interval, result.features, result.fit.law.name):
            return backtest.backtest_interval(
                result.predicted_loss, result.target_params, result.target_tokens, self.backtest_scores, level
            )
        return interval

    @_Stage
    def backtest_scores(self) -> backtest.BacktestScores:
        """The fitted runs' own backtest (:func:`core.backtest.backtest_scores`), for a target inside their
        sizes; computed only when an interval needs it, once for every level."""
        result = self.fitted
        assert isinstance(result, Analysis)  # asked for by interval() only after a fit
        points = result.points
        return backtest.backtest_scores(points.num_params, points.tokens_seen, points.loss, points.run_ids)

    @_Stage
    def warnings(self) -> tuple[IdentifiabilityWarning, ...]:
        """The fit's identifiability warnings (three sizes, a parameter at a bound, a flat direction);
        the bootstrap's own are :attr:`bootstrap_warnings`."""
        result = self.fitted
        if isinstance(result, AnalysisFailure):
            return ()
        n_t, d_t, u_t = result.target_params, result.target_tokens, result.target_unique
        flat = flat_direction(result.fit, n_t, d_t, target_unique=u_t)
        return identifiability_warnings(result.fit, n_t, d_t, None, flat, target_unique=u_t, loss_unit=self.loss_unit)

    @_Stage
    def bootstrap(self) -> fitting.BootstrapResult | AnalysisFailure | None:
        """The run bootstrap of the fit (``n_boot`` refits), None with fewer than 2 runs to resample."""
        result = self.fitted
        if isinstance(result, AnalysisFailure):
            return result
        if not self.n_boot or len(np.unique(result.points.run_ids)) < 2:
            return None
        try:
            return fitting.bootstrap(result.fit, n_boot=self.n_boot, seed=self.seed)
        except _FAILURES as error:
            return AnalysisFailure.of(error)

    @_Stage
    def band(self) -> tuple[float, float] | None:
        """The 90% bootstrap band of the target's prediction (None without a bootstrap or of zero width)."""
        result, boot = self.fitted, self.bootstrap
        if isinstance(result, AnalysisFailure) or not isinstance(boot, fitting.BootstrapResult):
            return None
        inputs = laws.standard_inputs(result.target_params, result.target_tokens, result.target_unique)
        return _band(boot, result.fit.law, inputs, result.predicted_loss)

    @_Stage
    def bootstrap_warnings(self) -> tuple[IdentifiabilityWarning, ...]:
        """What the bootstrap says about the fit (failed replicates, no spread at the target)."""
        result, boot = self.fitted, self.bootstrap
        if isinstance(result, AnalysisFailure) or not isinstance(boot, fitting.BootstrapResult):
            return ()
        return bootstrap_warnings(boot, result.target_params, result.target_tokens, result.target_unique)

    def parameter_intervals(self, level: float = 0.9) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals of the free parameters at ``level`` (empty without a band: a bootstrap
        that cannot move the prediction says nothing of the parameters either)."""
        result, boot = self.fitted, self.bootstrap
        if isinstance(result, AnalysisFailure) or not isinstance(boot, fitting.BootstrapResult) or not self.band:
            return {}
        free = [n for n in boot.param_names if n not in result.fit.fixed]
        return {n: boot.param_interval(n, level) for n in free}

    def complete(
        self,
        calibration: calibration_module.Calibration | None = None,
        level: float = calibration_module.DEFAULT_LEVEL,
    ) -> Analysis:
        """Every stage in one :class:`Analysis` (as :func:`analyse` with ``n_boot`` and ``calibration``);
        raises the failure as :class:`SelectionError` or :class:`core.fitting.FitError`."""
        result = self.fitted
        if isinstance(result, AnalysisFailure):
            raise SelectionError(result.message) if result.kind == "selection" else fitting.FitError(result.message)
        boot = self.bootstrap
        if isinstance(boot, AnalysisFailure):
            raise fitting.FitError(boot.message)
        interval = self.interval(calibration, level)
        return replace(
            result,
            bootstrap=boot,
            band=self.band,
            interval=None if isinstance(interval, str) else interval,
            warnings=self.warnings + self.bootstrap_warnings,
        )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
