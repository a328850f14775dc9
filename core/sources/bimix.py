"""BiMix data-mixing runs (Ge et al. 2024, arXiv:2405.14908): 280M decoders, one per data mixture.

Source files
    ``colpret/raw_data/bimix-law/{Pile,SlimPajama}/ppls.pkl``: a pickled dict mixture -> DataFrame
    (``global_step`` 10k..200k every 10k, one column per domain, ``avg``).
    ``colpret/raw_data/bimix-law/{Pile,SlimPajama}/ratios.pkl``: dict mixture -> Series of the
    domain sampling weights (not stored: the schema has no place for them; the mixture name is
    kept in the run id and training_data). Plain pickles of pandas objects: numpy + pandas only.

Conventions
    * despite the file name the values are NOT perplexities: they are DoReMi's per-domain
      ``log_perplexity`` = mean token cross-entropy in nats (DoReMi ``evaluation_loop``), and
      ``avg`` is their uniform mean across domains (checked: equal to the row mean). They are
      stored as losses ``val/<corpus>/<domain>/log_ppl`` (kind loss, no further log taken);
      the family default is ``val/<corpus>/avg/log_ppl``.
    * tokens_seen = global_step x 512 x 1024 (8 GPUs x 64 sequences of 1024 tokens, DoReMi 280M
      scripts; ColPret ``get_bimix`` uses the same 512*1024): tokens_derived=True;
      planned_tokens = 200,000 steps x 524,288.
    * num_params = 280M, the size label of the setup (num_params_derived=True);
      flops = 6 * N * D (flops_derived=True).
    * run = one mixture of one corpus: ``bimix/<corpus>/<mixture>`` (Baseline, DoReMi, SE, JE,
      CE, VNE); families ``bimix-pile`` and ``bimix-slimpajama`` (same size, different mixtures).

Skipped (counted in bad_rows)
    * rows with a non-numeric or non-positive global_step; non-numeric loss cells.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from .base import (
    FAMILY_COLUMNS,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    SourceFrames,
    chinchilla_flops,
    long_observations,
)

NAME = "bimix"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
ROOT = "colpret/raw_data/bimix-law"
CORPORA = {"Pile": "pile", "SlimPajama": "slimpajama"}
PATTERNS = tuple(f"{ROOT}/{corpus}/{kind}.pkl" for corpus in CORPORA for kind in ("ppls", "ratios"))

SOURCE_PAPER = "Ge et al. 2024, Data Mixing Made Efficient: A Bivariate Scaling Law for Language Model Pretraining (arXiv:2405.14908)"
TOKENS_PER_STEP = 512 * 1024
PLANNED_TOKENS = 200_000 * TOKENS_PER_STEP
NUM_PARAMS = 280e6


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> None:
    n = int(mask.sum())
    if n:
        bad[reason] += n


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = pd.read_pickle(path)
    except Exception as exc:  # a pickle can fail in many ways; the whole file is unusable then
        raise ValueError(f"{path}: unreadable BiMix pickle ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of mixture -> DataFrame, got {type(data).__name__}")
    return data


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    parts, runs, metrics, families = [], [], {}, []
    for corpus, key in CORPORA.items():
        ppls = _load(mirror / ROOT / corpus / "ppls.pkl")
        ratios = _load(mirror / ROOT / corpus / "ratios.pkl")
        family = f"bimix-{key}"
        for mixture, frame in ppls.items():
            if not isinstance(frame, pd.DataFrame) or "global_step" not in frame:
                bad["mixture entry that is not a frame with global_step"] += 1
                continue
            step = pd.to_numeric(frame["global_step"], errors="coerce")
            bad_step = step.isna() | (step <= 0)
            _skip(bad, "non-numeric or non-positive global_step", bad_step)
            frame = frame.loc[~bad_step]
            tokens = step.loc[~bad_step].astype(float) * TOKENS_PER_STEP
            run_id = f"{NAME}/{key}/{mixture}"
            columns = {c: f"val/{key}/{_slug(str(c))}/log_ppl" for c in frame.columns if c != "global_step"}
            values = frame[list(columns)].apply(pd.to_numeric, errors="coerce")
            _skip(bad, "non-numeric loss cell", (values.isna() & frame[list(columns)].notna()).to_numpy().ravel())
            parts.append(
                long_observations(
                    values,
                    run_id,
                    tokens,
                    chinchilla_flops(NUM_PARAMS, tokens),
                    columns,
                    flops_derived=True,
                    tokens_derived=True,
                )
            )
            for column, metric in columns.items():
                what = "uniform mean over domains of" if column == "avg" else f"{column} domain,"
                metrics[metric] = (
                    f"validation loss ({corpus} {what} DoReMi log-perplexity = "
                    "cross-entropy in nats/token; the pickle calls it ppl)"
                )
            mix = "original domain weights" if mixture == "Baseline" else f"{mixture} mixture"
            if mixture not in ratios:
                bad["mixture without domain ratios (kept the run)"] += 1
            runs.append((run_id, family, f"{corpus}-{mixture}", f"{corpus} ({mix})"))
        families.append(
            (
                family,
                f"val/{key}/avg/log_ppl",
                f"BiMix 280M decoders on {corpus}, one run per data mixture (same size, 200k steps)",
            )
        )

    runs_df = pd.DataFrame(runs, columns=["run_id", "family", "model_name", "training_data"]).assign(
        architecture="decoder",
        num_params=NUM_PARAMS,
        num_params_derived=True,
        seed=None,
        planned_tokens=float(PLANNED_TOKENS),
        source_paper=SOURCE_PAPER,
        domain="language",
    )[list(RUN_COLUMNS)]
    metrics_df = pd.DataFrame([(m, "loss", False, d) for m, d in sorted(metrics.items())], columns=list(METRIC_COLUMNS))
    families_df = pd.DataFrame(families, columns=list(FAMILY_COLUMNS))
    observations = pd.concat(parts, ignore_index=True)
    return SourceFrames(NAME, runs_df, observations, metrics_df, families_df, bad).validate()
