"""ModuleFormer mixture-of-experts runs (Shen et al. 2023, arXiv:2306.04640), lm-eval-harness 0-shot.

Source files
    ``colpret/raw_data/IBM_MoE.csv``: one header row; each row is one checkpoint of a named run
    (Model, data, Params, Effective Params, tokens_seen like ``"64B"``, Tokenizer, then one
    column per ``"<task> <metric>"``).
    ``colpret/aggregated_eval/LLMs - 0-shot.csv``: the spreadsheet IBM_MoE.csv was cut from. Two
    header rows (task, then metric) are joined into the same ``"<task> <metric>"`` names. Rows
    come in blocks separated by empty lines; the Corpus column holds the token count (``"64B"``,
    ``"1T"``) or, for finished models, a corpus name (``"Pile"``). A row without a Model name
    continues the last named row of its block.

Conventions
    * IBM_MoE.csv is read first and wins. A 0-shot row with the same token count and identical
      metric cells as an IBM_MoE.csv row is the same checkpoint and is dropped (counted). What
      the 0-shot sheet adds are runs missing from IBM_MoE.csv (ST-h1 with the Codegen tokenizer,
      ST-48L, ST-wide, gmm, 48L-k4, Obsidian-4B-normalized) and the LLaMA-7B baseline (1T tokens).
      All 62 IBM_MoE.csv checkpoints reappear in the sheet (some as unnamed rows above their
      run's final row, where "continue the row above" would mislabel them), so matching them
      first leaves only rows whose named row is above them. Inference-time cells are ignored.
    * run = (Model, data, Params, Effective Params, Tokenizer of the run's named row); run_id
      ``moe/<Model>``, plus ``/ibm-pile`` for the run trained on IBM Pile, plus
      ``/<tokenizer>`` when two runs would still share a name (ST-h1).
    * architecture ``"moe"``; dense baselines (GPT2, GPT3-ada, Pythia, Codegen-NL, GPT-neo, LLAMA,
      GPT-Stickbreaking) are ``"decoder"`` with their own family (lower-cased name). Only LLAMA
      carries a token count; the others are skipped (see below).
    * num_params = Effective Params (active parameters per token) when given, else Params (the
      total; ST-k2 and LLaMA), parsed from labels like ``"700M"``: num_params_derived=True.
      So the ST-k2 runs use their 4B total, which overstates their compute against the rest.
    * tokens_seen: the ``"64B"`` label x 1e9 (tokens_derived=False); flops = 6 * N * D with the
      N above (flops_derived=True), as ColPret does.
    * accuracies are percentages in the files and stored as fractions (/100). wikitext ``ppl`` is
      the lm-eval word perplexity; its natural log is stored as ``val/wikitext/log_ppl`` (kind
      loss, nats per word; every family's default metric); ``bpb`` (bits per byte) is kept as a
      loss too. lambada_openai ppl also gets a ``log_ppl``.
    * families: ``moduleformer`` (Pile runs and the 0-shot-only runs, whose corpus the sheet does
      not state: training_data None), ``moduleformer-ibm-pile`` (ST-k2 on IBM Pile), ``llama``.

Skipped (counted in bad_rows)
    * rows whose token cell is not a count (``"Pile"``, ``"IBM Pile"``, ``"?"``, empty): the final
      rows of finished runs and the dense baselines without a token budget;
    * the ``Random`` reference row; rows with no parameter count (the obsidian-4B ablations:
      neither Params nor Effective Params is given); continuation rows without a named row;
      non-numeric metric cells (per cell) and accuracies outside 0-100 %.
"""

from __future__ import annotations

import re
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
)

NAME = "moe"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
MOE_CSV = "colpret/raw_data/IBM_MoE.csv"
SHEET_CSV = "colpret/aggregated_eval/LLMs - 0-shot.csv"
PATTERNS = (MOE_CSV, SHEET_CSV)

SOURCE_PAPER = "Shen et al. 2023, ModuleFormer: Modularity Emerges from Mixture-of-Experts (arXiv:2306.04640)"
DENSE_MODELS = ("GPT2", "GPT3-ada", "Pythia", "Codegen-NL", "GPT-neo", "LLAMA", "GPT-Stickbreaking")
DEFAULT_METRIC = "val/wikitext/log_ppl"
META = ["Model", "Params", "Effective Params", "Corpus", "Inference time", "Tokenizer"]
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMbBtT])\s*$")
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def _metric_spec(column: str) -> tuple[str, str, bool, str, float] | None:
    """``"<task> <metric>"`` column -> (metric name, kind, higher_is_better, domain, value scale)."""
    task, _, key = column.rpartition(" ")
    task = task.lower()
    if task == "wikitext" and key == "ppl":
        return "val/wikitext/ppl", "perplexity", False, "validation word perplexity (wikitext, lm-eval)", 1.0
    if task == "wikitext" and key == "bpb":
        return "val/wikitext/bpb", "loss", False, "validation loss in bits per byte (wikitext, lm-eval)", 1.0
    if key == "ppl":
        return f"downstream/{task}/ppl", "perplexity", False, "downstream last-word perplexity (lm-eval)", 1.0
    if key in ("acc", "acc_norm"):
        return (f"downstream/{task}/{key}", "accuracy", True, "downstream accuracy (lm-eval-harness, 0-shot)", 0.01)
    return None


