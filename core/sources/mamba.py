"""LLM360 Mamba-3B: a state-space (Mamba) language model's training curve, via ColPret.

Source file
    ``colpret/aggregated_eval/llm360Mamba3B.csv``: columns ``step, loss, lr, grad_norm``
    (44,174 rows, every 4th optimizer step up to 176,700). ColPret built it from three W&B
    exports of an unpublished LLM360 run (``raw_data/lm360/MAMBA3B``, not in the mirror).

Conventions (those of ColPret ``util/read_data.py`` ``get_llm360``, pinned commit 16f23bb)
    * tokens_seen = step x 500e9 / 176,703 (ColPret: 500B tokens over 176,703 steps,
      ~2.83M tokens per step); tokens_derived=True. The batch size itself is not published.
    * num_params = 3e9 from the "3B" label (num_params_derived=True); architecture "ssm".
    * training data: LLM360/AmberDatasets (ColPret's label); planned_tokens = 500e9.
    * flops = 6 * N * tokens_seen (flops_derived=True). For a Mamba model 6ND is only the
      usual dense approximation (it ignores the scan's cost).
    * metrics: ``train/loss`` (kind loss, as logged; the values run from 21.8 at step 4 to
      ~0.9, so they may not be plain next-token cross-entropy in nats/token, which the
      source does not document), ``train/lr`` and ``train/grad_norm`` (kind other).
    * family ``llm360-mamba`` (one run), default metric ``train/loss``.

Skipped (counted in bad_rows)
    rows with a missing / non-numeric / non-positive step (per row) and non-numeric values
    (per cell).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from . import _wandb
from .base import (
    FAMILY_COLUMNS,
    METRIC_COLUMNS,
    OBSERVATION_COLUMNS,
    RUN_COLUMNS,
    SourceFrames,
    chinchilla_flops,
)

NAME = "mamba"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
SOURCE = "colpret/aggregated_eval/llm360Mamba3B.csv"
PATTERNS = (SOURCE,)

RUN_ID = f"{NAME}/llm360-mamba-3b"
NUM_PARAMS = 3e9
TOTAL_TOKENS = 500e9
TOTAL_STEPS = 176_703
TOKENS_PER_STEP = TOTAL_TOKENS / TOTAL_STEPS

# column -> (metric, kind, higher_is_better, domain)
METRICS = {
    "loss": ("train/loss", "loss", False, "training loss (as logged by the LLM360 run)"),
    "lr": ("train/lr", "other", False, "training: learning rate"),
    "grad_norm": ("train/grad_norm", "other", False, "training: gradient norm"),
}
RUNS = (
    (
        RUN_ID,
        "llm360-mamba",
        "LLM360-Mamba-3B",
        "ssm",
        NUM_PARAMS,
        True,
        "LLM360/AmberDatasets",
        None,
        TOTAL_TOKENS,
        "LLM360 Mamba-3B (unpublished W&B run; ColPret original_paper 'llm360-private')",
        "language",
    ),
)
FAMILIES = (("llm360-mamba", "train/loss", "LLM360 Mamba-3B state-space model; default: training loss"),)


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    path = mirror / SOURCE
    frame = _wandb.read_csv(path)
    missing = {"step", *METRICS} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    non_positive = pd.to_numeric(frame["step"], errors="coerce") <= 0
    if non_positive.any():
        bad["llm360Mamba3B.csv: non-positive step"] += int(non_positive.sum())
    long = _wandb.to_long(frame.loc[~non_positive], "step", list(METRICS), bad, "llm360Mamba3B.csv")
    tokens = long["step"].to_numpy(dtype=float) * TOKENS_PER_STEP
    obs = pd.DataFrame(
        {
            "run_id": RUN_ID,
            "tokens_seen": tokens,
            "flops": chinchilla_flops(NUM_PARAMS, tokens),
            "flops_derived": True,
            "tokens_derived": True,
            "metric": long["series"].map({c: m[0] for c, m in METRICS.items()}).to_numpy(dtype=object),
            "value": long["value"].to_numpy(dtype=float),
        },
        columns=list(OBSERVATION_COLUMNS),
    )
    frames = SourceFrames(
        name=NAME,
        runs=pd.DataFrame(RUNS, columns=list(RUN_COLUMNS)),
        observations=obs,
        metrics=pd.DataFrame(list(METRICS.values()), columns=list(METRIC_COLUMNS)),
        families=pd.DataFrame(FAMILIES, columns=list(FAMILY_COLUMNS)),
        bad_rows=bad,
    )
    return frames.validate()
