"""Over-training: at a fixed training budget C, what a smaller model trained longer (token multiplier
M = D / N) costs in loss and downstream error and saves at inference (2 N FLOPs per generated token)
(:func:`overtraining_tradeoff`), and where the target sits under one law (:func:`summarise_overtraining`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleplan.core import laws
from scaleplan.core.planning.inputs import (
    FLOPS_PER_PARAM_TOKEN,
    MAX_FLOPS,
    MAX_PARAMS,
    MAX_TOKENS,
    PlanningError,
    _as_chinchilla,
    _finite,
    _law_value,
    _positive,
)
from scaleplan.core.planning.reference import ReferenceLaw
from scaleplan.core.units import format_count, format_flops, format_percent

DEFAULT_MULTIPLIERS = (10, 20, 40, 80, 160, 320, 640)
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0  # forward pass only
MAX_MULTIPLIER = 1e6
"""Most tokens per parameter the trade-off is computed for (no realistic run trains longer)."""


INFERENCE_CHANGE = "Inference cost vs compute-optimal"
"""The over-training table's column of the change in inference FLOPs per token, as the CLI, the planner
page and its bar chart all show it (a smaller, over-trained model costs less: a minus sign)."""


def inference_change_text(saved: float) -> str:
    """A share of inference saved as the change in inference cost: 0.66 -> "-66%", -0.36 -> "+36%"."""
    change = round(-saved, 2) + 0.0  # + 0.0: no "-0%"
    return ("+" if change > 0 else "") + format_percent(change, 0)


def multiplier_text(multiplier: float) -> str:
    """A token multiplier (tokens per parameter) for tables and sentences: 3 significant digits below 100
    (21.6, 0.00683), a whole number with thousands separated from 100 up (640, 2,154)."""
    return f"{multiplier:,.0f}" if abs(multiplier) >= 100 else f"{multiplier:.3g}"


def overtraining_tradeoff(
    params: Mapping[str, float],
    compute_flops: float,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    downstream: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Loss, downstream error and inference cost of spending ``compute_flops`` at each multiplier M.

    For each token multiplier M (tokens per parameter) at fixed training compute C:

        N = sqrt(C / (6 M)),  D = M N          (so 6 N D = C and D / N = M)
        loss    L = E + A N^-alpha + B D^-beta  (equal to Gadre et al.'s E + (a M^eta + b M^-eta) C^-eta
                                                 when ``params`` are the over-training law's E, a, b, eta)
        error   Err = eps - k exp(-gamma L)    (with ``downstream`` = {eps, k, gamma})
        inference FLOPs per token = 2 N

    ``inference_relative`` is 2 N / (2 N_opt) where N_opt is the compute-optimal size for C
    (:func:`core.laws.compute_optimal_allocation`) and ``inference_saved`` = 1 -
    inference_relative (negative below the optimal multiplier). ``loss_increase`` is the loss
    above the compute-optimal loss. Columns: multiplier, num_params, tokens, compute_flops, loss,
    loss_increase, downstream_error (NaN without ``downstream``), inference_flops_per_token,
    inference_relative, inference_saved.
    """
    C = _positive("the training compute", compute_flops, MAX_FLOPS, unit=" FLOPs")
    if len(multipliers) == 0:
        raise PlanningError("give at least one token multiplier")
    M = np.array([_positive("a token multiplier", m, MAX_MULTIPLIER) for m in multipliers], dtype=float)
    chin = _as_chinchilla(params)
    ds = None
    if downstream is not None:
        missing = {"eps", "k", "gamma"} - set(downstream)
        if missing:
            raise PlanningError(f"the downstream law needs eps, k and gamma (missing {', '.join(sorted(missing))})")
        ds = [
            _finite("eps", downstream["eps"]),
            _law_value("k", downstream["k"], math.inf),
            _law_value("gamma", downstream["gamma"], math.inf),
        ]
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            N = np.sqrt(C / (FLOPS_PER_PARAM_TOKEN * M))
            D = M * N
            loss = laws.chinchilla_loss(N, D, **chin)
            n_opt, d_opt = laws.compute_optimal_allocation(C, **chin)
            loss_opt = float(laws.chinchilla_loss(n_opt, d_opt, **chin))
            error = laws.downstream_error(loss, *ds) if ds is not None else np.full_like(loss, np.nan)
            relative = N / float(n_opt)
        usable = (
            np.isfinite(loss).all()
            and math.isfinite(loss_opt)
            and np.isfinite(relative).all()
            and (relative > 0).all()
            and (ds is None or np.isfinite(error).all())
        )
    except (ZeroDivisionError, OverflowError):
        usable = False
    if not usable:
        raise PlanningError(
            f"the law cannot be evaluated at {format_flops(C)}: a term overflows "
            "(check the law's parameters and the compute)"
        )
    return pd.DataFrame(
        {
            "multiplier": M,
            "num_params": N,
            "tokens": D,
            "compute_flops": FLOPS_PER_PARAM_TOKEN * N * D,
            "loss": loss,
            "loss_increase": loss - loss_opt,
            "downstream_error": error,
            "inference_flops_per_token": INFERENCE_FLOPS_PER_PARAM_TOKEN * N,
            "inference_relative": relative,
            "inference_saved": 1.0 - relative,
        }
    )


