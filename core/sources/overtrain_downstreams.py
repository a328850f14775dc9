"""ColPret's copy of the over-training testbed: ``colpret/raw_data/overtrain/overtrain_downstreams.csv``.

One row per run (the same 104 runs as ``overtrain``, final checkpoints), columns ``name``
(the mlfoundations file stem), ``dataset_name``, ``model_name``, ``N``, ``D``, ``flops``,
``tok_mult``, ``cc_mult``, ``loss_<set>``, ``loss_upper_<set>``, ``loss_lower_<set>`` for the
8 validation sets, ``err_<task>`` for the 46 tasks, ``err_avg`` and ``err_avg_subset``.

Conventions
    * run_id ``"overtrain/<name>"``: the same ids as the ``overtrain`` adapter, which comes
      first in the build, so its run descriptions (and families) win; the runs given here
      carry the same family / model_name / N / D so they stand alone too. ``families`` is
      empty: the families are defined by ``overtrain`` (whose default metric,
      ``val/c4_val/loss``, this adapter does not provide).
    * tokens_seen = D as reported (tokens_derived=False); flops = 6 * N * D
      (flops_derived=True; the file's ``flops`` column equals it exactly); num_params = N exact.
    * Only what the mlfoundations files do not already provide under the same name and
      meaning is added, under ``colpret/`` names:
        - ``colpret/val/<set>/loss_upper95`` and ``.../loss_lower95``: the 95% interval of the
          validation loss over sequences (= ``loss_sequences_{upper,lower}_95`` of the
          mlfoundations files, which the ``overtrain`` adapter does not ingest), kind other;
        - ``colpret/downstream/<task>/err``: top-1 error = 1 - accuracy, kind error (fraction);
        - ``colpret/downstream/avg46/err`` (``err_avg``, mean error over the 46 tasks) and
          ``colpret/downstream/avg17/err`` (``err_avg_subset``, mean over the 17 tasks on which
          some 0.154B run is more than 10 points above chance; checked on the data).

Skipped
    * ``loss_<set>`` (all 8, incl. openlm): identical to the mlfoundations ``results[].loss``
      that ``overtrain`` stores as ``val/<set>/loss``.
    * plotting columns (``color``, ``shape``), the index column, ``cc_mult``/``tok_mult`` (the
      multiplier is in model_name and ``overtrain.multipliers``), ``flops`` (recomputed).
    * rows without a name or with non-numeric / non-positive N or D, duplicate names (first
      kept), non-numeric cells and errors outside [0, 1]: counted in bad_rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

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
from .overtrain import DATASETS, SOURCE_PAPER

NAME = "overtrain_downstreams"
# Bumped whenever what read() yields changes (rows, values, columns): it is part of the data version,
# so a changed adapter marks every database stale and the shipped sweep results must be recomputed.
VERSION = 1
REPOSITORY = "colpret"
CSV = "colpret/raw_data/overtrain/overtrain_downstreams.csv"
PATTERNS = (CSV,)
RUN_PREFIX = "overtrain"
AVERAGES = {
    "err_avg": ("avg46", "mean top-1 error over the 46 downstream tasks (1 - accuracy)"),
    "err_avg_subset": ("avg17", "mean top-1 error over the paper's 17-task subset (1 - accuracy)"),
}


def _metric_columns(columns: pd.Index) -> dict[str, tuple[str, str, str]]:
    """Wide column -> (metric name, kind, domain) for the columns this adapter keeps."""
    out: dict[str, tuple[str, str, str]] = {}
    for column in columns:
        if column in AVERAGES:
            name, domain = AVERAGES[column]
            out[column] = (f"colpret/downstream/{name}/err", "error", f"downstream {domain}, ColPret")
        elif column.startswith("err_"):
            task = column[len("err_") :]
            out[column] = (
                f"colpret/downstream/{task}/err",
                "error",
                f"downstream top-1 error (1 - accuracy) on {task}, ColPret",
            )
        else:
            for bound in ("upper", "lower"):
                prefix = f"loss_{bound}_"
                if column.startswith(prefix):
                    val = column[len(prefix) :]
                    out[column] = (
                        f"colpret/val/{val}/loss_{bound}95",
                        "other",
                        f"{bound} end of the 95% interval over sequences of the {val} "
                        "validation loss (nats/token), ColPret",
                    )
    return out


def read(mirror: Path) -> SourceFrames:
    path = Path(mirror) / CSV
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable CSV ({exc})") from exc
    missing = {"name", "dataset_name", "model_name", "N", "D"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    bad: Counter[str] = Counter()

    n = pd.to_numeric(frame["N"], errors="coerce")
    d = pd.to_numeric(frame["D"], errors="coerce")
    ok = frame["name"].notna() & (n > 0) & (d > 0)
    if (~ok).any():
        bad["row without name or with non-numeric / non-positive N or D"] += int((~ok).sum())
    dup = ok & frame["name"].duplicated(keep="first")
    if dup.any():
        bad["duplicate run name: kept the first row"] += int(dup.sum())
    keep = ok & ~dup
    frame, n, d = frame.loc[keep], n.loc[keep].astype(float), d.loc[keep].astype(float)

    kept = _metric_columns(frame.columns)
    values = frame[list(kept)]
    non_numeric = values.notna() & values.apply(pd.to_numeric, errors="coerce").isna()
    if non_numeric.to_numpy().any():
        bad["non-numeric value"] += int(non_numeric.to_numpy().sum())

    run_id = RUN_PREFIX + "/" + frame["name"].astype(str)
    observations = long_observations(
        values,
        run_id,
        d,
        pd.Series(chinchilla_flops(n, d), index=frame.index),
        {column: spec[0] for column, spec in kept.items()},
        flops_derived=True,
        tokens_derived=False,
    )
    errors = observations["metric"].str.endswith("/err")
    out_of_range = errors & ~observations["value"].between(0.0, 1.0)
    if out_of_range.any():
        bad["error outside [0, 1]"] += int(out_of_range.sum())
        observations = observations.loc[~out_of_range]

    metrics = pd.DataFrame(
        [(name, kind, False, domain) for name, kind, domain in kept.values()],
        columns=list(METRIC_COLUMNS),
    ).sort_values("metric", ignore_index=True)

    dataset = frame["dataset_name"].astype(str)
    short = dataset.map(lambda x: DATASETS.get(x, (x, x))[0])
    tok_mult = (
        pd.to_numeric(frame["tok_mult"], errors="coerce")
        if "tok_mult" in frame.columns
        else pd.Series(np.nan, index=frame.index)
    )
    multiplier = tok_mult.fillna((d / n).round())  # M = D/N, as in the overtrain adapter
    runs = pd.DataFrame(
        {
            "run_id": run_id,
            "family": "overtrain-" + short,
            "model_name": frame["model_name"].astype(str) + " M=" + multiplier.map("{:g}".format),
            "architecture": "decoder",
            "num_params": n,
            "num_params_derived": False,
            "training_data": dataset.map(lambda x: DATASETS.get(x, (x, x))[1]),
            "seed": pd.Series(pd.NA, index=frame.index, dtype="Int64"),
            "planned_tokens": d,
            "source_paper": SOURCE_PAPER,
            "domain": "language",
        }
    )[list(RUN_COLUMNS)].reset_index(drop=True)

    families = pd.DataFrame({c: pd.Series(dtype=object) for c in FAMILY_COLUMNS})
    return SourceFrames(NAME, runs, observations, metrics, families, bad).validate()
