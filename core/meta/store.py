"""The results store: the sweep's rows in a DuckDB file of their own (the collection database is
read-only), its schema, and reading the rows back (:func:`load_results`, :func:`load_parameters`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

RESULTS_SQL = """
CREATE TABLE IF NOT EXISTS sweep_results (
    key VARCHAR PRIMARY KEY, data_version VARCHAR, family VARCHAR, target_run VARCHAR,
    target_params DOUBLE, num_runs INTEGER, max_params_used DOUBLE, min_params_used DOUBLE,
    fraction DOUBLE, final_only BOOLEAN, min_tokens DOUBLE, objective VARCHAR,
    run_ids VARCHAR, n_points INTEGER, status VARCHAR, message VARCHAR,
    E DOUBLE, A DOUBLE, B DOUBLE, alpha DOUBLE, beta DOUBLE,
    predicted_final DOUBLE, actual_final DOUBLE, are_final DOUBLE, are_mean DOUBLE,
    compute_share DOUBLE, fit_seconds DOUBLE,
    num_sizes INTEGER, target_tokens DOUBLE, fit_log_rmse DOUBLE, source_group VARCHAR)
"""
# Columns added after the first release of the table, for core.calibration: appended to an older
# results file on open (ALTER TABLE keeps column order = RESULT_COLUMNS); its ok rows that lack
# them are refitted by the next sweep.
# source_group (core.sources.source_group of the family's adapter) is filled in for stored rows without
# refitting (:func:`run_sweep`).
# ``law`` is the fitted law's name (NULL in files written before it: those rows are Chinchilla's).
ADDED_COLUMNS = (
    ("num_sizes", "INTEGER"),
    ("target_tokens", "DOUBLE"),
    ("fit_log_rmse", "DOUBLE"),
    ("source_group", "VARCHAR"),
    ("law", "VARCHAR"),
)
# Every fitted row's parameters, whatever its law: one row per (task key, parameter). The wide
# columns E, A, B, alpha, beta of sweep_results hold the Chinchilla law's only (what the
# calibration and the findings read); other laws' rows leave them NULL.
PARAMETERS_SQL = """
CREATE TABLE IF NOT EXISTS sweep_parameters (
    key VARCHAR, law VARCHAR, name VARCHAR, value DOUBLE, PRIMARY KEY (key, name))
"""
PARAMETER_COLUMNS = ("key", "law", "name", "value")
CHINCHILLA_COLUMNS = ("E", "A", "B", "alpha", "beta")
RESULT_COLUMNS = (
    "key",
    "data_version",
    "family",
    "target_run",
    "target_params",
    "num_runs",
    "max_params_used",
    "min_params_used",
    "fraction",
    "final_only",
    "min_tokens",
    "objective",
    "run_ids",
    "n_points",
    "status",
    "message",
    "E",
    "A",
    "B",
    "alpha",
    "beta",
    "predicted_final",
    "actual_final",
    "are_final",
    "are_mean",
    "compute_share",
    "fit_seconds",
    "num_sizes",
    "target_tokens",
    "fit_log_rmse",
    "source_group",
    "law",
)


def open_results(meta_path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    meta_path = Path(meta_path)
    if read_only:
        return duckdb.connect(str(meta_path), read_only=True)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(meta_path))
    con.execute(RESULTS_SQL)
    for name, kind in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE sweep_results ADD COLUMN IF NOT EXISTS {name} {kind}")
    con.execute(PARAMETERS_SQL)
    return con


def parameter_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The long table (key, law, name, value) of the fitted parameters of result rows from :func:`run_task`."""
    long = [
        (row["key"], row["law"], name, float(value))
        for row in rows
        for name, value in (row.get("parameters") or {}).items()
    ]
    return pd.DataFrame(long, columns=list(PARAMETER_COLUMNS))


def load_parameters(meta_path: Path, data_version: str | None = None, *, shipped: bool = True) -> pd.DataFrame:
    """Fitted parameters of the stored rows as a long table (key, law, name, value).

    Rows stored without it (the shipped results, files written before laws were named) are
    Chinchilla fits: their parameters are read from the wide columns E, A, B, alpha, beta.
    """
    results = load_results(meta_path, data_version, shipped=shipped)
    stored = pd.DataFrame(columns=list(PARAMETER_COLUMNS))
    if Path(meta_path).exists() and not results.empty:
        con = open_results(meta_path, read_only=True)
        try:
            try:
                stored = con.execute("SELECT key, law, name, value FROM sweep_parameters").df()
            except duckdb.CatalogException:  # a file written before the table existed
                pass
        finally:
            con.close()
    stored = stored[stored["key"].isin(results["key"])]
    ok = results[(results["status"] == "ok") & ~results["key"].isin(stored["key"])]
    legacy = ok[["key", *CHINCHILLA_COLUMNS]].melt(id_vars="key", var_name="name", value_name="value")
    legacy.insert(1, "law", "chinchilla")
    return pd.concat([stored, legacy.dropna(subset=["value"])], ignore_index=True)


def load_results(meta_path: Path, data_version: str | None = None, *, shipped: bool = True) -> pd.DataFrame:
    """All stored rows (of one data version if given); empty frame if nothing is stored.

    When ``meta_path`` holds no row of ``data_version`` and ``shipped`` is true, the results
    shipped with scaleplan (:func:`shipped_results`) are returned if they were computed for
    that same data version: the dashboard and the CLI are ready on a fresh machine, and a sweep
    of the user's own (``scaleplan meta run``) takes precedence once it exists.
    """
    frame = pd.DataFrame(columns=list(RESULT_COLUMNS))
    if Path(meta_path).exists():
        con = open_results(meta_path, read_only=True)
        try:
            frame = con.execute(
                "SELECT * FROM sweep_results WHERE ?::VARCHAR IS NULL OR data_version = ?", [data_version, data_version]
            ).df()
        finally:
            con.close()
    if frame.empty and shipped and data_version is not None:
        from scaleplan.core.meta.shipped import shipped_results  # shipped.py reads this module's schema

        return shipped_results(data_version)
    return _with_law(frame)


def _with_law(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows stored before laws were named (no or a NULL ``law``) are Chinchilla fits."""
    frame = frame.copy()
    frame["law"] = frame["law"].fillna("chinchilla") if "law" in frame.columns else "chinchilla"
    return frame
