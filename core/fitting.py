"""Fitting scaling laws: grid of starts, L-BFGS-B with analytic gradients, run bootstrap.

All three laws are signed sums of exponentials of functions *linear* in the internal
parameters theta (positive parameters enter as their logarithm):

    chinchilla   L   = exp(e) + exp(a - alpha log N) + exp(b - beta log D)
    overtrain    L   = exp(e) + exp(a' + eta (log M - log C)) + exp(b' - eta (log M + log C))
    downstream   Err = exp(e') - exp(k' - gamma L)

with e = log E, a = log A, ... So one design tensor F (terms x points x parameters) and
one objective serve every law: predictions are ``sum_k s_k exp(F_k theta)``, the Huber
objective on log residuals uses ``log pred = logsumexp_k(F_k theta)`` (Hoffmann et al.
2022, approach 3) and the least-squares objective uses ``pred`` itself.

A fit ranks starting points cheaply, then runs L-BFGS-B with the analytic gradient from
the best few and keeps the best optimum. Chinchilla fits with E, A, B free rank starts by
variable projection: for each (alpha, beta) of a 25 x 25 grid the law is linear in
(E, A, B), whose non-negative least-squares values on relative residuals come in closed form
for the whole grid at once (Golub and Pereyra's separable least squares); the best cells by
the true objective seed the descents, one per basin of that profile. Designs of at most
100 points also descend from the best points of Hoffmann's grid (their objective has
several basins at the bounds, and descents on few points are cheap). A descent that stalls
is restarted once from where it stopped. Other fits (other laws, fixed, tied or bounded
prefactors) score a grid of starts in one broadcast NumPy pass. The descents from all
starts run together: SciPy's L-BFGS-B core driven without ``minimize``'s per-iteration
wrapper, the objective evaluated for every running descent in one NumPy pass
(:mod:`core.lbfgsb`); each descent ends exactly where ``minimize`` would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core import laws
from scaleplan.core.errors import UserError
from scaleplan.core.lbfgsb import minimize_lbfgsb_many
from scaleplan.core.parameters import (
    Parameters,
    chinchilla_parameters,
    downstream_parameters,
    overtrain_parameters,
)

__all__ = [
    "FitError",
    "InvalidInputError",
    "InsufficientDataError",
    "DegenerateFitError",
    "ConvergenceError",
    "FitResult",
    "BootstrapResult",
    "fit_chinchilla",
    "fit_overtrain",
    "fit_downstream",
    "bootstrap",
    "bootstrap_fit",
    "chinchilla_objective",
]

FloatArray = NDArray[np.float64]
Objective = Literal["huber", "least_squares"]

DEFAULT_HUBER_DELTA = 1e-3
DEFAULT_N_STARTS = 5
# Chinchilla fits rank starts by variable projection (see _varpro_scan), which puts the
# best start close to the optimum: fewer descents reach the same minimum.
DEFAULT_CHINCHILLA_STARTS = 4
# Designs with at most this many points also descend from the best starts of Hoffmann's grid
# (see _fit): on the meta-analysis grid, every cell where variable-projection starts alone
# ended in a worse basin than the grid's had at most 74 points.
_SMALL_DESIGN_POINTS = 100


# ------------------------------------------------------------------- errors
class FitError(UserError, ValueError):
    """Base class: a scaling law could not be fitted to the given data."""


class InvalidInputError(FitError):
    """Inputs are malformed: NaN/inf, non-positive sizes or losses, mismatched lengths."""


class InsufficientDataError(FitError):
    """Too few points, or too few distinct sizes, to identify the free parameters."""


class DegenerateFitError(FitError):
    """The data carry no scaling signal (flat) or the optimum is not finite."""


class ConvergenceError(FitError):
    """The optimiser did not converge from any starting point."""


# --------------------------------------------------------------- law specs
@dataclass(frozen=True)
class _Term:
    """One summand ``sign * exp(theta[intercept] + theta[slope] * feature)``."""

    sign: float
    intercept: str
    slope: str | None = None
    feature: str | None = None


@dataclass(frozen=True)
class _Law:
    """Everything the generic fitter needs to know about one law."""

    name: str
    param_names: tuple[str, ...]
    log_params: frozenset[str]  # fitted as log(value); the rest as is
    input_names: tuple[str, ...]
    positive: tuple[str, ...]  # inputs (and target) that must be > 0
    observed_name: str
    terms: tuple[_Term, ...]
    features: Callable[[Mapping[str, FloatArray]], dict[str, FloatArray]]
    grid: Mapping[str, tuple[float, ...]]  # starting values, internal units
    predict: Callable[..., FloatArray]
    defaults: Callable[[], Parameters]
    identifiability: Callable[[Mapping[str, FloatArray], tuple[str, ...]], None]

    def to_internal(self, name: str, value: float) -> float:
        return math.log(value) if name in self.log_params else value

    def to_natural(self, name: str, value: float) -> float:
        if name not in self.log_params:
            return value
        # exp overflows past ~709: report inf so the caller's finiteness check rejects the fit
        return math.exp(value) if value < 709.0 else math.inf


def _require_distinct(values: FloatArray, needed: int, what: str, names: list[str], hint: str) -> None:
    have = np.unique(values).size
    if have < needed:
        raise InsufficientDataError(
            f"need at least {needed} distinct {what} to fit {', '.join(names)}, got {have}; {hint}"
        )


def _chinchilla_identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    # N enters only through E + A N**-alpha, so k distinct sizes pin at most k of its
    # free parameters; likewise for D. Both counts are necessary for any design.
    size_side = [n for n in ("E", "A", "alpha") if n in free]
    data_side = [n for n in ("E", "B", "beta") if n in free]
    _require_distinct(
        inputs["num_params"],
        len(size_side),
        "model sizes (num_params)",
        size_side,
        "fix some of them, e.g. borrow A and alpha from another family",
    )
    _require_distinct(
        inputs["tokens_seen"],
        len(data_side),
        "token counts (tokens_seen)",
        data_side,
        "add checkpoints or fix B and beta",
    )


def _overtrain_identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    # At one multiplier a M**eta + b M**-eta is a single constant: a and b separate
    # only across multipliers.
    if "a" in free and "b" in free:
        _require_distinct(
            inputs["token_multiplier"],
            2,
            "token multipliers",
            ["a", "b"],
            "add a run at another tokens-per-parameter ratio or fix a or b",
        )
    curve = [n for n in ("E", "eta") if n in free]
    _require_distinct(
        inputs["compute_flops"],
        len(curve) + 1,
        "compute budgets",
        curve + ["the prefactor"],
        "add runs at other compute budgets",
    )


def _downstream_identifiability(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    _require_distinct(inputs["loss"], len(free), "loss values", list(free), "add models")


def _chinchilla_features(x: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    return {"neg_log_n": -np.log(x["num_params"]), "neg_log_d": -np.log(x["tokens_seen"])}


def _overtrain_features(x: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    log_c, log_m = np.log(x["compute_flops"]), np.log(x["token_multiplier"])
    return {"a_slope": log_m - log_c, "b_slope": -log_m - log_c}


def _downstream_features(x: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    return {"neg_loss": -x["loss"]}


_EXPONENT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
# Hoffmann et al.'s grid (e, a, b, alpha, beta), plus log 1.7, a typical irreducible loss.
_LOG_E_GRID = (-1.0, -0.5, 0.0, math.log(1.7), 0.5, 1.0)
_LOG_PREFACTOR_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)

CHINCHILLA = _Law(
    name="chinchilla",
    param_names=("E", "A", "B", "alpha", "beta"),
    log_params=frozenset({"E", "A", "B"}),
    input_names=("num_params", "tokens_seen"),
    positive=("num_params", "tokens_seen", "loss"),
    observed_name="loss",
    terms=(
        _Term(1.0, "E"),
        _Term(1.0, "A", "alpha", "neg_log_n"),
        _Term(1.0, "B", "beta", "neg_log_d"),
    ),
    features=_chinchilla_features,
    grid={
        "E": _LOG_E_GRID,
        "A": _LOG_PREFACTOR_GRID,
        "B": _LOG_PREFACTOR_GRID,
        "alpha": _EXPONENT_GRID,
        "beta": _EXPONENT_GRID,
    },
    predict=laws.chinchilla_loss,
    defaults=chinchilla_parameters,
    identifiability=_chinchilla_identifiability,
)

OVERTRAIN = _Law(
    name="overtrain",
    param_names=("E", "a", "b", "eta"),
    log_params=frozenset({"E", "a", "b"}),
    input_names=("compute_flops", "token_multiplier"),
    positive=("compute_flops", "token_multiplier", "loss"),
    observed_name="loss",
    terms=(
        _Term(1.0, "E"),
        _Term(1.0, "a", "eta", "a_slope"),
        _Term(1.0, "b", "eta", "b_slope"),
    ),
    features=_overtrain_features,
    grid={
        "E": _LOG_E_GRID,
        "a": _LOG_PREFACTOR_GRID,
        "b": _LOG_PREFACTOR_GRID,
        # eta multiplies log C ~ 40-55, so it needs a finer grid than Chinchilla exponents.
        "eta": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0),
    },
    predict=laws.overtrain_loss,
    defaults=overtrain_parameters,
    identifiability=_overtrain_identifiability,
)

DOWNSTREAM = _Law(
    name="downstream",
    param_names=("eps", "k", "gamma"),
    log_params=frozenset({"eps", "k"}),
    input_names=("loss",),
    positive=("loss",),
    observed_name="error",
    terms=(_Term(1.0, "eps"), _Term(-1.0, "k", "gamma", "neg_loss")),
    features=_downstream_features,
    grid={
        "eps": tuple(np.log([0.25, 0.5, 0.75, 0.9, 1.0])),
        "k": (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
        "gamma": (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0),
    },
    predict=laws.downstream_error,
    defaults=downstream_parameters,
    identifiability=_downstream_identifiability,
)


# ------------------------------------------------------------------ results
def _frozen(a: FloatArray) -> FloatArray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted law, how it was obtained, and the points it was fitted on.

    ``params`` are in natural units (E, A, B, alpha, beta for Chinchilla; E, a, b, eta for
    the over-training law; eps, k, gamma for downstream error). ``objective_value`` is the
    mean over points of the objective: Huber_delta(log L_pred - log L_obs) for
    ``"huber"``, (pred - obs)**2 for ``"least_squares"``. ``inputs`` holds the law's input
    arrays by name (see :meth:`predict`), ``observed`` the fitted target.
    """

    law: str
    params: Mapping[str, float]
    fixed: tuple[str, ...]
    objective: str
    objective_value: float
    converged: bool
    n_starts: int
    message: str
    inputs: Mapping[str, FloatArray]
    observed: FloatArray
    run_ids: NDArray | None
    parameters: Parameters
    huber_delta: float = DEFAULT_HUBER_DELTA
    n_iterations: int = 0

    @property
    def num_params(self) -> FloatArray:
        """N of the points used (derived as sqrt(C / 6M) for the over-training law)."""
        if "num_params" in self.inputs:
            return self.inputs["num_params"]
        if "compute_flops" in self.inputs:
            C, M = self.inputs["compute_flops"], self.inputs["token_multiplier"]
            return np.sqrt(C / (laws.FLOPS_PER_PARAM_TOKEN * M))
        raise AttributeError(f"a {self.law} fit has no num_params")

    @property
    def tokens_seen(self) -> FloatArray:
        """D of the points used (derived as sqrt(C M / 6) for the over-training law)."""
        if "tokens_seen" in self.inputs:
            return self.inputs["tokens_seen"]
        if "compute_flops" in self.inputs:
            C, M = self.inputs["compute_flops"], self.inputs["token_multiplier"]
            return np.sqrt(C * M / laws.FLOPS_PER_PARAM_TOKEN)
        raise AttributeError(f"a {self.law} fit has no tokens_seen")

    @property
    def loss(self) -> FloatArray:
        """Loss of the points used (an input of the downstream law, the target otherwise)."""
        return self.inputs["loss"] if "loss" in self.inputs else self.observed

    def predict(self, *inputs: ArrayLike) -> FloatArray:
        """The fitted law at new inputs, in the law's order, broadcast.

        chinchilla: ``predict(num_params, tokens_seen)``; overtrain:
        ``predict(compute_flops, token_multiplier)``; downstream: ``predict(loss)``.
        """
        return _LAWS[self.law].predict(*inputs, **self.params)


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Refits on data resampled by run; ``param_samples`` has one row per replicate.

    Columns of ``param_samples`` follow ``param_names`` (natural units). Replicates whose
    fit failed are left out of the samples, counted in ``n_failed`` and, by reason, in
    ``failures``; every consumer must show that count. ``scheme`` is how data were resampled
    (see :func:`bootstrap`).
    """

    fit: FitResult
    param_names: tuple[str, ...]
    param_samples: FloatArray
    n_boot: int
    n_failed: int
    seed: int
    scheme: str = "runs"
    failures: Mapping[str, int] = field(default_factory=dict)  # reason -> replicates that failed for it

    def predict_samples(self, *inputs: ArrayLike) -> FloatArray:
        """Predictions of every replicate: shape (n_replicates, *broadcast input shape)."""
        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in inputs))
        lead = (len(self.param_samples),) + (1,) * arrays[0].ndim
        params = {n: self.param_samples[:, i].reshape(lead) for i, n in enumerate(self.param_names)}
        return _LAWS[self.fit.law].predict(*arrays, **params)

    def band(self, *inputs: ArrayLike, level: float = 0.9) -> tuple[FloatArray, FloatArray]:
        """Equal-tailed percentile band of the predictions containing ``level`` of replicates."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        tail = 50.0 * (1.0 - level)
        lower, upper = np.percentile(self.predict_samples(*inputs), [tail, 100.0 - tail], axis=0)
        return lower, upper

    def param_interval(self, name: str, level: float = 0.9) -> tuple[float, float]:
        """Equal-tailed percentile interval of one parameter."""
        tail = 50.0 * (1.0 - level)
        column = self.param_samples[:, self.param_names.index(name)]
        lower, upper = np.percentile(column, [tail, 100.0 - tail])
        return float(lower), float(upper)


