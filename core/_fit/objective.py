"""The objective of one fit: a law's Huber or least-squares loss on one data set, in optimiser coordinates.

:func:`build_problem` turns a law, its validated inputs and target, and the caller's
:class:`core.parameters.Parameters` into a problem whose ``scaled_values_and_grads`` L-BFGS-B
minimises. Exp-linear laws (``Law.terms``) get :class:`ExpLinearProblem`: one design tensor F
(terms x points x parameters), predictions ``sum_k s_k exp(F_k theta)``, the Huber objective on
log residuals via ``log pred = logsumexp_k(F_k theta)`` (Hoffmann et al. 2022, approach 3) and the
least-squares objective on ``pred`` itself. General laws (``Law.gradient``) get
:class:`GeneralProblem`, which evaluates the law and its gradient directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from scaleplan.core.laws import Law
from scaleplan.core.parameters import Parameters

__all__ = ["ExpLinearProblem", "GeneralProblem", "Problem", "build_problem", "huber"]

FloatArray = NDArray[np.float64]

_GRID_BLOCK_SIZE = 131072  # grid points x data points per block: 0.5 MB of float32


def huber(r: FloatArray, delta: float) -> FloatArray:
    """Huber loss: r**2 / 2 for |r| <= delta, delta (|r| - delta / 2) beyond."""
    size = np.abs(r)
    return np.where(size <= delta, 0.5 * size * size, delta * (size - 0.5 * delta))


def _values_and_grads(
    X: FloatArray,
    U0: FloatArray | float,
    V: FloatArray,
    signs: FloatArray,
    observed: FloatArray,
    log_observed: FloatArray,
    objective: str,
    delta: float,
) -> tuple[FloatArray, FloatArray]:
    """Mean objective over points and its gradient w.r.t. the coordinates, at each row of V.

    The exponents are U = U0 + X v, flattened term-major: ``X`` is (terms * points) x
    coordinates, so row k * n + i holds term k at point i. Huber (on log residuals): the
    prediction is sum_k exp(U_k) and r = log pred - log observed; least squares: the
    prediction is sum_k sign_k exp(U_k) and r = pred - observed. ``V`` is (starts x
    coordinates); returns the values (starts) and gradients (starts x coordinates).

    The optimiser calls this thousands of times per fit on a few dozen points, where each
    NumPy call's overhead (about a microsecond) is the cost: it makes as few calls as it
    can, and evaluates the points of all running descents in one pass. Every row is
    computed exactly as it would be alone (the matrix products are stacked matrix-vector
    products), so descents run together give the same results as run one by one.
    """
    # A runaway point (a line search stepping far out) overflows: callers test for non-finite values.
    with np.errstate(over="ignore", invalid="ignore"):
        n = observed.size
        starts = V.shape[0]
        U = (U0 + np.matmul(X, V[:, :, None])[:, :, 0]).reshape(starts, -1, n)
        if objective == "huber":
            # log pred = logsumexp_k U_k; shifting by the max keeps exp finite for any theta.
            top = U.max(axis=1)
            W = np.exp(U - top[:, None, :])
            total = W.sum(axis=1)
            r = top + np.log(total) - log_observed
            # c = clip(r, -delta, delta) is d huber / dr, and huber(r) = c (r - c / 2): r**2 / 2
            # inside, delta (|r| - delta / 2) outside (exactly, as 0.5 and the sign are exact).
            # minimum(maximum()) is np.clip without its argument handling, twice as fast here.
            c = np.minimum(np.maximum(r, -delta), delta)
            values = np.add.reduce(c * (r - 0.5 * c), axis=1) / n
            # d log pred / dU_k = softmax_k(U)
            dU = W * (c / (n * total))[:, None, :]
        else:
            terms = signs[:, None] * np.exp(U)
            r = terms.sum(axis=1) - observed
            values = np.matmul(r[:, None, :], r[:, :, None])[:, 0, 0] / n
            dU = terms * (2.0 * r / n)[:, None, :]
        return values, np.matmul(dU.reshape(starts, 1, -1), X)[:, 0, :]


@dataclass(frozen=True, eq=False)
class ExpLinearProblem:
    """A law's objective on one data set, in optimiser coordinates v.

    Internal parameters are theta = theta0 + J v: J scatters the free coordinates into
    theta and copies them into tied parameters. It also *centres* each free log prefactor
    on its exponent's feature: with f = -log N and m = mean(f), a + alpha f =
    (a + alpha m) + alpha (f - m), and the optimiser moves a + alpha m (the log excess at
    the mean size) rather than a. Over N = 1e7..1e9, a and alpha are otherwise ~0.999
    correlated and L-BFGS-B needs several times more iterations.
    """

    law: Law
    names: tuple[str, ...]
    free: tuple[str, ...]
    F: FloatArray  # terms x points x parameters
    signs: FloatArray
    observed: FloatArray
    log_observed: FloatArray
    objective: str
    delta: float
    theta0: FloatArray
    J: FloatArray
    J_pinv: FloatArray
    lower: FloatArray  # bounds on v
    upper: FloatArray
    theta_lower: FloatArray  # bounds on theta (internal units)
    theta_upper: FloatArray
    ties: Mapping[str, str]  # tied name -> the name whose value it takes
    Fv: FloatArray = field(init=False)  # terms x points x free coordinates
    U0: FloatArray = field(init=False)  # terms x points
    F_flat: FloatArray = field(init=False)  # F and Fv flattened term-major (see _value_and_grad)
    Fv_flat: FloatArray = field(init=False)
    scale: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "Fv", self.F @ self.J)
        object.__setattr__(self, "U0", self.F @ self.theta0)
        rows = self.F.shape[0] * self.F.shape[1]
        object.__setattr__(self, "F_flat", np.ascontiguousarray(self.F.reshape(rows, self.F.shape[2])))
        object.__setattr__(self, "Fv_flat", np.ascontiguousarray(self.Fv.reshape(rows, self.Fv.shape[2])))
        # L-BFGS-B's stopping tests are absolute for objectives below 1; rescale so one
        # unit is a typical residual (Huber: |log residual|; LS: squared relative error).
        if self.objective == "huber":
            scale = 1.0 / self.delta
        else:
            scale = 1.0 / max(float(np.mean(self.observed**2)), 1e-300)
        object.__setattr__(self, "scale", scale)

    # theta-space: used for reporting and gradient checks
    def value_and_grad_theta(self, theta: FloatArray) -> tuple[float, FloatArray]:
        values, grads = _values_and_grads(
            self.F_flat,
            0.0,
            theta[None, :],
            self.signs,
            self.observed,
            self.log_observed,
            self.objective,
            self.delta,
        )
        return float(values[0]), grads[0]

    def value_theta(self, theta: FloatArray) -> float:
        return self.value_and_grad_theta(theta)[0]

    def values_theta(self, thetas: FloatArray) -> FloatArray:
        """Objective at many internal parameter vectors (rows of ``thetas``) in one pass."""
        terms, n_points, n_params = self.F.shape
        U = (self.F.reshape(-1, n_params) @ thetas.T).T.reshape(-1, terms, n_points)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.objective == "huber":
                top = U.max(axis=1)
                log_pred = top + np.log(np.exp(U - top[:, None, :]).sum(axis=1))
                values = huber(log_pred - self.log_observed, self.delta).mean(axis=1)
            else:
                r = (self.signs[None, :, None] * np.exp(U)).sum(axis=1) - self.observed
                values = (r * r).mean(axis=1)
        return np.where(np.isfinite(values), values, np.inf)

    # v-space: what L-BFGS-B sees
    def scaled_values_and_grads(self, V: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Scaled objective and gradient at each row of V (starts x coordinates)."""
        values, grads = _values_and_grads(
            self.Fv_flat,
            self.U0.reshape(-1),
            V,
            self.signs,
            self.observed,
            self.log_observed,
            self.objective,
            self.delta,
        )
        scaled, grads = values * self.scale, grads * self.scale
        finite = np.isfinite(values)
        if not finite.all():
            # A finite wall makes the line search step back instead of aborting.
            scaled[~finite] = 1e300
            grads[~finite] = 0.0
        return scaled, grads

    def scaled_value_and_grad(self, v: FloatArray) -> tuple[float, FloatArray]:
        values, grads = self.scaled_values_and_grads(v[None, :])
        return float(values[0]), grads[0]

    def theta_from_v(self, v: FloatArray) -> FloatArray:
        return self.theta0 + self.J @ v

    def v_from_theta(self, theta: FloatArray) -> FloatArray:
        return np.clip(self.J_pinv @ (theta - self.theta0), self.lower, self.upper)

    def grid_values(self, axes: Mapping[str, FloatArray]) -> FloatArray:
        """Objective at every point of the Cartesian grid ``axes`` (internal units).

        Returns an array with one axis per free parameter (in ``self.free`` order). Each
        term's exponentials are tabulated once on the sub-grid of its own parameters and
        broadcast; the grid x points sums are formed block by block over the leading grid
        axes so each block stays in cache, several times faster than one big array. The
        pass is memory-bound and only ranks starts, so it runs in float32 (values that
        overflow it rank last).
        """
        shape = tuple(len(axes[n]) for n in self.free)
        n_points = self.F.shape[1]
        tables = []
        assert self.law.terms is not None
        for k, term in enumerate(self.law.terms):
            exponent = self._broadcast_axis(term.intercept, axes)[..., None]
            if term.slope is not None:
                feature = self.F[k, :, self.names.index(term.slope)]
                exponent = exponent + self._broadcast_axis(term.slope, axes)[..., None] * feature
            with np.errstate(over="ignore"):
                tables.append((self.signs[k] * np.exp(exponent)).astype(np.float32))
        observed = (self.log_observed if self.objective == "huber" else self.observed).astype(np.float32)
        lead = 0
        while lead < len(shape) and math.prod(shape[lead:]) * n_points > _GRID_BLOCK_SIZE:
            lead += 1
        values = np.empty(shape)
        for block in np.ndindex(shape[:lead]):
            total = 0.0
            for table in tables:
                total = total + table[tuple(i if table.shape[a] > 1 else 0 for a, i in enumerate(block))]
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                if self.objective == "huber":
                    per_point = huber(np.log(total) - observed, self.delta)
                else:
                    per_point = np.asarray((total - observed) ** 2, dtype=np.float64)
                values[block] = np.broadcast_to(per_point, shape[lead:] + (n_points,)).mean(axis=-1)
        return np.where(np.isfinite(values), values, np.inf)

    def grid_theta(self, axes: Mapping[str, FloatArray], position: tuple[int, ...]) -> FloatArray:
        """Full internal parameter vector at one grid point (an index into each axis)."""
        theta = self.theta0.copy()
        for i, name in enumerate(self.names):
            source = self.source(name)
            if source in axes:
                theta[i] = axes[source][position[self.free.index(source)]]
        return theta

    def _broadcast_axis(self, name: str, axes: Mapping[str, FloatArray]) -> FloatArray:
        """Values of one parameter shaped to broadcast over the grid (a scalar if fixed)."""
        source = self.source(name)
        if source not in axes:
            return np.full((1,) * len(self.free), self.theta0[self.names.index(name)])
        shape = [1] * len(self.free)
        shape[self.free.index(source)] = -1
        return np.asarray(axes[source], dtype=np.float64).reshape(shape)

    def source(self, name: str) -> str:
        """The parameter whose value ``name`` takes (itself unless tied)."""
        return self.ties.get(name, name)


