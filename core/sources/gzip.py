"""gzip-complexity scaling runs (Pandey 2024, "gzip Predicts Data-dependent Scaling Laws").

Source file
    ``colpret/raw_data/gzip/results_new.jsonl``: one JSON record per training run with
    dataset_name (``/gzipscale-<gzip>-10M``: PCFG-sampled text of a given gzip compressibility),
    dataset_gzip ([median, std] compressibility), token_ct (training tokens), model_stats (Llama
    config: hidden size, layers, ...), model_size (counted parameters), num_epochs (1),
    train_loss (one value per optimiser step) and valid_loss (per validation batch, end of run).

Conventions (from KhoomeiK/complexity-scaling ``main.py`` / ``training.py``)
    * every record is its own run, trained from scratch on the first token_ct tokens of its
      dataset (5 datasets x 5 data budgets x 6 model sizes = 150). The brief's "run per (data
      setting, model size)" would merge 5 independent runs with overlapping curves, so the run
      also carries the budget: ``gzip/<dataset>/h<hidden>-l<layers>/D<token_ct>``.
      planned_tokens = token_ct.
    * family = data setting: ``gzip-pcfg-0.12`` ... ``gzip-pcfg-0.61`` (the dataset's gzip
      compressibility); each family is a size x data grid.
    * num_params = model_size, the counted parameters incl. the 32,001 x hidden embedding and
      untied output matrices (num_params_derived=False); flops = 6 * N * D (flops_derived=True).
    * ``train/loss``: the loss of optimiser step k (batches of 32 padded 256-token sequences,
      one epoch). tokens_seen = k x token_ct / n_steps, the tokens consumed once batch k is in
      (the mean real tokens per batch; padding excluded): tokens_derived=True.
    * ``val/loss``: the unweighted mean of the per-batch validation losses at the end of the run
      (tokens_seen = token_ct; up to 100 held-out sequences, so the last, smaller batch gets a
      full batch's weight). It is the families' default metric (one point per run).

Skipped (counted in bad_rows)
    * unparseable JSON lines; records without a dataset name, a positive model_size / token_ct
      or a train_loss list; non-numeric loss values.
"""

from __future__ import annotations

import json
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
)

NAME = "gzip"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
RESULTS = "colpret/raw_data/gzip/results_new.jsonl"
PATTERNS = (RESULTS,)

SOURCE_PAPER = "Pandey 2024, gzip Predicts Data-dependent Scaling Laws (arXiv:2405.16684)"
METRICS = [  # names shared with other sources: generic domains
    ("train/loss", "loss", False, "training loss (cross-entropy, nats/token)"),
    ("val/loss", "loss", False, "validation loss (cross-entropy, nats/token)"),
]


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> None:
    n = int(mask.sum())
    if n:
        bad[reason] += n


def _records(path: Path, bad: Counter[str]) -> pd.DataFrame:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: unreadable gzip results ({exc})") from exc
    records = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad["unparseable JSON line"] += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad["JSON line that is not a record"] += 1
    if not records and lines:
        raise ValueError(f"{path}: no readable records")
    return pd.DataFrame.from_records(records)


def _stat(stats: pd.Series, key: str) -> pd.Series:
    return pd.to_numeric(stats.map(lambda s: s.get(key) if isinstance(s, dict) else None), errors="coerce")