LOG_PPL = {  # ppl metric -> (log metric, domain)
    "val/wikitext/ppl": ("val/wikitext/log_ppl", "validation loss (ln of wikitext word ppl; nats per word)"),
    "downstream/lambada_openai/ppl": (
        "downstream/lambada_openai/log_ppl",
        "downstream loss (ln of lambada_openai ppl)",
    ),
}


def _count(labels: pd.Series) -> pd.Series:
    """Parse labels like ``"64B"`` / ``"700M"`` into floats (NaN when not a count)."""
    parts = labels.astype("string").str.extract(_COUNT)
    return pd.to_numeric(parts[0], errors="coerce") * parts[1].str.lower().map(_SCALE).astype(float)


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> None:
    """Count the rows of ``mask`` in ``bad`` under ``reason`` (nothing when none)."""
    n = int(mask.sum())
    if n:
        bad[reason] += n


def _row_keys(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string per row: token count and the raw metric cells (identifies a checkpoint)."""
    return df["tokens"].astype(str) + "|" + df[columns].fillna("").astype(str).agg("|".join, axis=1)


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=True, skip_blank_lines=False, **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ModuleFormer csv ({exc})") from exc


def _read_moe(path: Path) -> pd.DataFrame:
    df = _read_csv(path)
    df = df.loc[df.notna().any(axis=1)].rename(columns={"data": "Data", "tokens_seen": "Tokens"})
    return df.assign(source="IBM_MoE")


def _read_sheet(path: Path, bad: Counter[str]) -> pd.DataFrame:
    """The 0-shot sheet with joined metric names; continuation rows get their named row's
    Model/Params/Tokenizer, and ``orphan`` marks rows with no named row before them in the block."""
    raw = _read_csv(path, header=None)
    tasks = raw.iloc[0].ffill()
    names = META + [f"{t} {k}" for t, k in zip(tasks.iloc[len(META) :], raw.iloc[1, len(META) :])]
    df = raw.iloc[2:].set_axis(names, axis=1)
    blank = df.isna().all(axis=1)
    block = blank.cumsum()
    df, block = df.loc[~blank], block.loc[~blank]
    random = df["Model"].eq("Random")
    _skip(bad, "'Random' reference row (chance accuracies)", random)
    df, block = df.loc[~random], block.loc[~random]
    # a row without a Model continues the last named row of its block
    named = df["Model"].notna()
    anchor = pd.Series(np.where(named, np.arange(len(df)), np.nan), index=df.index).ffill()
    has_anchor = anchor.notna()
    anchor_pos = anchor.fillna(0).astype(int).to_numpy()
    same_block = has_anchor & (block.to_numpy()[anchor_pos] == block.to_numpy())
    for column in ("Model", "Params", "Effective Params", "Tokenizer"):
        df[column] = df[column].to_numpy()[anchor_pos]
    return df.rename(columns={"Corpus": "Tokens"}).assign(Data=None, source="sheet", orphan=~same_block)


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    moe = _read_moe(mirror / MOE_CSV)
    sheet = _read_sheet(mirror / SHEET_CSV, bad)
    metric_columns = [c for c in sheet.columns if _metric_spec(c) is not None]

    no_model = moe["Model"].isna()
    _skip(bad, "IBM_MoE.csv row without a Model name", no_model)
    moe = moe.loc[~no_model]
    frames = []
    for label, df in (("IBM_MoE.csv", moe), ("0-shot sheet", sheet)):
        df = df.assign(tokens=_count(df["Tokens"]))
        no_tokens = df["tokens"].isna() | (df["tokens"] <= 0)
        _skip(bad, f"{label}: no token count (final 'Pile' rows, dense baselines)", no_tokens)
        frames.append(df.loc[~no_tokens])
    moe, sheet = frames

    # drop sheet rows that are the same checkpoint as an IBM_MoE.csv row
    common = [c for c in metric_columns if c in moe.columns]
    dup = _row_keys(sheet, common).isin(set(_row_keys(moe, common)))
    _skip(bad, "0-shot sheet row already in IBM_MoE.csv (kept that copy)", dup)
    sheet = sheet.loc[~dup]
    _skip(bad, "0-shot continuation row without a named row in its block", sheet["orphan"])
    sheet = sheet.loc[~sheet["orphan"]].drop(columns="orphan")

    df = pd.concat([moe, sheet], ignore_index=True)
    df["num_params"] = _count(df["Effective Params"]).fillna(_count(df["Params"]))
    no_params = df["num_params"].isna() | (df["num_params"] <= 0)
    _skip(bad, "no parameter count (Params and Effective Params empty)", no_params)
    df = df.loc[~no_params].reset_index(drop=True)

    dense = df["Model"].isin(DENSE_MODELS)
    df["model_name"] = np.where(dense, df["Model"] + "-" + df["Params"].fillna(""), df["Model"])
    ibm = df["Data"].fillna("").str.lower().eq("ibm pile")
    df["family"] = np.where(dense, df["Model"].str.lower(), np.where(ibm, "moduleformer-ibm-pile", "moduleformer"))
    run_key = ["model_name", "Data", "Params", "Effective Params"]
    tokenizer = df.groupby(run_key, dropna=False)["Tokenizer"].transform("first")
    df["Tokenizer"] = tokenizer
    base = "moe/" + df["model_name"] + np.where(ibm, "/ibm-pile", "")
    keys = df[run_key + ["Tokenizer"]].fillna("").astype(str).agg("|".join, axis=1)
    clash = keys.groupby(base).transform("nunique") > 1
    df["run_id"] = base + np.where(clash, "/" + df["Tokenizer"].fillna("no-tokenizer").str.lower(), "")

    runs_src = df.drop_duplicates("run_id")
    runs = pd.DataFrame(
        {
            "run_id": runs_src["run_id"],
            "family": runs_src["family"],
            "model_name": runs_src["model_name"],
            "architecture": np.where(runs_src["Model"].isin(DENSE_MODELS), "decoder", "moe"),
            "num_params": runs_src["num_params"].astype(float),
            "num_params_derived": True,
            "training_data": runs_src["Data"].where(runs_src["Data"].notna(), None),
            "seed": None,
            "planned_tokens": np.nan,
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)].reset_index(drop=True)

    wide = pd.DataFrame(index=df.index)
    specs: dict[str, tuple[str, bool, str]] = {}
    for column in metric_columns:
        spec = _metric_spec(column)
        assert spec is not None  # metric_columns holds only columns with a spec
        name, kind, higher, domain, scale = spec
        values = pd.to_numeric(df[column], errors="coerce") * scale
        _skip(bad, "non-numeric metric cell", values.isna() & df[column].notna())
        if kind == "accuracy":
            outside = (values < 0) | (values > 1)
            _skip(bad, "accuracy outside [0, 100] percent", outside)
            values = values.mask(outside)
        wide[name] = values
        specs[name] = (kind, higher, domain)
        if name in LOG_PPL:
            log_name, log_domain = LOG_PPL[name]
            wide[log_name] = np.log(values.where(values > 0))
            specs[log_name] = ("loss", False, log_domain)
    observations = long_observations(
        wide,
        df["run_id"],
        df["tokens"],
        chinchilla_flops(df["num_params"], df["tokens"]),
        {name: name for name in wide.columns},
        flops_derived=True,
        tokens_derived=False,
    )
    metrics = pd.DataFrame(
        [(name, kind, higher, domain) for name, (kind, higher, domain) in specs.items()],
        columns=list(METRIC_COLUMNS),
    )
    descriptions = {
        "moduleformer": "ModuleFormer MoE variants (stick-breaking attention + MoE MLP) on the Pile, "
        "4B-16.7B total parameters; num_params = active parameters where reported",
        "moduleformer-ibm-pile": "ModuleFormer ST-k2 trained on IBM Pile with the Codegen tokenizer",
    }
    families = pd.DataFrame({"family": sorted(runs["family"].unique())})
    families["default_metric"] = DEFAULT_METRIC
    families["description"] = (
        families["family"].map(descriptions).fillna("dense baseline evaluated in the ModuleFormer sheet")
    )
    return SourceFrames(NAME, runs, observations, metrics, families[list(FAMILY_COLUMNS)], bad).validate()


DOWNSTREAM_VERSION = 1  # bumped when downstream_from_frames() yields other rows (keys only that table)


def downstream_from_frames(frames: SourceFrames) -> pd.DataFrame:
    """Scores for the downstream_evals table from what read() yielded: the MoE sheets' 0-shot lm-eval accuracies, on the tasks of
    ``base.COMMON_CHANCE`` with their chance level; question counts not stated (NaN)."""
    from .base import COMMON_CHANCE, accuracy_scores

    return accuracy_scores(frames, COMMON_CHANCE, shots=0)
