"""SciPy's L-BFGS-B, driven without ``scipy.optimize.minimize``'s per-iteration overhead.

A Chinchilla fit on a few dozen points spends most of its time not in the objective or
in L-BFGS-B's own (compiled) step, but in the Python around them: ``minimize`` wraps the
objective in a ``ScalarFunction`` (array-API conversions, memoisation, copies) and builds
an ``OptimizeResult`` for the callback at every iteration. Measured on 236 descents of the
sweep's designs, that wrapper was 61% of a descent's time. The rest is mostly NumPy's
per-call overhead in the objective, paid once per start per evaluation.

:func:`minimize_lbfgsb` runs the same compiled routine (``scipy.optimize._lbfgsb.setulb``,
the reverse-communication core that ``minimize(method="L-BFGS-B")`` drives) with the same
loop as SciPy's ``_minimize_lbfgsb``: same arguments, same stopping rules, same order of
evaluations, so it returns bit-identical results. :func:`minimize_lbfgsb_many` runs several
such loops side by side (reverse communication lets each wait for its objective value) and
evaluates all their pending points in one call, so a fit's starts share NumPy's overhead;
each run still returns exactly what ``minimize`` returns from its start.
``tests/core/test_lbfgsb.py`` checks both against ``minimize`` itself. The core is private
to SciPy: it is used only with the SciPy releases this loop was tested on (:data:`TESTED_SCIPY`)
and when, on a probe problem, it behaves exactly as ``minimize`` (:func:`direct_loop_works`);
otherwise :data:`DIRECT` is False and ``minimize`` runs each start instead (same results, slower).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import scipy
from numpy.typing import NDArray
from scipy.optimize import minimize

__all__ = ["DIRECT", "TESTED_SCIPY", "LbfgsbResult", "direct_loop_works", "minimize_lbfgsb", "minimize_lbfgsb_many"]

FloatArray = NDArray[np.float64]

# SciPy releases this loop was tested on (bit-identical to minimize on every test problem and on
# all 2,360 sweep designs): the C translation of L-BFGS-B 3.0 that SciPy 1.15 introduced, checked
# on 1.17.1. Outside this range the public minimize runs each start (same results, slower).
TESTED_SCIPY = ((1, 15), (1, 18))  # [first, past the last) (major, minor)

try:
    from scipy.optimize import _lbfgsb as _core
    from scipy.optimize._lbfgsb_py import status_messages as _STATUS
    from scipy.optimize._lbfgsb_py import task_messages as _TASK
except (ImportError, AttributeError):  # another SciPy layout: use minimize
    _core = None
# task[0] codes of setulb
_FG, _NEW_X, _CONVERGENCE, _STOP = 3, 1, 4, 5
_ITERATION_LIMIT, _EVALUATION_LIMIT = 504, 502


class LbfgsbResult(NamedTuple):
    """Outcome of one L-BFGS-B run (the fields of ``OptimizeResult`` a fit uses).

    ``status`` is 0 converged, 1 iteration or evaluation limit reached, 2 other stop
    (e.g. the line search failed), as in ``scipy.optimize.minimize``.
    """

    x: FloatArray
    fun: float
    status: int
    message: str
    nit: int
    nfev: int

    @property
    def success(self) -> bool:
        return self.status == 0


class _Run:
    """The state of one L-BFGS-B run driven through ``setulb`` (SciPy's workspace layout)."""

    def __init__(self, x0: FloatArray, lower: FloatArray, upper: FloatArray, m: int) -> None:
        n = x0.size
        has_lower, has_upper = np.isfinite(lower), np.isfinite(upper)
        # nbd: 0 unbounded, 1 lower only, 2 both, 3 upper only
        self.nbd = np.where(has_lower & has_upper, 2, np.where(has_lower, 1, np.where(has_upper, 3, 0))).astype(
            np.int32
        )
        self.low = np.where(has_lower, lower, 0.0)
        self.high = np.where(has_upper, upper, 0.0)
        self.x = np.clip(x0, lower, upper)
        self.f: float | FloatArray = np.array(0.0)
        self.g = np.zeros(n)
        self.wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m)
        self.iwa = np.zeros(3 * n, dtype=np.int32)
        self.task = np.zeros(2, dtype=np.int32)
        self.ln_task = np.zeros(2, dtype=np.int32)
        self.lsave = np.zeros(4, dtype=np.int32)
        self.isave = np.zeros(44, dtype=np.int32)
        self.dsave = np.zeros(29)
        self.n_iterations = 0
        self.n_evaluations = 0
        # The last point evaluated and its f, g: like SciPy's ScalarFunction, a repeated request
        # at the same point (a line search that cannot move) is answered without evaluating.
        self.last_x: FloatArray | None = None
        self.last_f = 0.0
        self.last_g = self.g

    def advance(self, m: int, factr: float, pgtol: float, maxls: int, maxiter: int, maxfun: int) -> bool:
        """Step the routine until it asks for f and g at a new point ``self.x`` (True) or stops (False).

        The same loop as SciPy's ``_minimize_lbfgsb``, less the callback.
        """
        while True:
            _core.setulb(
                m,
                self.x,
                self.low,
                self.high,
                self.nbd,
                self.f,
                self.g,
                factr,
                pgtol,
                self.wa,
                self.iwa,
                self.task,
                self.lsave,
                self.isave,
                self.dsave,
                maxls,
                self.ln_task,
            )
            if self.task[0] == _FG:
                if self.last_x is None or not np.array_equal(self.x, self.last_x):
                    return True
                self.f, self.g = self.last_f, self.last_g.copy()
                continue
            if self.task[0] != _NEW_X:
                return False
            self.n_iterations += 1
            if self.n_iterations >= maxiter:
                self.task[0], self.task[1] = _STOP, _ITERATION_LIMIT
            elif self.n_evaluations > maxfun:
                self.task[0], self.task[1] = _STOP, _EVALUATION_LIMIT

    def result(self, maxiter: int, maxfun: int) -> LbfgsbResult:
        if self.task[0] == _CONVERGENCE:
            status = 0
        elif self.n_evaluations > maxfun or self.n_iterations >= maxiter:
            status = 1
        else:
            status = 2
        message = f"{_STATUS[int(self.task[0])]}: {_TASK[int(self.task[1])]}"
        return LbfgsbResult(self.x, float(self.f), status, message, self.n_iterations, self.n_evaluations)

    def take(self, value: float, grad: FloatArray) -> None:
        """The objective at ``self.x``, as asked for by :meth:`advance`."""
        self.last_x, self.last_f, self.last_g = self.x.copy(), float(value), np.array(grad, dtype=np.float64)
        self.f, self.g = self.last_f, self.last_g.copy()  # a copy: setulb works in place
        self.n_evaluations += 1


