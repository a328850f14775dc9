"""Scaling-law formulas and the allocations they imply (the functions behind :mod:`core.laws`' laws).

Units throughout: ``num_params`` (N) in parameters, ``tokens_seen`` (D) in tokens,
``compute_flops`` (C) in FLOPs under the usual dense-transformer estimate C = 6 N D,
``token_multiplier`` (M) = D / N in tokens per parameter, losses in nats per token and
downstream error as a fraction in [0, 1].

Every function broadcasts its array arguments with NumPy rules and returns ``float64``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core.errors import UserError

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "UnreachableLossError",
    "chinchilla_loss",
    "overtrain_loss",
    "overtrain_as_chinchilla",
    "compute_from",
    "multiplier_from",
    "downstream_error",
    "compute_optimal_allocation",
    "allocation_for_loss",
]

FLOPS_PER_PARAM_TOKEN = 6.0
"""Training FLOPs per parameter per token (forward + backward), Kaplan et al. 2020."""

FloatArray = NDArray[np.float64]


class UnreachableLossError(UserError, ValueError):
    """A target loss at or below the irreducible loss E: no finite model reaches it."""


def _as_float(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def chinchilla_loss(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    E: ArrayLike,
    A: ArrayLike,
    B: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
) -> FloatArray:
    """Hoffmann et al. (2022) loss law.

    L(N, D) = E + A / N**alpha + B / D**beta

    E is the irreducible loss; A / N**alpha the excess due to finite model size and
    B / D**beta the excess due to finite data (tokens seen so far, so intermediate
    checkpoints of one run are points of the same surface).
    """
    N = _as_float(num_params)
    D = _as_float(tokens_seen)
    return _as_float(E) + _as_float(A) * N ** -_as_float(alpha) + _as_float(B) * D ** -_as_float(beta)


def compute_from(num_params: ArrayLike, tokens_seen: ArrayLike) -> FloatArray:
    """Training compute C = 6 N D in FLOPs."""
    return FLOPS_PER_PARAM_TOKEN * _as_float(num_params) * _as_float(tokens_seen)


def multiplier_from(num_params: ArrayLike, tokens_seen: ArrayLike) -> FloatArray:
    """Token multiplier M = D / N (about 20 is compute-optimal, Hoffmann et al.)."""
    return _as_float(tokens_seen) / _as_float(num_params)


def overtrain_loss(
    compute_flops: ArrayLike,
    token_multiplier: ArrayLike,
    E: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    eta: ArrayLike,
) -> FloatArray:
    """Gadre et al. (2025) loss law for over-trained models.

    L(C, M) = E + (a * M**eta + b * M**-eta) * C**-eta

    At fixed M the reducible loss is a power law in C whose exponent eta does not depend
    on M, which is what lets compute-optimal runs predict over-trained ones.
    """
    C = _as_float(compute_flops)
    M = _as_float(token_multiplier)
    exponent = _as_float(eta)
    return _as_float(E) + (_as_float(a) * M**exponent + _as_float(b) * M**-exponent) * C**-exponent


def overtrain_as_chinchilla(E: float, a: float, b: float, eta: float) -> dict[str, float]:
    """Parameters of the Chinchilla form equal to a Gadre et al. law.

    Substituting C = 6 N D and M = D / N gives
    a M**eta C**-eta = a 6**-eta N**(-2 eta) and b M**-eta C**-eta = b 6**-eta D**(-2 eta),
    so A = a 6**-eta, B = b 6**-eta, alpha = beta = 2 eta.
    """
    scale = FLOPS_PER_PARAM_TOKEN ** -float(eta)
    return {"E": float(E), "A": a * scale, "B": b * scale, "alpha": 2.0 * eta, "beta": 2.0 * eta}


def downstream_error(loss: ArrayLike, eps: ArrayLike, k: ArrayLike, gamma: ArrayLike) -> FloatArray:
    """Gadre et al. (2025) average downstream top-1 error as a function of loss.

    Err(L) = eps - k * exp(-gamma * L)

    eps is the error of a model with infinite loss (chance level when the tasks are
    multiple choice); the error falls exponentially as the loss decreases.
    """
    return _as_float(eps) - _as_float(k) * np.exp(-_as_float(gamma) * _as_float(loss))


def compute_optimal_allocation(
    compute_flops: ArrayLike,
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
) -> tuple[FloatArray, FloatArray]:
    """Model size and token count minimising the Chinchilla loss at fixed compute.

    Minimising A N**-alpha + B D**-beta subject to 6 N D = C gives

        N_opt = G * (C / 6)**(beta / (alpha + beta))
        D_opt = (C / 6)**(alpha / (alpha + beta)) / G
        G = (alpha A / (beta B))**(1 / (alpha + beta))

    E does not move the optimum; it is accepted so a fitted parameter dict can be
    splatted in. Returns ``(num_params, tokens_seen)``.
    """
    del E
    budget = _as_float(compute_flops) / FLOPS_PER_PARAM_TOKEN
    total = alpha + beta
    G = (alpha * A / (beta * B)) ** (1.0 / total)
    return G * budget ** (beta / total), budget ** (alpha / total) / G


def allocation_for_loss(
    target_loss: ArrayLike,
    token_multiplier: ArrayLike,
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
) -> tuple[FloatArray, FloatArray]:
    """Smallest model, trained on D = M N tokens, whose Chinchilla loss equals a target.

    Solves E + A N**-alpha + B (M N)**-beta = L_target for N. The left side decreases
    strictly in N, so the root is unique; it is found by bisection in log N, vectorised
    over the broadcast of ``target_loss`` and ``token_multiplier``, to relative
    precision ~1e-12. Returns ``(num_params, tokens_seen)``.

    Raises
    ------
    UnreachableLossError
        If any target loss is at or below E (only reached as N, D -> infinity).
    ValueError
        If a token multiplier is not positive and finite.
    """
    target, M = np.broadcast_arrays(_as_float(target_loss), _as_float(token_multiplier))
    excess = target - E
    if not np.all(excess > 0):
        lowest = float(np.min(target))
        raise UnreachableLossError(
            f"target loss {lowest:.4g} is at or below the irreducible loss E = {E:.4g}; no finite model reaches it"
        )
    if not np.all(np.isfinite(M) & (M > 0)):
        raise ValueError("token_multiplier must be positive and finite")
    B_eff = B * M**-beta  # data term written as a function of N: B_eff N**-beta
    # Each term alone equals the excess at these sizes; the larger of them has one term
    # >= excess (lower bracket), and at twice-the-excess sizes both terms are <= excess/2.
    n_data, n_size = (B_eff / excess) ** (1 / beta), (A / excess) ** (1 / alpha)
    lo = np.log(np.minimum(n_data, n_size))
    hi = np.log(np.maximum((2 * B_eff / excess) ** (1 / beta), (2 * A / excess) ** (1 / alpha)))
    # Bisection halves the bracket each step; 60 steps take any bracket below 1e-12.
    for _ in range(60 + int(np.ceil(np.log2(max(float(np.max(hi - lo)), 1.0))))):
        mid = 0.5 * (lo + hi)
        reducible = A * np.exp(-alpha * mid) + B_eff * np.exp(-beta * mid)
        too_small = reducible > excess
        lo = np.where(too_small, mid, lo)
        hi = np.where(too_small, hi, mid)
    num_params = np.exp(0.5 * (lo + hi))
    return num_params, M * num_params
