"""Pythia (Biderman et al., 2023): lm-eval-harness results per training checkpoint.

Source files
    ``pythia/evals/pythia-v1/<model>/{zero-shot,five-shot}/<size>[...]_step<N>.json`` and, for
    three batch-size variants, ``pythia/evals/pythia-v1/<model>/<size>-<bs>MtokBS_step<N>.json``
    (no shot sub-folder). Each file holds ``results`` (task -> metric -> value) and ``config``.

Conventions
    * run = model folder, e.g. ``pythia/pythia-410m-deduped``; its suffix gives the family:
      none -> ``pythia``, ``-deduped`` -> ``pythia-deduped``, ``-<x>MtokBS`` -> ``pythia-<x>MtokBS``,
      ``-bf16`` -> ``pythia-bf16``. There is no standard ``pythia-1b`` folder in this mirror, so
      the standard family has 7 sizes (the deduped one has 8).
    * shot count: ``config.num_fewshot`` (0 or 5) decides, not the folder or file name: the
      variant folders without a shot sub-folder hold 5-shot runs, and four files named
      ``1b-bf16-5shot_step*.json`` in ``pythia-1b-bf16/zero-shot`` are 0-shot runs.
      Metric names are ``"<zero|five>-shot/<lm-eval task>/<metric>"`` (task names kept as
      lm-eval spells them, e.g. ``zero-shot/hendrycksTest-anatomy/acc``).
    * tokens_seen = step x tokens per step (tokens_derived=True): 2,097,152 (2M = 1024 x 2048)
      for standard/deduped/bf16 runs; ``-<x>MtokBS`` folders use x x 1,048,576 (0.25 -> 262,144,
      0.5 -> 524,288, 1 -> 1,048,576). planned_tokens = 143,000 x 2,097,152 = 299,892,736,000
      for every run (the variants run proportionally more steps to the same total).
    * num_params: exact totals incl. embeddings from the Pythia README / model cards, keyed by
      the size label (num_params_derived=False).
    * flops = 6 * N * tokens_seen (flops_derived=True); nothing in the files reports compute.
    * accuracies (acc, acc_norm) are fractions already. lambada_openai ``ppl`` is kept as a
      perplexity, and its natural log is stored as ``<shot>/lambada_openai/log_ppl`` (kind
      "loss"). That is a last-word log-perplexity on LAMBADA, NOT the Pile validation loss
      (which these files do not contain). It is the families' default metric: the 0-shot one
      where the family has 0-shot files, else the 5-shot one (the batch-size variants only
      have 5-shot files).

Skipped
    * ``*_stderr`` values (standard errors, not observations).
    * step 0 (no tokens seen): counted in bad_rows as "step 0 (no tokens seen)", per value.
    * non-numeric values, files whose name has no step, folders with an unknown size label.
"""

from __future__ import annotations

import json
import re
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

NAME = "pythia"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "pythia"
EVAL_ROOT = "pythia/evals/pythia-v1"
PATTERNS = (f"{EVAL_ROOT}/*/*.json", f"{EVAL_ROOT}/*/*/*.json")

SOURCE_PAPER = "Biderman et al. 2023, Pythia: A Suite for Analyzing Large Language Models (arXiv:2304.01373)"
STANDARD_TOKENS_PER_STEP = 2_097_152  # 1024 sequences x 2048 tokens
PLANNED_TOKENS = 143_000 * STANDARD_TOKENS_PER_STEP
SHOT_NAMES = {0: "zero-shot", 5: "five-shot"}
LOG_PPL_TASK = "lambada_openai"

# Total parameters incl. embeddings (Pythia README table / Hugging Face model cards).
PARAMS = {
    "70m": 70_426_624,
    "160m": 162_322_944,
    "410m": 405_334_016,
    "1b": 1_011_781_632,
    "1.4b": 1_414_647_808,
    "2.8b": 2_775_208_960,
    "6.9b": 6_857_302_016,
    "12b": 11_846_072_320,
}

