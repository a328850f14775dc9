"""What a calibration returns: an interval, a refusal, or a plan's expected-error quantiles."""

from __future__ import annotations

from dataclasses import dataclass

from scaleplan.core.calibration.base import METHOD
from scaleplan.core.units import format_level


@dataclass(frozen=True)
class PredictionInterval:
    """A calibrated interval for a predicted loss: ``low <= actual <= high`` with probability ``level``.

    ``scale`` is the half-width in log space (interval = predicted * exp(+-scale)); ``families``
    and ``cells`` count the sweep families and designs the calibration was learned on.
    """

    level: float
    low: float
    high: float
    method: str
    predicted: float
    scale: float = float("nan")
    families: int = 0
    cells: int = 0
    groups: int = 0  # source groups the calibration was learned on
    basis: str = ""  # what it was learned on, when not the collection (e.g. "42 backtest predictions inside your runs")

    @property
    def relative_width(self) -> float:
        """(high - low) / predicted."""
        return (self.high - self.low) / self.predicted

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level,
            "low": self.low,
            "high": self.high,
            "method": self.method,
            "families": self.families,
            "source_groups": self.groups,
            "designs": self.cells,
            "basis": self.basis or self._collection_basis(),
        }

    def _collection_basis(self) -> str:
        return f"{self.cells:,} designs of {self.families} families in {self.groups} source groups"

    def describe(self) -> str:
        """E.g. "90% interval 2.01-2.33 (calibrated on 20 families)"."""
        return (
            f"{format_level(self.level)} interval {self.low:.4g}–{self.high:.4g} "
            f"(calibrated on {self.basis or self._collection_basis()})"
        )


@dataclass(frozen=True)
class Refusal:
    """No calibrated interval: the design lies outside what the collection covers, or (``kind``
    ``backtest``) outside what a backtest inside the user's own runs measured."""

    reason: str
    kind: str = ""  # sizes, param_ratio, compute_ratio, tokens_per_param, fit_residual, families, prediction, backtest
    method: str = METHOD  # the method that refused (core.backtest's for a backtest of the user's runs)

    def __str__(self) -> str:
        if self.kind == "backtest":  # core.backtest: the user's own runs, not the collection
            return f"no calibrated interval: outside what your runs' own backtest measured ({self.reason})"
        return f"no calibrated interval: outside what the collection covers ({self.reason})"

    def as_dict(self, level: float) -> dict[str, object]:
        return {"level": level, "low": None, "high": None, "method": self.method, "refused": str(self)}


@dataclass(frozen=True)
class AREQuantiles:
    """Expected absolute relative error |pred/actual - 1| of such a design, as fractions (0.05 = 5%)."""

    median: float
    p80: float
    p90: float
    cells: int
    families: int
    thin_support: bool
    groups: int = 0  # source groups behind the numbers
