"""Learning curves of "Revisiting Neural Scaling Laws in Language and Vision" (Alabdulmohsin,
Neyshabur, Zhai, NeurIPS 2022), the google-research ``revisiting_neural_scaling_laws`` benchmark.

Source files
    ``colpret/aggregated_eval/revisiting_lang.csv`` (benchmark.lang.csv) and
    ``colpret/aggregated_eval/revisiting_vision.csv`` (benchmark.vision.csv), columns Domain,
    Task, Model, Seen Examples, Loss, Training. Domains: ``LM`` (next-token log-loss of five
    LaMDA-style decoders), ``BB`` (ten BIG-bench few-shot tasks of the 262M decoder), ``NMT``
    (validation log-perplexity of five ~300M translation architectures), ``IC`` (n-shot error
    rates of six image models on Birds / CIFAR-100 / Caltech-101 / ImageNet, 5/10/25-shot).

Conventions
    * A run is one (Domain, Task, Model) curve: run_id ``revisiting/<domain>-<model>/<task>``,
      e.g. ``revisiting/ic-vit-b-16/inet_5shot``, ``revisiting/lm-2.62e+08/val_loss``. (The 12 IC
      curves of one image model are evaluations of the same upstream run; the benchmark keeps
      them apart and so do we.) Family = (domain, task), e.g. ``revisiting-ic-inet_5shot``,
      ``revisiting-lm-val_loss``, ``revisiting-bb-date_1shot``.
    * tokens_seen = ``Seen Examples`` = batch size x steps (benchmark README), tokens_derived=True.
      It is the benchmark's data axis in its own unit: tokens for LM/BB (2^18 per step), sentence
      pairs for NMT, images for IC; it is stored unchanged and is not a token count there.
    * num_params: the benchmark README's table (rounded): ViT/S/16 32M, ViT/B/16 110M, BiT/50/1 61M,
      BiT/101/3 494M, MiX/B/16 73M, MiX/L/16 226M, every NMT model 300M, LM models by their label
      (``1.68e+07``), BB ``262M``: num_params_derived=True. A model outside the table is skipped.
    * FLOPs = 6 * N * Seen Examples (flops_derived=True): a compute proxy, real FLOPs only for
      LM/BB where the axis is tokens.
    * Architecture: NMT ``a Enc, b Dec`` and ``TEnc-LSTM`` -> encoder-decoder, ``Dec-only``, LM and
      BB -> decoder. Image models (ViT, MLP-Mixer, BiT ResNet) have no value in the allowed set;
      they get "decoder" as the single-stack (no cross-attention) category, and domain="vision".
    * Metrics, one per (domain, task): ``val/lm/loss`` (LM log-loss, as released: every curve starts
      at 0.999), ``val/nmt/log_ppl`` (NMT log-perplexity), both kind loss;
      ``downstream/bigbench_<task>/error`` (BB "preferred metric" loss, lower is better) and
      ``downstream/<dataset>_<n>shot/error`` (IC n-shot error rate, a fraction, e.g.
      ``downstream/inet_5shot/error``), kind error. The family
      default is that metric; for BB and IC it is an error, not a loss (the benchmark has none).
    * The ``Training`` flag (1 = fitting points, 0 = the benchmark's extrapolation points) is not
      stored; all points are kept.

Skipped (counted in bad_rows)
    * exact duplicate rows (every LM row appears four times in the release: 687 rows);
    * rows with a non-numeric or non-positive Seen Examples, a non-numeric Loss, or a model
      that cannot be sized.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .base import FAMILY_COLUMNS, METRIC_COLUMNS, OBSERVATION_COLUMNS, RUN_COLUMNS, SourceFrames, chinchilla_flops

NAME = "revisiting"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
LANG = "colpret/aggregated_eval/revisiting_lang.csv"
VISION = "colpret/aggregated_eval/revisiting_vision.csv"
PATTERNS = (LANG, VISION)

SOURCE_PAPER = (
    "Alabdulmohsin, Neyshabur, Zhai 2022, Revisiting Neural Scaling Laws in Language and Vision (arXiv:2209.06640)"
)
MODEL_PARAMS = {  # benchmark README, "Available models"
    "ViT/S/16": 32e6,
    "ViT/B/16": 110e6,
    "BiT/50/1": 61e6,
    "BiT/101/3": 494e6,
    "MiX/B/16": 73e6,
    "MiX/L/16": 226e6,
    "6 Enc, 6 Dec": 300e6,
    "6 Enc, 28 Dec": 300e6,
    "28 Enc, 6 Dec": 300e6,
    "Dec-only": 300e6,
    "TEnc-LSTM": 300e6,
    "262M": 262e6,
}
BB_TASKS = {
    "date": "date_understanding",
    "ling": "linguistic_mappings",
    "qa": "qa_wikidata",
    "mult": "mult_data_wrangling",
    "unit": "unit_conversion",
}
IC_DATASETS = {"bird": "Birds (CUB)", "c": "CIFAR-100", "cal": "Caltech-101", "inet": "ImageNet"}
TRAINING_DATA = {
    "IC": "JFT-300M upstream pre-training; n-shot linear evaluation",
    "NMT": "NMT training data of Bansal et al. 2022 (Data Scaling Laws in NMT)",
    "LM": "LaMDA pre-training data (Thoppilan et al. 2022)",
    "BB": "LaMDA pre-training data (Thoppilan et al. 2022)",
}


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable revisiting benchmark file ({exc})") from exc


def _slug(text: pd.Series, sep: str = "-") -> pd.Series:
    """ "ViT/B/16" -> "vit-b-16"; "('date', '1-shot')" -> "date_1shot" with sep="_"."""
    return (
        text.str.lower()
        .str.replace("-shot", "shot", regex=False)
        .str.replace(r"[^a-z0-9.+_]+", sep, regex=True)
        .str.strip(sep + "_")
    )


def _num_params(model: pd.Series, domain: pd.Series) -> pd.Series:
    table = model.map(MODEL_PARAMS)
    labelled = pd.to_numeric(model.where(domain == "LM"), errors="coerce")  # "1.68e+07"
    return table.fillna(labelled)


def _architecture(model: pd.Series, domain: pd.Series) -> pd.Series:
    enc_dec = (domain == "NMT") & (model.str.contains("Enc", regex=False))
    return enc_dec.map({True: "encoder-decoder", False: "decoder"})


def _metric(domain: pd.Series, task_slug: pd.Series) -> pd.Series:
    return pd.Series(
        domain.map({"LM": "val/lm/loss", "NMT": "val/nmt/log_ppl"}).fillna(
            "downstream/" + domain.map({"BB": "bigbench_"}).fillna("") + task_slug + "/error"
        ),
        index=domain.index,
    )


def _metric_domain(metric: str, domain: str, task: str) -> tuple[str, str]:
    """(kind, domain description) of one metric."""
    if domain == "LM":
        return "loss", "validation loss (next-token log-loss as released by the benchmark; curves start at 0.999)"
    if domain == "NMT":
        return "loss", "validation loss (NMT log-perplexity, per token)"
    if domain == "BB":
        name, shots = metric.split("_", 1)[1].rsplit("/", 1)[0].rsplit("_", 1)
        return "error", (
            f"downstream (BIG-bench {BB_TASKS.get(name, name)} {shots}: the benchmark's loss "
            "from the preferred metric, lower is better)"
        )
    dataset, _, shots = task.partition("_")
    return "error", f"downstream ({IC_DATASETS.get(dataset, dataset)} {shots}-shot error rate, fraction)"


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    frames = []
    for rel in (LANG, VISION):
        raw = _read_csv(mirror / rel)
        dup = raw.duplicated()
        if dup.any():
            bad[f"{Path(rel).name}: exact duplicate row"] += int(dup.sum())
        frames.append(raw.loc[~dup])
    raw = pd.concat(frames, ignore_index=True)

    for column in ("Domain", "Task", "Model"):
        raw[column] = raw[column].str.strip()
    seen = pd.to_numeric(raw["Seen Examples"], errors="coerce")
    loss = pd.to_numeric(raw["Loss"], errors="coerce")
    num_params = _num_params(raw["Model"], raw["Domain"])
    bad_num = seen.isna() | (seen <= 0) | loss.isna() | raw[["Domain", "Task", "Model"]].isna().any(axis=1)
    unsized = ~bad_num & (num_params.isna() | (num_params <= 0))
    for reason, mask in (
        ("non-numeric or non-positive Seen Examples, non-numeric Loss, or no Domain/Task/Model", bad_num),
        ("model without a known parameter count", unsized),
    ):
        if mask.any():
            bad[reason] += int(mask.sum())
    keep = ~bad_num & ~unsized
    df = raw.loc[keep, ["Domain", "Task", "Model"]].assign(
        seen=seen[keep], loss=loss[keep], num_params=num_params[keep]
    )

    task_slug = _slug(df["Task"], sep="_")
    task_slug = task_slug.where(df["Domain"] != "IC", task_slug + "shot")  # inet_5 -> inet_5shot
    domain_slug = df["Domain"].str.lower()
    df["run_id"] = NAME + "/" + domain_slug + "-" + _slug(df["Model"]) + "/" + task_slug
    df["family"] = NAME + "-" + domain_slug + "-" + task_slug
    df["metric"] = _metric(df["Domain"], task_slug)

    observations = pd.DataFrame(
        {
            "run_id": df["run_id"],
            "tokens_seen": df["seen"].astype(float),
            "flops": chinchilla_flops(df["num_params"], df["seen"]),
            "flops_derived": True,
            "tokens_derived": True,
            "metric": df["metric"],
            "value": df["loss"].astype(float),
        }
    )[list(OBSERVATION_COLUMNS)]

    run_src = df.drop_duplicates("run_id")
    runs = pd.DataFrame(
        {
            "run_id": run_src["run_id"],
            "family": run_src["family"],
            "model_name": run_src["Domain"] + " " + run_src["Model"],
            "architecture": _architecture(run_src["Model"], run_src["Domain"]),
            "num_params": run_src["num_params"].astype(float),
            "num_params_derived": True,
            "training_data": run_src["Domain"].map(TRAINING_DATA),
            "seed": None,
            "planned_tokens": np.nan,
            "source_paper": SOURCE_PAPER,
            "domain": run_src["Domain"].map(lambda d: "vision" if d == "IC" else "language"),
        }
    )[list(RUN_COLUMNS)].reset_index(drop=True)

    metric_src = df.drop_duplicates("metric")
    described = [
        _metric_domain(m, d, t) for m, d, t in zip(metric_src["metric"], metric_src["Domain"], metric_src["Task"])
    ]
    metrics = pd.DataFrame(
        {
            "metric": metric_src["metric"].to_numpy(),
            "kind": [kind for kind, _ in described],
            "higher_is_better": False,
            "domain": [text for _, text in described],
        }
    )[list(METRIC_COLUMNS)]

    fam_src = df.drop_duplicates("family")
    families = pd.DataFrame(
        {
            "family": fam_src["family"].to_numpy(),
            "default_metric": fam_src["metric"].to_numpy(),
            "description": [
                f"Revisiting-scaling-laws benchmark, {d} / {t}: models "
                + ", ".join(sorted(df.loc[df["family"] == f, "Model"].unique()))
                for f, d, t in zip(fam_src["family"], fam_src["Domain"], fam_src["Task"])
            ],
        }
    )[list(FAMILY_COLUMNS)]
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
