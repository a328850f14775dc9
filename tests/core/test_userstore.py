"""The user store: created on first write, recognised by its marker, never written over when foreign."""

from __future__ import annotations

import duckdb
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
