"""Muennighoff et al. (2023), "Scaling Data-Constrained Language Models": repeated data and excess parameters.

The Chinchilla form with effective data D' and effective parameters N' in place of D and N:

    L(N, D, U_D) = E + A / N'**alpha + B / D'**beta
    D' = U_D + U_D R*_D (1 - exp(-R_D / R*_D)),   R_D = D / U_D - 1         (repeated epochs)
    N' = U_N + U_N R*_N (1 - exp(-R_N / R*_N)),   R_N = N / U_N - 1
    U_N = min(N, N_opt(U_D)),   N_opt(D) = G (G D)**(beta / alpha),   G = (alpha A / (beta B))**(1 / (alpha + beta))

U_D (``unique_tokens``) is the number of distinct training tokens, D (``tokens_seen``) the tokens
seen (D / U_D epochs) and N (``num_params``) the parameters. A repeated token is worth less the
more often it is seen: R*_D (``rd_star``) is the number of repetitions after which repeated data
has lost 1 - 1/e of its value, so at most U_D (1 + R*_D) tokens are ever effective. Likewise,
parameters beyond the compute-optimal size for U_D tokens (N_opt(U_D), the Chinchilla allocation
of the law's own E, A, B, alpha, beta) decay with R*_N (``rn_star``). Without repetition (U_D >= D)
and at most N_opt(U_D) parameters the law is Chinchilla's.

Defaults are the published fit (datablations README, "Parametric Fit"; fitted on C4):
E = exp(0.6254804), A = exp(6.255414), B = exp(7.3049974), alpha = beta = 0.3526596,
R*_D = 15.387756, R*_N = 5.309743. The law is not exp-linear, so it gives its gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core._fit.errors import InsufficientDataError
from scaleplan.core.laws.base import Law, require_distinct
from scaleplan.core.laws.formulas import compute_optimal_allocation
from scaleplan.core.parameters import EXPONENT_FLOOR, Parameter, Parameters

FloatArray = NDArray[np.float64]

PUBLISHED = {
    "E": math.exp(0.6254804),
    "A": math.exp(6.255414),
    "B": math.exp(7.3049974),
    "alpha": 0.3526596,
    "beta": 0.3526596,
    "rd_star": 15.387756,
    "rn_star": 5.309743,
}
"""Muennighoff et al.'s fitted constants (datablations README)."""

DECAY_BOUNDS = (0.1, 1e4)
"""R*_D, R*_N in [0.1, 1e4]: at 1e4 repetitions the decay is indistinguishable from none."""


def parameters() -> Parameters:
    """Defaults: the published fit; E, A, B > 0, alpha, beta in (0, 2], R*_D, R*_N in [0.1, 1e4]."""
    return Parameters(
        [
            Parameter("E", PUBLISHED["E"], min=0.0),
            Parameter("A", PUBLISHED["A"], min=0.0),
            Parameter("B", PUBLISHED["B"], min=0.0),
            Parameter("alpha", PUBLISHED["alpha"], min=EXPONENT_FLOOR, max=2.0),
            Parameter("beta", PUBLISHED["beta"], min=EXPONENT_FLOOR, max=2.0),
            Parameter("rd_star", PUBLISHED["rd_star"], min=DECAY_BOUNDS[0], max=DECAY_BOUNDS[1]),
            Parameter("rn_star", PUBLISHED["rn_star"], min=DECAY_BOUNDS[0], max=DECAY_BOUNDS[1]),
        ]
    )


def _parts(
    N: FloatArray, D: FloatArray, U: FloatArray, A: FloatArray, B: FloatArray, alpha: FloatArray, beta: FloatArray
) -> dict[str, FloatArray]:
    """The intermediate quantities of the law (see the module docstring), broadcast."""
    U = np.minimum(U, D)
    log_u = np.log(U)
    log_n_opt = (beta / alpha) * log_u + (np.log(alpha * A) - np.log(beta * B)) / alpha
    constrained = np.log(N) > log_n_opt
    UN = np.where(constrained, np.exp(np.minimum(log_n_opt, 700.0)), N)
    return {"U": U, "log_u": log_u, "UN": UN, "constrained": constrained, "RD": D / U - 1.0, "RN": N / UN - 1.0}