# ---------------------------------------------------------------- objective
_GRID_BLOCK_SIZE = 131072  # grid points x data points per block: 0.5 MB of float32


def _huber(r: FloatArray, delta: float) -> FloatArray:
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
class _Problem:
    """A law's objective on one data set, in optimiser coordinates v.

    Internal parameters are theta = theta0 + J v: J scatters the free coordinates into
    theta and copies them into tied parameters. It also *centres* each free log prefactor
    on its exponent's feature: with f = -log N and m = mean(f), a + alpha f =
    (a + alpha m) + alpha (f - m), and the optimiser moves a + alpha m (the log excess at
    the mean size) rather than a. Over N = 1e7..1e9, a and alpha are otherwise ~0.999
    correlated and L-BFGS-B needs several times more iterations.
    """

    law: _Law
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
                values = _huber(log_pred - self.log_observed, self.delta).mean(axis=1)
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
                    per_point = _huber(np.log(total) - observed, self.delta)
                else:
                    per_point = (total - observed) ** 2
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


def _internal_bounds(law: _Law, parameters: Parameters, name: str) -> tuple[float, float]:
    p = parameters[name]
    if name in law.log_params:
        lo = math.log(p.min) if p.min > 0 else -math.inf
        hi = math.log(p.max) if p.max < math.inf else math.inf
        return lo, hi
    return p.min, p.max


