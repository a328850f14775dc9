"""The user's own store: saved studies and scenarios, kept apart from the collection's cache.

The collection's database (:mod:`scaleplan.core.storage`) is a cache that scaleplan rebuilds
whenever it likes; what a user saves must never go there. It lives in its own DuckDB file,
``<data folder>/user.duckdb`` (setting ``user_db_path``, ``--user-db``, ``$SCALEPLAN_USER_DB``),
which no build, rebuild or clean-up touches.

The file is recognised by a marker table, ``scaleplan_user_store(key, value)``, written when
scaleplan creates the file. :func:`open_user_store` refuses any existing file that is not such a
store (a CSV, another program's database) with a :class:`UserStoreError` naming the path, so a
mistyped path never overwrites the user's data.

Each feature has its own tables, created with ``CREATE TABLE IF NOT EXISTS`` through
:func:`ensure_tables`; a schema change of a feature is a new table or an added column, never a
drop, so a newer scaleplan reads an older store.

This module is the user database's storage layer: the saved studies' tables
(:data:`STUDY_TABLES_SQL`, used by :mod:`scaleplan.core.studies`), the saved scenarios' table
(:data:`SCENARIO_TABLE_SQL`, used by :mod:`scaleplan.core.scenarios`) and every statement on them are
here, behind named functions, with every value (a study's name included) passed as a parameter.
Writes that change more than one row run in one transaction, so a failed write leaves the store as
it was.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from scaleplan.core.errors import UserError
from scaleplan.core.storage import FileInUseError, is_duckdb_file, is_lock_error

__all__ = [
    "STORE_FORMAT",
    "STUDY_RECORD_COLUMNS",
    "STUDY_ROW_COLUMNS",
    "STUDY_TABLES_SQL",
    "UserStoreDamagedError",
    "UserStoreError",
    "check_readable",
    "ensure_tables",
    "has_study",
    "has_table",
    "is_user_store",
    "open_user_store",
    "remove_study",
    "set_study_name",
    "study_record",
    "study_records",
    "study_with_rows",
    "user_store",
    "write_study",
]

STORE_FORMAT = "1"
_MARKER_TABLE = "scaleplan_user_store"
_MARKER_SQL = f"CREATE TABLE IF NOT EXISTS {_MARKER_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)"


class UserStoreError(UserError):
    """The user store's file exists but is not scaleplan's, or cannot be opened."""


class UserStoreInUseError(UserStoreError, FileInUseError):
    """The user store is locked by another process (it is healthy; nothing is done to it): a
    :class:`UserStoreError` that carries the file and the holder like every "in use" error."""


def _raise_if_in_use(path: Path, error: BaseException) -> None:
    """Raise :class:`UserStoreInUseError` when ``error`` is DuckDB's lock error."""
    if is_lock_error(error):
        raise UserStoreInUseError(Path(path), error) from error


def is_user_store(path: Path) -> bool:
    """True when ``path`` is a DuckDB file holding scaleplan's marker table (opened read-only).

    Raises :class:`UserStoreError` when another process holds a conflicting lock on the file:
    whether it is a store cannot be told, and it must not be called foreign.
    """
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.Error, OSError) as error:
        _raise_if_in_use(path, error)
        return False
    try:
        return has_table(con, _MARKER_TABLE)
    except duckdb.Error:
        return False
    finally:
        con.close()


class UserStoreDamagedError(UserStoreError):
    """The user store is scaleplan's but its contents cannot be read (truncated, overwritten in part).
    It holds the user's data, so it is never moved, rebuilt or written: the message says so."""

    def __init__(self, path: Path, error: BaseException) -> None:
        self.path = Path(path)
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        super().__init__(
            f"the user store {self.path} (saved studies and scenarios) is damaged ({detail}); scaleplan did not "
            "change it and will not write to it. Restore it from a backup, or point --user-db (or "
            "$SCALEPLAN_USER_DB) at another file"
        )


