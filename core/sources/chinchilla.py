"""Chinchilla runs (Hoffmann et al. 2022), points digitised from a loss-vs-FLOPs figure of the paper.

Source file
    ``colpret/raw_data/chinchila_extracted.csv``: columns x, y (pixel position), color, hex_color
    (curve colour), Model Size (parameters, decoded from the colour bar), Training FLOP
    (decoded from the x axis) and loss (decoded from the y axis).

Conventions
    * run = one model size. The colour decoding gives the same size up to ~2e-6 relative jitter
      (e.g. 73824670 and 73824690), while distinct sizes differ by >= 0.3 % (1424M vs 1429M), so
      sorted sizes are cut into groups wherever consecutive values differ by more than 1e-4
      (relative). The 43 groups are the sizes of the paper's Table A9 (57M ... 16,183M).
      num_params = the group median (num_params_derived=True: decoded from a figure);
      model name ``chinchilla-<N in millions, rounded>M``, run_id ``chinchilla/<model name>``.
    * flops = Training FLOP as given (flops_derived=False); tokens_seen = FLOP / (6 N)
      (tokens_derived=True), as ColPret ``get_chinchila`` does.
    * metric ``train/loss`` (the figure's training loss, nats/token), the family default.
      One family, ``chinchilla`` (MassiveText, Gopher-style decoders).
    * the file also holds a few pale-coloured points (``#faebdd``, ``#f8d1b8``, loss 5.0 and 4.7
      at 1e19 FLOPs) whose decoded sizes are doubtful; they are kept as the file gives them.

Skipped (counted in bad_rows)
    * rows with a non-numeric or non-positive size, FLOP count or non-numeric loss.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from scaleplan.core.laws.formulas import FLOPS_PER_PARAM_TOKEN

from .base import FAMILY_COLUMNS, METRIC_COLUMNS, OBSERVATION_COLUMNS, RUN_COLUMNS, SourceFrames

NAME = "chinchilla"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
POINTS = "colpret/raw_data/chinchila_extracted.csv"
PATTERNS = (POINTS,)

SOURCE_PAPER = "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv:2203.15556)"
SIZE_GAP = 1e-4  # relative gap between sorted sizes that starts a new model
METRIC = "train/loss"


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> None:
    n = int(mask.sum())
    if n:
        bad[reason] += n


def _size_groups(sizes: pd.Series) -> pd.Series:
    """Group id per row: sizes within SIZE_GAP (relative) of their sorted neighbour share a group."""
    order = sizes.sort_values()
    new_group = order.div(order.shift()).sub(1.0).gt(SIZE_GAP)
    return new_group.cumsum().reindex(sizes.index)


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    try:
        df = pd.read_csv(mirror / POINTS)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{mirror / POINTS}: unreadable Chinchilla points ({exc})") from exc

    size = pd.to_numeric(df["Model Size"], errors="coerce")
    flops = pd.to_numeric(df["Training FLOP"], errors="coerce")
    loss = pd.to_numeric(df["loss"], errors="coerce")
    ok_size = size.gt(0) & np.isfinite(size)
    ok_flops = flops.gt(0) & np.isfinite(flops)
    ok_loss = np.isfinite(loss)
    _skip(bad, "non-numeric or non-positive Model Size", ~ok_size)
    _skip(bad, "non-numeric or non-positive Training FLOP", ok_size & ~ok_flops)
    _skip(bad, "non-numeric loss", ok_size & ok_flops & ~ok_loss)
    keep = ok_size & ok_flops & ok_loss
    points = pd.DataFrame({"size": size, "flops": flops, "loss": loss}).loc[keep]

    points["group"] = _size_groups(points["size"])
    points["num_params"] = points.groupby("group")["size"].transform("median")
    points["model_name"] = "chinchilla-" + (points["num_params"] / 1e6).round().astype(int).astype(str) + "M"
    points["run_id"] = NAME + "/" + points["model_name"]

    observations = (
        pd.DataFrame(
            {
                "run_id": points["run_id"],
                "tokens_seen": points["flops"] / (FLOPS_PER_PARAM_TOKEN * points["num_params"]),
                "flops": points["flops"],
                "flops_derived": False,
                "tokens_derived": True,
                "metric": METRIC,
                "value": points["loss"],
            }
        )[list(OBSERVATION_COLUMNS)]
        .sort_values(["run_id", "tokens_seen"])
        .reset_index(drop=True)
    )

    run_src = points.drop_duplicates("run_id").sort_values("num_params")
    runs = pd.DataFrame(
        {
            "run_id": run_src["run_id"],
            "family": NAME,
            "model_name": run_src["model_name"],
            "architecture": "decoder",
            "num_params": run_src["num_params"].astype(float),
            "num_params_derived": True,
            "training_data": "MassiveText",
            "seed": None,
            "planned_tokens": np.nan,
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)].reset_index(drop=True)
    metrics = pd.DataFrame(
        [(METRIC, "loss", False, "training loss (cross-entropy, nats/token)")], columns=list(METRIC_COLUMNS)
    )
    families = pd.DataFrame(
        [(NAME, METRIC, "Chinchilla/Gopher-style decoders on MassiveText, 57M-16B, points digitised from the paper")],
        columns=list(FAMILY_COLUMNS),
    )
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
