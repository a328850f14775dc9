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
from numpy.typing import ArrayLike, NDArray

from scaleplan.core.errors import UserError
from scaleplan.core.laws.formulas import compute_from
from scaleplan.core.units import format_number, format_percent, format_tokens

DEFAULT_MIN_TOKENS = 10e9
MIN_SIZES_TO_FIT = 2
"""Model sizes a family needs to be fitted at all: a target and at least one smaller run (the Fit page)."""
MIN_SIZES_TO_SWEEP = 3
"""Model sizes a fit needs in the meta-analysis sweep's windows (so a family needs one more, its target:
``core.meta.config.MIN_FAMILY_SIZES``) and a family needs as a planner's family law: three sizes are the
least that identify E, A and alpha."""


class SelectionError(UserError, ValueError):
    """The selection leaves nothing to fit or names an unknown target."""


def _share_text(fraction: float) -> str:
    """A share of the schedule as a percent with the digits it needs: 50%, 0.0000001% (never 0%)."""
    return format_percent(fraction, 0) if fraction >= 0.01 else f"{format_number(100 * fraction, 2)}%"


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

    def __post_init__(self) -> None:
        if self.pick not in ("smallest", "largest"):
            raise SelectionError(f"pick must be 'smallest' or 'largest', got {self.pick!r}")
        if not (0 < self.fraction <= 1):
            raise SelectionError(f"fraction of training must be in (0, 1], got {self.fraction}")
        if self.num_runs is not None and self.num_runs < 1:
            raise SelectionError(f"number of runs must be at least 1, got {self.num_runs}")
        if self.min_tokens < 0 or not np.isfinite(self.min_tokens):
            raise SelectionError(f"minimum tokens must be a non-negative number, got {self.min_tokens}")


def below_target(run_params: ArrayLike, target_params: ArrayLike) -> NDArray[np.bool_]:
    """The one rule for which runs may be fitted to predict a target: runs with fewer parameters.

    ``N_run < N_target`` elementwise (broadcast), N in parameters. A target must be larger than
    every run fitted for it: the collection's measured errors are those of extrapolations in model
    size, so :func:`select_points`' pool, :func:`core.analysis.analyse`, the calibration's usable
    sweep rows and the Fit page's run list all apply this function.
    """
    below: NDArray[np.bool_] = np.asarray(run_params, dtype=float) < np.asarray(target_params, dtype=float)
    return below


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


def unique_tokens_of(curves: pd.DataFrame, run_ids: np.ndarray) -> np.ndarray | None:
    """Unique training tokens of each run in ``run_ids`` (NaN where unknown); None if ``curves`` has none.

    Unique tokens (the size of the data set a run repeats over epochs) are a property of the run:
    ``curves``' optional ``unique_tokens`` column, one value per run.
    """
    if "unique_tokens" not in curves.columns or curves["unique_tokens"].isna().all():
        return None
    per_run = curves.groupby("run_id")["unique_tokens"].first()
    return np.asarray(per_run.reindex(np.asarray(run_ids, dtype=object)).to_numpy(dtype=float))


@dataclass(frozen=True, eq=False)
class FamilyCurves:
    """A family's curves as NumPy arrays, prepared once and selected from many times.

    Built by :meth:`from_frame` from a table with columns run_id, num_params, tokens_seen,
    value (rows keep the table's order). Runs are numbered 0..R-1 in order of (num_params
    of their first row, run_id); ``code`` gives each row's run number. A sweep selects
    thousands of designs from one family: with the grouping done here once, a selection is
    a few boolean masks (:func:`select_points` accepts either form).
    """

    run_names: np.ndarray  # (R,) object, sorted by (num_params, run_id)
    run_params: np.ndarray  # (R,) num_params of each run (its first row)
    run_max_tokens: np.ndarray  # (R,) longest checkpoint of each run
    code: np.ndarray  # (P,) run number of each row
    num_params: np.ndarray  # (P,) parameters
    tokens_seen: np.ndarray  # (P,) tokens
    value: np.ndarray  # (P,) loss
    default_target: str | None  # the largest run (longest trained among equals); None if empty

    @classmethod
    def from_frame(cls, curves: pd.DataFrame) -> FamilyCurves:
        ids = curves["run_id"].to_numpy(dtype=object)
        num_params = curves["num_params"].to_numpy(dtype=float)
        tokens = curves["tokens_seen"].to_numpy(dtype=float)
        names, first, inverse = np.unique(ids.astype(str), return_index=True, return_inverse=True)
        first_params = num_params[first]
        order = np.lexsort((names, first_params))  # by num_params, then run_id
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        code = rank[inverse.reshape(-1)]
        max_tokens = np.full(order.size, -np.inf)
        np.maximum.at(max_tokens, code, tokens)
        run_names = ids[first][order]
        # target_of: largest num_params, then most tokens; pandas' stable multi-key sort leaves
        # exact ties in run_id order, so the alphabetically last of them wins, as here.
        default = str(run_names[np.lexsort((max_tokens, first_params[order]))[-1]]) if order.size else None
        return cls(
            run_names=run_names,
            run_params=first_params[order],
            run_max_tokens=max_tokens,
            code=code,
            num_params=num_params,
            tokens_seen=tokens,
            value=curves["value"].to_numpy(dtype=float),
            default_target=default,
        )

    @property
    def empty(self) -> bool:
        return self.code.size == 0

    def run_code(self, run_id: str) -> int | None:
        hits = np.flatnonzero(self.run_names == run_id)
        return int(hits[0]) if hits.size else None


