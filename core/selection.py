"""Choosing the points a scaling law is fitted on (the Hitchhiker protocol).

A family's observations of one loss metric form a table of points (run, N, D, L). A
:class:`Selection` says which of them a fit may use:

* the target: the run to predict (default: the family's largest run);
* the pool: runs smaller than the target (optionally at most ``max_params`` parameters),
  of which the ``num_runs`` smallest are used (the paper's "number of models"), or with
  ``pick="largest"`` the ``num_runs`` largest (a window ending at ``max_params``);
* ``fraction`` p in (0, 1]: only checkpoints with tokens_seen <= p * (longest run in the
  chosen set) are used;
* ``final_only``: keep each run's last remaining checkpoint only;
* ``min_tokens``: drop checkpoints at or below this many tokens (default 10B, the paper's
  cutoff for warm-up noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MIN_TOKENS = 10e9


class SelectionError(ValueError):
    """The selection leaves nothing to fit or names an unknown target."""


@dataclass(frozen=True)
class Selection:
    target_run: str | None = None
    max_params: float | None = None
    num_runs: int | None = None
    fraction: float = 1.0
    final_only: bool = False
    min_tokens: float = DEFAULT_MIN_TOKENS
    run_ids: tuple[str, ...] | None = None
    pick: str = "smallest"

    def __post_init__(self):
        if self.pick not in ("smallest", "largest"):
            raise SelectionError(f"pick must be 'smallest' or 'largest', got {self.pick!r}")
        if not (0 < self.fraction <= 1):
            raise SelectionError(f"fraction of training must be in (0, 1], got {self.fraction}")
        if self.num_runs is not None and self.num_runs < 1:
            raise SelectionError(f"number of runs must be at least 1, got {self.num_runs}")
        if self.min_tokens < 0 or not np.isfinite(self.min_tokens):
            raise SelectionError(f"minimum tokens must be a non-negative number, got {self.min_tokens}")


@dataclass(frozen=True)
class FitPoints:
    """The points chosen for a fit. Arrays are aligned; N in parameters, D in tokens."""

    run_ids: np.ndarray
    num_params: np.ndarray
    tokens_seen: np.ndarray
    loss: np.ndarray
    runs: pd.DataFrame  # one row per run used: run_id, num_params, max_tokens_used
    compute_flops: float  # sum over runs of 6 * N * (furthest tokens used)

    def __len__(self) -> int:
        return len(self.loss)


def target_of(curves: pd.DataFrame, target_run: str | None = None) -> str:
    """The target run: ``target_run`` if given (must be in ``curves``), else the largest run.

    Among runs of the largest size, the one trained longest is the target.
    """
    if curves.empty:
        raise SelectionError("no observations for this family and metric")
    if target_run is not None:
        if target_run not in set(curves["run_id"]):
            raise SelectionError(f"target run {target_run!r} has no observations of this metric")
        return target_run
    per_run = curves.groupby("run_id").agg(num_params=("num_params", "first"), tokens=("tokens_seen", "max"))
    return str(per_run.sort_values(["num_params", "tokens"]).index[-1])


def select_points(curves: pd.DataFrame, selection: Selection) -> FitPoints:
    """Apply ``selection`` to a family's curves (columns run_id, num_params, tokens_seen, value)."""
    target = target_of(curves, selection.target_run)
    target_params = float(curves.loc[curves["run_id"] == target, "num_params"].iloc[0])
    pool = curves[(curves["run_id"] != target) & (curves["num_params"] < target_params)]
    if selection.run_ids is not None:
        pool = pool[pool["run_id"].isin(selection.run_ids)]
    if selection.max_params is not None:
        pool = pool[pool["num_params"] <= selection.max_params]
    if pool.empty:
        raise SelectionError("no run smaller than the target matches the selection")
    if selection.num_runs is not None:
        order = (pool.groupby("run_id", sort=False)["num_params"].first().reset_index()
                 .sort_values(["num_params", "run_id"]))
        chosen = order["run_id"].iloc[: selection.num_runs] if selection.pick == "smallest" \
            else order["run_id"].iloc[-selection.num_runs:]
        pool = pool[pool["run_id"].isin(chosen)]
    threshold = selection.fraction * pool["tokens_seen"].max()
    points = pool[(pool["tokens_seen"] <= threshold) & (pool["tokens_seen"] > selection.min_tokens)]
    if selection.final_only and not points.empty:
        last = points.groupby("run_id")["tokens_seen"].transform("max")
        points = points[points["tokens_seen"] == last]
    if points.empty:
        raise SelectionError(
            f"no checkpoint is left after the filters (tokens above {selection.min_tokens:.3g} and at most "
            f"{selection.fraction:.0%} of the longest run's {pool['tokens_seen'].max():.3g} tokens)")
    runs = (points.groupby("run_id").agg(num_params=("num_params", "first"), max_tokens_used=("tokens_seen", "max"))
            .reset_index().sort_values(["num_params", "run_id"], ignore_index=True))
    compute = float((6.0 * runs["num_params"] * runs["max_tokens_used"]).sum())
    return FitPoints(
        run_ids=points["run_id"].to_numpy(dtype=object),
        num_params=points["num_params"].to_numpy(dtype=float),
        tokens_seen=points["tokens_seen"].to_numpy(dtype=float),
        loss=points["value"].to_numpy(dtype=float),
        runs=runs,
        compute_flops=compute,
    )
