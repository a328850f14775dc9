"""How far a fit's own largest size would have been missed: a backtest inside the fitted runs.

A fit's in-sample residual says how well the law follows its points, not how well it extrapolates:
the datablations families fit their points to 2-3% (log RMS) and miss their targets by 30-50%. The
cheapest out-of-sample evidence a fit carries is its own largest size. Refitting without it and
predicting it measures how much the law's extrapolation moves when the top of the data is withheld,
on the runs at hand (a new lab's runs calibrate themselves as far as they can).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from scaleplan.core._fit.driver import fit_law
from scaleplan.core._fit.errors import FitError
from scaleplan.core._fit.results import FitResult
from scaleplan.core.laws.base import FloatArray
from scaleplan.core.parameters import Parameters

Refit = Callable[[FitResult, Mapping[str, FloatArray], FloatArray], FitResult]
"""refit(fit, inputs, observed): ``fit``'s law fitted again, the same way, on other points."""

MIN_SIZES = 4
"""Sizes a fit needs for a backtest: the largest to predict and 3 to fit without it (a Chinchilla law with
A and alpha free needs 3, core.fitting's identifiability check). A 3-size fit with them borrowed could be
refit, but the calibration never saw one backtested, so none is."""


def refit_like(fit: FitResult, inputs: Mapping[str, FloatArray], observed: FloatArray) -> FitResult:
    """``fit``'s law fitted on other points as ``fit`` was: the same parameters (fixed, tied, bounds),
    objective and Huber delta.

    Two L-BFGS-B descents, the lower objective kept: one from ``fit``'s own values (the points differ
    little, so the optimum is often near) and one from the parameters' own starting values. The warm
    descent alone can stay in the full fit's valley, which still bears the withheld points' mark (on 200
    sweep designs it missed by less than a 10-start refit in 3.5% of them; the pair, in 1%, at 17 ms
    against 43 ms a design). The law's full set of starts is the fallback when neither descent gives a fit."""

    def descend(parameters: Parameters, n_starts: int = 1, use_grid: bool = False) -> FitResult:
        return fit_law(
            fit.law,
            inputs,
            observed,
            parameters=parameters,
            n_starts=n_starts,
            use_grid=use_grid,
            objective=fit.objective,
            huber_delta=fit.huber_delta,
            run_ids=None,
        )

    starts = [fit.parameters]
    if not any(name in fit.law.log_params and not float(fit.params[name]) > 0 for name in fit.parameters.free_names):
        # (a positive parameter fitted to 0, its bound, has no logarithm to start from)
        starts.insert(
            0, fit.parameters.with_values({n: v for n, v in fit.params.items() if n in fit.parameters.free_names})
        )
    fits = []
    for parameters in starts:
        try:
            fits.append(descend(parameters))
        except FitError:
            pass
    if fits:
        return min(fits, key=lambda result: result.objective_value)
    return descend(fit.parameters, fit.law.default_starts, use_grid=True)


@dataclass(frozen=True)
class HeldOutSize:
    """The fit's largest size predicted by a refit without it: at its most-trained point (``tokens``),
    the refit's loss ``predicted`` against the measured ``observed`` (the mean of points tied there), in
    the fit's loss unit."""

    num_params: float
    tokens: float
    predicted: float
    observed: float

    @property
    def log_error(self) -> float:
        """|log(predicted / observed)| (dimensionless): the calibration's feature."""
        return abs(math.log(self.predicted / self.observed))

    @property
    def relative_error(self) -> float:
        """predicted / observed - 1: negative when the refit predicts the size too low."""
        return self.predicted / self.observed - 1.0


def hold_out_largest_size(fit: FitResult, *, refit: Refit = refit_like) -> HeldOutSize | None:
    """The fit's largest size predicted by the law refitted without any point of that size, at that
    size's last point (most tokens; the mean loss of points tied there).

    The refit is :func:`refit_like` (``refit``: another way to refit, e.g. to watch it in a test). None
    when the law takes no N and D, with fewer than :data:`MIN_SIZES` sizes, no more remaining points than free
    parameters, or a refit that fails or predicts a non-positive loss."""
    if not {"num_params", "tokens_seen"} <= set(fit.inputs):
        return None
    num_params = np.asarray(fit.inputs["num_params"], dtype=float)
    sizes = np.unique(num_params)
    inside = num_params < sizes[-1]
    if sizes.size < MIN_SIZES or int(inside.sum()) <= len(fit.parameters.free_names):
        return None
    try:
        without = refit(
            fit,
            {name: np.asarray(values, dtype=float)[inside] for name, values in fit.inputs.items()},
            np.asarray(fit.observed, dtype=float)[inside],
        )
    except FitError:
        return None
    held = np.flatnonzero(~inside)
    order = np.asarray(fit.inputs["tokens_seen"], dtype=float)
    # every point tied at the most tokens (runs repeated with another seed): their mean loss, so the
    # answer does not depend on the rows' order
    last = held[order[held] == order[held].max()]
    point = {name: np.asarray(values)[last[:1]] for name, values in fit.inputs.items()}
    with np.errstate(all="ignore"):
        predicted = float(np.asarray(fit.law.predict(point, without.params), dtype=float)[0])
    observed = float(np.mean(np.asarray(fit.observed, dtype=float)[last]))
    if not (math.isfinite(predicted) and predicted > 0 and observed > 0):
        return None
    return HeldOutSize(float(sizes[-1]), float(order[last[0]]), predicted, observed)


def largest_size_backtest(fit: FitResult, *, refit: Refit = refit_like) -> float:
    """|log(L_refit / L_obs)| of :func:`hold_out_largest_size` (dimensionless, a log ratio); NaN where
    that is None."""
    held = hold_out_largest_size(fit, refit=refit)
    return math.nan if held is None else held.log_error
