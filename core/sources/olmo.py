"""OLMo 1B / 7B / 7B-Twin-2T training curves (AI2, W&B logs collected by ColPret).

Source files
    ``colpret/raw_data/OLMO/wandb_export_*.csv`` (93 W&B panel exports, one metric per file,
    one column per restart segment ``OLMo-7B-run-NNN`` or a single ``Group: OLMo-1B`` column)
    and ``colpret/aggregated_eval/olmo.csv`` (ColPret's merge of those exports, one row per
    model and step, plus an HF ``checkpoint`` revision string).

Why both files
    Every (model, metric, step) value of ``olmo.csv`` is also in the raw exports, and the raw
    exports add 824 more: OLMo-7B ptb loss/perplexity for steps 21k-432k (ColPret kept the
    shorter of two downloads). ``olmo.csv`` also doubled OLMo-7B-Twin-2T values at the 11
    steps 158k-168k where two restart segments overlap (ColPret summed the segments). So
    the raw exports are read first (at an overlap the later segment wins; the values are
    identical in this mirror); ``olmo.csv`` only fills (model, metric, step) keys the raw
    exports lack, and each of its values that disagrees with a raw value is counted in
    ``bad_rows`` (165 in this mirror). If ``raw_data/OLMO`` is absent, ``olmo.csv`` alone is used.

Conventions
    * tokens_seen = step x tokens per step (tokens_derived=True): OLMo-1B 2048 x 2048 =
      4,194,304 (configs/official/OLMo-1B.yaml: global_train_batch_size 2048,
      max_sequence_length 2048); OLMo-7B and the Twin 2160 x 2048 = 4,423,680, which the
      HF revision names confirm (e.g. ``step556000-tokens2460B``: 556,000 x 4,423,680 = 2.4596T).
      ColPret used a flat 4e6 per step. The revision strings in ``olmo.csv`` were all taken
      from the allenai/OLMo-7B branches (ColPret queried that repo for every model), so they
      are valid for OLMo-7B and the Twin but NOT for OLMo-1B; they are not used as tokens.
    * num_params: exact totals of the published architectures (no biases, non-parametric
      layer norm, 50,304-row embedding): 1B = 16 x 67,108,864 + 103,022,592 (tied embedding)
      = 1,176,764,416; 7B = 32 x 202,375,168 + 2 x 206,045,184 (untied) = 6,888,095,744
      (Twin: same architecture). num_params_derived=False.
    * flops = 6 * N * tokens_seen (flops_derived=True).
    * families: ``olmo`` = OLMo-1B + OLMo-7B (one recipe on Dolma, two sizes; ColPret's
      scaled set "olmo"). OLMo-7B-Twin-2T is the same 7B recipe re-run on other hardware
      (AMD/LUMI) to 2T tokens; ColPret leaves it out of the "olmo" scaled set, and a second
      7B run would double-weight one size in a size-scaling fit, so it is its own family
      ``olmo-twin-2t``.
    * metric names: the unprefixed OLMo-7B/Twin evaluation sets (``c4_en-validation``) are
      the same files as OLMo-1B's ``v2-small-c4_en-validation`` (both read
      ``eval-data/perplexity/v2_small_gptneox20b/<set>/val.npy``: allenai/OLMo
      configs/v1_5-mix-medium-mitch-ish.yaml vs configs/official/OLMo-1B.yaml), so both map
      to ``val/<set>/loss`` (CrossEntropyLoss, nats/token) and ``val/<set>/ppl``
      (Perplexity). ``v3-small-<set>-validation`` -> ``val/v3/<set>/loss``. OLMo-1B's
      ``eval/pile/CrossEntropyLoss`` (a separate evaluator, ~0.01 nats off ln of the v2-small
      pile perplexity) -> ``val/pile-evaluator/loss``. Downstream: ``<task>_acc`` ->
      ``downstream/<task>/acc``, ``<task>_len_norm`` -> ``downstream/<task>/acc_len_norm``
      (fractions already), ``mrpc_f1`` -> ``downstream/mrpc/f1`` (kind "other").
    * ``val/<set>/log_ppl`` = ln(ppl) (kind "loss") is added only where a run reports the
      perplexity of a set but not its cross-entropy (Twin c4_en and c4_100_domains, 1B
      pile); elsewhere ln(ppl) would duplicate the reported loss.
    * default metrics: ``olmo`` -> ``val/c4_en/loss``; ``olmo-twin-2t`` -> ``val/c4_en/log_ppl``
      (the Twin logged only the C4 perplexity).

Skipped (counted in bad_rows)
    missing / non-numeric / non-positive steps, non-numeric values, series of unknown models
    or metrics, and the olmo.csv values that disagree with the raw exports (see above).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
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

NAME = "olmo"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
AGGREGATED = "colpret/aggregated_eval/olmo.csv"
RAW_DIR = "colpret/raw_data/OLMO"
PATTERNS = (AGGREGATED, f"{RAW_DIR}/*.csv")

SOURCE_PAPER = "Groeneveld et al. 2024, OLMo: Accelerating the Science of Language Models (arXiv:2402.00838)"
TRAINING_DATA = "Dolma v1.5 (OLMo mix)"
TOKENS_PER_STEP_1B = 2048 * 2048  # 4,194,304
TOKENS_PER_STEP_7B = 2160 * 2048  # 4,423,680

# model name in the files -> run facts
MODELS: dict[str, dict[str, Any]] = {
    "OLMo-1B": dict(
        family="olmo", params=1_176_764_416, per_step=TOKENS_PER_STEP_1B, planned=739_328 * TOKENS_PER_STEP_1B
    ),  # max_duration 739,328 steps (3.1T)
    "OLMo-7B": dict(
        family="olmo", params=6_888_095_744, per_step=TOKENS_PER_STEP_7B, planned=556_000 * TOKENS_PER_STEP_7B
    ),  # final release step556000-tokens2460B
    "OLMo-7B-Twin-2T": dict(family="olmo-twin-2t", params=6_888_095_744, per_step=TOKENS_PER_STEP_7B, planned=2e12),
}
FAMILIES = (
    ("olmo", "val/c4_en/loss", "OLMo 1B and 7B (AI2), Dolma v1.5; default: C4 (v2-small) validation cross-entropy"),
    (
        "olmo-twin-2t",
        "val/c4_en/log_ppl",
        "OLMo-7B-Twin-2T: the OLMo-7B recipe re-run on AMD/LUMI hardware to 2T tokens; "
        "default: ln of the C4 (v2-small) validation perplexity",
    ),
)

_SERIES = re.compile(r"^(?:Group: )?(?P<model>.+?)(?:-run-(?P<segment>\d+))? - eval/(?P<key>.+)$")
_VALIDATION = re.compile(
    r"^(?:(?P<suite>v[23])-small-)?(?P<set>[\w.-]+?)-validation/(?P<stat>CrossEntropyLoss|Perplexity)$"
)
_DOWNSTREAM = re.compile(r"^downstream/(?P<task>\w+?)_(?P<stat>acc|len_norm|f1)$")
_STAT_SUFFIX = {"CrossEntropyLoss": "loss", "Perplexity": "ppl", "acc": "acc", "len_norm": "acc_len_norm", "f1": "f1"}
_NON_METRIC_COLUMNS = ("Step", "model_name", "num_params", "checkpoint")

# metric suffix -> (kind, higher_is_better, domain)
_KINDS = {
    "loss": ("loss", False, "validation loss (cross-entropy, nats/token)"),
    "log_ppl": ("loss", False, "validation loss (ln of ppl)"),
    "ppl": ("perplexity", False, "validation perplexity"),
    "acc": ("accuracy", True, "downstream accuracy (OLMo in-loop evaluation)"),
    "acc_len_norm": ("accuracy", True, "downstream length-normalised accuracy (OLMo in-loop evaluation)"),
    "f1": ("other", True, "downstream F1 (OLMo in-loop evaluation)"),
}


def metric_name(key: str) -> str | None:
    """Map an OLMo W&B metric key (without ``eval/``) to a scaleplan metric name, or None."""
    if key == "pile/CrossEntropyLoss":
        return "val/pile-evaluator/loss"
    match = _VALIDATION.match(key)
    if match:
        prefix = "val/v3/" if match["suite"] == "v3" else "val/"
        return f"{prefix}{match['set']}/{_STAT_SUFFIX[match['stat']]}"
    match = _DOWNSTREAM.match(key)
    if match:
        return f"downstream/{match['task']}/{_STAT_SUFFIX[match['stat']]}"
    return None


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": pd.Series(dtype=str),
            "key": pd.Series(dtype=str),
            "step": pd.Series(dtype=float),
            "value": pd.Series(dtype=float),
        }
    )


def _read_raw(mirror: Path, bad: Counter[str]) -> pd.DataFrame:
    """Long (model, segment, key, step, value) rows of every raw export."""
    parts = []
    for path in sorted((mirror / RAW_DIR).glob("*.csv")):
        long = _wandb.read_export(path, bad, "raw W&B export")
        parsed = long["series"].str.extract(_SERIES)
        unparsed = parsed["model"].isna()
        if unparsed.any():
            bad["raw W&B export: unrecognised series name"] += int(unparsed.sum())
        long = pd.concat([long.drop(columns="series"), parsed], axis=1).loc[~unparsed]
        parts.append(long)
    if not parts:
        return _empty()
    raw = pd.concat(parts, ignore_index=True)
    raw["segment"] = pd.to_numeric(raw["segment"]).fillna(-1)
    # after a restart the later segment wins where two segments logged the same step
    raw = raw.sort_values("segment", ascending=False, kind="stable")
    return raw.drop_duplicates(["model", "key", "step"], keep="first")


def _read_aggregated(mirror: Path, bad: Counter[str]) -> pd.DataFrame:
    path = mirror / AGGREGATED
    if not path.exists():
        return _empty()
    frame = _wandb.read_csv(path)
    missing = {"Step", "model_name"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    value_columns = [c for c in frame.columns if c not in _NON_METRIC_COLUMNS]
    frame["model_name"] = frame["model_name"].str.strip()
    long = _wandb.to_long(frame, "Step", value_columns, bad, "olmo.csv", id_columns=("model_name",))
    return long.rename(columns={"model_name": "model", "series": "key"})


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    raw = _read_raw(mirror, bad)[["model", "key", "step", "value"]]
    agg = _read_aggregated(mirror, bad)[["model", "key", "step", "value"]]

    both = agg.merge(raw, on=["model", "key", "step"], suffixes=("_agg", "_raw"))
    differs = ~np.isclose(
        both["value_agg"].to_numpy(dtype=float), both["value_raw"].to_numpy(dtype=float), rtol=1e-6, atol=0.0
    )
    if differs.any():
        bad["olmo.csv value differs from the raw W&B export (restart overlap summed); raw kept"] += int(differs.sum())
    long = pd.concat([raw, agg], ignore_index=True).drop_duplicates(["model", "key", "step"], keep="first")

    known_model = long["model"].isin(list(MODELS))
    long["metric"] = long["key"].map({key: metric_name(key) for key in long["key"].unique()})
    known_metric = long["metric"].notna()
    positive = long["step"] > 0
    for reason, mask in (
        ("unknown model name", ~known_model),
        ("unrecognised metric column", known_model & ~known_metric),
        ("non-positive step", known_model & known_metric & ~positive),
    ):
        if mask.any():
            bad[reason] += int(mask.sum())
    long = long.loc[known_model & known_metric & positive]

    facts = pd.DataFrame.from_dict(MODELS, orient="index")
    per_step = long["model"].map(facts["per_step"]).astype(float)
    params = long["model"].map(facts["params"]).astype(float)
    tokens = long["step"].to_numpy(dtype=float) * per_step.to_numpy()
    obs = pd.DataFrame(
        {
            "run_id": NAME + "/" + long["model"],
            "tokens_seen": tokens,
            "flops": chinchilla_flops(params.to_numpy(), tokens),
            "flops_derived": True,
            "tokens_derived": True,
            "metric": long["metric"],
            "value": long["value"].astype(float),
        }
    )
    obs = pd.concat([obs, _log_ppl_rows(obs, bad)], ignore_index=True)[list(OBSERVATION_COLUMNS)]

    frames = SourceFrames(
        name=NAME,
        runs=_runs(),
        observations=obs,
        metrics=_metrics(set(obs["metric"]) | {default for _, default, _ in FAMILIES}),
        families=pd.DataFrame(FAMILIES, columns=list(FAMILY_COLUMNS)),
        bad_rows=bad,
    )
    return frames.validate()


def _log_ppl_rows(obs: pd.DataFrame, bad: Counter[str]) -> pd.DataFrame:
    """ln(ppl) rows for (run, set) pairs that report a perplexity but no cross-entropy."""
    is_ppl = obs["metric"].str.endswith("/ppl")
    is_loss = obs["metric"].str.endswith("/loss")
    with_loss = set(obs.loc[is_loss, "run_id"] + "|" + obs.loc[is_loss, "metric"].str[: -len("/loss")])
    prefix = obs.loc[is_ppl, "metric"].str[: -len("/ppl")]
    needed = ~(obs.loc[is_ppl, "run_id"] + "|" + prefix).isin(with_loss)
    rows = obs.loc[is_ppl].loc[needed].copy()
    positive = rows["value"] > 0
    if (~positive).any():
        bad["non-positive perplexity (no log_ppl)"] += int((~positive).sum())
    rows = rows.loc[positive]
    rows["metric"] = prefix.loc[rows.index] + "/log_ppl"
    rows["value"] = np.log(rows["value"].to_numpy(dtype=float))
    return rows


def _metrics(names: Iterable[str]) -> pd.DataFrame:
    rows = []
    for metric in sorted(names):
        kind, higher, domain = _KINDS[metric.rsplit("/", 1)[1]]
        rows.append((metric, kind, higher, domain))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))


def _runs() -> pd.DataFrame:
    rows = [
        (
            f"{NAME}/{model}",
            facts["family"],
            model,
            "decoder",
            float(facts["params"]),
            False,
            TRAINING_DATA,
            None,
            float(facts["planned"]),
            SOURCE_PAPER,
            "language",
        )
        for model, facts in MODELS.items()
    ]
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


DOWNSTREAM_VERSION = 1  # bumped when downstream_from_frames() yields other rows (keys only that table)


def downstream_from_frames(frames: SourceFrames) -> pd.DataFrame:
    """Scores for the downstream_evals table from what read() yielded: OLMo's in-loop evaluations (shots not stated), on the tasks of
    ``base.COMMON_CHANCE`` with their chance level; question counts not stated (NaN)."""
    from .base import COMMON_CHANCE, accuracy_scores

    return accuracy_scores(frames, COMMON_CHANCE, shots=None)
