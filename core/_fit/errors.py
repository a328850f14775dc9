"""What a fit raises: :class:`FitError` and its subclasses, all user errors (bad or too little data)."""

from __future__ import annotations

from scaleplan.core.errors import UserError

__all__ = ["FitError", "InvalidInputError", "InsufficientDataError", "DegenerateFitError", "ConvergenceError"]


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