def _build_problem(
    law: _Law,
    inputs: Mapping[str, FloatArray],
    observed: FloatArray,
    parameters: Parameters,
    objective: str,
    delta: float,
) -> _Problem:
    names = law.param_names
    index = {n: i for i, n in enumerate(names)}
    features = law.features(inputs)
    n_points = observed.size
    F = np.zeros((len(law.terms), n_points, len(names)))
    for k, term in enumerate(law.terms):
        F[k, :, index[term.intercept]] = 1.0
        if term.slope is not None:
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
        Q[index[c], index[s]] = -float(np.mean(features[term.feature]))
        centred.add(c)
    J = Q @ S
    lower = np.array([-math.inf if n in centred else bounds[n][0] for n in free])
    upper = np.array([math.inf if n in centred else bounds[n][1] for n in free])
    return _Problem(
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
        J_pinv=np.linalg.pinv(J) if free else np.zeros((0, len(names))),
        lower=lower,
        upper=upper,
        theta_lower=np.array([bounds[n][0] for n in names]),
        theta_upper=np.array([bounds[n][1] for n in names]),
        ties=ties,
    )


# ---------------------------------------------------------- input handling
def _as_points(
    law: _Law, arrays: Mapping[str, ArrayLike], observed: ArrayLike, run_ids: ArrayLike | None
) -> tuple[dict[str, FloatArray], FloatArray, NDArray | None]:
    """Validated float arrays of the inputs and target, and the run ids (or None)."""
    named: dict[str, FloatArray] = {}
    for name, values in [*arrays.items(), (law.observed_name, observed)]:
        try:
            a = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} must be numeric: {exc}") from None
        if a.ndim != 1:
            raise InvalidInputError(f"{name} must be one-dimensional, got shape {a.shape}")
        named[name] = a
    lengths = {name: a.size for name, a in named.items()}
    ids = None if run_ids is None else np.asarray(run_ids)
    if ids is not None:
        if ids.ndim != 1:
            raise InvalidInputError(f"run_ids must be one-dimensional, got shape {ids.shape}")
        lengths["run_ids"] = ids.size
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n}={m}" for n, m in lengths.items())
        raise InvalidInputError(f"inputs must have the same length, got {detail}")
    for name, a in named.items():
        bad = ~np.isfinite(a)
        if bad.any():
            raise InvalidInputError(
                f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf), first at index {int(np.argmax(bad))}"
            )
    for name in law.positive:
        if np.any(named[name] <= 0):
            a = named[name]
            raise InvalidInputError(
                f"{name} must be positive, got {int(np.sum(a <= 0))} value(s) <= 0 (smallest {float(a.min()):g})"
            )
    y = named.pop(law.observed_name)
    return named, y, ids


