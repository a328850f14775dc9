"""The :class:`Law` object: everything the fitter, the sweep and the pages need to know about one law.

A law is a formula f(inputs; params) with named parameters (bounds and defaults as a
:class:`core.parameters.Parameters`), the inputs it needs, how its parameters enter the optimiser
(positive ones as their logarithm), a grid of starting values, identifiability checks and,
optionally, the compute-optimal allocation it implies. In the spirit of lmfit's ``Model``, the law
is a value: :class:`core.fitting.FitResult` holds it, and ``fit(law, ...)`` fits any of them.

Two kinds of formulas are supported:

* *exp-linear* laws give ``terms``: the prediction is ``sum_k sign_k exp(theta[c_k] + theta[s_k]
  feature_k)`` in internal parameters theta. The fitter then builds one design tensor and uses its
  fast paths (grid tabulation, variable projection). Chinchilla, Gadre et al.'s over-training law
  and the downstream-error law are of this kind.
* *general* laws give ``gradient``: d f / d param in natural units at every point. The fitter applies
  the chain rule for log-space parameters and otherwise treats the law as a black box (e.g.
  Muennighoff et al.'s data-constrained law, whose effective data is not a power of the inputs).

Inputs come from :func:`standard_inputs`, which derives every input a collection can supply from
(N, D, unique tokens): ``num_params`` (parameters), ``tokens_seen`` (tokens),
``compute_flops`` (6 N D, FLOPs), ``token_multiplier`` (D / N, tokens per parameter) and
``unique_tokens`` (distinct tokens in the training set; D where unknown, i.e. no repetition).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaleplan.core._fit.errors import InsufficientDataError
from scaleplan.core.laws.formulas import FLOPS_PER_PARAM_TOKEN
from scaleplan.core.parameters import Parameters

__all__ = ["Law", "Term", "STANDARD_INPUTS", "standard_inputs", "require_distinct"]

FloatArray = NDArray[np.float64]
Identifiability = Callable[[Mapping[str, FloatArray], tuple[str, ...]], None]

STANDARD_INPUTS = ("num_params", "tokens_seen", "compute_flops", "token_multiplier", "unique_tokens")
"""Inputs :func:`standard_inputs` derives from a run's N, D and unique tokens (see the module docstring)."""


def standard_inputs(
    num_params: ArrayLike, tokens_seen: ArrayLike, unique_tokens: ArrayLike | None = None
) -> dict[str, FloatArray]:
    """Every standard input at points (N, D[, U]), broadcast; U defaults to D (no token seen twice).

    U is capped at D: a run cannot have seen more distinct tokens than tokens. A NaN U (not known for
    a run) counts as no repetition too.
    """
    N = np.asarray(num_params, dtype=np.float64)
    D = np.asarray(tokens_seen, dtype=np.float64)
    N, D = np.broadcast_arrays(N, D)
    if unique_tokens is None:
        U = D
    else:
        U = np.broadcast_to(np.asarray(unique_tokens, dtype=np.float64), D.shape)
        U = np.where(np.isnan(U), D, np.minimum(U, D))
    return {
        "num_params": N,
        "tokens_seen": D,
        "compute_flops": FLOPS_PER_PARAM_TOKEN * N * D,
        "token_multiplier": D / N,
        "unique_tokens": U,
    }


def require_distinct(values: FloatArray, needed: int, what: str, names: list[str], hint: str) -> None:
    """Raise :class:`InsufficientDataError` unless ``values`` has at least ``needed`` distinct entries."""
    have = np.unique(values).size
    if have < needed:
        raise InsufficientDataError(
            f"need at least {needed} distinct {what} to fit {', '.join(names)}, got {have}; {hint}"
        )


@dataclass(frozen=True)
class Term:
    """One summand ``sign * exp(theta[intercept] + theta[slope] * feature)`` of an exp-linear law."""

    sign: float
    intercept: str
    slope: str | None = None
    feature: str | None = None


def _no_check(inputs: Mapping[str, FloatArray], free: tuple[str, ...]) -> None:
    del inputs, free


