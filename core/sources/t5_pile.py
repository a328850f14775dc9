"""Pile-T5 (EleutherAI) base / large / xl / xxl encoder-decoder training curves.

Source file
    ``colpret/aggregated_eval/t5_pile.csv``: one row per (model_name, steps), every 10k steps up
    to 2M, with the t5x TensorBoard summaries (accuracy, cross_ent_loss, loss, z_loss, their
    ``*_per_*_token`` versions, timing, learning rate, the gin ``config``) and ``val_perplexity``.

What the columns are (checked against the raw t5x event files and the gin config)
    * Rows with steps > 0 carry the *train* summaries, each a mean over the 10k-step window
      (``timing/seqs`` = 2048 x 10000). Their per-token normalisers overflowed int32 (the window
      has 2048 x 114 x 10000 = 2.33e9 target tokens), which is why ``accuracy``,
      ``*_per_all_target_tokens`` and ``loss_per_nonpadding_target_token`` are negative: they are
      skipped. ``cross_ent_loss`` (and ``loss`` = cross_ent_loss + z_loss) is the per-step *sum*
      over the batch's target tokens; with packed 2048 x 114-token targets (TASK_FEATURE_LENGTHS)
      the per-token training cross-entropy is cross_ent_loss / 233472 (it reproduces the
      un-overflowed step-0 value exactly: 2547856 / 233472 = 10.9129). Stored as ``train/loss``.
    * The step-0 row holds the *validation* summaries at initialisation, not train ones; steps=0
      has no tokens seen and is dropped anyway.
    * ``val_perplexity`` is seqio's inference-eval ``perplexity`` of the pile_r_denoiser task on
      the validation split (raw ``inference_eval/*-metrics.jsonl``); it is not a per-token
      perplexity (1.03-1.08 after training; ln of it ~ validation cross-entropy / 18). Stored as
      ``val/pile_r_denoiser/perplexity`` (kind perplexity) and its ln as
      ``val/pile_r_denoiser/log_ppl`` (kind loss, a deterministic transform, not nats/token).
    * The raw TensorBoard files under ``raw_data/t5_pile`` are not read (not in PATTERNS): the
      aggregated CSV carries the same train curves and the validation perplexity. (Their
      ``training_eval`` folders also hold a per-token validation cross-entropy that the CSV lacks.)

Conventions
    * tokens_seen = steps x 1e6 (ColPret ``tokens_seen *= 1e6``; the exact packed input length is
      2048 x 512 = 1,048,576 tokens per step), tokens_derived=True; planned_tokens = 2e12
      (2M steps).
    * num_params: ColPret ``name_to_param`` exact counts of the T5 v1.1-style models (vocab 32128):
      base 247,586,304; large 783,173,632; xl 2,849,804,288; xxl 11,135,426,560;
      num_params_derived=False.
    * FLOPs = 6 * N * tokens_seen (ColPret's choice, flops_derived=True): a rough upper estimate
      for an encoder-decoder, where each token passes through only one of the two stacks.
    * run_id ``t5_pile/pile-t5-<size>``; one family ``pile-t5`` whose default metric is
      ``train/loss`` (nats/token): the CSV has no per-token validation cross-entropy.

Skipped (counted in bad_rows)
    * rows with a non-numeric or negative step or an unknown model size; filled but non-numeric
      cross_ent_loss / val_perplexity cells (empty cells are just missing);
    * train windows whose mean cross-entropy exceeds 20 nats/token (above the ~10.4 of a uniform
      guess over 32128 tokens): one xxl window at step 600k (6,940 nats/token, a loss spike);
      the xxl windows 620k-680k have no train loss at all (NaN cells, not errors).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .base import FAMILY_COLUMNS, METRIC_COLUMNS, RUN_COLUMNS, SourceFrames, chinchilla_flops, long_observations

NAME = "t5_pile"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
CSV = "colpret/aggregated_eval/t5_pile.csv"
PATTERNS = (CSV,)

SOURCE_PAPER = "Sutawika, Komatsuzaki, Raffel 2024, Pile-T5 (EleutherAI blog, https://blog.eleuther.ai/pile-t5/)"
FAMILY = "pile-t5"
TOKENS_PER_STEP = 1e6  # ColPret convention (2048 sequences x 512 input tokens, rounded)
TARGET_TOKENS_PER_STEP = 2048 * 114  # batch x target length (packed), from the gin config
MAX_TRAIN_CE = 20.0  # nats/token; a window mean above this is a divergence spike, not a curve point
NUM_PARAMS = {  # ColPret util/read_data.py name_to_param
    "base": 247_586_304,
    "large": 783_173_632,
    "xl": 2_849_804_288,
    "xxl": 11_135_426_560,
}
METRICS = {  # metric -> (kind, higher_is_better, domain)
    "train/loss": (
        "loss",
        False,
        "training loss (cross-entropy, nats/token; mean over a 10k-step window, "
        "cross_ent_loss / (2048 x 114) target tokens)",
    ),
    "val/pile_r_denoiser/perplexity": (
        "perplexity",
        False,
        "validation perplexity as logged by seqio (pile_r_denoiser inference eval; not a per-token perplexity)",
    ),
    "val/pile_r_denoiser/log_ppl": (
        "loss",
        False,
        "validation loss (ln of ppl; seqio pile_r_denoiser perplexity, ~ per-token cross-entropy / 18, not nats/token)",
    ),
}


def read(mirror: Path) -> SourceFrames:
    path = Path(mirror) / CSV
    bad: Counter[str] = Counter()
    try:
        raw = pd.read_csv(path, usecols=["model_name", "steps", "cross_ent_loss", "val_perplexity"])
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable Pile-T5 file ({exc})") from exc

    steps = pd.to_numeric(raw["steps"], errors="coerce")
    size = raw["model_name"].astype(str).str.strip().str.lower()
    num_params = size.map(NUM_PARAMS)
    bad_step = steps.isna() | (steps < 0)
    unknown = ~bad_step & num_params.isna()
    for reason, mask in (("non-numeric or negative steps", bad_step), ("unknown Pile-T5 size", unknown)):
        if mask.any():
            bad[reason] += int(mask.sum())
    df = raw.assign(steps=steps, size=size, num_params=num_params).loc[~bad_step & ~unknown]
    df = df.loc[df["steps"] > 0]  # step 0: initial validation summaries, no tokens seen yet

    numeric = df[["cross_ent_loss", "val_perplexity"]].apply(pd.to_numeric, errors="coerce")
    junk = (df[["cross_ent_loss", "val_perplexity"]].notna() & numeric.isna()).sum().sum()
    if junk:
        bad["filled but non-numeric cross_ent_loss/val_perplexity cell"] += int(junk)
    ce = numeric["cross_ent_loss"] / TARGET_TOKENS_PER_STEP
    spike = ce > MAX_TRAIN_CE
    if spike.any():
        bad[f"train cross-entropy window mean > {MAX_TRAIN_CE:g} nats/token (loss spike)"] += int(spike.sum())
    ppl = numeric["val_perplexity"]
    wide = pd.DataFrame(
        {
            "train/loss": ce.mask(spike),
            "val/pile_r_denoiser/perplexity": ppl,
            "val/pile_r_denoiser/log_ppl": np.log(ppl.where(ppl > 0)),
        },
        index=df.index,
    )
    tokens = df["steps"] * TOKENS_PER_STEP
    run_id = NAME + "/pile-t5-" + df["size"]
    observations = long_observations(
        wide,
        run_id,
        tokens,
        pd.Series(chinchilla_flops(df["num_params"], tokens), index=df.index),
        {m: m for m in METRICS},
        flops_derived=True,
        tokens_derived=True,
    )

    sizes = [s for s in NUM_PARAMS if s in set(df["size"])]
    runs = pd.DataFrame(
        {
            "run_id": [f"{NAME}/pile-t5-{s}" for s in sizes],
            "family": FAMILY,
            "model_name": [f"pile-t5-{s}" for s in sizes],
            "architecture": "encoder-decoder",
            "num_params": [float(NUM_PARAMS[s]) for s in sizes],
            "num_params_derived": False,
            "training_data": "the Pile (pile-deduped per ColPret), span corruption (pile_r_denoiser)",
            "seed": None,
            "planned_tokens": 2_000_000 * TOKENS_PER_STEP,
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)]
    metrics = pd.DataFrame([(m, *spec) for m, spec in METRICS.items()], columns=list(METRIC_COLUMNS))
    families = pd.DataFrame(
        [
            (
                FAMILY,
                "train/loss",
                "Pile-T5 base/large/xl/xxl (T5 v1.1-style encoder-decoder), 2M steps x ~1M tokens on the Pile",
            )
        ],
        columns=list(FAMILY_COLUMNS),
    )
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
