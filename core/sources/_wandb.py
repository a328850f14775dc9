"""Shared helpers for Weights & Biases CSV exports (used by the ``olmo`` and ``llm360`` adapters).

A W&B "export panel data" CSV has an x-axis column (``Step``) followed, for each plotted series
``"<run or group> - <metric>"``, by that column and its ``__MIN`` / ``__MAX`` envelope copies.
``read_export`` keeps the x-axis and the plain series columns and returns them in long form
(``step``, ``series``, ``value``), dropping empty cells and counting malformed ones.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

STEP_COLUMN = "Step"


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV as strings; an unreadable file raises with its name in the message."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: unreadable CSV ({exc})") from exc


def to_long(
    frame: pd.DataFrame,
    step_column: str,
    value_columns: list[str],
    bad: Counter[str],
    label: str,
    id_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Melt ``value_columns`` of a string frame into (step, series, value, *id_columns) rows.

    Rows whose step is missing or not a number are counted once each in ``bad``; non-empty
    value cells that are not numbers are counted per cell. Empty cells are simply absent.
    ``id_columns`` are carried along unchanged.
    """
    step = pd.to_numeric(frame[step_column], errors="coerce")
    bad_step = step.isna()
    if bad_step.any():
        bad[f"{label}: missing or non-numeric step"] += int(bad_step.sum())
    frame, step = frame.loc[~bad_step], step.loc[~bad_step]
    parts = []
    for column in value_columns:
        raw = frame[column]
        value = pd.to_numeric(raw, errors="coerce")
        malformed = value.isna() & raw.notna()
        if malformed.any():
            bad[f"{label}: non-numeric value"] += int(malformed.sum())
        keep = value.notna()
        part = pd.DataFrame({"step": step[keep], "series": column, "value": value[keep]})
        for id_column in id_columns:
            part[id_column] = frame.loc[keep, id_column]
        parts.append(part)
    if not parts:
        empty = {"step": pd.Series(dtype=float), "series": pd.Series(dtype=str), "value": pd.Series(dtype=float)}
        return pd.DataFrame(empty | {c: pd.Series(dtype=str) for c in id_columns})
    return pd.concat(parts, ignore_index=True)


def read_export(path: Path, bad: Counter[str], label: str) -> pd.DataFrame:
    """Long (step, series, value) rows of one W&B export, without the __MIN/__MAX copies."""
    frame = read_csv(path)
    if STEP_COLUMN not in frame.columns:
        raise ValueError(f"{path}: W&B export without a {STEP_COLUMN!r} column")
    series = [c for c in frame.columns if c != STEP_COLUMN and not c.endswith("__MIN") and not c.endswith("__MAX")]
    return to_long(frame, STEP_COLUMN, series, bad, label)
