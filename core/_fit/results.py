"""What a fit returns: :class:`FitResult` (holds its :class:`core.laws.Law`) and :class:`BootstrapResult`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core.laws import FLOPS_PER_PARAM_TOKEN, Law, standard_inputs
from scaleplan.core.parameters import Parameters

__all__ = ["DEFAULT_HUBER_DELTA", "FitResult", "BootstrapResult", "frozen"]

FloatArray = NDArray[np.float64]
DEFAULT_HUBER_DELTA = 1e-3


def frozen(a: ArrayLike) -> FloatArray:
    """A read-only float64 copy (results are values: nobody edits their arrays in place)."""
    out = np.array(a, dtype=np.float64)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted law, how it was obtained, and the points it was fitted on.

    ``law`` is the :class:`core.laws.Law` that was fitted. A result exists only when the best
    descent converged (otherwise the fit raises :class:`ConvergenceError`); ``message`` is that
    descent's L-BFGS-B message and ``n_iterations`` its iteration count.

    ``params`` are in natural units (E, A, B, alpha, beta for Chinchilla; E, a, b, eta for
    the over-training law; eps, k, gamma for downstream error). ``objective_value`` is the
    mean over points of the objective: Huber_delta(log L_pred - log L_obs) for
    ``"huber"``, (pred - obs)**2 for ``"least_squares"``. ``inputs`` holds the law's input
    arrays by name (see :meth:`predict`), ``observed`` the fitted target.
    """

    law: Law
    params: Mapping[str, float]
    fixed: tuple[str, ...]
    objective: str
    objective_value: float
    n_starts: int
    message: str
    inputs: Mapping[str, FloatArray]
    observed: FloatArray
    run_ids: NDArray[Any] | None
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
            return np.sqrt(C / (FLOPS_PER_PARAM_TOKEN * M))
        raise AttributeError(f"a {self.law.name} fit has no num_params")

    @property
    def tokens_seen(self) -> FloatArray:
        """D of the points used (derived as sqrt(C M / 6) for the over-training law)."""
        if "tokens_seen" in self.inputs:
            return self.inputs["tokens_seen"]
        if "compute_flops" in self.inputs:
            C, M = self.inputs["compute_flops"], self.inputs["token_multiplier"]
            return np.sqrt(C * M / FLOPS_PER_PARAM_TOKEN)
        raise AttributeError(f"a {self.law.name} fit has no tokens_seen")

    @property
    def loss(self) -> FloatArray:
        """Loss of the points used (an input of the downstream law, the target otherwise)."""
        return self.inputs["loss"] if "loss" in self.inputs else self.observed

    def predict(self, *inputs: ArrayLike) -> FloatArray:
        """The fitted law at new inputs, in the law's order, broadcast.

        chinchilla: ``predict(num_params, tokens_seen)``; overtrain:
        ``predict(compute_flops, token_multiplier)``; downstream: ``predict(loss)``.
        """
        return self.law.function(*inputs, **self.params)

    def predict_at(
        self, num_params: ArrayLike, tokens_seen: ArrayLike, unique_tokens: ArrayLike | None = None
    ) -> FloatArray:
        """A fitted loss law at points (N, D[, unique tokens]), whatever inputs the law takes."""
        return self.law.predict_at(self.params, num_params, tokens_seen, unique_tokens)

    @property
    def unique_tokens(self) -> FloatArray:
        """Unique tokens of the points used (tokens seen when the law does not take them)."""
        return self.inputs["unique_tokens"] if "unique_tokens" in self.inputs else self.tokens_seen


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
        return self.fit.law.function(*arrays, **params)

    def predict_samples_at(
        self, num_params: ArrayLike, tokens_seen: ArrayLike, unique_tokens: ArrayLike | None = None
    ) -> FloatArray:
        """:meth:`predict_samples` of a loss law at points (N, D[, unique tokens])."""
        inputs = standard_inputs(num_params, tokens_seen, unique_tokens)
        return self.predict_samples(*(inputs[n] for n in self.fit.law.input_names))

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