def check_readable(path: Path) -> None:
    """Read every row of every table of the existing store at ``path`` (read-only: nothing is written).

    Raises :class:`UserStoreDamagedError` when DuckDB cannot (a store cut short reads its catalogue
    but not its rows), :class:`UserStoreInUseError` when another process holds the file.
    """
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.Error, OSError) as error:
        _raise_if_in_use(path, error)
        raise UserStoreDamagedError(path, error) from error
    try:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        for (table,) in tables:
            quoted = '"' + str(table).replace('"', '""') + '"'  # a name read from the store's own catalogue
            con.execute(f"SELECT count(*), min(hash(t)) FROM {quoted} AS t").fetchall()
    except duckdb.Error as error:
        _raise_if_in_use(path, error)
        raise UserStoreDamagedError(path, error) from error
    finally:
        con.close()


def open_user_store(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the user store at ``path``, created (with its folder) when missing.

    Raises :class:`UserStoreError` when ``path`` exists and is not a scaleplan user store, and
    :class:`UserStoreDamagedError` when it is one whose contents cannot be read (every row is read,
    read-only, before a connection is handed out: :func:`check_readable`): the file is left exactly
    as it was.
    """
    path = Path(path)
    if path.exists():
        if path.is_dir() or not is_user_store(path):
            if path.is_file() and is_duckdb_file(path):
                check_readable(path)  # a store whose catalogue is cut short is damaged, not someone else's
            raise UserStoreError(
                f"{path} is not a scaleplan user store (saved studies and scenarios); scaleplan will not "
                "write to it. Point --user-db (or $SCALEPLAN_USER_DB) at a new file or at an existing store."
            )
        check_readable(path)
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
            _raise_if_in_use(path, error)
            raise UserStoreError(f"cannot open the user store {path}: {error}") from error
    if read_only:
        # Nothing saved yet: an empty in-memory store answers "no studies" without creating a file.
        con = duckdb.connect(":memory:")
        con.execute(_MARKER_SQL)
        return con
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(_MARKER_SQL)
    now = _dt.datetime.now(_dt.UTC).isoformat()
    con.execute(
        f"INSERT INTO {_MARKER_TABLE} VALUES ('format', ?), ('created_at', ?), ('created_by_pid', ?) "
        "ON CONFLICT DO NOTHING",
        [STORE_FORMAT, now, str(os.getpid())],
    )
    return con


@contextmanager
def user_store(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`open_user_store` as a context manager that closes the connection."""
    con = open_user_store(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block's statements in one transaction: committed when it ends, rolled back when it raises
    (the store is then as it was, and the connection stays usable)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def ensure_tables(con: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """Run a feature's ``CREATE TABLE IF NOT EXISTS`` statements (idempotent)."""
    con.execute(ddl)


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """True when the store behind ``con`` has a table named ``table``."""
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------------------------
# Saved studies (core.studies): their tables and the statements on them, one function each

STUDY_TABLES_SQL = """
CREATE SEQUENCE IF NOT EXISTS study_ids START 1;
CREATE TABLE IF NOT EXISTS studies (
    study_id BIGINT PRIMARY KEY DEFAULT nextval('study_ids'),
    name VARCHAR NOT NULL UNIQUE,
    sha256 VARCHAR NOT NULL,
    filename VARCHAR,
    format VARCHAR NOT NULL,
    uploaded_at TIMESTAMPTZ NOT NULL,
    mapping VARCHAR NOT NULL,
    num_runs INTEGER NOT NULL,
    num_rows INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS study_rows (
    study_id BIGINT NOT NULL,
    row_index INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    run_name VARCHAR NOT NULL,
    seed DOUBLE,
    num_params DOUBLE NOT NULL,
    tokens_seen DOUBLE NOT NULL,
    loss DOUBLE NOT NULL,
    step DOUBLE,
    flops DOUBLE,
    schedule VARCHAR,
    final_of_schedule BOOLEAN
);
"""
"""``studies``: one row per study (``name`` unique; ``mapping`` a JSON list of [scaleplan column,
file column]; ``uploaded_at`` UTC). ``study_rows``: a study's validated rows, in upload order by
``row_index``."""
STUDY_RECORD_COLUMNS = ("name", "sha256", "filename", "format", "uploaded_at", "mapping", "num_runs", "num_rows")
"""The fields of a study's record, in the order the ``study_record*`` functions return them."""
STUDY_ROW_COLUMNS = (
    "row_index",
    "run_id",
    "run_name",
    "seed",
    "num_params",
    "tokens_seen",
    "loss",
    "step",
    "flops",
    "schedule",
    "final_of_schedule",
)
"""The columns of the rows frame :func:`write_study` stores (``study_id`` is given by the store)."""
_RECORD = ", ".join(STUDY_RECORD_COLUMNS)  # this module's constant, never user text


def write_study(
    con: duckdb.DuckDBPyConnection,
    record: tuple[Any, ...],
    rows: pd.DataFrame,
    *,
    replace: bool = False,
) -> tuple[Any, ...] | None:
    """Store one study, its ``record`` (the values of :data:`STUDY_RECORD_COLUMNS`, in order) and its
    ``rows`` (:data:`STUDY_ROW_COLUMNS`), in one transaction; return its record as stored.

    A study of the same name is replaced (its rows too) when ``replace``; otherwise nothing is
    written and None is returned. Any failure rolls the transaction back: the store is as it was.
    """
    if len(record) != len(STUDY_RECORD_COLUMNS):
        raise ValueError(f"a study record has {len(STUDY_RECORD_COLUMNS)} values, got {len(record)}")
    name = record[0]
    with _transaction(con):
        existing = con.execute("SELECT study_id FROM studies WHERE name = ?", [name]).fetchone()
        if existing and not replace:
            return None  # nothing was written
        if existing:
            con.execute("DELETE FROM study_rows WHERE study_id = ?", [existing[0]])
            con.execute("DELETE FROM studies WHERE study_id = ?", [existing[0]])
        study_row = con.execute(
            f"INSERT INTO studies ({_RECORD}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING study_id",
            list(record),
        ).fetchone()
        assert study_row is not None
        frame = rows.copy()
        frame.insert(0, "study_id", int(study_row[0]))
        con.register("_new_rows", frame)
        con.execute(
            "INSERT INTO study_rows SELECT study_id, row_index, run_id, run_name, seed, num_params, tokens_seen, "
            "loss, step, flops, schedule, CAST(final_of_schedule AS BOOLEAN) FROM _new_rows"
        )
        con.unregister("_new_rows")
    return study_record(con, name)


def study_records(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every study's record (:data:`STUDY_RECORD_COLUMNS`), newest upload first, then by name; none
    when the store has no study tables yet."""
    if not has_table(con, "studies"):
        return []
    return con.execute(f"SELECT {_RECORD} FROM studies ORDER BY uploaded_at DESC, name").fetchall()


def study_record(con: duckdb.DuckDBPyConnection, name: str) -> tuple[Any, ...] | None:
    """The record (:data:`STUDY_RECORD_COLUMNS`) of the study ``name``, or None."""
    return con.execute(f"SELECT {_RECORD} FROM studies WHERE name = ?", [name]).fetchone()


def study_with_rows(con: duckdb.DuckDBPyConnection, name: str) -> tuple[tuple[Any, ...], pd.DataFrame] | None:
    """The study ``name``'s record and its rows in upload order (columns run_id, run_name, seed,
    num_params, tokens_seen, value (the loss), step, flops, schedule, final_of_schedule); None when
    there is no such study (or no study tables)."""
    if not has_table(con, "studies"):
        return None
    found = con.execute(f"SELECT {_RECORD}, study_id FROM studies WHERE name = ?", [name]).fetchone()
    if found is None:
        return None
    table: pd.DataFrame = con.execute(
        "SELECT run_id, run_name, seed, num_params, tokens_seen, loss AS value, step, flops, schedule, "
        "final_of_schedule FROM study_rows WHERE study_id = ? ORDER BY row_index",
        [found[-1]],
    ).df()
    return found[:-1], table


def has_study(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """True when a study named ``name`` is stored."""
    return con.execute("SELECT count(*) FROM studies WHERE name = ?", [name]).fetchone() != (0,)


def set_study_name(
    con: duckdb.DuckDBPyConnection,
    old: str,
    new: str,
    *,
    rewrite_scenario: Callable[[str], str | None] | None = None,
) -> tuple[Any, ...] | None:
    """Rename the study ``old`` to ``new`` and return its record (the caller checks that ``old`` is
    stored and ``new`` is free: :func:`has_study`).

    ``rewrite_scenario`` is given each saved scenario's ``inputs_json`` and returns its new text (or
    None to leave it): the scenarios saved against the study are rewritten in the same transaction as
    the rename, so a failure of either leaves the study and every scenario as they were.
    """
    with _transaction(con):
        con.execute("UPDATE studies SET name = ? WHERE name = ?", [new, old])
        if rewrite_scenario is not None and has_table(con, "scenarios"):
            for name, inputs_json in con.execute("SELECT name, inputs_json FROM scenarios ORDER BY name").fetchall():
                rewritten = rewrite_scenario(inputs_json)
                if rewritten is not None and rewritten != inputs_json:
                    con.execute("UPDATE scenarios SET inputs_json = ? WHERE name = ?", [rewritten, name])
    return study_record(con, new)


def remove_study(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Delete the study ``name`` and its rows in one transaction; False (nothing deleted) when there
    is no such study."""
    row = con.execute("SELECT study_id FROM studies WHERE name = ?", [name]).fetchone()
    if row is None:
        return False
    with _transaction(con):  # a failure midway: the study keeps its rows
        con.execute("DELETE FROM study_rows WHERE study_id = ?", [row[0]])
        con.execute("DELETE FROM studies WHERE study_id = ?", [row[0]])
    return True


# --------------------------------------------------------------------------------------------
# Saved scenarios (core.scenarios): their table and the statements on it, one function each

SCENARIO_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS scenarios (
    name VARCHAR PRIMARY KEY,
    inputs_json VARCHAR NOT NULL,
    inputs_format VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    updated_at VARCHAR NOT NULL
)
"""
"""``scenarios``: one row per saved what-if (``name`` unique; ``inputs_json`` the planner's inputs in
format ``inputs_format``; ISO-8601 UTC times)."""

SCENARIO_COLUMNS = ("name", "inputs_json", "created_at", "updated_at")
_SCENARIO = ", ".join(SCENARIO_COLUMNS)  # this module's constant, never user text


def is_read_only(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``con`` was opened read-only (nothing may be created through it)."""
    try:
        row = con.execute("SELECT current_setting('access_mode')").fetchone()
    except duckdb.Error:
        return False
    return row is not None and str(row[0]).lower() == "read_only"


def has_scenario(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """True when a scenario named ``name`` is saved (the table must exist)."""
    row = con.execute("SELECT count(*) FROM scenarios WHERE name = ?", [name]).fetchone()
    return bool(row and row[0])


def insert_scenario(con: duckdb.DuckDBPyConnection, name: str, inputs_json: str, inputs_format: str, now: str) -> None:
    """Save a new scenario (``name`` free: :func:`has_scenario`), created and updated ``now``."""
    con.execute("INSERT INTO scenarios VALUES (?, ?, ?, ?, ?)", [name, inputs_json, inputs_format, now, now])


def update_scenario_inputs(
    con: duckdb.DuckDBPyConnection, name: str, inputs_json: str, inputs_format: str, now: str
) -> None:
    """Replace the inputs of the saved scenario ``name``, updated ``now`` (its creation time is kept)."""
    con.execute(
        "UPDATE scenarios SET inputs_json = ?, inputs_format = ?, updated_at = ? WHERE name = ?",
        [inputs_json, inputs_format, now, name],
    )


def scenario_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every saved scenario's (name, inputs_json, created_at, updated_at), by name (case-insensitive
    first); none when the table does not exist."""
    if not has_table(con, "scenarios"):
        return []
    return con.execute(f"SELECT {_SCENARIO} FROM scenarios ORDER BY lower(name), name").fetchall()


def scenario_row(con: duckdb.DuckDBPyConnection, name: str) -> tuple[Any, ...] | None:
    """The saved scenario ``name`` as (name, inputs_json, created_at, updated_at), or None."""
    if not has_table(con, "scenarios"):
        return None
    row: tuple[Any, ...] | None = con.execute(f"SELECT {_SCENARIO} FROM scenarios WHERE name = ?", [name]).fetchone()
    return row


def set_scenario_name(con: duckdb.DuckDBPyConnection, old: str, new: str, now: str) -> None:
    """Rename the saved scenario ``old`` to ``new`` (the caller checks ``new`` is free), updated ``now``."""
    con.execute("UPDATE scenarios SET name = ?, updated_at = ? WHERE name = ?", [new, now, old])


def remove_scenario(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Delete the saved scenario ``name`` (only it)."""
    con.execute("DELETE FROM scenarios WHERE name = ?", [name])