@dataclass(frozen=True, eq=False)
class Law:
    """One scaling law: formula, parameters, inputs, how to start and check a fit.

    ``function(*inputs, **params)`` evaluates the law with the inputs positional in
    ``input_names`` order (arrays broadcast) and the parameters as keywords in natural units.
    ``defaults()`` gives the parameters with their bounds and starting values. ``log_params``
    are fitted as log(value) (they must be positive). ``grid`` holds starting values per
    parameter in internal units (log for ``log_params``). ``positive`` names the inputs (and the
    target ``observed_name``) that must be > 0. ``identifiability(inputs, free)`` raises
    :class:`core.fitting.InsufficientDataError` when the design cannot pin the free parameters.
    Exactly one of ``terms`` (+ ``features``, exp-linear) or ``gradient`` (general) is given:
    ``gradient(*inputs, **params)`` returns d function / d param for every parameter, arrays of
    the broadcast shape. ``compute_optimal(compute_flops, **params)`` returns the (num_params,
    tokens_seen) minimising the law at fixed compute C = 6 N D, when the law has one.
    """

    name: str
    title: str
    formula: str
    function: Callable[..., FloatArray]
    defaults: Callable[[], Parameters]
    input_names: tuple[str, ...]
    log_params: frozenset[str]
    grid: Mapping[str, tuple[float, ...]]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    observed_name: str = "loss"
    positive: tuple[str, ...] = ()
    terms: tuple[Term, ...] | None = None
    features: Callable[[Mapping[str, FloatArray]], dict[str, FloatArray]] | None = None
    gradient: Callable[..., Mapping[str, FloatArray]] | None = None
    identifiability: Identifiability = _no_check
    compute_optimal: Callable[..., tuple[FloatArray, FloatArray]] | None = None
    default_objective: str = "huber"
    default_starts: int = 5

    def __post_init__(self) -> None:
        if (self.terms is None) == (self.gradient is None):
            raise ValueError(f"law {self.name!r}: give either terms (exp-linear) or gradient (general), not both")
        if self.terms is not None and self.features is None:
            raise ValueError(f"law {self.name!r}: an exp-linear law needs its features")
        names = tuple(self.defaults())
        unknown = (set(self.log_params) | set(self.grid)) - set(names)
        if unknown:
            raise ValueError(f"law {self.name!r}: unknown parameters {sorted(unknown)}")
        missing = set(names) - set(self.grid)
        if missing:
            raise ValueError(f"law {self.name!r}: no starting grid for {sorted(missing)}")
        object.__setattr__(self, "_param_names", names)

    def __repr__(self) -> str:
        return f"Law({self.name!r}: {self.formula})"

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in their fixed order (the order of :meth:`defaults`)."""
        names: tuple[str, ...] = object.__getattribute__(self, "_param_names")
        return names

    @property
    def is_loss_law(self) -> bool:
        """True when the law predicts a loss from inputs a run's (N, D, unique tokens) supply."""
        return self.observed_name == "loss" and set(self.input_names) <= set(STANDARD_INPUTS)

    def predict(self, inputs: Mapping[str, ArrayLike], params: Mapping[str, ArrayLike]) -> FloatArray:
        """The law at named inputs (a mapping with at least ``input_names``) and parameters."""
        return self.function(*(inputs[n] for n in self.input_names), **params)

    def predict_at(
        self,
        params: Mapping[str, ArrayLike],
        num_params: ArrayLike,
        tokens_seen: ArrayLike,
        unique_tokens: ArrayLike | None = None,
    ) -> FloatArray:
        """A loss law at points (N, D[, unique tokens]) (see :func:`standard_inputs`)."""
        return self.predict(standard_inputs(num_params, tokens_seen, unique_tokens), params)

    def to_internal(self, name: str, value: float) -> float:
        """A parameter's value in optimiser units (its log for ``log_params``)."""
        return math.log(value) if name in self.log_params else value

    def to_natural(self, name: str, value: float) -> float:
        """The inverse of :meth:`to_internal`; inf where exp would overflow (the fit is then rejected)."""
        if name not in self.log_params:
            return value
        return math.exp(value) if value < 709.0 else math.inf
