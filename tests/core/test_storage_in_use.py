"""A healthy file held open by another process is reported "in use", never moved aside or rebuilt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from scaleplan.core import cli, storage, userstore
from tests.helpers import held_for_writing, start_holder

_hold = start_holder  # the files that import it from here


@pytest.fixture
def held_db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "scaleplan.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('data_version', 'x')")
    con.execute("CREATE TABLE observations (a INTEGER)")
    con.close()
    with held_for_writing(path):
        yield path


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".ready"))


def test_database_status_reports_the_lock_not_corruption(held_db: Path) -> None:
    before = (held_db.read_bytes(), _siblings(held_db))
    with pytest.raises(storage.DatabaseInUseError, match="in use by another program") as caught:
        storage.database_status(held_db)
    assert "PID" in str(caught.value)
    with pytest.raises(storage.DatabaseInUseError):
        storage.ensure_database(held_db, mirror=held_db.parent)
    assert (held_db.read_bytes(), _siblings(held_db)) == before  # nothing moved aside or rebuilt


def test_cli_exits_2_and_touches_nothing(held_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (held_db.read_bytes(), _siblings(held_db))
    assert cli.main(["--db", str(held_db), "data", "summary", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "in use by another program" in err and "corrupt" not in err
    assert (held_db.read_bytes(), _siblings(held_db)) == before


def test_user_store_in_use_is_not_called_foreign(tmp_path: Path) -> None:
    path = tmp_path / "user.duckdb"
    userstore.open_user_store(path).close()
    holder = _hold(path)
    try:
        with pytest.raises(userstore.UserStoreError, match="in use by another program") as caught:
            userstore.open_user_store(path, read_only=True)
        assert "not a scaleplan user store" not in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    assert userstore.is_user_store(path)  # released: the same file is a store again


def test_read_only_openers_beside_each_other_still_work(tmp_path: Path) -> None:
    path = tmp_path / "user.duckdb"
    userstore.open_user_store(path).close()
    first = userstore.open_user_store(path, read_only=True)
    try:
        assert userstore.is_user_store(path)
    finally:
        first.close()


def test_other_open_errors_are_not_mistaken_for_a_lock() -> None:
    assert storage.in_use_message(Path("x"), duckdb.IOException("IO Error: file is not a database")) is None