def _internal_bounds(law: Law, parameters: Parameters, name: str) -> tuple[float, float]:
    p = parameters[name]
    if name in law.log_params:
        lo = math.log(p.min) if p.min > 0 else -math.inf
        hi = math.log(p.max) if p.max < math.inf else math.inf
        return lo, hi
    return p.min, p.max


def _build_exp_linear(
    law: Law,
    inputs: Mapping[str, FloatArray],
    observed: FloatArray,
    parameters: Parameters,
    objective: str,
    delta: float,
) -> ExpLinearProblem:
    assert law.terms is not None and law.features is not None
    names = law.param_names
    index = {n: i for i, n in enumerate(names)}
    features = law.features(inputs)
    n_points = observed.size
    F = np.zeros((len(law.terms), n_points, len(names)))
    for k, term in enumerate(law.terms):
        F[k, :, index[term.intercept]] = 1.0
        if term.slope is not None:
            assert term.feature is not None
            F[k, :, index[term.slope]] = features[term.feature]
    signs = np.array([t.sign for t in law.terms])

    free = parameters.free_names
    ties = parameters.tied
    column = {n: j for j, n in enumerate(free)}
    values = parameters.values_dict()
    phi0 = np.array([law.to_internal(n, values[n]) for n in names])
    S = np.zeros((len(names), len(free)))
    for name in names:
        source = ties.get(name, name)
        if source in column:
            S[index[name], column[source]] = 1.0
            phi0[index[name]] = 0.0

    bounds = {n: _internal_bounds(law, parameters, n) for n in names}
    Q = np.eye(len(names))
    centred: set[str] = set()
    intercept_uses = [t.intercept for t in law.terms]
    for term in law.terms:
        c, s = term.intercept, term.slope
        if (
            s is None
            or c not in column
            or intercept_uses.count(c) > 1
            or c in ties.values()  # shifting c would break the tie
            or ties.get(s, s) not in column
            or any(math.isfinite(b) for b in bounds[c])
        ):
            continue
        assert term.feature is not None
        Q[index[c], index[s]] = -float(np.mean(features[term.feature]))
        centred.add(c)
    J = Q @ S
    lower = np.array([-math.inf if n in centred else bounds[n][0] for n in free])
    upper = np.array([math.inf if n in centred else bounds[n][1] for n in free])
    return ExpLinearProblem(
        law=law,
        names=names,
        free=free,
        F=F,
        signs=signs,
        observed=observed,
        log_observed=np.log(observed) if objective == "huber" else observed,
        objective=objective,
        delta=delta,
        theta0=Q @ phi0,
        J=J,
        J_pinv=np.asarray(np.linalg.pinv(J), dtype=np.float64) if free else np.zeros((0, len(names))),
        lower=lower,
        upper=upper,
        theta_lower=np.array([bounds[n][0] for n in names]),
        theta_upper=np.array([bounds[n][1] for n in names]),
        ties=ties,
    )


