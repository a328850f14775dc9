"""The user's own store: saved studies and scenarios, kept apart from the collection's cache.

The collection's database (:mod:`scaleplan.core.storage`) is a cache that scaleplan rebuilds
whenever it likes; what a user saves must never go there. It lives in its own DuckDB file,
``<data folder>/user.duckdb`` (setting ``user_db_path``, ``--user-db``, ``$SCALEPLAN_USER_DB``),
which no build, rebuild or clean-up touches.

The file is recognised by a marker table, ``scaleplan_user_store(key, value)``, written when
scaleplan creates the file. :func:`open_user_store` refuses any existing file that is not such a
store (a CSV, another program's database) with a :class:`UserStoreError` naming the path, so a
mistyped path never overwrites the user's data.

Each feature owns its tables and creates them with ``CREATE TABLE IF NOT EXISTS`` through
:func:`ensure_tables`; a schema change of a feature is a new table or an added column, never a
drop, so a newer scaleplan reads an older store.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from scaleplan.core.errors import UserError

__all__ = ["UserStoreError", "STORE_FORMAT", "open_user_store", "user_store", "ensure_tables", "is_user_store"]

STORE_FORMAT = "1"
_MARKER_TABLE = "scaleplan_user_store"
_MARKER_SQL = f"CREATE TABLE IF NOT EXISTS {_MARKER_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)"


class UserStoreError(UserError):
    """The user store's file exists but is not scaleplan's, or cannot be opened."""


def is_user_store(path: Path) -> bool:
    """True when ``path`` is a DuckDB file holding scaleplan's marker table (opened read-only)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.Error, OSError):
        return False
    try:
        row = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [_MARKER_TABLE]
        ).fetchone()
        return bool(row and row[0])
    except duckdb.Error:
        return False
    finally:
        con.close()


def open_user_store(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the user store at ``path``, created (with its folder) when missing.

    Raises :class:`UserStoreError` when ``path`` exists and is not a scaleplan user store: the
    file is left exactly as it was.
    """
    path = Path(path)
    if path.exists():
        if path.is_dir() or not is_user_store(path):
            raise UserStoreError(
                f"{path} is not a scaleplan user store (saved studies and scenarios); scaleplan will not "
                "write to it. Point --user-db (or $SCALEPLAN_USER_DB) at a new file or at an existing store."
            )
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
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


def ensure_tables(con: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """Run a feature's ``CREATE TABLE IF NOT EXISTS`` statements (idempotent)."""
    con.execute(ddl)
