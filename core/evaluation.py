"""How good a prediction is: absolute relative error and the compute a fit spent.

ARE = |L_hat - L| / L for the target's loss L. Following the Hitchhiker protocol the
target's loss is not only its final checkpoint: ARE is averaged over the target's
checkpoints in the last 30% of its training (``last_fraction``), each predicted at its
own tokens_seen, which is steadier than a single (noisy) final value. ARE at the final
checkpoint alone is reported too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from scaleplan.core.laws.formulas import compute_from

DEFAULT_LAST_FRACTION = 0.3


@dataclass(frozen=True)
class TargetEvaluation:
    """Prediction quality for one target run.

    ``are_mean`` is the mean ARE over the target's checkpoints with tokens_seen >=
    (1 - last_fraction) * final tokens; ``are_final`` the ARE at its final checkpoint.
    ``compute_share`` is the fit's compute as a fraction of the target's 6 * N * D_final.
    """

    target_run: str
    num_params: float
    final_tokens: float
    actual_final: float
    predicted_final: float
    are_final: float
    are_mean: float
    num_checkpoints: int
    compute_share: float


def absolute_relative_error(predicted: ArrayLike, actual: ArrayLike) -> NDArray[np.float64]:
    """ARE = |predicted - actual| / |actual| (dimensionless, elementwise)."""
    predicted = np.asarray(predicted, dtype=float)
    actual = np.asarray(actual, dtype=float)
    return np.asarray(np.abs(predicted - actual) / np.abs(actual), dtype=float)


def target_checkpoints(
    curves: pd.DataFrame, target_run: str, last_fraction: float = DEFAULT_LAST_FRACTION
) -> pd.DataFrame:
    """The target's checkpoints in the last ``last_fraction`` of its training tokens."""
    target = curves[curves["run_id"] == target_run].sort_values("tokens_seen")
    if target.empty:
        raise ValueError(f"target run {target_run!r} has no observations")
    final = target["tokens_seen"].iloc[-1]
    return target[target["tokens_seen"] >= (1.0 - last_fraction) * final]


def evaluate_target(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    curves: pd.DataFrame,
    target_run: str,
    fit_compute_flops: float,
    last_fraction: float = DEFAULT_LAST_FRACTION,
) -> TargetEvaluation:
    """Evaluate ``predict(num_params, tokens_seen)`` on the target run of ``curves``."""
    last = target_checkpoints(curves, target_run, last_fraction)
    n = last["num_params"].to_numpy(dtype=float)
    d = last["tokens_seen"].to_numpy(dtype=float)
    actual = last["value"].to_numpy(dtype=float)
    predicted = np.asarray(predict(n, d), dtype=float)
    are = absolute_relative_error(predicted, actual)
    target_compute = float(compute_from(n[-1], d[-1]))
    return TargetEvaluation(
        target_run=target_run,
        num_params=float(n[-1]),
        final_tokens=float(d[-1]),
        actual_final=float(actual[-1]),
        predicted_final=float(predicted[-1]),
        are_final=float(are[-1]),
        are_mean=float(np.mean(are)),
        num_checkpoints=int(len(last)),
        compute_share=float(fit_compute_flops / target_compute),
    )
