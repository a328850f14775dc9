"""The results store: the sweep's rows in a DuckDB file of their own (the collection database is
read-only), its schema, and reading the rows back (:func:`load_results`, :func:`load_parameters`).

This module is the results file's storage layer: every SQL statement on it (and on the shipped
Parquet copy of its rows) is here, behind a named function, with its values passed as parameters.
:mod:`core.storage` is the collection database's layer; the two files have their own schema, writer
and lifetime, so each has its own module. The only SQL built from text is the DDL of
:data:`ADDED_COLUMNS` (identifiers cannot be parameters; they are this module's constants).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import pandas as pd

from scaleplan.core import storage
from scaleplan.core.errors import UserError

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
    ("prediction_log_se", "DOUBLE"),
    ("backtest_log_error", "DOUBLE"),
)
FIT_OUTPUT_COLUMNS = ("num_sizes", "target_tokens", "fit_log_rmse", "prediction_log_se", "backtest_log_error")
"""The added columns a fit computes (source_group and law are filled in without refitting)."""
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
    "prediction_log_se",
    "backtest_log_error",
)


#: What the CLI tells its user to do about a results file another program holds.
RESULTS_IN_USE_REMEDY = "close it, or point --meta elsewhere"


class ResultsInUseError(storage.FileInUseError, duckdb.IOException):
    """The results file is locked by another process (e.g. a sweep running in a ``scaleplan serve``);
    it is healthy and left untouched. A user error (the CLI prints it, exit 2) that is also still the
    :class:`duckdb.IOException` it replaces, so a caller that treats an unreadable results file as
    "no results for now" (the dashboard's pages) keeps doing so."""


class ResultsDamagedError(UserError, OSError, duckdb.IOException):
    """The results file is a DuckDB file whose contents cannot be read (truncated, overwritten in part).
    It is left exactly as it is. A user error (the CLI prints it, exit 2) that is also an
    :class:`OSError` and the :class:`duckdb.IOException` DuckDB raised, so a caller that goes on
    without the results when they cannot be read (``plan``, ``fit``, the dashboard's pages) keeps doing so."""

    def __init__(self, meta_path: Path, error: BaseException) -> None:
        self.path = Path(meta_path)
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        super().__init__(
            f"the meta-analysis results file {self.path} is damaged ({detail}); scaleplan did not change it. "
            "Move it away (or point --meta elsewhere) and run `scaleplan meta run` to compute the results anew"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def _raise_unreadable(meta_path: Path, error: duckdb.Error) -> NoReturn:
    """Raise what ``error`` on the results file means: in use by another process, else damaged."""
    if storage.is_lock_error(error):
        raise ResultsInUseError(meta_path, error, RESULTS_IN_USE_REMEDY) from error
    raise ResultsDamagedError(meta_path, error) from error


def check_readable(meta_path: Path) -> None:
    """Read every row of the existing results file's tables (read-only, nothing is written): raises
    :class:`ResultsDamagedError` when DuckDB cannot, :class:`ResultsInUseError` when another process
    holds the file. A sweep checks this before it opens the file for writing."""
    con = open_results(meta_path, read_only=True)
    try:
        for table in ("sweep_results", "sweep_parameters"):
            if con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
            ).fetchone() != (0,):
                con.execute(f"SELECT count(*), min(hash(t)) FROM {table} AS t").fetchall()  # this module's names
    except duckdb.Error as error:
        _raise_unreadable(meta_path, error)
    finally:
        con.close()


def open_results(meta_path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the results file; writable (created with its tables, older files given the
    :data:`ADDED_COLUMNS`) unless ``read_only``.

    Raises :class:`ResultsInUseError` when another process holds a conflicting lock on the file, and
    :class:`ResultsDamagedError` when it cannot be read (a writable open reads the whole existing
    file first, :func:`check_readable`, so a damaged file is never written to).
    """
    meta_path = Path(meta_path)
    if not read_only:
        if meta_path.exists():
            check_readable(meta_path)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(meta_path), read_only=read_only)
    except duckdb.Error as error:
        _raise_unreadable(meta_path, error)
    if read_only:
        return con
    con.execute(RESULTS_SQL)
    present = {row[0] for row in con.execute("SELECT name FROM pragma_table_info('sweep_results')").fetchall()}
    for name, kind in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE sweep_results ADD COLUMN IF NOT EXISTS {name} {kind}")
    if any(name not in present for name in FIT_OUTPUT_COLUMNS):
        # The stored fits predate an output the calibration reads (NULL in every old row, which would read
        # as "too small to backtest"): marked unfinished (finished_keys), so the next sweep refits them.
        con.execute("UPDATE sweep_results SET num_sizes = NULL WHERE status = 'ok'")
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
        stored = read_parameters(meta_path)
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
    frame = (
        read_rows(meta_path, data_version) if Path(meta_path).exists() else pd.DataFrame(columns=list(RESULT_COLUMNS))
    )
    if frame.empty and shipped and data_version is not None:
        from scaleplan.core.meta.shipped import shipped_results  # shipped.py reads this module's schema

        return shipped_results(data_version)
    return _with_law(frame)


def _with_law(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows stored before laws were named (no or a NULL ``law``) are Chinchilla fits."""
    frame = frame.copy()
    frame["law"] = frame["law"].fillna("chinchilla") if "law" in frame.columns else "chinchilla"
    return frame


# --------------------------------------------------------------------------------------------
# The statements on the results file, one function each


def read_rows(meta_path: Path, data_version: str | None = None) -> pd.DataFrame:
    """The rows stored in the existing file ``meta_path`` (of ``data_version`` if given), as stored."""
    con = open_results(meta_path, read_only=True)
    try:
        frame: pd.DataFrame = con.execute(
            "SELECT * FROM sweep_results WHERE ?::VARCHAR IS NULL OR data_version = ?", [data_version, data_version]
        ).df()
    except duckdb.CatalogException:
        raise
    except duckdb.Error as error:
        _raise_unreadable(meta_path, error)
    finally:
        con.close()
    return frame


def finished_keys_of(meta_path: Path, data_version: str) -> set[str]:
    """:func:`finished_keys` of the existing results file ``meta_path`` (opened read-only)."""
    con = open_results(meta_path, read_only=True)
    try:
        return finished_keys(con, data_version)
    except duckdb.Error as error:
        _raise_unreadable(meta_path, error)
    finally:
        con.close()


def read_parameters(meta_path: Path) -> pd.DataFrame:
    """The long parameter table (key, law, name, value) of the existing file ``meta_path``; empty for
    a file written before the table existed."""
    con = open_results(meta_path, read_only=True)
    try:
        try:
            stored: pd.DataFrame = con.execute("SELECT key, law, name, value FROM sweep_parameters").df()
        except duckdb.CatalogException:  # a file written before the table existed
            return pd.DataFrame(columns=list(PARAMETER_COLUMNS))
        except duckdb.Error as error:
            _raise_unreadable(meta_path, error)
    finally:
        con.close()
    return stored


def fill_source_groups(
    con: duckdb.DuckDBPyConnection, families: Iterable[str], source_group_of: Mapping[str, str | None]
) -> None:
    """Give the rows of ``families`` stored before the ``source_group`` column existed their family's
    group (``source_group_of``, :func:`core.storage.family_source_groups`), without refitting them."""
    for family in families:
        con.execute(
            "UPDATE sweep_results SET source_group = ? WHERE family = ? AND source_group IS NULL",
            [source_group_of.get(family), family],
        )


def finished_keys(con: duckdb.DuckDBPyConnection, data_version: str) -> set[str]:
    """Keys of the stored rows of ``data_version`` a rerun skips: every failure, and every fit stored
    with the calibration's columns (an ok row without ``num_sizes`` predates them and is refitted)."""
    rows = con.execute(
        "SELECT key FROM sweep_results WHERE data_version = ? AND (status <> 'ok' OR num_sizes IS NOT NULL)",
        [data_version],
    ).fetchall()
    return {row[0] for row in rows}


def store_rows(con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Insert (or replace, by key) one batch of result rows and their parameters in one transaction.

    ``rows`` are :func:`~core.meta.run.run_task`'s; returns them as stored (the :data:`RESULT_COLUMNS`).
    """
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    con.register("new_rows", frame)
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT OR REPLACE INTO sweep_results SELECT * FROM new_rows")
    con.register("new_parameters", parameter_rows(rows))
    con.execute("INSERT OR REPLACE INTO sweep_parameters SELECT * FROM new_parameters")
    con.execute("COMMIT")
    con.unregister("new_rows")
    con.unregister("new_parameters")
    return frame


def read_shipped_rows(path: Path, data_version: str) -> pd.DataFrame:
    """The rows of ``data_version`` in a Parquet copy of the results (the shipped artifact at ``path``)."""
    con = duckdb.connect()
    try:
        frame: pd.DataFrame = con.execute(
            "SELECT * FROM read_parquet(?) WHERE data_version = ?", [str(path), data_version]
        ).df()
    finally:
        con.close()
    return frame