def _objective_scale(objective: str, delta: float, observed: FloatArray) -> float:
    """L-BFGS-B's stopping tests are absolute for objectives below 1: one unit is a typical residual."""
    if objective == "huber":
        return 1.0 / delta
    return 1.0 / max(float(np.mean(observed**2)), 1e-300)


@dataclass(frozen=True, eq=False)
class GeneralProblem:
    """A general law's objective on one data set, in optimiser coordinates v (same interface as
    :class:`ExpLinearProblem`).

    theta = theta0 + J v: J scatters the free coordinates into the internal parameters theta and
    copies them into tied ones; natural values are exp(theta) for the law's ``log_params``. The
    prediction and its gradient come from ``law.function`` and ``law.gradient`` (natural units),
    chained through the log transform: d pred / d theta_i = d pred / d p_i * p_i for a log
    parameter. Huber on log residuals: d mean huber(r) / d theta = mean(clip(r) d pred/d theta /
    pred); least squares: mean(2 (pred - obs) d pred / d theta).
    """

    law: Law
    names: tuple[str, ...]
    free: tuple[str, ...]
    inputs: Mapping[str, FloatArray]
    observed: FloatArray
    log_observed: FloatArray
    objective: str
    delta: float
    theta0: FloatArray
    J: FloatArray
    J_pinv: FloatArray
    lower: FloatArray
    upper: FloatArray
    theta_lower: FloatArray
    theta_upper: FloatArray
    ties: Mapping[str, str]
    scale: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _objective_scale(self.objective, self.delta, self.observed))

    def _natural(self, thetas: FloatArray) -> dict[str, FloatArray]:
        """Parameter columns (rows x 1) in natural units at each row of ``thetas``."""
        with np.errstate(over="ignore"):
            return {
                n: (np.exp(thetas[:, i]) if n in self.law.log_params else thetas[:, i])[:, None]
                for i, n in enumerate(self.names)
            }

    def _predict(self, thetas: FloatArray) -> tuple[dict[str, FloatArray], FloatArray]:
        params = self._natural(thetas)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred = np.broadcast_to(self.law.predict(self.inputs, params), (thetas.shape[0], self.observed.size))
        return params, pred

    def _values(self, pred: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per-row objective and d objective / d pred (rows x points)."""
        n = self.observed.size
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.objective == "huber":
                r = np.log(pred) - self.log_observed
                c = np.minimum(np.maximum(r, -self.delta), self.delta)
                return np.add.reduce(c * (r - 0.5 * c), axis=1) / n, c / (n * pred)
            r = pred - self.observed
            return np.add.reduce(r * r, axis=1) / n, 2.0 * r / n

    def values_and_grads_theta(self, thetas: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Objective and its gradient w.r.t. theta at each row of ``thetas``."""
        assert self.law.gradient is not None
        params, pred = self._predict(thetas)
        values, d_pred = self._values(pred)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            partials = self.law.gradient(*(self.inputs[n] for n in self.law.input_names), **params)
            grads = np.empty_like(thetas)
            for i, name in enumerate(self.names):
                dp = np.broadcast_to(partials[name], pred.shape)
                if name in self.law.log_params:
                    dp = dp * params[name]
                grads[:, i] = np.add.reduce(d_pred * dp, axis=1)
        return values, grads

    def value_and_grad_theta(self, theta: FloatArray) -> tuple[float, FloatArray]:
        values, grads = self.values_and_grads_theta(theta[None, :])
        return float(values[0]), grads[0]

    def value_theta(self, theta: FloatArray) -> float:
        return float(self.values_theta(theta[None, :])[0])

    def values_theta(self, thetas: FloatArray) -> FloatArray:
        """Objective at many internal parameter vectors (rows of ``thetas``) in one pass."""
        values = self._values(self._predict(thetas)[1])[0]
        return np.where(np.isfinite(values), values, np.inf)

    def scaled_values_and_grads(self, V: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Scaled objective and gradient at each row of V (starts x coordinates)."""
        values, grads = self.values_and_grads_theta(self.theta0 + V @ self.J.T)
        scaled, grads = values * self.scale, (grads @ self.J) * self.scale
        bad = ~(np.isfinite(values) & np.isfinite(grads).all(axis=1))
        if bad.any():
            # A finite wall makes the line search step back instead of aborting.
            scaled[bad] = 1e300
            grads[bad] = 0.0
        return scaled, grads

    def scaled_value_and_grad(self, v: FloatArray) -> tuple[float, FloatArray]:
        values, grads = self.scaled_values_and_grads(v[None, :])
        return float(values[0]), grads[0]

    def theta_from_v(self, v: FloatArray) -> FloatArray:
        return self.theta0 + self.J @ v

    def v_from_theta(self, theta: FloatArray) -> FloatArray:
        return np.clip(self.J_pinv @ (theta - self.theta0), self.lower, self.upper)

    def grid_values(self, axes: Mapping[str, FloatArray]) -> FloatArray:
        """Objective at every point of the Cartesian grid ``axes`` (internal units), one axis per free parameter."""
        shape = tuple(len(axes[n]) for n in self.free)
        cells = math.prod(shape)
        values = np.empty(cells)
        block = max(1, _GRID_BLOCK_SIZE // max(self.observed.size, 1))
        for start in range(0, cells, block):
            index = np.unravel_index(np.arange(start, min(start + block, cells)), shape)
            thetas = np.repeat(self.theta0[None, :], index[0].size, axis=0)
            for i, name in enumerate(self.names):
                source = self.source(name)
                if source in axes:
                    thetas[:, i] = np.asarray(axes[source])[index[self.free.index(source)]]
            values[start : start + index[0].size] = self.values_theta(thetas)
        return values.reshape(shape)

    def grid_theta(self, axes: Mapping[str, FloatArray], position: tuple[int, ...]) -> FloatArray:
        """Full internal parameter vector at one grid point (an index into each axis)."""
        theta = self.theta0.copy()
        for i, name in enumerate(self.names):
            source = self.source(name)
            if source in axes:
                theta[i] = axes[source][position[self.free.index(source)]]
        return theta

    def source(self, name: str) -> str:
        """The parameter whose value ``name`` takes (itself unless tied)."""
        return self.ties.get(name, name)


Problem = ExpLinearProblem | GeneralProblem


def _build_general(
    law: Law,
    inputs: Mapping[str, FloatArray],
    observed: FloatArray,
    parameters: Parameters,
    objective: str,
    delta: float,
) -> GeneralProblem:
    names = law.param_names
    index = {n: i for i, n in enumerate(names)}
    free = parameters.free_names
    ties = parameters.tied
    column = {n: j for j, n in enumerate(free)}
    values = parameters.values_dict()
    theta0 = np.array([law.to_internal(n, values[n]) for n in names])
    J = np.zeros((len(names), len(free)))
    for name in names:
        source = ties.get(name, name)
        if source in column:
            J[index[name], column[source]] = 1.0
            theta0[index[name]] = 0.0
    bounds = {n: _internal_bounds(law, parameters, n) for n in names}
    return GeneralProblem(
        law=law,
        names=names,
        free=free,
        inputs=dict(inputs),
        observed=observed,
        log_observed=np.log(observed) if objective == "huber" else observed,
        objective=objective,
        delta=delta,
        theta0=theta0,
        J=J,
        J_pinv=np.asarray(np.linalg.pinv(J), dtype=np.float64) if free else np.zeros((0, len(names))),
        lower=np.array([bounds[n][0] for n in free]),
        upper=np.array([bounds[n][1] for n in free]),
        theta_lower=np.array([bounds[n][0] for n in names]),
        theta_upper=np.array([bounds[n][1] for n in names]),
        ties=ties,
    )


def build_problem(
    law: Law,
    inputs: Mapping[str, FloatArray],
    observed: FloatArray,
    parameters: Parameters,
    objective: str,
    delta: float,
) -> Problem:
    """The objective of ``law`` on one validated data set, for the caller's parameters."""
    if law.terms is not None:
        return _build_exp_linear(law, inputs, observed, parameters, objective, delta)
    return _build_general(law, inputs, observed, parameters, objective, delta)