def minimize_lbfgsb_many(
    funs: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
    x0s: Sequence[FloatArray],
    lower: FloatArray,
    upper: FloatArray,
    *,
    maxcor: int = 10,
    ftol: float = 2.220446049250313e-09,
    gtol: float = 1e-5,
    maxiter: int = 15000,
    maxfun: int = 15000,
    maxls: int = 20,
) -> list[LbfgsbResult]:
    """Independent L-BFGS-B runs from each of ``x0s``, their evaluations batched.

    ``funs(X)`` returns the values (k) and gradients (k x n) at the k rows of X. The runs
    advance together: at each round every running descent steps L-BFGS-B until it needs
    the objective, and ``funs`` evaluates all those points in one call. When ``funs``
    computes each row as it would alone, every run returns exactly what
    :func:`minimize_lbfgsb` (and so ``scipy.optimize.minimize``) returns from its start;
    batching only saves the per-call overhead of NumPy on small problems.
    """
    x0s = [np.asarray(x0, dtype=np.float64).ravel() for x0 in x0s]
    if not x0s:
        return []
    n = x0s[0].size
    if any(x0.size != n for x0 in x0s):
        raise ValueError("all starting points must have the same length")
    lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,))
    upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,))
    if not maxls > 0:
        raise ValueError("maxls must be positive.")
    options = dict(maxcor=maxcor, ftol=ftol, gtol=gtol, maxiter=maxiter, maxfun=maxfun, maxls=maxls)
    if not DIRECT:
        return _minimize_each(funs, x0s, lower, upper, options)
    return _direct_many(funs, x0s, lower, upper, maxcor, ftol, gtol, maxiter, maxfun, maxls)


def _minimize_each(
    funs: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
    x0s: Sequence[FloatArray],
    lower: FloatArray,
    upper: FloatArray,
    options: dict[str, float],
) -> list[LbfgsbResult]:
    """The public path: ``scipy.optimize.minimize`` from each start in turn."""

    def one(x: FloatArray) -> tuple[float, FloatArray]:
        values, grads = funs(x[None, :])
        return float(values[0]), grads[0]

    results = []
    for x0 in x0s:
        res = minimize(one, x0, jac=True, method="L-BFGS-B", bounds=list(zip(lower, upper)), options=options)
        results.append(
            LbfgsbResult(
                np.asarray(res.x, dtype=np.float64),
                float(res.fun),
                int(res.status),
                str(res.message),
                int(res.nit),
                int(res.nfev),
            )
        )
    return results


