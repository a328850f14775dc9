"""Synthetic families drawn from a known Chinchilla law (independent truth for tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRUE = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def true_loss(n, d):
    return (
        TRUE["E"] + TRUE["A"] / np.asarray(n, float) ** TRUE["alpha"] + TRUE["B"] / np.asarray(d, float) ** TRUE["beta"]
    )


def synthetic_family(
    sizes=(5e7, 1e8, 2e8, 4e8, 8e8, 3.2e9), tokens_per_param=40.0, checkpoints=30, noise=0.003, seed=0
) -> pd.DataFrame:
    """Curves (run_id, num_params, tokens_seen, value) with multiplicative noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        final = max(tokens_per_param * n, 2e10)
        d = np.geomspace(final / 50, final, checkpoints)
        loss = true_loss(n, d) * (1 + noise * rng.standard_normal(checkpoints))
        rows.append(pd.DataFrame({"run_id": f"syn/{n:.3g}", "num_params": n, "tokens_seen": d, "value": loss}))
    return pd.concat(rows, ignore_index=True)
