"""The user store: created on first write, recognised by its marker, never written over when foreign."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from scaleplan.core import userstore
from scaleplan.core.errors import UserError
from scaleplan.core.settings import resolve_settings


def test_created_with_its_folder_and_reopened(tmp_path):
    path = tmp_path / "nested" / "user.duckdb"
    with userstore.user_store(path) as con:
        userstore.ensure_tables(con, "CREATE TABLE IF NOT EXISTS notes (name VARCHAR PRIMARY KEY, body VARCHAR)")
        con.execute("INSERT INTO notes VALUES ('a', 'kept')")
    assert userstore.is_user_store(path)
    with userstore.user_store(path) as con:
        userstore.ensure_tables(con, "CREATE TABLE IF NOT EXISTS notes (name VARCHAR PRIMARY KEY, body VARCHAR)")
        assert con.execute("SELECT body FROM notes").fetchall() == [("kept",)]


@pytest.mark.parametrize("content", [b"num_params,tokens_seen,loss\n1e8,2e9,3.1\n", b""])
def test_a_foreign_file_is_refused_and_left_byte_for_byte(tmp_path, content):
    path = tmp_path / "my_runs.csv"
    path.write_bytes(content)
    with pytest.raises(userstore.UserStoreError, match="not a scaleplan user store") as raised:
        userstore.open_user_store(path)
    assert isinstance(raised.value, UserError)
    assert path.read_bytes() == content


def test_another_duckdb_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    before = path.read_bytes()
    with pytest.raises(userstore.UserStoreError):
        userstore.open_user_store(path)
    assert path.read_bytes() == before


def test_read_only_without_a_file_creates_nothing(tmp_path):
    path = tmp_path / "user.duckdb"
    with userstore.user_store(path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scaleplan_user_store").fetchone() == (0,)
    assert not path.exists()


def test_settings_place_the_store_beside_the_data_and_not_in_the_cache(tmp_path):
    settings = resolve_settings(data_dir=tmp_path, environ={})
    assert settings.user_db_path == tmp_path / "user.duckdb"
    assert settings.user_db_path not in (settings.db_path, settings.meta_path)
    env = {"SCALEPLAN_USER_DB": str(tmp_path / "elsewhere.duckdb")}
    assert resolve_settings(data_dir=tmp_path, environ=env).user_db_path == tmp_path / "elsewhere.duckdb"
    assert resolve_settings(user_db=tmp_path / "arg.duckdb", environ=env).user_db_path == tmp_path / "arg.duckdb"


# ---------------------------------------------------------------------------------------------
# The saved studies' statements (core.studies calls these)


def _rows(losses: list[float]) -> pd.DataFrame:
    n = len(losses)
    return pd.DataFrame(
        {
            "row_index": range(n),
            "run_id": [f"r{i}" for i in range(n)],
            "run_name": [f"run {i}" for i in range(n)],
            "seed": [float("nan")] * n,
            "num_params": [1e8 * (i + 1) for i in range(n)],
            "tokens_seen": [2e9] * n,
            "loss": losses,
            "step": [float("nan")] * n,
            "flops": [float("nan")] * n,
            "schedule": [None] * n,
            "final_of_schedule": [None] * n,
        }
    )


def _record(name: str, sha: str, rows: pd.DataFrame) -> tuple:
    when = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    return (name, sha, "runs.csv", "csv", when, "[]", len(rows), len(rows))


def _study_store(path):
    con = userstore.open_user_store(path)
    userstore.ensure_tables(con, userstore.STUDY_TABLES_SQL)
    return con


def test_a_taken_name_or_a_failed_replace_leaves_the_stored_study(tmp_path):
    con = _study_store(tmp_path / "user.duckdb")
    first = _rows([3.0, 2.5])
    stored = userstore.write_study(con, _record("sweep", "aaa", first), first)
    assert stored is not None and stored[:2] == ("sweep", "aaa") and stored[-1] == 2
    kept = userstore.study_with_rows(con, "sweep")
    other = _rows([9.0, 8.0, 7.0])
    assert userstore.write_study(con, _record("sweep", "bbb", other), other) is None  # not asked to replace
    broken = other.drop(columns="loss")  # the insert of the rows fails after the old study was deleted
    with pytest.raises(duckdb.Error):
        userstore.write_study(con, _record("sweep", "ccc", broken), broken, replace=True)
    after = userstore.study_with_rows(con, "sweep")
    assert after is not None and kept is not None
    assert after[0] == kept[0] and after[0][1] == "aaa"
    pd.testing.assert_frame_equal(after[1], kept[1])
    assert list(after[1]["value"]) == [3.0, 2.5]
    assert [r[0] for r in userstore.study_records(con)] == ["sweep"]
    replaced = userstore.write_study(con, _record("sweep", "ddd", other), other, replace=True)
    assert replaced is not None and replaced[1] == "ddd" and replaced[-1] == 3
    assert con.execute("SELECT count(*) FROM study_rows").fetchone() == (3,)  # the old rows went with it
    con.close()


def test_rename_and_remove_touch_one_study(tmp_path):
    con = _study_store(tmp_path / "user.duckdb")
    for name, losses in (("a", [3.0]), ("b", [2.0, 1.5])):
        rows = _rows(losses)
        userstore.write_study(con, _record(name, name, rows), rows)
    assert userstore.has_study(con, "a") and not userstore.has_study(con, "x'; DROP TABLE studies; --")
    renamed = userstore.set_study_name(con, "a", "a2")
    assert renamed is not None and renamed[0] == "a2" and not userstore.has_study(con, "a")
    assert userstore.remove_study(con, "nope") is False
    assert userstore.remove_study(con, "a2") is True
    assert [r[0] for r in userstore.study_records(con)] == ["b"]
    assert con.execute("SELECT count(*) FROM study_rows").fetchone() == (2,)
    con.close()


def test_a_store_without_study_tables_has_no_study(tmp_path):
    path = tmp_path / "user.duckdb"
    userstore.open_user_store(path).close()  # a store that another feature created
    with userstore.user_store(path, read_only=True) as con:
        assert userstore.study_records(con) == []
        assert userstore.study_with_rows(con, "a") is None


class _FailsOn:
    """A connection that raises on the statement starting with ``prefix`` (a disk full midway)."""

    def __init__(self, con, prefix):
        self.con, self.prefix = con, prefix

    def execute(self, sql, *args):
        if sql.startswith(self.prefix):
            raise duckdb.IOException("the disk is full")
        return self.con.execute(sql, *args)


def test_a_removal_that_fails_midway_keeps_the_study_and_its_rows(tmp_path):
    con = _study_store(tmp_path / "user.duckdb")
    rows = _rows([3.0, 2.5])
    userstore.write_study(con, _record("sweep", "aaa", rows), rows)
    with pytest.raises(duckdb.IOException):
        userstore.remove_study(_FailsOn(con, "DELETE FROM studies"), "sweep")
    # The rows deleted before the failure are back, and the connection takes statements again.
    kept = userstore.study_with_rows(con, "sweep")
    assert kept is not None and list(kept[1]["value"]) == [3.0, 2.5]
    assert userstore.remove_study(con, "sweep") is True
    assert con.execute("SELECT count(*) FROM study_rows").fetchone() == (0,)
    con.close()