def _loss_list(values: pd.Series) -> pd.Series:
    return values.map(lambda v: v if isinstance(v, list) and len(v) > 0 else None)


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    df = _records(mirror / RESULTS, bad)
    for column in ("dataset_name", "dataset_gzip", "token_ct", "model_stats", "model_size", "train_loss", "valid_loss"):
        if column not in df:
            df[column] = None

    dataset = df["dataset_name"].map(
        lambda name: name.strip("/") if isinstance(name, str) and name.strip("/") else None
    )
    size = pd.to_numeric(df["model_size"], errors="coerce")
    tokens = pd.to_numeric(df["token_ct"], errors="coerce")
    train = _loss_list(df["train_loss"])
    hidden, layers = _stat(df["model_stats"], "hidden_size"), _stat(df["model_stats"], "num_hidden_layers")
    ok = dataset.notna() & size.gt(0) & tokens.gt(0) & train.notna() & hidden.notna() & layers.notna()
    _skip(bad, "record without dataset, positive model_size/token_ct, model_stats or train_loss", ~ok)
    runs_src = (
        pd.DataFrame(
            {
                "dataset": dataset,
                "num_params": size,
                "token_ct": tokens,
                "train": train,
                "valid": _loss_list(df["valid_loss"]),
                "gzip": df["dataset_gzip"].map(lambda g: g[0] if isinstance(g, list) and g else np.nan),
                "arch": "h" + hidden.astype("Int64").astype(str) + "-l" + layers.astype("Int64").astype(str),
            }
        )
        .loc[ok]
        .reset_index(drop=True)
    )
    runs_src["setting"] = (
        runs_src["dataset"].str.extract(r"gzipscale-([0-9.]+)", expand=False).fillna(runs_src["dataset"])
    )
    runs_src["family"] = "gzip-pcfg-" + runs_src["setting"]
    runs_src["model_name"] = "llama-" + runs_src["arch"] + "-" + runs_src["dataset"]
    runs_src["run_id"] = (
        NAME
        + "/"
        + runs_src["dataset"]
        + "/"
        + runs_src["arch"]
        + "/D"
        + runs_src["token_ct"].astype("int64").astype(str)
    )

    train_long = runs_src[["run_id", "num_params", "token_ct", "train"]].explode("train")
    train_long["step"] = train_long.groupby(level=0).cumcount() + 1
    n_steps = train_long.groupby(level=0)["step"].transform("max")
    train_long["tokens"] = train_long["step"] * train_long["token_ct"] / n_steps
    train_long["metric"], train_long["value"] = "train/loss", pd.to_numeric(train_long["train"], errors="coerce")

    valid = runs_src.loc[runs_src["valid"].notna(), ["run_id", "num_params", "token_ct", "valid"]].explode("valid")
    valid["valid"] = pd.to_numeric(valid["valid"], errors="coerce")
    _skip(bad, "non-numeric validation loss", valid["valid"].isna())
    valid = valid.groupby(["run_id", "num_params", "token_ct"], as_index=False)["valid"].mean()
    valid = valid.rename(columns={"valid": "value"}).assign(tokens=valid["token_ct"], metric="val/loss")

    long = pd.concat([train_long, valid], ignore_index=True)
    _skip(bad, "non-numeric loss value", long["value"].isna())
    long = long.loc[long["value"].notna()]
    observations = pd.DataFrame(
        {
            "run_id": long["run_id"],
            "tokens_seen": long["tokens"].astype(float),
            "flops": chinchilla_flops(long["num_params"], long["tokens"]),
            "flops_derived": True,
            "tokens_derived": long["metric"].eq("train/loss"),
            "metric": long["metric"],
            "value": long["value"].astype(float),
        }
    )[list(OBSERVATION_COLUMNS)].reset_index(drop=True)

    runs = pd.DataFrame(
        {
            "run_id": runs_src["run_id"],
            "family": runs_src["family"],
            "model_name": runs_src["model_name"],
            "architecture": "decoder",
            "num_params": runs_src["num_params"].astype(float),
            "num_params_derived": False,
            "training_data": "PCFG-sampled text "
            + runs_src["dataset"]
            + " (gzip compressibility "
            + runs_src["gzip"].round(3).astype(str)
            + ")",
            "seed": None,
            "planned_tokens": runs_src["token_ct"].astype(float),
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)]
    metrics = pd.DataFrame(METRICS, columns=list(METRIC_COLUMNS))
    fam = runs_src.groupby("family", as_index=False)["gzip"].first()
    families = pd.DataFrame(
        {
            "family": fam["family"],
            "default_metric": "val/loss",
            "description": "Llama decoders 4M-1.4B on PCFG text of gzip compressibility "
            + fam["gzip"].round(3).astype(str)
            + ", 0.1M-9.5M tokens, one epoch",
        }
    )[list(FAMILY_COLUMNS)]
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
