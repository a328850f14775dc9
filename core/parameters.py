"""Named, bounded fit parameters in the style of lmfit, independent of the optimiser.

A :class:`Parameter` is a value with bounds and a flag saying whether the fit may move
it; a :class:`Parameters` is an immutable ordered mapping of them. Every modifier returns
a new object, so a set of defaults can be shared and specialised safely, e.g. borrowing
the model-size term of another family::

    params = chinchilla_parameters().borrow(other_fit.params, ["A", "alpha"])

A parameter may also be *tied* to another one (it then always takes that parameter's
value), which is how alpha = beta is imposed when few model sizes are available.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "EXPONENT_FLOOR",
    "Parameter",
    "Parameters",
    "chinchilla_parameters",
    "overtrain_parameters",
    "downstream_parameters",
]

EXPONENT_FLOOR = 1e-6
"""Lower bound standing in for the open bound at 0 of exponents (L-BFGS-B bounds are closed)."""


@dataclass(frozen=True)
class Parameter:
    """One named parameter: a finite value within closed bounds [min, max].

    ``vary=False`` keeps it at ``value`` during a fit; ``tie`` names another parameter
    whose value this one always takes (``vary`` is then irrelevant).
    """

    name: str
    value: float
    vary: bool = True
    min: float = -math.inf
    max: float = math.inf
    tie: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "min", float(self.min))
        object.__setattr__(self, "max", float(self.max))
        if not self.name.isidentifier():
            raise ValueError(f"parameter name {self.name!r} is not an identifier")
        if not math.isfinite(self.value):
            raise ValueError(f"parameter {self.name}: value must be finite, got {self.value}")
        if math.isnan(self.min) or math.isnan(self.max) or self.min > self.max:
            raise ValueError(f"parameter {self.name}: invalid bounds [{self.min}, {self.max}]")
        if not self.min <= self.value <= self.max:
            raise ValueError(f"parameter {self.name}: value {self.value:g} outside bounds [{self.min:g}, {self.max:g}]")
        if self.tie == self.name:
            raise ValueError(f"parameter {self.name} cannot be tied to itself")


class Parameters(Mapping[str, Parameter]):
    """Immutable ordered mapping name -> :class:`Parameter`.

    Ties must point at an existing parameter that is not itself tied.
    """

    __slots__ = ("_params",)
    _params: dict[str, Parameter]

    def __init__(self, params: Iterable[Parameter]) -> None:
        table: dict[str, Parameter] = {}
        for p in params:
            if p.name in table:
                raise ValueError(f"duplicate parameter name {p.name!r}")
            table[p.name] = p
        for p in table.values():
            if p.tie is None:
                continue
            if p.tie not in table:
                raise ValueError(f"parameter {p.name} is tied to unknown parameter {p.tie!r}")
            if table[p.tie].tie is not None:
                raise ValueError(f"parameter {p.name} is tied to {p.tie}, which is itself tied")
        object.__setattr__(self, "_params", table)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Parameters is immutable; use replace/fix/free/tie/borrow")

    def __getitem__(self, name: str) -> Parameter:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __hash__(self) -> int:
        return hash(tuple(self._params.values()))

    def __repr__(self) -> str:
        rows = []
        for p in self._params.values():
            state = f"tied to {p.tie}" if p.tie else ("free" if p.vary else "fixed")
            rows.append(f"  {p.name}={p.value:.6g} [{p.min:g}, {p.max:g}] {state}")
        return "Parameters(\n" + "\n".join(rows) + "\n)"

    # ----------------------------------------------------------------- views
    @property
    def free_names(self) -> tuple[str, ...]:
        """Names the optimiser varies (not fixed, not tied), in order."""
        return tuple(n for n, p in self._params.items() if p.vary and p.tie is None)

    @property
    def fixed_names(self) -> tuple[str, ...]:
        """Names held at their value (``vary=False`` and not tied)."""
        return tuple(n for n, p in self._params.items() if not p.vary and p.tie is None)

    @property
    def tied(self) -> dict[str, str]:
        """Tied name -> the name whose value it takes."""
        return {n: p.tie for n, p in self._params.items() if p.tie is not None}

    def values_dict(self) -> dict[str, float]:
        """Name -> value, with tied parameters taking their target's value."""
        return {n: self._params[p.tie].value if p.tie else p.value for n, p in self._params.items()}

    # ------------------------------------------------------------- modifiers
    def replace(self, name: str, **changes: Any) -> Parameters:
        """A copy with the fields of one parameter changed (as ``dataclasses.replace``)."""
        if name not in self._params:
            raise KeyError(f"no parameter named {name!r}; have {list(self._params)}")
        return Parameters(replace(p, **changes) if n == name else p for n, p in self._params.items())

    def fix(self, name: str, value: float | None = None) -> Parameters:
        """A copy with ``name`` held fixed, at ``value`` if given (e.g. borrowed)."""
        changes: dict[str, object] = {"vary": False, "tie": None}
        if value is not None:
            changes["value"] = value
        return self.replace(name, **changes)

    def free(self, name: str) -> Parameters:
        """A copy with ``name`` varied by the fit (untied if it was tied)."""
        return self.replace(name, vary=True, tie=None)

    def tie(self, name: str, to: str) -> Parameters:
        """A copy where ``name`` always equals ``to`` (e.g. ``tie("beta", "alpha")``)."""
        return self.replace(name, tie=to)

    def borrow(self, values: Mapping[str, float], names: Iterable[str]) -> Parameters:
        """A copy with each of ``names`` fixed at ``values[name]`` (another fit's params)."""
        out = self
        for name in names:
            out = out.fix(name, float(values[name]))
        return out

    def with_values(self, values: Mapping[str, float]) -> Parameters:
        """A copy with starting values replaced for the names in ``values``."""
        out = self
        for name, value in values.items():
            out = out.replace(name, value=float(value))
        return out


# ---------------------------------------------------------------- defaults
# Each law's defaults live with the law (core.laws.<name>.parameters); these are shortcuts.
def chinchilla_parameters() -> Parameters:
    """Defaults of the Chinchilla law (:func:`core.laws.chinchilla.parameters`)."""
    from scaleplan.core.laws import chinchilla

    return chinchilla.parameters()


def overtrain_parameters() -> Parameters:
    """Defaults of Gadre et al.'s over-training law (:func:`core.laws.overtrain.parameters`)."""
    from scaleplan.core.laws import overtrain

    return overtrain.parameters()


def downstream_parameters() -> Parameters:
    """Defaults of Gadre et al.'s downstream-error law (:func:`core.laws.downstream.parameters`)."""
    from scaleplan.core.laws import downstream

    return downstream.parameters()
