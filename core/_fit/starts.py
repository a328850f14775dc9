"""Starting points of a fit: the law's grid scored in one pass, and Chinchilla's variable-projection scan.

A fit ranks starting points cheaply, then descends from the best few. Chinchilla fits with E, A,
B free rank starts by variable projection: for each (alpha, beta) of a 25 x 25 grid the law is
linear in (E, A, B), whose non-negative least-squares values on relative residuals come in closed
form for the whole grid at once (Golub and Pereyra's separable least squares); the best cells by
the true objective seed the descents, one per basin of that profile. Other fits score the law's
grid of starts (:attr:`core.laws.Law.grid`) in one broadcast NumPy pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from scaleplan.core._fit.errors import DegenerateFitError
from scaleplan.core._fit.objective import ExpLinearProblem, Problem

__all__ = ["select_starts", "varpro_applies", "varpro_starts"]

FloatArray = NDArray[np.float64]


def select_starts(problem: Problem, start_theta: FloatArray, n_starts: int) -> list[FloatArray]:
    """The n_starts best of the law's grid and the caller's starting values."""
    axes = {}
    for name in problem.free:
        i = problem.names.index(name)
        grid = np.clip(problem.law.grid[name], problem.theta_lower[i], problem.theta_upper[i])
        axes[name] = np.unique(grid)
    grid = problem.grid_values(axes)
    values = np.append(grid.ravel(), problem.value_theta(start_theta))
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size == 0:
        raise DegenerateFitError("the objective is not finite at any starting point")
    best = finite[np.argsort(values[finite], kind="stable")[:n_starts]]
    caller = values.size - 1
    return [start_theta if i == caller else problem.grid_theta(axes, np.unravel_index(i, grid.shape)) for i in best]


# Exponents scanned by the variable projection (alpha and beta each): fine where fitted
# exponents of real families lie, coarser up to the default bound of 2. Zero is left out:
# there N**-alpha is the constant column and the linear problem is singular.
_VARPRO_EXPONENTS = np.concatenate([[0.02], np.arange(0.05, 1.0001, 0.05), [1.25, 1.5, 1.75, 2.0]])
# Scoring every scan cell with the true objective costs cells x points evaluations; past
# this budget only the cells with the smallest least-squares residual are scored (at least
# _VARPRO_SHORTLIST of them), in blocks of _VARPRO_BLOCK cells to bound memory.
_VARPRO_BUDGET = 200_000
_VARPRO_SHORTLIST = 48
_VARPRO_BLOCK = 64


# A support whose Gram determinant is below this share of the product of its diagonal
# (nearly collinear columns, e.g. alpha and beta both near 0, where every column is almost
# constant) is skipped: Cramer's rule loses all digits there, and ||Wy||^2 - c . r can even
# come out negative. The scan only ranks starts, so a cell that loses a nearly redundant column
# costs at most a slightly worse start; the descents decide the fit.
_NNLS_MIN_RELATIVE_DET = 1e-10


def varpro_applies(problem: Problem) -> bool:
    """Variable projection needs E, A, B free, untied and unbounded in log space."""
    if not isinstance(problem, ExpLinearProblem) or problem.law.name != "chinchilla":
        return False
    if problem.free != problem.law.param_names or problem.ties:
        return False
    return not (np.isfinite(problem.theta_lower[:3]).any() or np.isfinite(problem.theta_upper[:3]).any())


def _nnls3(
    g: Mapping[tuple[int, int], FloatArray], r: tuple[FloatArray, ...], total: float
) -> tuple[FloatArray, FloatArray]:
    """Exact NNLS for many 3-unknown problems given their normal equations, by broadcasting.

    ``g[i, j]`` (i <= j) are the entries of the symmetric Gram matrices and ``r`` the
    right-hand sides, all broadcastable to one shape S; ``total`` is the squared norm of the
    target. The NNLS solution is the unconstrained least-squares solution, on one of the 7
    non-empty supports, that is feasible (>= 0) and has the smallest residual; each support
    is solved in closed form (Cramer's rule), several times faster than a stacked
    ``np.linalg.solve`` for systems this small. Supports with nearly collinear columns
    (relative determinant below ``_NNLS_MIN_RELATIVE_DET``) are skipped. Returns the coefficients (S x 3) and the
    residual sums of squares (S); inf where no support is feasible.
    """
    shape = np.broadcast_shapes(*(np.shape(v) for v in (*g.values(), *r)))
    best_sse = np.full(shape, np.inf)
    best_c = np.zeros(shape + (3,))
    zero = np.zeros(shape)
    g00, g01, g02, g11, g12, g22 = (g[0, 0], g[0, 1], g[0, 2], g[1, 1], g[1, 2], g[2, 2])
    r0, r1, r2 = r
    candidates = []
    with np.errstate(all="ignore"):
        # one unknown
        candidates += [(r0 / g00, zero, zero), (zero, r1 / g11, zero), (zero, zero, r2 / g22)]
        # two unknowns: (i, j) with the third at zero
        for gii, gij, gjj, ri, rj, place in (
            (g00, g01, g11, r0, r1, (0, 1)),
            (g00, g02, g22, r0, r2, (0, 2)),
            (g11, g12, g22, r1, r2, (1, 2)),
        ):
            # an ill-conditioned support (nearly collinear columns) is left to the smaller ones
            det = gii * gjj - gij * gij
            det = np.where(det > _NNLS_MIN_RELATIVE_DET * gii * gjj, det, np.nan)
            c = [zero, zero, zero]
            c[place[0]] = (ri * gjj - gij * rj) / det
            c[place[1]] = (gii * rj - gij * ri) / det
            candidates.append((c[0], c[1], c[2]))
        # all three (cofactors of the symmetric matrix)
        c00, c01, c02 = g11 * g22 - g12 * g12, g02 * g12 - g01 * g22, g01 * g12 - g02 * g11
        c11, c12, c22 = g00 * g22 - g02 * g02, g01 * g02 - g00 * g12, g00 * g11 - g01 * g01
        det = g00 * c00 + g01 * c01 + g02 * c02
        det = np.where(det > _NNLS_MIN_RELATIVE_DET * g00 * g11 * g22, det, np.nan)
        candidates.append(
            (
                (c00 * r0 + c01 * r1 + c02 * r2) / det,
                (c01 * r0 + c11 * r1 + c12 * r2) / det,
                (c02 * r0 + c12 * r1 + c22 * r2) / det,
            )
        )
        for x0, x1, x2 in candidates:
            # at a least-squares solution on its support, ||W(Xc - y)||^2 = ||Wy||^2 - c . r
            sse = total - (x0 * r0 + x1 * r1 + x2 * r2)
            better = (x0 >= 0) & (x1 >= 0) & (x2 >= 0) & np.isfinite(sse) & (sse < best_sse)
            best_sse = np.where(better, sse, best_sse)
            best_c = np.where(better[..., None], np.stack(np.broadcast_arrays(x0, x1, x2), axis=-1), best_c)
    return best_c, best_sse


def _varpro_scan(problem: ExpLinearProblem) -> tuple[FloatArray, FloatArray]:
    """Profile of the Chinchilla law over a grid of (alpha, beta) by variable projection.

    For fixed exponents, L = E + A x + B y with x = N**-alpha, y = D**-beta is linear in
    (E, A, B) >= 0. Relative residuals (L_pred - L_obs) / L_obs approximate the log
    residuals the Huber objective sees, so each cell solves the non-negative least-squares
    problem min ||W (X c - L_obs)||, W = diag(1 / L_obs), exactly (:func:`_nnls3`). The Gram
    entries are sums over points that depend on alpha only, beta only, or both (one
    Ka x Kb matrix product), so the whole grid costs about as much as a few objective
    evaluations. Columns are scaled to a maximum of 1 for conditioning. Returns internal
    parameter vectors theta (cells x 5; a coefficient the NNLS sets to zero becomes a
    negligible positive term) and each cell's weighted sum of squares.
    """
    tl, tu = problem.theta_lower, problem.theta_upper
    # the bounds themselves are cells too: degenerate fits (beta at its floor, so B/D**beta is
    # a constant; alpha at its ceiling) have their optimum there
    alphas = np.unique(np.clip(np.append(_VARPRO_EXPONENTS, [tl[3], tu[3]]), tl[3], min(tu[3], 1e3)))
    betas = np.unique(np.clip(np.append(_VARPRO_EXPONENTS, [tl[4], tu[4]]), tl[4], min(tu[4], 1e3)))
    f_n, f_d = problem.F[1, :, 3], problem.F[2, :, 4]  # -log N, -log D
    top_n, top_d = f_n.max(), f_d.max()
    X = np.exp(alphas[:, None] * (f_n - top_n))  # (Ka, n), in (0, 1]
    Y = np.exp(betas[:, None] * (f_d - top_d))  # (Kb, n)
    w = 1.0 / problem.observed
    w2 = w * w
    Xw2 = X * w2
    g = {
        (0, 0): w2.sum(),
        (0, 1): (X @ w2)[:, None],
        (0, 2): (Y @ w2)[None, :],
        (1, 1): (Xw2 * X).sum(axis=1)[:, None],
        (1, 2): Xw2 @ Y.T,
        (2, 2): ((Y * Y) @ w2)[None, :],
    }
    r = (w.sum(), (X @ w)[:, None], (Y @ w)[None, :])
    best_c, best_sse = _nnls3(g, r, float(w.size))  # ||W L_obs||^2 = n
    # A term the NNLS drops gets a negligible share instead of log(0) = -inf.
    floor = 1e-8 * float(np.mean(problem.observed))
    log_c = np.log(np.maximum(best_c, floor))
    alpha_grid, beta_grid = np.meshgrid(alphas, betas, indexing="ij")
    theta = np.stack(
        [
            log_c[..., 0],
            log_c[..., 1] - alpha_grid * top_n,  # undo the column scaling: A = A_scaled exp(-alpha max(-log N))
            log_c[..., 2] - beta_grid * top_d,
            alpha_grid,
            beta_grid,
        ],
        axis=-1,
    )
    return theta.reshape(-1, 5), best_sse.reshape(-1)


def varpro_starts(problem: ExpLinearProblem, start_theta: FloatArray, n_starts: int) -> list[FloatArray]:
    """Starts from distinct basins of the variable-projection profile, best first.

    Every cell of the (alpha, beta) scan is scored with the true objective (at its NNLS
    E, A, B; cells beyond ``_VARPRO_BUDGET`` point evaluations are pre-filtered by their
    least-squares residual). Cells no worse than their 8 neighbours are local minima of the
    profile: each is a separate basin, so descending from the best few explores more than
    descending from the best cells, which are usually neighbours. The caller's starting
    values compete on the same footing.
    """
    theta, sse = _varpro_scan(problem)
    n_points = problem.observed.size
    values = np.full(sse.size, np.inf)
    keep = max(_VARPRO_SHORTLIST, _VARPRO_BUDGET // max(n_points, 1))
    finite = np.flatnonzero(np.isfinite(sse))
    scored = finite if finite.size <= keep else finite[np.argsort(sse[finite], kind="stable")[:keep]]
    for i in range(0, scored.size, _VARPRO_BLOCK):
        block = scored[i : i + _VARPRO_BLOCK]
        values[block] = problem.values_theta(theta[block])
    ka = np.unique(theta[:, 3]).size
    grid = values.reshape(ka, -1)
    padded = np.pad(grid, 1, constant_values=np.inf)
    neighbours = np.min(
        [
            padded[1 + di : 1 + di + grid.shape[0], 1 + dj : 1 + dj + grid.shape[1]]
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
            if di or dj
        ],
        axis=0,
    )
    minima = np.flatnonzero((grid <= neighbours).ravel() & np.isfinite(values))
    candidates = list(minima[np.argsort(values[minima], kind="stable")])
    pool = [(values[i], theta[i]) for i in candidates]
    caller = problem.value_theta(start_theta)
    if math.isfinite(caller):
        pool.append((caller, start_theta))
    if not pool:
        raise DegenerateFitError("the objective is not finite at any starting point")
    pool.sort(key=lambda item: item[0])
    return [t for _, t in pool[:n_starts]]