def _effective(units: FloatArray, repeats: FloatArray, star: FloatArray) -> tuple[FloatArray, FloatArray]:
    """units (1 + R* (1 - exp(-R / R*))) and its decay factor exp(-R / R*)."""
    decay = np.exp(-repeats / star)
    return units * (1.0 + star * (1.0 - decay)), decay


def data_constrained_loss(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    unique_tokens: ArrayLike,
    E: ArrayLike,
    A: ArrayLike,
    B: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
    rd_star: ArrayLike,
    rn_star: ArrayLike,
) -> FloatArray:
    """L(N, D, U_D) of Muennighoff et al. (2023) in nats/token (module docstring); arrays broadcast."""
    N, D, U = (np.asarray(x, dtype=np.float64) for x in (num_params, tokens_seen, unique_tokens))
    A_, B_, a_, b_ = (np.asarray(x, dtype=np.float64) for x in (A, B, alpha, beta))
    p = _parts(N, D, U, A_, B_, a_, b_)
    d_eff, _ = _effective(p["U"], p["RD"], np.asarray(rd_star, dtype=np.float64))
    n_eff, _ = _effective(p["UN"], p["RN"], np.asarray(rn_star, dtype=np.float64))
    return np.asarray(E, dtype=np.float64) + A_ * n_eff**-a_ + B_ * d_eff**-b_


def data_constrained_gradient(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    unique_tokens: ArrayLike,
    E: ArrayLike,
    A: ArrayLike,
    B: ArrayLike,
    alpha: ArrayLike,
    beta: ArrayLike,
    rd_star: ArrayLike,
    rn_star: ArrayLike,
) -> dict[str, FloatArray]:
    """d L / d parameter (natural units) at every point, by the chain rule through N' and D'.

    With x = R / R*: d D' / d R*_D = U_D (1 - e^-x - x e^-x), likewise N' in R*_N. Where N > N_opt(U_D)
    the base parameters U_N = N_opt(U_D) depend on A, B, alpha, beta: d N' / d U_N = 1 + R*_N
    (1 - e^-x) - (N / U_N) e^-x and d log N_opt = dA / (alpha A) - dB / (alpha B) + ... (see the code).
    """
    N, D, U = (np.asarray(x, dtype=np.float64) for x in (num_params, tokens_seen, unique_tokens))
    A_, B_, a_, b_ = (np.asarray(x, dtype=np.float64) for x in (A, B, alpha, beta))
    rd, rn = np.asarray(rd_star, dtype=np.float64), np.asarray(rn_star, dtype=np.float64)
    p = _parts(N, D, U, A_, B_, a_, b_)
    d_eff, decay_d = _effective(p["U"], p["RD"], rd)
    n_eff, decay_n = _effective(p["UN"], p["RN"], rn)
    size_term, data_term = A_ * n_eff**-a_, B_ * d_eff**-b_
    x_d, x_n = p["RD"] / rd, p["RN"] / rn
    dL_dneff = -a_ * size_term / n_eff
    dL_ddeff = -b_ * data_term / d_eff
    # N' through U_N = N_opt(U_D), only where the model is larger than that
    dneff_dun = np.where(p["constrained"], 1.0 + rn * (1.0 - decay_n) - (N / p["UN"]) * decay_n, 0.0)
    chain = dL_dneff * dneff_dun * p["UN"]  # d L / d log U_N
    log_ratio = np.log(a_ * A_) - np.log(b_ * B_)
    dlog_un = {
        "A": 1.0 / (a_ * A_),
        "B": -1.0 / (a_ * B_),
        "alpha": -(b_ / a_**2) * p["log_u"] - log_ratio / a_**2 + 1.0 / a_**2,
        "beta": p["log_u"] / a_ - 1.0 / (a_ * b_),
    }
    ones = np.ones(np.broadcast_shapes(size_term.shape, data_term.shape))
    return {
        "E": ones,
        "A": size_term / A_ + chain * dlog_un["A"],
        "B": data_term / B_ + chain * dlog_un["B"],
        "alpha": -size_term * np.log(n_eff) + chain * dlog_un["alpha"],
        "beta": -data_term * np.log(d_eff) + chain * dlog_un["beta"],
        "rd_star": dL_ddeff * p["U"] * (1.0 - decay_d - x_d * decay_d),
        "rn_star": dL_dneff * p["UN"] * (1.0 - decay_n - x_n * decay_n),
    }


def identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    """Chinchilla's counts of sizes and token counts, and repeated data for R*_D."""
    size_side: list[str] = [n for n in ("E", "A", "alpha") if n in free]
    data_side: list[str] = [n for n in ("E", "B", "beta") if n in free]
    require_distinct(inputs["num_params"], len(size_side), "model sizes (num_params)", size_side, "fix some of them")
    require_distinct(
        inputs["tokens_seen"], len(data_side), "token counts (tokens_seen)", data_side, "add checkpoints or runs"
    )
    if "rd_star" in free:
        repeated = inputs["tokens_seen"] > inputs["unique_tokens"] * (1 + 1e-9)
        if not repeated.any():
            raise InsufficientDataError(
                "no point repeats data (tokens_seen > unique_tokens), so rd_star cannot be fitted: "
                "fix rd_star (e.g. at the published 15.4) or fit the chinchilla law"
            )


def compute_optimal(
    compute_flops: FloatArray,
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
    rd_star: float,
    rn_star: float,
) -> tuple[FloatArray, FloatArray]:
    """(N, D) minimising the law at C = 6 N D with unlimited unique data: Chinchilla's allocation.

    (With a finite data budget U_D the optimum moves to more epochs and fewer parameters; that
    needs U_D, which a compute budget alone does not give.)
    """
    del rd_star, rn_star
    return compute_optimal_allocation(compute_flops, E, A, B, alpha, beta)


_LOG_DECAY_GRID = (math.log(2.0), math.log(15.0), math.log(100.0))

LAW = Law(
    name="data_constrained",
    title="Data-constrained (Muennighoff et al. 2023)",
    formula="L(N, D, U) = E + A/N'^alpha + B/D'^beta, D' = U + U R*_D (1 - exp(-(D/U - 1)/R*_D)), N' alike",
    function=data_constrained_loss,
    defaults=parameters,
    input_names=("num_params", "tokens_seen", "unique_tokens"),
    log_params=frozenset({"E", "A", "B", "rd_star", "rn_star"}),
    grid={
        "E": (0.0, math.log(1.7), 0.7),
        "A": (2.5, 6.25, 10.0),
        "B": (2.5, 7.3, 12.0),
        "alpha": (0.2, 0.35, 0.6),
        "beta": (0.2, 0.35, 0.6),
        "rd_star": _LOG_DECAY_GRID,
        "rn_star": (math.log(5.3), math.log(100.0)),
    },
    descriptions={
        "E": "irreducible loss",
        "A": "size coefficient",
        "B": "data coefficient",
        "alpha": "size exponent",
        "beta": "data exponent",
        "rd_star": "repetitions at which repeated data keeps 1/e of its value",
        "rn_star": "excess-parameter decay constant",
    },
    positive=("num_params", "tokens_seen", "unique_tokens", "loss"),
    gradient=data_constrained_gradient,
    identifiability=identifiability,
    compute_optimal=compute_optimal,
    default_objective="huber",
    default_starts=5,
)
