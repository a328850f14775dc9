"""Datablations: GPT-2-style runs of "Scaling Data-Constrained Language Models" (Muennighoff et al. 2023).

Source files (ColPret copies of the datablations TensorBoard curves and tables)
    ``colpret/aggregated_eval/datablations_losses.csv``: intermediate validation losses of the
    IsoFLOP repetition runs: 3 sizes (2.8B, 4.2B, 8.7B) x 2 datasets (c4, oscar) x 8 epoch
    settings (1, 2, 3, 4, 5, 7, 14, 44), each trained on its Chinchilla-optimal token budget
    (55B / 84B / 178B tokens) with ``tokens_per_epoch`` = budget / epochs unique tokens.
    ``colpret/aggregated_eval/datablations_contour_losses.csv``: one final C4 validation loss per
    run of the IsoLoss/contour grid (7M-8.7B params, 100M-900B tokens, 100M-178B unique tokens).
    ``colpret/aggregated_eval/datablations_code_losses.csv``: nine 4.2B / 84B-token runs mixing
    C4 with Python (the-stack-dedup), curves of a C4 and a Python validation loss.

Conventions
    * A repetition run is identified by its ``model_args`` TensorBoard id; there is exactly one id
      per (size, data, epochs), so run_id = ``datablations/gpt2-<size>-<data>-<epochs>ep`` (e.g.
      ``datablations/gpt2-2.8b-c4-44ep``); the TensorBoard id is appended only if a setting ever
      has several. Family = one repetition setting across sizes, e.g. ``datablations-c4-4ep``
      (ColPret's ``scaled_set`` GPT2-<data>-<epochs>).
    * Contour runs are named by the datablations convention ``<params><tokens><unique>`` (e.g.
      ``2b855b4b``: 2.8B params, 55B tokens, 4B unique tokens): run_id
      ``datablations/contour-<name>``, family per unique-token budget
      (``datablations-c4-<unique>-unique``, e.g. ``datablations-c4-100m-unique``), the paper's
      fixed-data IsoLoss sets. Unique tokens U = token_num / epochs; a row is kept only when the
      name ends with the labels of D and U (guards against mis-parsed rows). These final losses
      are a separate evaluation: some of them (e.g. ``2b855b55b``) are the endpoints of
      repetition runs above, kept under their own run ids (values differ slightly).
    * Code runs: the ``epochs`` column is the C4 percentage X of the mix (datablations
      ``utils/datapaths/train84b<X>c4py.txt`` weights C4 by X/100 and Python by 1 - X/100; ColPret
      labels it the code share, but the losses confirm C4 share: the C4 loss falls and the
      Python loss rises as X grows). ``Seed`` is not a seed: 1 = C4 validation loss, 2 = Python
      validation loss (ColPret ``gen_loss`` / ``code_loss``). run_id
      ``datablations/gpt2-4.2b-<X>pct-c4-<100-X>pct-python``; each mix is its own family
      (``datablations-<X>pct-c4-<100-X>pct-python``); planned_tokens = the run's last token_num (the
      ``85B`` tokens_per_epoch label is off: the runs stop at 84B).
    * unique_tokens: the repetition runs' ``tokens_per_epoch`` and the contour runs' U = token_num /
      epochs (what Muennighoff et al.'s data-constrained law takes); none for the code mixes.
    * ``token_num`` is tokens seen (given, tokens_derived=False). num_params = the size label
      (``2.8B``) or the contour file's count (partly rounded, e.g. 2.81e9): num_params_derived=True.
    * FLOPs: the ``flops`` column of the losses and code files is not per-checkpoint compute: it
      falls as tokens grow and flops * token_num is constant per size (~ 6 N D_final^2 for 2.8B,
      4.2B; 10x that for 8.7B), i.e. an inverted ratio. All FLOPs are therefore recomputed as
      6 * N * tokens_seen (flops_derived=True); the contour file's column already equals 6 N D.
    * Metrics: ``val/c4/loss``, ``val/oscar/loss``, ``val/python/loss`` (validation
      cross-entropy, nats/token, GPT-2 tokenizer). Family default: the validation loss on the
      run's own data (C4 for contour and code families).

Skipped (counted in bad_rows)
    * rows with a non-numeric/non-positive token_num, loss or size, an unknown ``Seed`` value,
      a contour name that disagrees with its token_num/epochs (one row: ``2b855b1b25``, whose
      epochs were parsed as 55.1B / 25B instead of 55B / 1.25B).
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
    OPTIONAL_RUN_COLUMNS,
    RUN_COLUMNS,
    SourceFrames,
    chinchilla_flops,
    params_from_label,
)

NAME = "datablations"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 2  # 2: runs state their unique tokens (tokens per epoch) for the data-constrained law
REPOSITORY = "colpret"
LOSSES = "colpret/aggregated_eval/datablations_losses.csv"
CONTOUR = "colpret/aggregated_eval/datablations_contour_losses.csv"
CODE = "colpret/aggregated_eval/datablations_code_losses.csv"
PATTERNS = (LOSSES, CONTOUR, CODE)

SOURCE_PAPER = "Muennighoff et al. 2023, Scaling Data-Constrained Language Models (arXiv:2305.16264)"
CODE_EVAL_SETS = {1: "c4", 2: "python"}  # the code file's "Seed" column -> validation set


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable datablations file ({exc})") from exc


def _skip(bad: Counter[str], reason: str, mask: pd.Series) -> pd.Series:
    """Count the rows of ``mask`` under ``reason``; return the rows to keep."""
    if int(mask.sum()):
        bad[reason] += int(mask.sum())
    return ~mask


def _parse_labels(labels: pd.Series) -> pd.Series:
    """Size labels ("2.8B") -> counts, NaN when unparseable (one call per distinct label)."""

    def parse(label: object) -> float:
        try:
            return params_from_label(str(label))
        except ValueError:
            return np.nan

    return labels.map({label: parse(label) for label in labels.dropna().unique()})


def _label(count: float) -> str:
    """Datablations size label: 1.25e9 -> "1b25", 12e9 -> "12b", 4e8 -> "400m"."""
    if count >= 1e9:
        whole, _, frac = f"{round(count / 1e9, 2):g}".partition(".")
        return f"{whole}b{frac}"
    return f"{round(count / 1e6):d}m"


def _numeric(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].apply(pd.to_numeric, errors="coerce")


def _repetition_runs(path: Path, bad: Counter[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = _read_csv(path)
    num = _numeric(raw, ["epochs", "token_num", "loss", "tokens_per_epoch"])
    size = _parse_labels(raw["num_params"])
    keep = _skip(
        bad,
        f"{path.name}: non-numeric or non-positive token_num/loss/epochs/tokens_per_epoch",
        num.isna().any(axis=1) | (num["token_num"] <= 0) | (num["epochs"] <= 0),
    )
    keep &= _skip(
        bad,
        f"{path.name}: unparseable size label or missing data/model_args",
        keep & (size.isna() | (size <= 0) | raw["data"].isna() | raw["model_args"].isna()),
    )
    df = raw.loc[keep, ["data", "num_params", "model_args"]].assign(
        **{c: num.loc[keep, c] for c in num.columns}, size=size[keep]
    )
    df["label"] = df["num_params"].astype(str).str.lower()
    df["setting"] = df["data"] + "-" + df["epochs"].astype(int).astype(str) + "ep"
    df["run_id"] = NAME + "/gpt2-" + df["label"] + "-" + df["setting"]
    several = df.groupby("run_id")["model_args"].transform("nunique") > 1
    df.loc[several, "run_id"] += "/" + df.loc[several, "model_args"].str.extract(r"'(\w+)'}")[0]
    df["family"] = NAME + "-" + df["setting"]
    df["metric"] = "val/" + df["data"] + "/loss"
    runs = df.drop_duplicates("run_id").assign(
        model_name="GPT2-" + df["num_params"].astype(str) + "-" + df["setting"],
        training_data=lambda r: (
            r["data"]
            + ": "
            + (r["tokens_per_epoch"] / 1e9).round(3).astype(str)
            + "B unique tokens x "
            + r["epochs"].astype(int).astype(str)
            + " epochs"
        ),
        planned_tokens=lambda r: r["tokens_per_epoch"] * r["epochs"],
        unique_tokens=lambda r: r["tokens_per_epoch"],
        default_metric=lambda r: r["metric"],
    )
    return runs, df.rename(columns={"token_num": "tokens", "loss": "value"})


def _contour_runs(path: Path, bad: Counter[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = _read_csv(path)
    num = _numeric(raw, ["epochs", "token_num", "openLM_loss", "num_params"])
    name = raw["model_args"].astype(str).str.extract(r"'name':\s*'([^']+)'")[0]
    keep = _skip(
        bad,
        f"{path.name}: non-numeric or non-positive size/token_num/loss/epochs, or no name",
        num.isna().any(axis=1) | (num[["epochs", "token_num", "num_params"]] <= 0).any(axis=1) | name.isna(),
    )
    df = num.loc[keep].assign(name=name[keep], data=raw.loc[keep, "data"].fillna("c4"))
    df["unique"] = df["token_num"] / df["epochs"]
    u_label = df["unique"].map(_label)
    d_label = df["token_num"].map(_label)
    consistent = pd.Series([n.endswith(d + u) for n, d, u in zip(df["name"], d_label, u_label)], index=df.index)
    ok = _skip(bad, f"{path.name}: name disagrees with token_num/epochs (mis-parsed unique tokens)", ~consistent)
    df, u_label = df.loc[ok], u_label[ok]
    df["run_id"] = NAME + "/contour-" + df["name"]
    df["family"] = NAME + "-" + df["data"] + "-" + u_label + "-unique"
    df["metric"] = "val/" + df["data"] + "/loss"
    df["size"] = df["num_params"]
    runs = df.drop_duplicates("run_id").assign(
        model_name="GPT2-" + df["name"],
        training_data=df["data"] + ": " + u_label + " unique tokens x " + df["epochs"].round(2).astype(str) + " epochs",
        planned_tokens=df["token_num"],
        unique_tokens=df["unique"],
        default_metric=df["metric"],
    )
    return runs, df.rename(columns={"token_num": "tokens", "openLM_loss": "value"})


def _code_runs(path: Path, bad: Counter[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = _read_csv(path)
    num = _numeric(raw, ["epochs", "token_num", "loss", "Seed"])
    size = _parse_labels(raw["num_params"])
    keep = _skip(
        bad,
        f"{path.name}: non-numeric or non-positive token_num/loss/mix, or bad size label",
        num.isna().any(axis=1) | (num["token_num"] <= 0) | size.isna() | (size <= 0),
    )
    keep &= _skip(
        bad,
        f"{path.name}: Seed is neither 1 (C4 loss) nor 2 (Python loss)",
        keep & ~num["Seed"].isin(list(CODE_EVAL_SETS)),
    )
    df = num.loc[keep].assign(size=size[keep], label=raw.loc[keep, "num_params"].astype(str).str.lower())
    c4 = df["epochs"].astype(int)
    df["setting"] = c4.astype(str) + "pct-c4-" + (100 - c4).astype(str) + "pct-python"
    df["run_id"] = NAME + "/gpt2-" + df["label"] + "-" + df["setting"]
    df["family"] = NAME + "-" + df["setting"]
    df["metric"] = "val/" + df["Seed"].astype(int).map(CODE_EVAL_SETS) + "/loss"
    runs = df.drop_duplicates("run_id").assign(
        model_name="GPT2-" + raw.loc[keep, "num_params"].astype(str) + "-" + df["setting"],
        training_data=c4.astype(str) + "% C4 + " + (100 - c4).astype(str) + "% Python (the-stack-dedup)",
        planned_tokens=df.groupby("run_id")["token_num"].transform("max"),
        default_metric="val/c4/loss",
    )
    return runs, df.rename(columns={"token_num": "tokens", "loss": "value"})


def read(mirror: Path) -> SourceFrames:
    mirror = Path(mirror)
    bad: Counter[str] = Counter()
    parts = [
        _repetition_runs(mirror / LOSSES, bad),
        _contour_runs(mirror / CONTOUR, bad),
        _code_runs(mirror / CODE, bad),
    ]
    run_src = pd.concat([runs for runs, _ in parts], ignore_index=True)
    obs_src = pd.concat([obs[["run_id", "tokens", "size", "metric", "value"]] for _, obs in parts], ignore_index=True)

    observations = pd.DataFrame(
        {
            "run_id": obs_src["run_id"],
            "tokens_seen": obs_src["tokens"].astype(float),
            "flops": chinchilla_flops(obs_src["size"], obs_src["tokens"]),
            "flops_derived": True,
            "tokens_derived": False,
            "metric": obs_src["metric"],
            "value": obs_src["value"].astype(float),
        }
    )[list(OBSERVATION_COLUMNS)]

    runs = pd.DataFrame(
        {
            "run_id": run_src["run_id"],
            "family": run_src["family"],
            "model_name": run_src["model_name"],
            "architecture": "decoder",
            "num_params": run_src["size"].astype(float),
            "num_params_derived": True,
            "training_data": run_src["training_data"],
            "seed": None,
            "planned_tokens": run_src["planned_tokens"].astype(float),
            "source_paper": SOURCE_PAPER,
            "domain": "language",
            # the code mixes repeat Python and C4 at different rates: no one unique-token count
            "unique_tokens": run_src["unique_tokens"].astype(float),
        }
    )[[*RUN_COLUMNS, *OPTIONAL_RUN_COLUMNS]].reset_index(drop=True)

    metric_names = sorted(obs_src["metric"].unique())
    metrics = pd.DataFrame(
        {
            "metric": metric_names,
            "kind": "loss",
            "higher_is_better": False,
            "domain": [
                f"validation loss ({m.split('/')[1]} validation set, cross-entropy, nats/token)" for m in metric_names
            ],
        }
    )[list(METRIC_COLUMNS)]

    fam = run_src.drop_duplicates("family")
    families = pd.DataFrame(
        {
            "family": fam["family"],
            "default_metric": fam["default_metric"],
            "description": fam["family"].map(_describe),
        }
    )[list(FAMILY_COLUMNS)].reset_index(drop=True)
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()


def _describe(family: str) -> str:
    setting = family.removeprefix(NAME + "-")
    if setting.endswith("-unique"):
        data, unique, _ = setting.split("-")
        return (
            f"Datablations IsoLoss/contour runs on {unique} unique {data} tokens, repeated for as many "
            "epochs as the token budget needs; one final validation loss per run"
        )
    if setting.endswith("-python"):
        c4, _, python, _ = setting.split("-")
        return (
            f"Datablations 4.2B run, 84B tokens of {c4.removesuffix('pct')}% C4 + "
            f"{python.removesuffix('pct')}% Python (the-stack-dedup)"
        )
    data, epochs = setting.split("-")
    return (
        f"Datablations IsoFLOP runs (2.8B/4.2B/8.7B, Chinchilla-optimal budgets) on {data} with the "
        f"unique data repeated for {epochs.removesuffix('ep')} epoch(s); intermediate checkpoints"
    )
