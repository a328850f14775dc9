"""One scaling-law analysis: select points, fit, bootstrap, evaluate on the target.

This is the unit of work shared by the CLI, the dashboard and the meta-analysis:
``analyse(curves, selection)`` where ``curves`` is a family's table of (run_id,
num_params, tokens_seen, value) points (from :func:`core.storage.family_curves` or an
uploaded :class:`core.userdata.RunsTable`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleplan.core import fitting
from scaleplan.core.evaluation import TargetEvaluation, evaluate_target
from scaleplan.core.parameters import Parameters, chinchilla_parameters
from scaleplan.core.selection import FitPoints, Selection, SelectionError, select_points, target_of

BORROWABLE = ("E", "A", "B", "alpha", "beta")


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
    band: tuple[float, float] | None  # 90% bootstrap band of the predicted loss
    compute_share: float  # fit compute / target compute (6 N D)


def borrowed_parameters(fixed: dict[str, float] | None) -> Parameters:
    """Chinchilla parameters with some held at values borrowed from another fit."""
    parameters = chinchilla_parameters()
    for name, value in (fixed or {}).items():
        if name not in BORROWABLE:
            raise ValueError(f"cannot borrow {name!r}; choose from {', '.join(BORROWABLE)}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"borrowed {name} must be a positive finite number, got {value}")
        parameters = parameters.fix(name, float(value))
    return parameters


def analyse(curves: pd.DataFrame, selection: Selection, *, target_params: float | None = None,
            target_tokens: float | None = None, fixed: dict[str, float] | None = None,
            objective: fitting.Objective = "huber", n_boot: int = 0, seed: int = 0) -> Analysis:
    """Fit the Chinchilla law on the selected points and predict the target.

    With ``target_params`` and ``target_tokens`` the target is hypothetical: every run of
    ``curves`` may be used and no error is computed. Otherwise the target is
    ``selection.target_run`` (default: the largest run) and its ARE is evaluated.
    Raises :class:`SelectionError` or :class:`core.fitting.FitError` with a clear message.
    """
    hypothetical = target_params is not None or target_tokens is not None
    if hypothetical:
        if target_params is None or target_tokens is None:
            raise SelectionError("a hypothetical target needs both N (parameters) and D (tokens)")
        if not (np.isfinite(target_params) and np.isfinite(target_tokens)) or target_params <= 0 or target_tokens <= 0:
            raise SelectionError("the target's N and D must be positive numbers")
        # The placeholder target is infinitely large so that every run may be used: a target inside the
        # runs' size range (e.g. a point of an isoFLOP sweep) is an interpolation in N, not refused.
        ghost = pd.DataFrame({"run_id": ["__target__"], "num_params": [np.inf],
                              "tokens_seen": [float(target_tokens)], "value": [np.nan]})
        points = select_points(pd.concat([curves, ghost], ignore_index=True),
                               Selection(**{**selection.__dict__, "target_run": "__target__"}))
        target_run, n_t, d_t = "hypothetical", float(target_params), float(target_tokens)
    else:
        target_run = target_of(curves, selection.target_run)
        points = select_points(curves, selection)
        target = curves[curves["run_id"] == target_run]
        n_t, d_t = float(target["num_params"].iloc[0]), float(target["tokens_seen"].max())
        if points.num_params.max() >= n_t:
            raise SelectionError("the target must be larger than every run used for the fit")
    fit = fitting.fit_chinchilla(points.num_params, points.tokens_seen, points.loss, run_ids=points.run_ids,
                                 parameters=borrowed_parameters(fixed), objective=objective)
    predicted = float(fit.predict(n_t, d_t))
    if not np.isfinite(predicted) or predicted <= 0:
        raise fitting.DegenerateFitError(f"the fit predicts a non-physical loss ({predicted}) for the target")
    boot, band = None, None
    if n_boot and len(np.unique(points.run_ids)) >= 2:
        boot = fitting.bootstrap(fit, n_boot=n_boot, seed=seed)
        lo, hi = boot.band(n_t, d_t, level=0.9)
        band = (float(lo), float(hi))
    evaluation = None
    if not hypothetical:
        evaluation = evaluate_target(fit.predict, curves, target_run, points.compute_flops)
    return Analysis(target_run=target_run, target_params=n_t, target_tokens=d_t, points=points, fit=fit,
                    bootstrap=boot, evaluation=evaluation, predicted_loss=predicted, band=band,
                    compute_share=points.compute_flops / (6.0 * n_t * d_t))
