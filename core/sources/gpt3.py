"""GPT-3 training curves (Brown et al. 2020), digitised from the paper's loss-curve figure.

Source files
    ``colpret/raw_data/gpt3/extracted.csv``: columns model (``small``, ``medium``, ``large``, ``xl``,
    ``2.7b``, ``6.7b``, ``13b``, ``175b``), step, train_loss, val_loss; each row holds one of the
    two losses.
    ``colpret/raw_data/gpt3/gpt3_metadata.xlsx``: the paper's Table 2.1 without a header row
    (model name, n_params label, n_layers, d_model, n_heads, d_head, batch size, learning rate).

Conventions
    * ``step`` is the figure's x axis, tokens elapsed in billions (0-300, linear): tokens_seen =
      step x 1e9 (ColPret ``get_extracted_gpt3`` does the same). The tokens are read off the axis,
      not computed from steps: tokens_derived=False.
    * run_id ``gpt3/gpt-3-<size>`` (e.g. ``gpt3/gpt-3-small``, ``gpt3/gpt-3-175b``); a curve model
      name is matched to the table row whose name contains it (``"xl"`` ->
      ``"GPT-3 XL"``); num_params = the table's label (``"125M"``, ``"13.0B"``) parsed, i.e. the
      paper's rounded counts: num_params_derived=True.
    * flops = 6 * N * D (flops_derived=True); planned_tokens = 300e9 (every GPT-3 model was
      trained for 300B tokens).
    * the digitiser emits several points per x pixel (a vertical run of the curve); those are
      collapsed to their median per (run, tokens, metric), so no duplicates reach the store.
    * metrics: ``val/loss`` (validation cross-entropy, nats/token; family default) and
      ``train/loss``. One family, ``gpt3``.

Skipped (counted in bad_rows)
    * rows with a non-numeric or non-positive step, a model missing from the table, or no loss.
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

NAME = "gpt3"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
CURVES = "colpret/raw_data/gpt3/extracted.csv"
TABLE = "colpret/raw_data/gpt3/gpt3_metadata.xlsx"
PATTERNS = (CURVES, TABLE)

SOURCE_PAPER = "Brown et al. 2020, Language Models are Few-Shot Learners (arXiv:2005.14165)"
TOKENS_PER_STEP_UNIT = 1e9  # the figure's x axis is in billions of tokens
PLANNED_TOKENS = 300e9
TABLE_COLUMNS = ["model_name", "params", "n_layers", "d_model", "n_heads", "d_head", "batch_size", "lr"]
METRICS = {  # column -> (metric, domain); the names are shared with other sources, so generic domains
    "val_loss": ("val/loss", "validation loss (cross-entropy, nats/token)"),
    "train_loss": ("train/loss", "training loss (cross-entropy, nats/token)"),
}


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> None:
    n = int(mask.sum())
    if n:
        bad[reason] += n


def _read_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_excel(path, header=None, names=TABLE_COLUMNS)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable GPT-3 metadata table ({exc})") from exc
    table["num_params"] = table["params"].map(_label_to_count)
    return table.dropna(subset=["model_name", "num_params"])


def _label_to_count(label: object) -> float:
    try:
        return params_from_label(str(label))
    except ValueError:
        return np.nan


def _match_models(curve_names: pd.Series, table: pd.DataFrame) -> pd.DataFrame:
    """Map each curve model name to the first table row whose name contains it."""
    rows = []
    for name in curve_names.dropna().unique():
        hits = table[table["model_name"].str.lower().str.contains(str(name).lower(), regex=False)]
        if len(hits):
            rows.append((name, hits["model_name"].iloc[0], hits["num_params"].iloc[0]))
    return pd.DataFrame(rows, columns=["model", "model_name", "num_params"])


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    try:
        curves = pd.read_csv(mirror / CURVES)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{mirror / CURVES}: unreadable GPT-3 curves ({exc})") from exc
    table = _read_table(mirror / TABLE)

    tokens = pd.to_numeric(curves["step"], errors="coerce") * TOKENS_PER_STEP_UNIT
    no_tokens = tokens.isna() | (tokens <= 0)
    _skip(bad, "non-numeric or non-positive step", no_tokens)
    curves = curves.assign(tokens=tokens).loc[~no_tokens]

    models = _match_models(curves["model"], table)
    curves = curves.merge(models, on="model", how="left")
    unknown = curves["model_name"].isna()
    _skip(bad, "model not in the GPT-3 table", unknown)
    curves = curves.loc[~unknown]
    curves["model_name"] = curves["model_name"].str.replace(r"\s+or\s+.*$", "", regex=True)
    curves["run_id"] = NAME + "/" + curves["model_name"].str.lower().str.replace(" ", "-")

    losses = curves[list(METRICS)].apply(pd.to_numeric, errors="coerce")
    _skip(bad, "row without a numeric loss", losses.isna().all(axis=1))
    long = pd.concat(
        [
            curves.assign(metric=metric, value=losses[column]).loc[losses[column].notna()]
            for column, (metric, _) in METRICS.items()
        ],
        ignore_index=True,
    )
    long = long.groupby(["run_id", "tokens", "metric"], as_index=False).agg(
        value=("value", "median"), num_params=("num_params", "first")
    )

    observations = pd.DataFrame(
        {
            "run_id": long["run_id"],
            "tokens_seen": long["tokens"].astype(float),
            "flops": chinchilla_flops(long["num_params"], long["tokens"]),
            "flops_derived": True,
            "tokens_derived": False,
            "metric": long["metric"],
            "value": long["value"].astype(float),
        }
    )[list(OBSERVATION_COLUMNS)]

    run_src = curves.drop_duplicates("run_id").sort_values("num_params")
    runs = pd.DataFrame(
        {
            "run_id": run_src["run_id"],
            "family": NAME,
            "model_name": run_src["model_name"],
            "architecture": "decoder",
            "num_params": run_src["num_params"].astype(float),
            "num_params_derived": True,
            "training_data": "GPT-3 mix (filtered Common Crawl, WebText2, Books1, Books2, Wikipedia)",
            "seed": None,
            "planned_tokens": PLANNED_TOKENS,
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)].reset_index(drop=True)
    metrics = pd.DataFrame(
        [(metric, "loss", False, domain) for metric, domain in METRICS.values()], columns=list(METRIC_COLUMNS)
    )
    families = pd.DataFrame(
        [(NAME, "val/loss", "GPT-3 125M-175B, 300B tokens, curves digitised from the paper")],
        columns=list(FAMILY_COLUMNS),
    )
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