def target_of(curves: pd.DataFrame | FamilyCurves, target_run: str | None = None) -> str:
    """The target run: ``target_run`` if given (must be in ``curves``), else the largest run.

    Among runs of the largest size, the one trained longest is the target.
    """
    if isinstance(curves, FamilyCurves):
        if curves.empty:
            raise SelectionError("no observations for this family and metric")
        if target_run is not None:
            if curves.run_code(target_run) is None:
                raise SelectionError(f"target run {target_run!r} has no observations of this metric")
            return target_run
        return str(curves.default_target)
    if curves.empty:
        raise SelectionError("no observations for this family and metric")
    if target_run is not None:
        if target_run not in set(curves["run_id"]):
            raise SelectionError(f"target run {target_run!r} has no observations of this metric")
        return target_run
    per_run = curves.groupby("run_id").agg(num_params=("num_params", "first"), tokens=("tokens_seen", "max"))
    return str(per_run.sort_values(["num_params", "tokens"]).index[-1])


def select_points(curves: pd.DataFrame | FamilyCurves, selection: Selection) -> FitPoints:
    """Apply ``selection`` to a family's curves (columns run_id, num_params, tokens_seen, value).

    ``curves`` may be the table itself or a :class:`FamilyCurves` prepared from it (same
    result, much cheaper when selecting many times from one family).
    """
    family = curves if isinstance(curves, FamilyCurves) else FamilyCurves.from_frame(curves)
    target = target_of(family, selection.target_run)
    target_code = family.run_code(target)
    target_params = float(family.run_params[target_code])
    in_pool = below_target(family.run_params, target_params)
    in_pool[target_code] = False
    if selection.run_ids is not None:
        in_pool &= np.isin(family.run_names, np.asarray(selection.run_ids, dtype=object))
    if selection.max_params is not None:
        in_pool &= family.run_params <= selection.max_params
    if not in_pool.any():
        raise SelectionError("no run smaller than the target matches the selection")
    if selection.num_runs is not None:
        pool_codes = np.flatnonzero(in_pool)  # already sorted by (num_params, run_id)
        chosen = pool_codes[: selection.num_runs] if selection.pick == "smallest" else pool_codes[-selection.num_runs :]
        in_pool = np.zeros_like(in_pool)
        in_pool[chosen] = True
    pool_rows = in_pool[family.code]
    longest = float(family.run_max_tokens[in_pool].max())
    threshold = selection.fraction * longest
    tokens = family.tokens_seen
    keep = pool_rows & (tokens <= threshold) & (tokens > selection.min_tokens)
    if selection.final_only and keep.any():
        last = np.full(family.run_names.size, -np.inf)
        np.maximum.at(last, family.code[keep], tokens[keep])
        keep &= tokens == last[family.code]
    if not keep.any():
        raise SelectionError(
            f"no checkpoint is left after the filters (tokens above {format_tokens(selection.min_tokens)} and at "
            f"most {format_tokens(threshold)}, the first {_share_text(selection.fraction)} of the longest run's "
            f"{format_tokens(longest)})"
        )
    rows = np.flatnonzero(keep)
    codes = family.code[rows]
    used = np.unique(codes)  # run numbers in (num_params, run_id) order
    max_used = np.full(family.run_names.size, -np.inf)
    np.maximum.at(max_used, codes, tokens[rows])
    runs = pd.DataFrame(
        {"run_id": family.run_names[used], "num_params": family.run_params[used], "max_tokens_used": max_used[used]}
    )
    compute = float(compute_from(runs["num_params"], runs["max_tokens_used"]).sum())
    return FitPoints(
        run_ids=family.run_names[codes],
        num_params=family.num_params[rows],
        tokens_seen=tokens[rows],
        loss=family.value[rows],
        runs=runs,
        compute_flops=compute,
    )