def _direct_many(
    funs: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
    x0s: Sequence[FloatArray],
    lower: FloatArray,
    upper: FloatArray,
    maxcor: int,
    ftol: float,
    gtol: float,
    maxiter: int,
    maxfun: int,
    maxls: int,
) -> list[LbfgsbResult]:
    """The compiled routine driven directly, all runs side by side."""
    if (lower > upper).any():
        raise ValueError("LBFGSB - one of the lower bounds is greater than an upper bound.")
    factr = ftol / np.finfo(float).eps
    runs = [_Run(x0, lower, upper, maxcor) for x0 in x0s]
    waiting = runs
    while True:
        waiting = [run for run in waiting if run.advance(maxcor, factr, gtol, maxls, maxiter, maxfun)]
        if not waiting:
            break
        values, grads = funs(np.stack([run.x for run in waiting]))
        for run, value, grad in zip(waiting, values, grads):
            run.take(value, grad)
    return [run.result(maxiter, maxfun) for run in runs]


def minimize_lbfgsb(
    fun: Callable[[FloatArray], tuple[float, FloatArray]],
    x0: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    *,
    maxcor: int = 10,
    ftol: float = 2.220446049250313e-09,
    gtol: float = 1e-5,
    maxiter: int = 15000,
    maxfun: int = 15000,
    maxls: int = 20,
) -> LbfgsbResult:
    """Minimise ``fun`` (returning the value and its gradient) within the box [lower, upper].

    Equivalent to ``scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B",
    bounds=list(zip(lower, upper)), options=dict(maxcor=..., ftol=..., gtol=..., maxiter=...,
    maxfun=..., maxls=...))``; infinite bounds mean unbounded. ``fun`` must not keep a
    reference to its argument (the optimiser updates it in place).
    """

    def funs(X: FloatArray) -> tuple[FloatArray, FloatArray]:
        value, grad = fun(X[0])
        return np.array([value], dtype=np.float64), np.asarray(grad, dtype=np.float64)[None, :]

    return minimize_lbfgsb_many(
        funs, [x0], lower, upper, maxcor=maxcor, ftol=ftol, gtol=gtol, maxiter=maxiter, maxfun=maxfun, maxls=maxls
    )[0]


def _probe_problem(x: FloatArray) -> tuple[float, FloatArray]:
    """Rosenbrock's function and gradient (a probe with a curved valley: many line searches)."""
    value = 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2
    grad = np.array([-400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0]), 200.0 * (x[1] - x[0] ** 2)])
    return float(value), grad


def direct_loop_works(version: str) -> bool:
    """Whether the direct loop may be used with SciPy ``version``: tested range and the same behaviour.

    The private routine is used only when the version lies in :data:`TESTED_SCIPY` and, run by this
    module's loop on a small bounded problem (from two starts, one of them with an iteration limit),
    it returns exactly what the public ``scipy.optimize.minimize`` returns: the same point,
    value, status, iterations and evaluations. Any exception on the way counts as not working.
    """
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    if not TESTED_SCIPY[0] <= (major, minor) < TESTED_SCIPY[1] or _core is None:
        return False
    lower, upper = np.array([-2.0, -np.inf]), np.array([0.5, np.inf])

    def funs(X: FloatArray) -> tuple[FloatArray, FloatArray]:
        pairs = [_probe_problem(x) for x in X]
        return np.array([v for v, _ in pairs]), np.array([g for _, g in pairs])

    for x0, maxiter in ((np.array([-1.2, 1.0]), 200), (np.array([0.3, -0.5]), 7)):
        options = {"maxcor": 10, "ftol": 1e-12, "gtol": 1e-9, "maxiter": maxiter, "maxfun": 15000, "maxls": 20}
        try:
            with np.errstate(all="ignore"):
                (ours,) = _direct_many(funs, [x0], lower, upper, 10, 1e-12, 1e-9, maxiter, 15000, 20)
                (public,) = _minimize_each(funs, [x0], lower, upper, options)
        except Exception:  # noqa: BLE001 - a changed private routine may fail in any way
            return False
        same = (
            np.array_equal(ours.x, public.x)
            and ours.fun == public.fun
            and (ours.status, ours.nit, ours.nfev) == (public.status, public.nit, public.nfev)
        )
        if not same:
            return False
    return True


DIRECT: bool = direct_loop_works(scipy.__version__)
"""True when :func:`minimize_lbfgsb_many` drives SciPy's compiled routine directly (see :func:`direct_loop_works`)."""
