"""OPT intermediate checkpoints (125M-175B), as analysed by "Training Trajectories of Language
Models Across Scales" (Xia et al. 2023).

Source files
    ``colpret/aggregated_eval/opt_trajectories.csv``: model_name (``OPT``), model_size (``125m`` ..
    ``175b``), steps, num_token, flops, ppl: the per-checkpoint perplexity curves (142 rows).
    ``colpret/aggregated_eval/opt.csv``: model_name (``opt_125m``), size, steps, flops, tokens and
    six BIG-bench multiple-choice tasks in percent (147 rows, the same checkpoints plus five).

Conventions
    * One run per size in both files: run_id ``opt/opt-<size>`` (e.g. ``opt/opt-1.3b``), family
      ``opt``. num_params = the size label (125m -> 1.25e8): num_params_derived=True.
    * tokens_seen = steps x tokens per step, the OPT batch sizes (Zhang et al. 2022, Table 1) as
      coded in ColPret ``row_to_tokens_seen``: 0.5M below 1B params, 1M below 6B, 2M below 10B,
      4M below 60B, 2M above (125m 0.5M, 1.3b 1M, 6.7b 2M, 13b/30b 4M, 175b 2M):
      tokens_derived=True. opt.csv's ``tokens`` column equals this; opt_trajectories.csv's
      ``num_token`` and ``flops`` are log10 values (10**num_token = steps x batch) and are not used.
    * flops = 6 * N * tokens_seen (flops_derived=True); both files' flops columns are exactly
      this (after 10** for the trajectories), so nothing is lost.
    * planned_tokens = 300e9 (every OPT model was trained on 300B tokens; ColPret uses the same).
    * Metrics: ``val/perplexity`` (the trajectories' ppl) and ``val/log_ppl`` = ln(ppl), the
      family default (kind loss, nats/token; a deterministic transform). BIG-bench values are
      multiple-choice accuracies in percent (multiples of 1/n for each task's n examples, e.g.
      implicatures k/492, what_is_the_tao k/36): divided by 100 and stored as ``downstream/bigbench_<task>/acc``.

Skipped (counted in bad_rows)
    * rows with a non-numeric or non-positive step or an unknown size label; filled but
      non-numeric value cells and non-positive perplexities. Empty metric cells are not errors.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import (
    FAMILY_COLUMNS,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    SourceFrames,
    chinchilla_flops,
    long_observations,
    params_from_label,
)

NAME = "opt"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
TRAJECTORIES = "colpret/aggregated_eval/opt_trajectories.csv"
BIGBENCH = "colpret/aggregated_eval/opt.csv"
PATTERNS = (TRAJECTORIES, BIGBENCH)

SOURCE_PAPER = (
    "Zhang et al. 2022, OPT: Open Pre-trained Transformer Language Models (arXiv:2205.01068); "
    "curves from Xia et al. 2023, Training Trajectories of Language Models Across Scales "
    "(arXiv:2212.09803)"
)
FAMILY = "opt"
PLANNED_TOKENS = 300e9
BIGBENCH_PREFIX = "bigbench__"


def tokens_per_step(num_params: pd.Series) -> pd.Series:
    """OPT batch size in tokens by model size (ColPret ``row_to_tokens_seen``)."""
    return pd.Series(
        np.select(
            [num_params < 1e9, num_params < 6e9, num_params < 10e9, num_params < 60e9],
            [5e5, 1e6, 2e6, 4e6],
            default=2e6,
        ),
        index=num_params.index,
    )


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable OPT file ({exc})") from exc


def _size_table(labels: pd.Series) -> pd.Series:
    def parse(label: object) -> float:
        try:
            return params_from_label(str(label))
        except ValueError:
            return np.nan

    return labels.map({label: parse(label) for label in labels.dropna().unique()})


def _values(column: pd.Series, bad: Counter[str], reason: str) -> pd.Series:
    """Numeric cells; a filled but non-numeric cell is counted (an empty one is just missing)."""
    values = pd.to_numeric(column, errors="coerce")
    junk = column.notna() & values.isna()
    if junk.any():
        bad[reason] += int(junk.sum())
    return values


def _checkpoints(frame: pd.DataFrame, size_column: str, bad: Counter[str], file: str) -> pd.DataFrame:
    """Attach size, num_params, tokens and run_id; drop (and count) rows without them."""
    steps = pd.to_numeric(frame["steps"], errors="coerce")
    size = frame[size_column].astype(str).str.strip().str.lower()
    num_params = _size_table(size)
    bad_step = steps.isna() | (steps <= 0)
    bad_size = ~bad_step & (num_params.isna() | (num_params <= 0))
    for reason, mask in (
        (f"{file}: non-numeric or non-positive steps", bad_step),
        (f"{file}: unknown size label", bad_size),
    ):
        if mask.any():
            bad[reason] += int(mask.sum())
    keep = ~bad_step & ~bad_size
    out = frame.loc[keep].assign(size=size[keep], num_params=num_params[keep], steps=steps[keep])
    out["tokens"] = out["steps"] * tokens_per_step(out["num_params"])
    out["run_id"] = NAME + "/opt-" + out["size"]
    return out


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    traj = _checkpoints(_read_csv(mirror / TRAJECTORIES), "model_size", bad, "opt_trajectories.csv")
    bench = _checkpoints(_read_csv(mirror / BIGBENCH, index_col=0), "size", bad, "opt.csv")

    ppl = _values(traj["ppl"], bad, "opt_trajectories.csv: non-numeric ppl")
    bad_ppl = ppl.notna() & (ppl <= 0)
    if bad_ppl.any():
        bad["opt_trajectories.csv: non-positive ppl"] += int(bad_ppl.sum())
    ppl = ppl.mask(bad_ppl)
    traj_wide = pd.DataFrame({"val/perplexity": ppl, "val/log_ppl": np.log(ppl)}, index=traj.index)

    tasks = [c for c in bench.columns if c.startswith(BIGBENCH_PREFIX)]
    bench_wide = pd.DataFrame(
        {
            f"downstream/bigbench_{c.removeprefix(BIGBENCH_PREFIX)}/acc": _values(
                bench[c], bad, "opt.csv: non-numeric BIG-bench value"
            )
            / 100
            for c in tasks
        },
        index=bench.index,
    )

    parts = []
    for frame, wide in ((traj, traj_wide), (bench, bench_wide)):
        flops = pd.Series(chinchilla_flops(frame["num_params"], frame["tokens"]), index=frame.index)
        parts.append(
            long_observations(
                wide,
                frame["run_id"],
                frame["tokens"],
                flops,
                {c: c for c in wide.columns},
                flops_derived=True,
                tokens_derived=True,
            )
        )
    observations = pd.concat(parts, ignore_index=True)

    run_src = pd.concat([traj, bench])[["run_id", "size", "num_params"]].drop_duplicates("run_id")
    run_src = run_src.sort_values("num_params")
    runs = pd.DataFrame(
        {
            "run_id": run_src["run_id"],
            "family": FAMILY,
            "model_name": "OPT-" + run_src["size"],
            "architecture": "decoder",
            "num_params": run_src["num_params"].astype(float),
            "num_params_derived": True,
            "training_data": "OPT corpus (RoBERTa corpora, the Pile subset, PushShift.io Reddit)",
            "seed": None,
            "planned_tokens": PLANNED_TOKENS,
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)].reset_index(drop=True)

    metrics = pd.DataFrame(
        [
            ("val/perplexity", "perplexity", False, "validation perplexity (Xia et al. 2023, per OPT checkpoint)"),
            ("val/log_ppl", "loss", False, "validation loss (ln of ppl; nats/token)"),
        ]
        + [
            (m, "accuracy", True, "downstream (BIG-bench multiple-choice accuracy, fraction; percent / 100)")
            for m in bench_wide.columns
        ],
        columns=list(METRIC_COLUMNS),
    )
    families = pd.DataFrame(
        [
            (
                FAMILY,
                "val/log_ppl",
                "OPT 125M-175B intermediate checkpoints (300B-token runs); "
                "perplexity and BIG-bench trajectories from Xia et al. 2023",
            )
        ],
        columns=list(FAMILY_COLUMNS),
    )
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