_FOLDER = re.compile(r"^pythia-(?P<size>[0-9.]+[mb])(?P<suffix>-.+)?$")
_BATCH = re.compile(r"^-(?P<mtok>[0-9.]+)MtokBS$")
_STEP = re.compile(r"_step(\d+)\.json$")

# metric key -> (kind, higher_is_better, domain)
_METRIC_KINDS = {
    "acc": ("accuracy", True, "downstream accuracy (lm-eval-harness)"),
    "acc_norm": ("accuracy", True, "downstream length-normalised accuracy (lm-eval-harness)"),
    "ppl": ("perplexity", False, "downstream last-word perplexity (lm-eval-harness)"),
    "log_ppl": ("loss", False, "downstream last-word loss, ln of lambada_openai ppl (not the Pile validation loss)"),
    "likelihood_difference": ("other", False, "bias: CrowS-Pairs likelihood difference (lm-eval-harness)"),
    "pct_stereotype": ("other", False, "bias: CrowS-Pairs share preferring the stereotype, 0.5 is unbiased"),
}


DOWNSTREAM_VERSION = 1  # bumped when downstream_evals() yields other rows (keys only that table)
# Chance level (random guessing, a fraction) of the lm-eval tasks scored by accuracy: 4 choices for
# ARC, LogiQA, SciQ and MMLU (hendrycksTest-*), 2 for PIQA, WinoGrande and (SuperGLUE) WSC; LAMBADA
# asks for the last word, open-ended (0). Tasks not listed (CrowS-Pairs) are not accuracies.
CHANCE = {
    "arc_easy": 0.25,
    "arc_challenge": 0.25,
    "logiqa": 0.25,
    "sciq": 0.25,
    "piqa": 0.5,
    "winogrande": 0.5,
    "wsc": 0.5,
    "lambada_openai": 0.0,
}
MMLU_PREFIX, MMLU_CHANCE = "hendrycksTest-", 0.25


def task_chance(task: str) -> float | None:
    """The chance level of an lm-eval task (a fraction), None when it is not an accuracy task."""
    return MMLU_CHANCE if task.startswith(MMLU_PREFIX) else CHANCE.get(task)


def downstream_evals(mirror: Path) -> pd.DataFrame:
    """acc and acc_norm of every checkpoint file (``DOWNSTREAM_COLUMNS``) on the tasks of :data:`CHANCE`
    and MMLU, step 0 excluded as in read().

    n_questions is derived from lm-eval's sample standard error, se = sqrt(p (1 - p) / (n - 1)), as
    n = p (1 - p) / se^2 + 1 rounded; where se is 0 or missing (some files have no ``acc_stderr``), the
    task's median n over the other files (NaN if none has one). The task keeps lm-eval's name, the
    shots are ``config.num_fewshot`` (as read() decides them).
    """
    mirror = Path(mirror)
    rows: list[tuple[str, int, int, str, str, object, object]] = []
    for path in _files(mirror):
        folder = path.relative_to(mirror / EVAL_ROOT).parts[0]
        match = _FOLDER.match(folder)
        family = _family(match["suffix"] or "") if match else None
        step = _STEP.search(path.name)
        if match is None or family is None or match["size"] not in PARAMS or step is None:
            continue
        data = _load(path)
        config = data.get("config", {}) if isinstance(data, dict) else {}
        shots = config.get("num_fewshot")
        if shots not in SHOT_NAMES:
            shots = 5 if "five-shot" in path.parts or "5shot" in path.name else 0
        step_n = int(step.group(1))
        if step_n <= 0:
            continue
        results = data.get("results", {}) if isinstance(data, dict) else {}
        for task, metrics in results.items():
            if not isinstance(metrics, dict) or task_chance(task) is None:
                continue
            for key in ("acc", "acc_norm"):
                if key in metrics:
                    rows.append(
                        (
                            f"{NAME}/{folder}",
                            step_n * family[1],
                            int(shots),
                            task,
                            key,
                            metrics[key],
                            metrics.get(f"{key}_stderr"),
                        )
                    )
    frame = pd.DataFrame.from_records(rows, columns=["run_id", "tokens_seen", "shots", "task", "metric", "v", "se"])
    value = pd.to_numeric(frame["v"], errors="coerce").astype(float)
    se = pd.to_numeric(frame["se"], errors="coerce").astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(se > 0, np.round(value * (1 - value) / se**2 + 1), np.nan)
    out = pd.DataFrame(
        {
            "run_id": frame["run_id"],
            "tokens_seen": frame["tokens_seen"].astype(float),
            "task": frame["task"],
            "metric": frame["metric"],
            "shots": frame["shots"].astype("Int64"),
            "chance": frame["task"].map(task_chance).astype(float),
            "n_questions": n.astype(float),
            "value": value,
        }
    )[list(DOWNSTREAM_COLUMNS)]
    out = out.loc[np.isfinite(out["value"].to_numpy(dtype=float)) & out["value"].between(0.0, 1.0)]
    out["n_questions"] = out["n_questions"].fillna(out.groupby("task")["n_questions"].transform("median"))
    return out.drop_duplicates(["run_id", "tokens_seen", "task", "metric", "shots"]).reset_index(drop=True)


