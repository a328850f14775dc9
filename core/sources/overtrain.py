"""Over-training testbed of Gadre et al. (ICLR 2025): 104 open_lm runs, final checkpoints only.

Source files (mirror folder ``mlfoundations-scaling``)
    * ``exp_data/models/<name>.json``: one run each; ``hyperparameters.params`` (N, total incl.
      embeddings), ``hyperparameters.tokens`` (D), ``hyperparameters.chinchilla_multiplier``
      (D / 20N), ``dataset_name`` and ``results``: 8 validation losses (nats/token) of the final
      checkpoint, one per ``val_data`` set.
    * ``exp_data/evals/evaluation_<name>_heavy.json``: 46 downstream accuracies
      (``eval_metrics.icl``, LLM Foundry ICL tasks) of the same run; ``<name>`` is the models'
      file stem.
    * ``exp_data/eval_metadata.csv``: task category, type, shots, random baseline; used for the
      metric domain strings.

Conventions
    * run_id ``"overtrain/<name>"`` (e.g. ``overtrain/rpj-open_lm_1b-32.0``); family one per
      training set: ``overtrain-c4`` (C4), ``overtrain-rpj`` (RedPajama), ``overtrain-rw``
      (RefinedWeb), each mixing all sizes and token multipliers.
    * token multiplier M = D/N = 20 x chinchilla_multiplier (M=20 is compute-optimal, 640 is
      32x over-trained). There is no multiplier column in ``runs``: it is in the model_name,
      ``"<open_lm config> M=<M>"`` (e.g. ``"open_lm_1b M=640"``), and ``multipliers(mirror)``
      returns it as a frame (run_id, token_multiplier, dataset).
    * tokens_seen = D as reported (tokens_derived=False); planned_tokens = D;
      flops = 6 * N * D (flops_derived=True); num_params exact (num_params_derived=False);
      seed from ``--seed`` in ``open_lm_args``.
    * metrics: ``val/<set>/loss`` (kind loss, set names as in ColPret: openlm, c4_val,
      paloma_c4_en, paloma_dolma_100_programing_languages, paloma_falcon-refinedweb, paloma_ptb,
      paloma_redpajama, val_de-en_100) and ``downstream/<task>/acc`` (fractions as stored).
      The families' default metric is ``val/c4_val/loss``, the paper's "C4 eval".

Skipped
    * intermediate checkpoints (not in these files; ColPret's ``overtrain.csv`` is absent).
    * per-loss 95% bounds and throughput fields of ``results`` (the bounds are added by the
      ``overtrain_downstreams`` adapter from ColPret's copy), and the four centred summary
      scores present in three 6.9B eval files only.
    * runs whose params or tokens are missing or not positive, non-numeric values, unknown
      validation sets, eval files without a model file: counted in bad_rows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import (
    DOWNSTREAM_COLUMNS,
    FAMILY_COLUMNS,
    METRIC_COLUMNS,
    OBSERVATION_COLUMNS,
    RUN_COLUMNS,
    SourceFrames,
    chinchilla_flops,
)

NAME = "overtrain"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "mlfoundations-scaling"
MODELS = "mlfoundations-scaling/exp_data/models"
EVALS = "mlfoundations-scaling/exp_data/evals"
METADATA = "mlfoundations-scaling/exp_data/eval_metadata.csv"
PATTERNS = (f"{MODELS}/*.json", f"{EVALS}/*.json", METADATA)

SOURCE_PAPER = (
    "Gadre et al. 2025, Language models scale reliably with over-training and on "
    "downstream tasks (ICLR 2025, arXiv:2403.08540)"
)
DEFAULT_METRIC = "val/c4_val/loss"
EVAL_PREFIX, EVAL_SUFFIX = "evaluation_", "_heavy"

# dataset_name -> (short name used in family and multipliers(), training data description)
DATASETS = {
    "c4_original": ("c4", "C4"),
    "rpj": ("rpj", "RedPajama"),
    "rw_original": ("rw", "RefinedWeb"),
}

# substring of a results[].val_data path -> (set name, description); first match wins
VAL_SETS = (
    ("/c4_val/", "c4_val", "C4 eval (c4_val shards, ~174M tokens; the paper's default)"),
    ("/paloma_c4_en/", "paloma_c4_en", "Paloma C4 (en)"),
    (
        "/paloma_dolma_100_programing_languages/",
        "paloma_dolma_100_programing_languages",
        "Paloma Dolma 100 programming languages",
    ),
    ("/paloma_falcon-refinedweb/", "paloma_falcon-refinedweb", "Paloma Falcon RefinedWeb"),
    ("/paloma_ptb/", "paloma_ptb", "Paloma Penn Treebank"),
    ("/paloma_redpajama/", "paloma_redpajama", "Paloma RedPajama"),
    ("/de-en/", "val_de-en_100", "German-English text (val_de-en_100)"),
    ("/openlm/", "openlm", "open_lm validation shard"),
)

RUN_EXTRA = ("token_multiplier", "dataset")


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open() as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _seed(args: object) -> int | None:
    if isinstance(args, list) and "--seed" in args:
        i = args.index("--seed")
        if i + 1 < len(args):
            try:
                return int(args[i + 1])
            except (TypeError, ValueError):
                return None
    return None


def _val_set(val_data: object) -> tuple[str, str] | None:
    path = " ".join(val_data) if isinstance(val_data, list) else str(val_data)
    for needle, key, description in VAL_SETS:
        if needle in path:
            return key, description
    return None


def _read_models(mirror: Path, bad: Counter[str]) -> tuple[pd.DataFrame, list[tuple[str, str, object]]]:
    """Runs (one row per valid model file, with N, D, M, dataset) and raw loss records."""
    rows, losses = [], []
    for path in sorted((mirror / MODELS).glob("*.json")):
        data = _load(path)
        name = path.stem
        hyper = data.get("hyperparameters") or {}
        n = pd.to_numeric(pd.Series([hyper.get("params")]), errors="coerce").iloc[0]
        d = pd.to_numeric(pd.Series([hyper.get("tokens")]), errors="coerce").iloc[0]
        mult = pd.to_numeric(pd.Series([hyper.get("chinchilla_multiplier")]), errors="coerce").iloc[0]
        if not (n > 0 and d > 0 and mult > 0):
            bad["model file with missing or non-positive params/tokens/multiplier"] += 1
            continue
        dataset = str(data.get("dataset_name") or name.split("-", 1)[0])
        short, training_data = DATASETS.get(dataset, (dataset, dataset))
        arch = name[len(dataset) + 1 :].rsplit("-", 1)[0] if name.startswith(dataset + "-") else name
        multiplier = 20.0 * float(mult)
        rows.append(
            {
                "run_id": f"{NAME}/{name}",
                "family": f"overtrain-{short}",
                "model_name": f"{arch} M={multiplier:g}",
                "num_params": float(n),
                "training_data": training_data,
                "seed": _seed(data.get("open_lm_args")),
                "planned_tokens": float(d),
                "token_multiplier": multiplier,
                "dataset": short,
            }
        )
        for result in data.get("results") or []:
            val = _val_set(result.get("val_data")) if isinstance(result, dict) else None
            if val is None:
                bad["result with unknown validation set"] += 1
                continue
            losses.append((f"{NAME}/{name}", val[0], result.get("loss")))
    return pd.DataFrame(
        rows,
        columns=["run_id", "family", "model_name", "num_params", "training_data", "seed", "planned_tokens", *RUN_EXTRA],
    ), losses


def multipliers(mirror: Path) -> pd.DataFrame:
    """Token multiplier M = D/N (20 x chinchilla_multiplier) and dataset (c4/rpj/rw) of each run."""
    runs, _ = _read_models(Path(mirror), Counter())
    return runs[["run_id", *RUN_EXTRA]].reset_index(drop=True)


def _read_evals(mirror: Path) -> list[tuple[str, str, object]]:
    records: list[tuple[str, str, object]] = []
    for path in sorted((mirror / EVALS).glob("*.json")):
        stem = path.stem
        name = stem.removeprefix(EVAL_PREFIX).removesuffix(EVAL_SUFFIX)
        icl = (_load(path).get("eval_metrics") or {}).get("icl") or {}
        records.extend((f"{NAME}/{name}", task, value) for task, value in icl.items())
    return records


def _task_domains(mirror: Path) -> dict[str, str]:
    path = mirror / METADATA
    try:
        meta = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable task metadata ({exc})") from exc
    text = (
        "downstream accuracy ("
        + meta["Task Category"].astype(str)
        + ", "
        + meta["Task Type"].astype(str)
        + ", "
        + meta["#shots"].astype(str)
        + "-shot, random baseline "
        + meta["Random baseline"].astype(str)
        + "%)"
    )
    return dict(zip(meta["Eval Task"].astype(str), text))


DOWNSTREAM_VERSION = 1  # bumped when downstream_evals() yields other rows (keys only that table)


def downstream_evals(mirror: Path) -> pd.DataFrame:
    """The 46 task accuracies of every run (``DOWNSTREAM_COLUMNS``), with the task's shots, chance level
    (``Random baseline`` / 100) and question count (``#datapoints``) from ``eval_metadata.csv``.

    The same values as read()'s ``downstream/<task>/acc`` observations (final checkpoint, tokens_seen
    = D); metric "acc" (LLM Foundry's ICL accuracy). A task missing from the metadata keeps NaN
    chance and questions.
    """
    mirror = Path(mirror)
    runs, _ = _read_models(mirror, Counter())
    try:
        meta = pd.read_csv(mirror / METADATA)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{mirror / METADATA}: unreadable task metadata ({exc})") from exc
    meta = pd.DataFrame(
        {
            "task": meta["Eval Task"].astype(str),
            "shots": pd.to_numeric(meta["#shots"], errors="coerce"),
            "chance": pd.to_numeric(meta["Random baseline"], errors="coerce") / 100.0,
            "n_questions": pd.to_numeric(meta["#datapoints"], errors="coerce").astype(float),
        }
    )
    raw = pd.DataFrame(_read_evals(mirror), columns=["run_id", "task", "raw"])
    raw = raw.assign(value=pd.to_numeric(raw["raw"], errors="coerce"))
    raw = raw.loc[np.isfinite(raw["value"].to_numpy(dtype=float)) & raw["value"].between(0.0, 1.0)]
    raw = raw.merge(runs[["run_id", "planned_tokens"]], on="run_id", how="inner").merge(meta, on="task", how="left")
    return pd.DataFrame(
        {
            "run_id": raw["run_id"],
            "tokens_seen": raw["planned_tokens"].astype(float),
            "task": raw["task"],
            "metric": "acc",
            "shots": raw["shots"].astype("Int64"),
            "chance": raw["chance"].astype(float),
            "n_questions": raw["n_questions"].astype(float),
            "value": raw["value"].astype(float),
        }
    )[list(DOWNSTREAM_COLUMNS)].reset_index(drop=True)


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    runs, losses = _read_models(mirror, bad)
    domains = _task_domains(mirror)

    raw = pd.concat(
        [
            pd.DataFrame(losses, columns=["run_id", "key", "raw"]).assign(group="val"),
            pd.DataFrame(_read_evals(mirror), columns=["run_id", "key", "raw"]).assign(group="downstream"),
        ],
        ignore_index=True,
    )
    known = raw["run_id"].isin(runs["run_id"])
    if (~known).any():
        bad["value of a run without a valid model file"] += int((~known).sum())
        raw = raw.loc[known]
    raw = raw.assign(value=pd.to_numeric(raw["raw"], errors="coerce"))
    numeric = np.isfinite(raw["value"].to_numpy(dtype=float))
    if (~numeric).any():
        bad["non-numeric or non-finite value"] += int((~numeric).sum())
        raw = raw.loc[numeric]
    is_acc = raw["group"] == "downstream"
    out_of_range = is_acc & ~raw["value"].between(0.0, 1.0)
    if out_of_range.any():
        bad["accuracy outside [0, 1]"] += int(out_of_range.sum())
        raw = raw.loc[~out_of_range]
        is_acc = is_acc.loc[raw.index]

    raw = raw.assign(metric=np.where(is_acc, "downstream/" + raw["key"] + "/acc", "val/" + raw["key"] + "/loss"))
    raw = raw.merge(runs[["run_id", "num_params", "planned_tokens"]], on="run_id", how="left")
    observations = pd.DataFrame(
        {
            "run_id": raw["run_id"],
            "tokens_seen": raw["planned_tokens"],
            "flops": chinchilla_flops(raw["num_params"], raw["planned_tokens"]),
            "flops_derived": True,
            "tokens_derived": False,
            "metric": raw["metric"],
            "value": raw["value"].astype(float),
        }
    )[list(OBSERVATION_COLUMNS)]

    val_descriptions = {key: description for _, key, description in VAL_SETS}
    names = raw.drop_duplicates("metric")[["metric", "key", "group"]].sort_values("metric")
    downstream = names["group"] == "downstream"
    metrics = pd.DataFrame(
        {
            "metric": names["metric"].to_numpy(),
            "kind": np.where(downstream, "accuracy", "loss"),
            "higher_is_better": downstream.to_numpy(),
            "domain": np.where(
                downstream,
                names["key"].map(domains).fillna("downstream accuracy (LLM Foundry ICL task)"),
                "validation loss (nats/token), " + names["key"].map(val_descriptions),
            ),
        }
    )[list(METRIC_COLUMNS)]
    if DEFAULT_METRIC not in set(metrics["metric"]):
        metrics = pd.concat(
            [
                metrics,
                pd.DataFrame(
                    [
                        {
                            "metric": DEFAULT_METRIC,
                            "kind": "loss",
                            "higher_is_better": False,
                            "domain": "validation loss (nats/token), " + val_descriptions["c4_val"],
                        }
                    ]
                ),
            ],
            ignore_index=True,
        )

    runs_out = runs.assign(
        architecture="decoder",
        num_params_derived=False,
        source_paper=SOURCE_PAPER,
        domain="language",
        seed=runs["seed"].astype("Int64"),
    )[list(RUN_COLUMNS)]
    families = pd.DataFrame(
        [
            {
                "family": family,
                "default_metric": DEFAULT_METRIC,
                "description": (
                    f"open_lm decoders of Gadre et al. trained on {group['training_data'].iloc[0]}, "
                    f"{group['num_params'].nunique()} sizes x token multipliers M=D/N "
                    f"{group['token_multiplier'].min():g}-{group['token_multiplier'].max():g} "
                    "(multiplier in model_name); final checkpoints only."
                ),
            }
            for family, group in runs.groupby("family", sort=True)
        ],
        columns=list(FAMILY_COLUMNS),
    )
    return SourceFrames(NAME, runs_out, observations, metrics, families, bad).validate()