def overtraining_choice(table: pd.DataFrame, max_loss_increase: float = 0.01) -> pd.Series | None:
    """The most over-trained option of :func:`overtraining_tradeoff` that costs little loss.

    Among rows above the compute-optimal size's multiplier that save inference compute, the one
    with the largest multiplier whose loss is at most ``max_loss_increase`` (a fraction, default
    1%) above the compute-optimal loss. None when no row qualifies.
    """
    if table is None or table.empty:
        return None
    optimal_loss = table["loss"] - table["loss_increase"]
    ok = table[(table["inference_saved"] > 0) & (table["loss_increase"] <= max_loss_increase * optimal_loss)]
    if ok.empty:
        return None
    return ok.sort_values("multiplier").iloc[-1]


# ---------------------------------------------------------------------------------------------
# Over-training summary under the selected law


@dataclass(frozen=True)
class OvertrainingSummary:
    """Where the target sits against the compute-optimal split of its compute, under one law.

    ``target_multiplier`` = D / N of the target, ``optimal_multiplier`` = D* / N*;
    ``target_loss_increase`` (nats/token) and ``target_inference_saved`` (share of 2 N* FLOPs per
    token; negative for a larger model) compare the target with the optimum. ``choice_*``
    describe :func:`overtraining_choice` (None when no option qualifies). ``table`` is
    :func:`overtraining_tradeoff`'s with a boolean column ``target``, true on the target's own row.
    """

    law: str
    compute_flops: float
    target_multiplier: float
    optimal_multiplier: float
    target_loss_increase: float
    target_inference_saved: float
    choice_multiplier: float | None
    choice_loss_increase: float | None
    choice_inference_saved: float | None
    table: pd.DataFrame


def summarise_overtraining(
    law: ReferenceLaw,
    target_params: float,
    target_tokens: float,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    downstream: Mapping[str, float] | None = None,
) -> OvertrainingSummary:
    """:func:`overtraining_tradeoff` at the target's compute under ``law``, with the target's own row.

    Raises :class:`PlanningError` when the target trains on more than :data:`MAX_MULTIPLIER` tokens per
    parameter (see :func:`overtraining_or_reason`)."""
    n = _positive("the target's parameters", target_params, MAX_PARAMS)
    d = _positive("the target's tokens", target_tokens, MAX_TOKENS)
    C = FLOPS_PER_PARAM_TOKEN * n * d
    m_target = d / n
    if m_target > MAX_MULTIPLIER:
        raise PlanningError(
            f"the target trains on {format_count(m_target)} tokens per parameter, beyond the "
            f"{format_count(MAX_MULTIPLIER)} the "
            "over-training trade-off is computed for"
        )
    grid = sorted(set(float(m) for m in multipliers) | {m_target})
    table = overtraining_tradeoff(law.params, C, multipliers=grid, downstream=downstream)
    at = int(np.argmin(np.abs(np.log(table["multiplier"] / m_target))))
    table["target"] = np.arange(len(table)) == at
    row = table.iloc[at]
    chin = _as_chinchilla(law.params)
    n_opt, d_opt = laws.compute_optimal_allocation(C, **chin)
    choice = overtraining_choice(table)
    return OvertrainingSummary(
        law=law.name,
        compute_flops=C,
        target_multiplier=m_target,
        optimal_multiplier=float(d_opt / n_opt),
        target_loss_increase=float(row["loss_increase"]),
        target_inference_saved=float(row["inference_saved"]),
        choice_multiplier=None if choice is None else float(choice["multiplier"]),
        choice_loss_increase=None if choice is None else float(choice["loss_increase"]),
        choice_inference_saved=None if choice is None else float(choice["inference_saved"]),
        table=table,
    )


def overtraining_or_reason(
    law: ReferenceLaw,
    target_params: float,
    target_tokens: float,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
) -> tuple[OvertrainingSummary | None, str | None]:
    """:func:`summarise_overtraining`, or (None, a one-line note saying why the table is left out) when it
    cannot be computed (a target beyond :data:`MAX_MULTIPLIER` tokens per parameter, a law that overflows at
    the target's compute): the rest of a plan does not need it."""
    try:
        return summarise_overtraining(law, target_params, target_tokens, multipliers), None
    except PlanningError as error:
        return None, f"The over-training table is left out: {error}."