def _check_parameters(law: _Law, parameters: Parameters) -> None:
    if tuple(parameters) != law.param_names:
        raise InvalidInputError(f"the {law.name} law needs parameters {list(law.param_names)}, got {list(parameters)}")
    for name in law.log_params:
        p = parameters[name]
        if p.value <= 0 or p.max <= 0:
            raise InvalidInputError(f"{name} must be positive (it is fitted in log space)")


def _check_identifiable(law: _Law, inputs: Mapping[str, FloatArray], y: FloatArray, free: tuple[str, ...]) -> None:
    if y.size < len(free) + 1:
        raise InsufficientDataError(
            f"need at least {len(free) + 1} points to fit {len(free)} free parameters ({', '.join(free)}), got {y.size}"
        )
    if np.ptp(y) <= 1e-12 * np.max(np.abs(y)):
        raise DegenerateFitError(
            f"all {y.size} {law.observed_name} values are equal ({y[0]:.6g}): flat data carry no scaling signal"
        )
    law.identifiability(inputs, free)


# --------------------------------------------------------------- optimiser
_LBFGS_OPTIONS = {"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-9, "maxcor": 20}
# Line-search failures at a kink of the Huber loss or at machine precision are benign
# when the projected gradient is already this small (scaled objective units).
_ACCEPT_PROJECTED_GRADIENT = 1e-4


def _projected_gradient(problem: _Problem, v: FloatArray) -> float:
    _, g = problem.scaled_value_and_grad(v)
    at_lower = (v <= problem.lower) & (g > 0)
    at_upper = (v >= problem.upper) & (g < 0)
    g = np.where(at_lower | at_upper, 0.0, g)
    return float(np.max(np.abs(g), initial=0.0))


class _Descent(NamedTuple):
    v: FloatArray
    value: float  # unscaled objective
    converged: bool
    message: str
    n_iterations: int


def _descend(problem: _Problem, v0s: list[FloatArray]) -> list[_Descent]:
    """L-BFGS-B runs from each of v0s, evaluated together (:func:`core.lbfgsb.minimize_lbfgsb_many`).

    Each run gives exactly what SciPy's ``minimize(method="L-BFGS-B")`` gives from its start.
    """
    if not v0s:
        return []
    if v0s[0].size == 0:
        value, _ = problem.scaled_value_and_grad(v0s[0])
        return [_Descent(v0, value / problem.scale, True, "nothing to vary", 0) for v0 in v0s]
    descents = []
    for res in minimize_lbfgsb_many(
        problem.scaled_values_and_grads, v0s, problem.lower, problem.upper, **_LBFGS_OPTIONS
    ):
        converged = res.success
        if not converged and res.status == 2 and math.isfinite(res.fun):
            converged = _projected_gradient(problem, res.x) <= _ACCEPT_PROJECTED_GRADIENT
        descents.append(_Descent(res.x, res.fun / problem.scale, converged, res.message, res.nit))
    return descents


def _select_starts(problem: _Problem, start_theta: FloatArray, n_starts: int) -> list[FloatArray]:
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


def _varpro_applies(problem: _Problem) -> bool:
    """Variable projection needs E, A, B free, untied and unbounded in log space."""
    if problem.law is not CHINCHILLA or problem.free != problem.law.param_names or problem.ties:
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
            candidates.append(tuple(c))
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


def _varpro_scan(problem: _Problem) -> tuple[FloatArray, FloatArray]:
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


def _varpro_starts(problem: _Problem, start_theta: FloatArray, n_starts: int) -> list[FloatArray]:
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


def _fit(
    law: _Law,
    arrays: Mapping[str, ArrayLike],
    observed: ArrayLike,
    *,
    parameters: Parameters | None,
    objective: str,
    huber_delta: float,
    run_ids: ArrayLike | None,
    n_starts: int,
    use_grid: bool = True,
) -> FitResult:
    if objective not in ("huber", "least_squares"):
        raise ValueError(f"objective must be 'huber' or 'least_squares', got {objective!r}")
    if objective == "huber" and any(t.sign < 0 for t in law.terms):
        raise ValueError(f"the {law.name} law can be negative: use objective='least_squares'")
    if not huber_delta > 0:
        raise ValueError(f"huber_delta must be positive, got {huber_delta}")
    if n_starts < 1:
        raise ValueError(f"n_starts must be at least 1, got {n_starts}")
    parameters = law.defaults() if parameters is None else parameters
    _check_parameters(law, parameters)
    inputs, y, ids = _as_points(law, arrays, observed, run_ids)
    _check_identifiable(law, inputs, y, parameters.free_names)

    problem = _build_problem(law, inputs, y, parameters, objective, huber_delta)
    initial = parameters.values_dict()
    start_theta = np.array([law.to_internal(n, initial[n]) for n in law.param_names])
    if not use_grid:
        starts = [start_theta]
    elif _varpro_applies(problem):
        starts = _varpro_starts(problem, start_theta, n_starts)
        if y.size <= _SMALL_DESIGN_POINTS:
            # Few points, five parameters: the law nearly interpolates and the objective has
            # flat valleys and several basins at the bounds (an exponent at 0 or 2, E -> 0).
            # Descents are cheap here, so Hoffmann's grid adds its own best starts.
            starts += _select_starts(problem, start_theta, DEFAULT_N_STARTS)
    else:
        starts = _select_starts(problem, start_theta, n_starts)

    # The lists can share a start (the caller's values rank high in both); a descent is
    # deterministic, so a repeated start would only repeat its work.
    distinct: dict[bytes, FloatArray] = {}
    for theta in starts:
        v0 = problem.v_from_theta(theta)
        distinct.setdefault(v0.tobytes(), v0)
    v_starts = list(distinct.values())
    descents = _descend(problem, v_starts)
    # L-BFGS-B's line search can stall at a kink of the Huber loss with a stale curvature
    # memory; a fresh run from where it stopped usually finishes the job.
    stalled = [i for i, d in enumerate(descents) if not d.converged and math.isfinite(d.value)]
    for i, descent in zip(stalled, _descend(problem, [descents[i].v for i in stalled])):
        descents[i] = descent
    converged = [d for d in descents if d.converged and math.isfinite(d.value)]
    if not converged:
        messages = sorted({d.message for d in descents})
        raise ConvergenceError(
            f"L-BFGS-B did not converge from any of {len(v_starts)} starting points: " + "; ".join(messages)
        )
    best = min(converged, key=lambda d: d.value)
    theta = problem.theta_from_v(best.v)
    # Held parameters keep their exact value (exp(log(x)) may differ from x by an ulp,
    # which could also step outside a finite bound).
    params = {
        n: initial[n]
        if problem.source(n) not in problem.free
        else min(max(law.to_natural(n, float(t)), parameters[n].min), parameters[n].max)
        for n, t in zip(law.param_names, theta)
    }
    if not all(math.isfinite(p) for p in params.values()):
        raise DegenerateFitError(f"the fit reached non-finite parameters {params}")
    fitted = law.predict(*(inputs[n] for n in law.input_names), **params)
    if not np.all(np.isfinite(fitted)):
        raise DegenerateFitError("the fitted law gives non-finite predictions on the data")
    return FitResult(
        law=law.name,
        params=params,
        fixed=parameters.fixed_names,
        objective=objective,
        objective_value=best.value,
        converged=True,
        n_starts=len(v_starts),
        message=best.message,
        inputs={n: _frozen(a) for n, a in inputs.items()},
        observed=_frozen(y),
        run_ids=ids,
        parameters=parameters,
        huber_delta=huber_delta,
        n_iterations=best.n_iterations,
    )


_LAWS = {law.name: law for law in (CHINCHILLA, OVERTRAIN, DOWNSTREAM)}


# ------------------------------------------------------------------ public
def fit_chinchilla(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    loss: ArrayLike,
    *,
    parameters: Parameters | None = None,
    objective: Objective = "huber",
    huber_delta: float = DEFAULT_HUBER_DELTA,
    run_ids: ArrayLike | None = None,
    n_starts: int = DEFAULT_CHINCHILLA_STARTS,
) -> FitResult:
    """Fit L(N, D) = E + A/N**alpha + B/D**beta to (num_params, tokens_seen, loss) points.

    ``objective="huber"`` (default) is Hoffmann et al.'s approach 3: minimise the mean of
    Huber_delta(log L_pred - log L_obs), delta = 1e-3, with log L_pred =
    logsumexp(log A - alpha log N, log B - beta log D, log E). ``"least_squares"`` minimises
    the mean of (L_pred - L_obs)**2, as in Choshen et al.'s code. Starts are ranked by the
    objective: with E, A, B free (the default), the cells of a variable-projection scan over
    (alpha, beta) (exact NNLS for E, A, B in each cell) plus ``parameters``' values; otherwise
    Hoffmann's grid of starts (designs of at most 100 points also get the grid's best 5).
    L-BFGS-B with analytic gradients runs from the ``n_starts`` best and the lowest
    converged optimum is returned.

    Parameters fixed in ``parameters`` (e.g. borrowed from another family) are held at
    their values; tied ones follow their target; bounds are honoured.

    Raises
    ------
    InvalidInputError, InsufficientDataError, DegenerateFitError, ConvergenceError
        All subclasses of :class:`FitError` (a ``ValueError``).
    """
    return _fit(
        CHINCHILLA,
        {"num_params": num_params, "tokens_seen": tokens_seen},
        loss,
        parameters=parameters,
        objective=objective,
        huber_delta=huber_delta,
        run_ids=run_ids,
        n_starts=n_starts,
    )


def fit_overtrain(
    compute_flops: ArrayLike,
    token_multiplier: ArrayLike,
    loss: ArrayLike,
    *,
    parameters: Parameters | None = None,
    objective: Objective = "least_squares",
    huber_delta: float = DEFAULT_HUBER_DELTA,
    run_ids: ArrayLike | None = None,
    n_starts: int = DEFAULT_N_STARTS,
) -> FitResult:
    """Fit Gadre et al.'s L(C, M) = E + (a M**eta + b M**-eta) C**-eta.

    Default is their published practice, least squares on the loss from a grid of
    starts keeping the smallest residual; ``objective="huber"`` uses the Chinchilla
    approach-3 objective instead. Same machinery and errors as :func:`fit_chinchilla`.
    """
    return _fit(
        OVERTRAIN,
        {"compute_flops": compute_flops, "token_multiplier": token_multiplier},
        loss,
        parameters=parameters,
        objective=objective,
        huber_delta=huber_delta,
        run_ids=run_ids,
        n_starts=n_starts,
    )


def fit_downstream(
    loss: ArrayLike,
    error: ArrayLike,
    *,
    parameters: Parameters | None = None,
    run_ids: ArrayLike | None = None,
    n_starts: int = DEFAULT_N_STARTS,
) -> FitResult:
    """Fit Err(L) = eps - k exp(-gamma L) by least squares on the error, from a small grid."""
    return _fit(
        DOWNSTREAM,
        {"loss": loss},
        error,
        parameters=parameters,
        objective="least_squares",
        huber_delta=DEFAULT_HUBER_DELTA,
        run_ids=run_ids,
        n_starts=n_starts,
    )


def chinchilla_objective(
    params: Mapping[str, float],
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    loss: ArrayLike,
    *,
    objective: Objective = "huber",
    huber_delta: float = DEFAULT_HUBER_DELTA,
) -> float:
    """The objective :func:`fit_chinchilla` minimises, at given natural parameters.

    Mean over points of Huber_delta(log L_pred - log L_obs), or of (L_pred - L_obs)**2.
    Useful to compare fits obtained by different procedures on an equal footing.
    """
    predicted = laws.chinchilla_loss(num_params, tokens_seen, **params)
    observed = np.asarray(loss, dtype=np.float64)
    if objective == "huber":
        per_point = _huber(np.log(predicted) - np.log(observed), huber_delta)
    else:
        per_point = (predicted - observed) ** 2
    return float(np.mean(per_point))


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
    return order[(starts[:, None] + np.arange(b)).ravel()[:m]]


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
    law = _LAWS[result.law]
    runs, run_of_point = np.unique(result.run_ids, return_inverse=True)
    if runs.size < 2:
        raise InsufficientDataError(f"need at least 2 runs to bootstrap over runs, got {runs.size}")
    members = [np.flatnonzero(run_of_point == r) for r in range(runs.size)]
    warm = result.parameters.with_values({n: v for n, v in result.params.items() if n in result.parameters.free_names})
    if scheme == "auto":
        sizes = np.unique(result.num_params).size if result.law == "chinchilla" else runs.size
        scheme = "runs" if sizes >= _MIN_SIZES_FOR_RUN_RESAMPLING else "blocks"
    order_key = result.tokens_seen if result.law in ("chinchilla", "overtrain") else result.loss
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
            refit = _fit(
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
        param_samples=_frozen(np.array(samples)),
        n_boot=n_boot,
        n_failed=n_failed,
        seed=seed,
        scheme=scheme,
        failures=dict(failures),
    )


def bootstrap_fit(
    num_params: ArrayLike,
    tokens_seen: ArrayLike,
    loss: ArrayLike,
    run_ids: ArrayLike,
    *,
    n_boot: int = 100,
    seed: int = 0,
    scheme: BootstrapScheme = "auto",
    **fit_kwargs,
) -> BootstrapResult:
    """:func:`fit_chinchilla` on all points, then :func:`bootstrap` over runs."""
    full = fit_chinchilla(num_params, tokens_seen, loss, run_ids=run_ids, **fit_kwargs)
    return bootstrap(full, n_boot=n_boot, seed=seed, scheme=scheme)
