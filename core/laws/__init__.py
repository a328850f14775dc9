"""Scaling laws: the formulas, the :class:`Law` objects and their registry.

Every module of this package that defines a module-level ``LAW`` (a :class:`Law`) is a registered
law, found when the registry is first asked: adding a law is adding one module (see
``chinchilla.py`` for the pattern). ``get(name)`` returns one, ``names()`` lists them and
``loss_laws()`` lists those a run's (N, D, unique tokens) can be fitted with (what ``scaleplan fit
--law``, the sweep's ``law`` setting and the Fit page offer).

The formulas themselves (``chinchilla_loss``, ``overtrain_loss``, allocations, ...) live in
:mod:`core.laws.formulas` and are re-exported here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import MappingProxyType

from scaleplan.core.errors import UserError
from scaleplan.core.laws.base import STANDARD_INPUTS, Law, Term, require_distinct, standard_inputs
from scaleplan.core.laws.formulas import (
    FLOPS_PER_PARAM_TOKEN,
    UnreachableLossError,
    allocation_for_loss,
    chinchilla_loss,
    compute_from,
    compute_optimal_allocation,
    downstream_error,
    multiplier_from,
    overtrain_as_chinchilla,
    overtrain_loss,
)

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "STANDARD_INPUTS",
    "Law",
    "Term",
    "UnknownLawError",
    "UnreachableLossError",
    "allocation_for_loss",
    "chinchilla_loss",
    "compute_from",
    "compute_optimal_allocation",
    "downstream_error",
    "get",
    "loss_laws",
    "multiplier_from",
    "names",
    "overtrain_as_chinchilla",
    "overtrain_loss",
    "registry",
    "require_distinct",
    "standard_inputs",
]

_NOT_LAWS = frozenset({"base", "formulas"})
_REGISTRY: dict[str, Law] = {}


class UnknownLawError(UserError, ValueError):
    """A law name that no module of :mod:`core.laws` registers."""


def registry() -> MappingProxyType[str, Law]:
    """Name -> :class:`Law` for every law module of this package (imported once, on first call)."""
    if not _REGISTRY:
        found: dict[str, Law] = {}
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if module.name.startswith("_") or module.name in _NOT_LAWS:
                continue
            law = getattr(importlib.import_module(f"{__name__}.{module.name}"), "LAW", None)
            if not isinstance(law, Law):
                continue
            if law.name in found:
                raise RuntimeError(f"two law modules register the name {law.name!r}")
            found[law.name] = law
        _REGISTRY.update(found)
    return MappingProxyType(_REGISTRY)


def names() -> tuple[str, ...]:
    """Every registered law's name, Chinchilla's first, then alphabetical."""
    return tuple(sorted(registry(), key=lambda n: (n != "chinchilla", n)))


def loss_laws() -> tuple[str, ...]:
    """Names of the laws fitted to a family's losses from N, D and unique tokens (Chinchilla first)."""
    return tuple(n for n in names() if registry()[n].is_loss_law)


def get(name: str | Law) -> Law:
    """The registered law called ``name`` (a :class:`Law` is returned as is)."""
    if isinstance(name, Law):
        return name
    law = registry().get(name)
    if law is None:
        raise UnknownLawError(f"unknown law {name!r}; choose from {', '.join(names())}")
    return law
