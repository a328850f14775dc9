"""What every part of the calibration shares: the method's name, the levels, the laws it covers, its error."""

from __future__ import annotations

from scaleplan.core.errors import UserError

METHOD = (
    "normalised split conformal on |log(predicted/actual)|: difficulty regressed on the design's features, "
    "the fit's residual and its own backtest (refitted without its largest size); learned on the "
    "meta-analysis sweep, source groups as the exchangeable units; "
    "plus the fit's own estimation error (delta method) in quadrature"
)
NEW_SOURCE_NOTE = (
    "your runs are a new source: calibrated on the whole collection, whose coverage is measured leaving "
    "whole sources out"
)
"""What an interval for uploaded runs says about its calibration (the Fit page and ``fit --runs``)."""
LEVELS = (0.5, 0.8, 0.9, 0.95)
"""Levels of the calibrated interval that are measured (reported and offered on the pages)."""
DEFAULT_LEVEL = 0.9
CALIBRATED_LAWS = ("chinchilla",)
"""Laws whose fits the sweep measured: only their predictions get a calibrated interval."""


def law_refusal(law: str) -> str | None:
    """Why a fit of ``law`` gets no calibrated interval (None when it can get one).

    The sweep measured the extrapolation errors of Chinchilla fits; they say nothing of another law's.
    """
    if law in CALIBRATED_LAWS:
        return None
    return f"no calibrated interval: the calibration is learned on Chinchilla fits, not {law}"


class CalibrationError(UserError, ValueError):
    """The sweep results cannot support a calibration (too few families or designs)."""
