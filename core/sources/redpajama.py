"""RedPajama-INCITE training losses (Together, 2023), digitised from the RedPajama blog's figure.

Source files
    ``colpret/raw_data/redPajama/2.4B.csv`` and ``6.7B.csv``: no header, two columns
    (billions of tokens, training loss); the points are not in token order.

Conventions
    * columns are (tokens in billions, train loss), as ColPret ``get_red_pajama`` reads them
      (``names=["tokens_seen", "train_loss"]``, tokens x 1e9); the ranges agree (2.4B: 6.4e10 to
      8.4e11 tokens, 6.7B: 3.9e10 to 8.0e11, i.e. the 7B run ~80 % through its 1T tokens).
      tokens_derived=False (read off the axis).
    * run = file: ``redpajama/redpajama-2.4b`` and ``redpajama/redpajama-6.7b``; num_params is the
      file's size label (2.4e9, 6.7e9; num_params_derived=True), as in ColPret. Note that the
      released RedPajama-INCITE "3B" and "7B" base models are listed as 2.8B and 6.9B on their
      model cards; the labels are kept because they are what the source states.
    * flops = 6 * N * D (flops_derived=True). metric ``train/loss`` (family default; no
      validation loss in the source). One family, ``redpajama-incite`` (RedPajama-Data-1T,
      GPT-NeoX/Pythia architecture).

Skipped (counted in bad_rows)
    * digitisation artefacts: points more than 0.1 nats above the lowest loss at fewer tokens
      (a flat run at 2.326 past the end of the 2.4B curve, 836-891B tokens, likely the legend,
      and one point at 2.413 at 713B tokens in the 6.7B file; the curves' own jitter is < 0.01);
    * rows with a non-numeric or non-positive token count or a non-numeric loss, rows with a
      number of cells other than two.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .base import (
    FAMILY_COLUMNS,
    METRIC_COLUMNS,
    OBSERVATION_COLUMNS,
    RUN_COLUMNS,
    SourceFrames,
    chinchilla_flops,
    params_from_label,
)

NAME = "redpajama"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
ROOT = "colpret/raw_data/redPajama"
SIZES = ("2.4B", "6.7B")
PATTERNS = tuple(f"{ROOT}/{size}.csv" for size in SIZES)

SOURCE_PAPER = "Together 2023, RedPajama-INCITE blog (together.ai/blog/redpajama-models-v1)"
FAMILY = "redpajama-incite"
METRIC = "train/loss"
TOKENS_UNIT = 1e9
ARTEFACT_JUMP = 0.1  # nats; the curves' own noise is < 0.01


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> None:
    n = int(mask.sum())
    if n:
        bad[reason] += n


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, header=None, names=["tokens", "loss", "extra"], dtype=str, skipinitialspace=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable RedPajama curve ({exc})") from exc


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    parts, runs = [], []
    for size in SIZES:
        df = _read(mirror / ROOT / f"{size}.csv")
        tokens = pd.to_numeric(df["tokens"], errors="coerce") * TOKENS_UNIT
        loss = pd.to_numeric(df["loss"], errors="coerce")
        extra = df["extra"].notna()
        bad_tokens = ~extra & (tokens.isna() | (tokens <= 0))
        bad_loss = ~extra & ~bad_tokens & ~np.isfinite(loss)
        _skip(bad, "row with more than two cells", extra)
        _skip(bad, "non-numeric or non-positive token count", bad_tokens)
        _skip(bad, "non-numeric loss", bad_loss)
        keep = ~(extra | bad_tokens | bad_loss)
        num_params = params_from_label(size)
        run_id = f"{NAME}/redpajama-{size.lower()}"
        parts.append(
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "tokens_seen": tokens[keep],
                    "flops": chinchilla_flops(num_params, tokens[keep]),
                    "flops_derived": True,
                    "tokens_derived": False,
                    "metric": METRIC,
                    "value": loss[keep],
                }
            )
        )
        runs.append((run_id, f"RedPajama-INCITE {size}", num_params))

    observations = pd.concat(parts, ignore_index=True)[list(OBSERVATION_COLUMNS)]
    observations = observations.sort_values(["run_id", "tokens_seen"], ignore_index=True)
    best_before = observations.groupby("run_id")["value"].cummin().groupby(observations["run_id"]).shift()
    artefact = observations["value"] > best_before + ARTEFACT_JUMP
    _skip(bad, f"digitisation artefact (loss > {ARTEFACT_JUMP} above the curve's minimum so far)", artefact)
    observations = observations.loc[~artefact].reset_index(drop=True)
    runs_df = pd.DataFrame(runs, columns=["run_id", "model_name", "num_params"]).assign(
        family=FAMILY,
        architecture="decoder",
        num_params_derived=True,
        training_data="RedPajama-Data-1T",
        seed=None,
        planned_tokens=np.nan,
        source_paper=SOURCE_PAPER,
        domain="language",
    )[list(RUN_COLUMNS)]
    metrics = pd.DataFrame(
        [(METRIC, "loss", False, "training loss (cross-entropy, nats/token)")], columns=list(METRIC_COLUMNS)
    )
    families = pd.DataFrame(
        [
            (
                FAMILY,
                METRIC,
                "RedPajama-INCITE base models (GPT-NeoX architecture) on "
                "RedPajama-Data-1T; training-loss curves from the release blog",
            )
        ],
        columns=list(FAMILY_COLUMNS),
    )
    return SourceFrames(NAME, runs_df, observations, metrics, families, bad).validate()