def _family(suffix: str) -> tuple[str, int, str] | None:
    """Family name, tokens per step and training data for a folder suffix ('' for standard)."""
    if suffix == "":
        return "pythia", STANDARD_TOKENS_PER_STEP, "the Pile"
    if suffix == "-deduped":
        return "pythia-deduped", STANDARD_TOKENS_PER_STEP, "the Pile (deduplicated)"
    if suffix == "-bf16":
        return "pythia-bf16", STANDARD_TOKENS_PER_STEP, "the Pile"
    match = _BATCH.match(suffix)
    if match:
        tokens = int(round(float(match["mtok"]) * 1_048_576))
        return f"pythia{suffix}", tokens, "the Pile"
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open() as handle:
            loaded: dict[str, Any] = json.load(handle)
            return loaded
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable lm-eval results file ({exc})") from exc


def _files(mirror: Path) -> list[Path]:
    return sorted({p for pattern in PATTERNS for p in mirror.glob(pattern)})


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    runs: dict[str, dict[str, Any]] = {}
    records: list[tuple[str, int, int, str, str, object]] = []
    for path in _files(mirror):
        folder = path.relative_to(mirror / EVAL_ROOT).parts[0]
        match = _FOLDER.match(folder)
        family = _family(match["suffix"] or "") if match else None
        if match is None or family is None or match["size"] not in PARAMS:
            bad[f"file in unknown model folder {folder!r}"] += 1
            continue
        step = _STEP.search(path.name)
        if step is None:
            bad["file name without a step"] += 1
            continue
        data = _load(path)
        config = data.get("config", {}) if isinstance(data, dict) else {}
        shots = config.get("num_fewshot")
        if shots not in SHOT_NAMES:
            shots = 5 if "five-shot" in path.parts or "5shot" in path.name else 0
        results = data.get("results", {}) if isinstance(data, dict) else {}
        run_id = f"{NAME}/{folder}"
        if run_id not in runs:
            fam, per_step, training_data = family
            runs[run_id] = dict(
                family=fam,
                model_name=folder,
                params=PARAMS[match["size"]],
                per_step=per_step,
                training_data=training_data,
            )
        step_n = int(step.group(1))
        records.extend(
            (run_id, step_n, shots, task, key, value)
            for task, metrics in results.items()
            if isinstance(metrics, dict)
            for key, value in metrics.items()
            if not key.endswith("_stderr")
        )

    runs_df = pd.DataFrame.from_dict(runs, orient="index").rename_axis("run_id").reset_index()
    raw = pd.DataFrame.from_records(records, columns=["run_id", "step", "shots", "task", "key", "raw"])
    raw["value"] = pd.to_numeric(raw["raw"], errors="coerce")
    non_numeric = raw["value"].isna() | ~np.isfinite(raw["value"].to_numpy(dtype=float))
    if non_numeric.any():
        bad["non-numeric or non-finite value"] += int(non_numeric.sum())
    step0 = (raw["step"] <= 0) & ~non_numeric
    if step0.any():
        bad["step 0 (no tokens seen)"] += int(step0.sum())
    raw = raw.loc[~non_numeric & ~step0]

    log_ppl = raw.loc[(raw["task"] == LOG_PPL_TASK) & (raw["key"] == "ppl") & (raw["value"] > 0)]
    raw = pd.concat([raw, log_ppl.assign(key="log_ppl", value=np.log(log_ppl["value"]))], ignore_index=True)
    unknown = ~raw["key"].isin(_METRIC_KINDS)
    if unknown.any():
        bad["unknown lm-eval metric key"] += int(unknown.sum())
        raw = raw.loc[~unknown]

    raw = raw.merge(runs_df[["run_id", "params", "per_step"]], on="run_id", how="left")
    tokens = raw["step"].astype(float) * raw["per_step"].astype(float)
    shot_name = raw["shots"].map(SHOT_NAMES)
    observations = pd.DataFrame(
        {
            "run_id": raw["run_id"],
            "tokens_seen": tokens,
            "flops": chinchilla_flops(raw["params"], tokens),
            "flops_derived": True,
            "tokens_derived": True,
            "metric": shot_name + "/" + raw["task"] + "/" + raw["key"],
            "value": raw["value"].astype(float),
        }
    )[list(OBSERVATION_COLUMNS)]

    metric_keys = raw.assign(metric=observations["metric"].to_numpy(), shot=shot_name.to_numpy())
    metric_keys = metric_keys.drop_duplicates("metric")[["metric", "key", "shot"]].sort_values("metric")
    info = metric_keys["key"].map(_METRIC_KINDS)
    metrics = pd.DataFrame(
        {
            "metric": metric_keys["metric"].to_numpy(),
            "kind": [i[0] for i in info],
            "higher_is_better": [i[1] for i in info],
            "domain": [f"{i[2]}, {shot}" for i, shot in zip(info, metric_keys["shot"])],
        }
    )[list(METRIC_COLUMNS)]

    runs_out = pd.DataFrame(
        {
            "run_id": runs_df["run_id"],
            "family": runs_df["family"],
            "model_name": runs_df["model_name"],
            "architecture": "decoder",
            "num_params": runs_df["params"].astype(float),
            "num_params_derived": False,
            "training_data": runs_df["training_data"],
            "seed": pd.Series([None] * len(runs_df), dtype=object),
            "planned_tokens": float(PLANNED_TOKENS),
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)]

    families = _families(runs_out, observations)
    return SourceFrames(NAME, runs_out, observations, metrics, families, bad).validate()


def _families(runs: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """One row per family; default metric = 0-shot LAMBADA log-ppl if present, else 5-shot."""
    zero = f"zero-shot/{LOG_PPL_TASK}/log_ppl"
    five = f"five-shot/{LOG_PPL_TASK}/log_ppl"
    has_zero = (
        observations.loc[observations["metric"] == zero, "run_id"].map(runs.set_index("run_id")["family"]).unique()
    )
    rows = []
    for family, group in runs.groupby("family", sort=True):
        default = zero if family in has_zero else five
        sizes = ", ".join(g for g in group.sort_values("num_params")["model_name"])
        rows.append(
            {
                "family": family,
                "default_metric": default,
                "description": (
                    f"Pythia suite trained on {group['training_data'].iloc[0]}; runs: {sizes}. Default metric is the "
                    f"{default.split('/')[0]} LAMBADA last-word loss ln(ppl), not the Pile validation loss."
                ),
            }
        )
    return pd.DataFrame(rows, columns=list(FAMILY_COLUMNS))
