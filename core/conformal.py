"""Split-conformal quantiles: the one rule behind every calibrated interval of scaleplan.

Given m held-out scores s_1..s_m (normalised absolute errors of predictions whose truth is known) and
a level in (0, 1), the split-conformal quantile is the ceil((m + 1) level)-th smallest score (Vovk et
al. 2005; Lei et al. 2018). A new score exchangeable with them lies at or below it with probability at
least ``level``. With too few scores (ceil((m + 1) level) > m) no finite quantile guarantees the level:
the quantile is infinite, and callers refuse the interval rather than narrow it.

Used by the loss calibration (:mod:`core.calibration`), the in-study backtest (:mod:`core.backtest`)
and the task-accuracy intervals (:mod:`core.downstream`, :mod:`core.task_prediction`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def conformal_quantile(scores: npt.ArrayLike, level: float) -> float:
    """The ceil((m + 1) level)-th smallest of the m finite ``scores`` (non-finite ones are dropped);
    inf when m is too small for ``level``."""
    values = np.asarray(scores, dtype=float)
    finite = np.sort(values[np.isfinite(values)])
    rank = math.ceil((finite.size + 1) * level)
    return float(finite[rank - 1]) if 0 < rank <= finite.size else math.inf
