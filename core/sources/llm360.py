"""LLM360 K2 (65B) and Amber (7B): training loss and per-checkpoint evaluations from W&B.

Source files
    ``colpret/raw_data/lm360/K2/wandb_export_*.csv``: one training-loss export (x-axis =
    consumed samples, series ``k2 training - lm loss`` and a sparser ``training spikes - lm
    loss`` copy of the same curve) and five eval exports (x-axis = checkpoint number,
    series ``k2 eval``, ``k2 ministage eval``, ``k2 eval spike 1/2`` per task, in percent).
    ``colpret/aggregated_eval/K2.csv``: ColPret's merge; only its ``k2 training - lm loss``
    column is read, to fill steps the raw export lacks (none in this mirror: the raw export
    is a strict superset with identical values and 420 more loss steps). Its evals are not
    read (they sit on loss rows, their checkpoint number is lost) nor its ``tokens_seen``.
    ``colpret/raw_data/lm360/Amber/wandb_export_*.csv``: 40 exports, one metric each,
    x-axis = checkpoint number (ColPret's ``aggregated_eval/Amber.csv`` is not in the mirror).

Conventions
    * K2 training loss: ``train/loss`` (kind loss; K2 has no validation loss in these files).
      Where both series have a value at a step they agree; ``k2 training`` is kept.
    * K2 tokens: the K2 data card gives stage 1 = 1,300.0B tokens (360 checkpoints, the
      ``k2 eval`` series 1..360) and stage 2 = 69.4B tokens (the ``k2 ministage eval`` series
      361..380). The loss curve is stage 1; its x-axis counts consumed samples (multiples of
      the 2,040-sequence batch) up to 495,195,720. K2 used dynamic sequence lengths, so
      tokens are taken proportional to samples and scaled to the stage-1 total:
      tokens = samples x 1.3e12 / 495,195,720 (samples x 2,048 would give only 1.01T).
      Checkpoint c <= 360 -> c x 1.3e12 / 360; ministage checkpoint c in 361..380 ->
      1.3e12 + (c - 360) x 69.4e9 / 20. All tokens_derived=True. (ColPret's K2.csv instead
      spreads 1.4T evenly over its rows, which are not evenly spaced in samples.)
    * Amber tokens: 1,259.13B tokens in 360 equal data chunks; checkpoint c (``ckpt_{c}``, 0
      based) has seen c + 1 chunks: tokens = (c + 1) x 1,259.13e9 / 360 (tokens_derived=True).
    * num_params: exact totals of the published LLaMA-style architectures (config.json:
      untied embeddings, no biases): K2 80 x 809,517,056 + 2 x 32,032 x 8,192 + 8,192 =
      65,286,184,960; Amber (LLaMA-7B shape) 6,738,415,616. num_params_derived=False.
    * flops = 6 * N * tokens_seen (flops_derived=True).
    * accuracies are reported in percent and stored as fractions (/100). K2 task names keep
      the source's ``@k`` suffix (``@5`` = 5-shot, ``@0`` = 0-shot, ``mbpp@10``):
      ``downstream/arc_easy@5/acc``. Amber: ``downstream/<task>/acc``, except ``crowspairs``,
      a bias score (share preferring the stereotype, 0.5 = unbiased):
      ``downstream/crowspairs/pct_stereotype``, kind "other".
    * Amber perplexities are per Pile subset (``perplexity_eval - Pile-CC`` ->
      ``val/pile/pile_cc/ppl``) and ``val/pile/<subset>/log_ppl`` = ln(ppl) (kind loss) is
      stored alongside, since Amber logs no cross-entropy.
    * families: ``llm360-k2`` (default ``train/loss``) and ``llm360-amber`` (default
      ``val/pile/pile_cc/log_ppl``, the Pile web-text subset), one run each. Family default
      metrics are always listed in the metrics frame, even if their files are missing.

Skipped
    * ``k2 eval spike 1`` / ``k2 eval spike 2``: evaluations of the branches re-run around
      loss spikes (checkpoints 160-240); they disagree with the main ``k2 eval`` values at the
      same checkpoint and are not on the released trajectory (ColPret drops them too).
    * counted in bad_rows: missing / non-numeric steps, non-numeric values, checkpoint
      numbers outside the known range, unknown series.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

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

NAME = "llm360"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
K2_AGGREGATED = "colpret/aggregated_eval/K2.csv"
K2_DIR = "colpret/raw_data/lm360/K2"
AMBER_DIR = "colpret/raw_data/lm360/Amber"
PATTERNS = (K2_AGGREGATED, f"{K2_DIR}/*.csv", f"{AMBER_DIR}/*.csv")

K2_RUN = f"{NAME}/K2"
AMBER_RUN = f"{NAME}/Amber"
K2_PARAMS = 80 * (4 * 8192 * 8192 + 3 * 8192 * 22016 + 2 * 8192) + 2 * 32032 * 8192 + 8192
AMBER_PARAMS = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096) + 2 * 32000 * 4096 + 4096
K2_STAGE1_TOKENS = 1_300.0e9
K2_STAGE2_TOKENS = 69.4e9
K2_STAGE1_CHECKPOINTS = 360
K2_STAGE2_CHECKPOINTS = 20
K2_FINAL_SAMPLES = 495_195_720  # last consumed-samples value of the stage-1 loss export
AMBER_TOKENS = 1_259.13e9
AMBER_CHECKPOINTS = 360

K2_LOSS_SERIES = ("k2 training - lm loss", "training spikes - lm loss")  # priority order
K2_SKIPPED_PREFIXES = ("k2 eval spike 1", "k2 eval spike 2")
_K2_EVAL = re.compile(r"^(?P<stage>k2 eval|k2 ministage eval) - (?P<task>\S+)$")
_AMBER = re.compile(r"^(?P<group>perplexity_eval|downstream_eval) - (?P<name>.+)$")

RUNS = (
    (
        K2_RUN,
        "llm360-k2",
        "K2",
        "decoder",
        float(K2_PARAMS),
        False,
        "LLM360/K2Datasets",
        None,
        K2_STAGE1_TOKENS + K2_STAGE2_TOKENS,
        "Liu et al. 2025, LLM360 K2: Building a 65B 360-Open-Source Large Language Model from Scratch (arXiv:2501.07124)",
        "language",
    ),
    (
        AMBER_RUN,
        "llm360-amber",
        "Amber",
        "decoder",
        float(AMBER_PARAMS),
        False,
        "LLM360/AmberDatasets",
        None,
        AMBER_TOKENS,
        "Liu et al. 2023, LLM360: Towards Fully Transparent Open-Source LLMs (arXiv:2312.06550)",
        "language",
    ),
)
FAMILIES = (
    ("llm360-k2", "train/loss", "LLM360 K2-65B (stage 1 + stage 2); default: training loss"),
    (
        "llm360-amber",
        "val/pile/pile_cc/log_ppl",
        "LLM360 Amber-7B; default: ln of the Pile-CC validation perplexity (no cross-entropy logged)",
    ),
)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def _k2(mirror: Path, bad: Counter[str]) -> pd.DataFrame:
    """K2 long rows (tokens, metric, value)."""
    parts = [_wandb.read_export(p, bad, "K2 W&B export") for p in sorted((mirror / K2_DIR).glob("*.csv"))]
    aggregated = mirror / K2_AGGREGATED
    if aggregated.exists():
        frame = _wandb.read_csv(aggregated)
        if {"Step", K2_LOSS_SERIES[0]} - set(frame.columns):
            raise ValueError(f"{aggregated}: missing 'Step' or {K2_LOSS_SERIES[0]!r}")
        parts.append(_wandb.to_long(frame, "Step", [K2_LOSS_SERIES[0]], bad, "K2.csv"))
    if not parts:
        return pd.DataFrame(columns=["tokens", "metric", "value"])
    long = pd.concat(parts, ignore_index=True)  # raw exports first, K2.csv last

    is_loss = long["series"].isin(K2_LOSS_SERIES)
    loss = long.loc[is_loss].assign(rank=long.loc[is_loss, "series"].map(K2_LOSS_SERIES.index))
    loss = loss.sort_values("rank", kind="stable").drop_duplicates("step", keep="first")
    positive = loss["step"] > 0
    if (~positive).any():
        bad["K2 loss: non-positive step"] += int((~positive).sum())
    loss = loss.loc[positive]
    loss_rows = pd.DataFrame(
        {
            "tokens": loss["step"] * (K2_STAGE1_TOKENS / K2_FINAL_SAMPLES),
            "metric": "train/loss",
            "value": loss["value"],
        }
    )

    evals = long.loc[~is_loss & ~long["series"].str.startswith(K2_SKIPPED_PREFIXES)]
    parsed = evals["series"].str.extract(_K2_EVAL)
    unknown = parsed["task"].isna()
    if unknown.any():
        bad["K2: unrecognised series"] += int(unknown.sum())
    evals, parsed = evals.loc[~unknown], parsed.loc[~unknown]
    checkpoint = evals["step"]
    main = parsed["stage"] == "k2 eval"
    in_range = np.where(
        main,
        checkpoint.between(1, K2_STAGE1_CHECKPOINTS),
        checkpoint.between(K2_STAGE1_CHECKPOINTS + 1, K2_STAGE1_CHECKPOINTS + K2_STAGE2_CHECKPOINTS),
    )
    if (~in_range).any():
        bad["K2 eval: checkpoint number out of range"] += int((~in_range).sum())
    tokens = np.where(
        main,
        checkpoint * (K2_STAGE1_TOKENS / K2_STAGE1_CHECKPOINTS),
        K2_STAGE1_TOKENS + (checkpoint - K2_STAGE1_CHECKPOINTS) * (K2_STAGE2_TOKENS / K2_STAGE2_CHECKPOINTS),
    )
    eval_rows = pd.DataFrame(
        {
            "tokens": tokens,
            "metric": "downstream/" + parsed["task"] + "/acc",
            "value": evals["value"] / 100.0,
        }
    ).loc[in_range]
    return pd.concat([loss_rows, eval_rows], ignore_index=True)


def _amber(mirror: Path, bad: Counter[str]) -> pd.DataFrame:
    """Amber long rows (tokens, metric, value)."""
    parts = [_wandb.read_export(p, bad, "Amber W&B export") for p in sorted((mirror / AMBER_DIR).glob("*.csv"))]
    if not parts:
        return pd.DataFrame(columns=["tokens", "metric", "value"])
    long = pd.concat(parts, ignore_index=True).drop_duplicates(["series", "step"], keep="first")
    parsed = long["series"].str.extract(_AMBER)
    unknown = parsed["name"].isna()
    if unknown.any():
        bad["Amber: unrecognised series"] += int(unknown.sum())
    long, parsed = long.loc[~unknown], parsed.loc[~unknown]
    in_range = long["step"].between(0, AMBER_CHECKPOINTS - 1) & (long["step"] % 1 == 0)
    if (~in_range).any():
        bad["Amber: checkpoint number out of range"] += int((~in_range).sum())
    long, parsed = long.loc[in_range], parsed.loc[in_range]
    tokens = (long["step"] + 1) * (AMBER_TOKENS / AMBER_CHECKPOINTS)
    slug = parsed["name"].map(_slug)
    is_ppl = parsed["group"] == "perplexity_eval"
    suffix = np.where(slug == "crowspairs", "/pct_stereotype", "/acc")
    downstream = pd.DataFrame(
        {"tokens": tokens, "metric": "downstream/" + slug + suffix, "value": long["value"] / 100.0}
    ).loc[~is_ppl]
    ppl = pd.DataFrame({"tokens": tokens, "metric": "val/pile/" + slug + "/ppl", "value": long["value"]}).loc[is_ppl]
    positive = ppl["value"] > 0
    if (~positive).any():
        bad["Amber: non-positive perplexity"] += int((~positive).sum())
    ppl = ppl.loc[positive]
    log_ppl = ppl.assign(metric=ppl["metric"].str[: -len("/ppl")] + "/log_ppl", value=np.log(ppl["value"]))
    return pd.concat([downstream, ppl, log_ppl], ignore_index=True)


def _observations(run_id: str, params: float, rows: pd.DataFrame) -> pd.DataFrame:
    tokens = rows["tokens"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "tokens_seen": tokens,
            "flops": chinchilla_flops(params, tokens),
            "flops_derived": True,
            "tokens_derived": True,
            "metric": rows["metric"].to_numpy(dtype=object),
            "value": rows["value"].to_numpy(dtype=float),
        },
        columns=list(OBSERVATION_COLUMNS),
    )


def _metric_row(metric: str) -> tuple[str, str, bool, str]:
    if metric == "train/loss":
        return metric, "loss", False, "training loss (cross-entropy, nats/token)"
    if metric.endswith("/log_ppl"):
        return metric, "loss", False, "validation loss (ln of ppl; Pile subset, LLM360 Analysis360)"
    if metric.endswith("/ppl"):
        return metric, "perplexity", False, "validation perplexity (Pile subset, LLM360 Analysis360)"
    if metric == "downstream/crowspairs/pct_stereotype":
        return metric, "other", False, "bias: CrowS-Pairs stereotype preference (fraction; 0.5 is unbiased)"
    return metric, "accuracy", True, "downstream accuracy (LLM360 evaluation, fraction)"


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    obs = pd.concat(
        [
            _observations(K2_RUN, float(K2_PARAMS), _k2(mirror, bad)),
            _observations(AMBER_RUN, float(AMBER_PARAMS), _amber(mirror, bad)),
        ],
        ignore_index=True,
    )
    names = sorted(set(obs["metric"]) | {default for _, default, _ in FAMILIES})
    metrics = pd.DataFrame([_metric_row(m) for m in names], columns=list(METRIC_COLUMNS))
    frames = SourceFrames(
        name=NAME,
        runs=pd.DataFrame(RUNS, columns=list(RUN_COLUMNS)),
        observations=obs,
        metrics=metrics,
        families=pd.DataFrame(FAMILIES, columns=list(FAMILY_COLUMNS)),
        bad_rows=bad,
    )
    return frames.validate()


DOWNSTREAM_VERSION = 1  # bumped when downstream_from_frames() yields other rows (keys only that table)


def downstream_from_frames(frames: SourceFrames) -> pd.DataFrame:
    """Scores for the downstream_evals table from what read() yielded: LLM360's evaluations (shots from the ``@`` suffix where given), on the tasks of
    ``base.COMMON_CHANCE`` with their chance level; question counts not stated (NaN)."""
    from .base import COMMON_CHANCE, accuracy_scores

    return accuracy_scores(frames, COMMON_CHANCE, shots=None)
