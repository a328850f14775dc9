"""The run bootstrap: refits of a fit's law on data resampled by run (or by blocks of checkpoints)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from scaleplan.core._fit.driver import fit_law
from scaleplan.core._fit.errors import ConvergenceError, FitError, InsufficientDataError, InvalidInputError
from scaleplan.core._fit.results import BootstrapResult, FitResult, frozen

__all__ = ["BootstrapScheme", "bootstrap"]

BootstrapScheme = Literal["auto", "runs", "blocks"]
# Below this many distinct sizes, resampling runs mostly draws too few sizes (the replicate
# cannot be fitted) or a permutation of the data (zero spread): 82 of 100 replicates failed at
# 3 sizes, ~10% still fail at 5.
_MIN_SIZES_FOR_RUN_RESAMPLING = 6


def _block_indices(order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A moving-block resample of one run's points (``order``: its indices sorted by tokens).

    Blocks of b = ceil(m^(1/3)) consecutive checkpoints keep the short-range correlation of a
    training curve (Kuensch 1989); ceil(m / b) blocks are drawn and cut to m points.
    """
    m = order.size
    b = max(1, math.ceil(m ** (1.0 / 3.0)))
    starts = rng.integers(0, m - b + 1, math.ceil(m / b))
    return np.asarray(order[(starts[:, None] + np.arange(b)).ravel()[:m]])


def bootstrap(
    result: FitResult, *, n_boot: int = 100, seed: int = 0, scheme: BootstrapScheme = "auto"
) -> BootstrapResult:
    """Refit ``result``'s law on resampled data; returns every replicate's parameters.

    Checkpoints of one run are strongly correlated, so the resampling respects runs:

    * ``scheme="runs"``: runs drawn with replacement (pairs bootstrap over runs). A replicate
      that draws fewer distinct sizes than the law needs cannot be fitted and is counted.
    * ``scheme="blocks"``: every run is kept (so every size is), and its checkpoints are
      resampled in moving blocks along tokens. Measures the spread due to the noise along each
      curve; a run with a single point (final only) contributes no spread.
    * ``scheme="auto"`` (default): "runs" when the fit has at least 6 distinct sizes, else
      "blocks" (with 3 sizes resampling runs leaves only permutations of the data: a zero band).

    Each replicate runs a single L-BFGS-B descent warm-started at ``result``'s parameters
    (same objective, fixed and tied parameters). Failed replicates are never dropped silently:
    ``n_failed`` and ``failures`` (by reason) count them, and callers show the count.
    """
    if result.run_ids is None:
        raise InvalidInputError("the fit has no run_ids; pass run_ids to resample by run")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if scheme not in ("auto", "runs", "blocks"):
        raise ValueError(f"scheme must be 'auto', 'runs' or 'blocks', got {scheme!r}")
    law = result.law
    runs, run_of_point = np.unique(result.run_ids, return_inverse=True)
    if runs.size < 2:
        raise InsufficientDataError(f"need at least 2 runs to bootstrap over runs, got {runs.size}")
    members = [np.flatnonzero(run_of_point == r) for r in range(runs.size)]
    warm = result.parameters.with_values({n: v for n, v in result.params.items() if n in result.parameters.free_names})
    if scheme == "auto":
        # a law that takes N counts distinct sizes; others (e.g. L(C, M)) count runs
        sizes = np.unique(result.num_params).size if "num_params" in result.inputs else runs.size
        scheme = "runs" if sizes >= _MIN_SIZES_FOR_RUN_RESAMPLING else "blocks"
    along_tokens = "tokens_seen" in result.inputs or "compute_flops" in result.inputs
    order_key = result.tokens_seen if along_tokens else result.loss
    ordered = [m[np.argsort(order_key[m], kind="stable")] for m in members]
    rng = np.random.default_rng(seed)
    samples: list[list[float]] = []
    failures: dict[str, int] = {}
    for _ in range(n_boot):
        if scheme == "runs":
            drawn = np.concatenate([members[r] for r in rng.integers(0, runs.size, runs.size)])
        else:
            drawn = np.concatenate([_block_indices(m, rng) for m in ordered])
        observed = result.observed[drawn]
        try:
            refit = fit_law(
                law,
                {n: a[drawn] for n, a in result.inputs.items()},
                observed,
                parameters=warm,
                objective=result.objective,
                huber_delta=result.huber_delta,
                run_ids=None,
                n_starts=1,
                use_grid=False,
            )
        except FitError as error:
            reason = (
                "too few distinct sizes drawn" if isinstance(error, InsufficientDataError) else type(error).__name__
            )
            failures[reason] = failures.get(reason, 0) + 1
            continue
        samples.append([refit.params[n] for n in law.param_names])
    n_failed = sum(failures.values())
    if not samples:
        raise ConvergenceError(f"all {n_boot} bootstrap replicates failed to fit ({failures})")
    return BootstrapResult(
        fit=result,
        param_names=law.param_names,
        param_samples=frozen(np.array(samples)),
        n_boot=n_boot,
        n_failed=n_failed,
        seed=seed,
        scheme=scheme,
        failures=dict(failures),
    )
