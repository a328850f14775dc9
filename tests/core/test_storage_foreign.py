"""Issue 25: a build never writes over a file that is not scaleplan's database, moves a corrupt one
aside instead of deleting it, and removes the temporary files of dead builds (only those)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from scaleplan.core import storage


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("content", [b"run_name,num_params\nmine,1\n", b"", b"\x00" * 64])
def test_a_foreign_file_is_refused_before_anything_is_read(tmp_path, content):
    target = tmp_path / "my_runs.csv"
    target.write_bytes(content)
    assert storage.database_status(target) == "foreign"
    with pytest.raises(storage.DatabaseError, match="will not write over it"):
        storage.build_database(target, mirror=tmp_path / "no-mirror-needed", progress=False)
    with pytest.raises(storage.DatabaseError):
        storage.ensure_database(target, mirror=tmp_path / "no-mirror-needed", progress=False)
    assert target.read_bytes() == content


def test_another_programs_duckdb_database_is_foreign(tmp_path):
    other = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE meta AS SELECT 'x' AS key, 'y' AS value")  # even a table named meta
    con.close()
    assert storage.database_status(other) == "foreign"
    assert storage.database_status(tmp_path) == "foreign"  # a folder


def test_a_corrupt_database_is_moved_aside_and_rebuilt(built_db, mirror, tmp_path):
    db = tmp_path / "scaleplan.duckdb"
    shutil.copy(built_db, db)
    with open(db, "r+b") as handle:  # keep the DuckDB magic, break the rest
        handle.seek(4096)
        handle.write(b"\xff" * 8192)
    damaged = db.read_bytes()
    assert storage.database_status(db) == "corrupt"
    report = storage.build_database(db, mirror=mirror, progress=False)
    assert storage.database_status(db) == "ok"
    assert report.moved_aside is not None and report.moved_aside.read_bytes() == damaged


def test_stale_temporaries_of_dead_builds_are_removed_and_nothing_else(built_db, mirror, tmp_path):
    db = tmp_path / "scaleplan.duckdb"
    shutil.copy(built_db, db)
    dead = _dead_pid()
    stale = [tmp_path / f"scaleplan.duckdb.tmp-{dead}", tmp_path / f"scaleplan.duckdb.tmp-{dead}.wal"]
    alive = tmp_path / f"scaleplan.duckdb.tmp-{os.getppid()}"  # a live process's build is left alone
    others = [tmp_path / "other.duckdb.tmp-1234567", tmp_path / "scaleplan.duckdb.tmp-notes", alive]
    for path in stale + others:
        path.write_bytes(b"leftover")
    removed = storage.remove_stale_temporaries(db)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in others)
    for path in stale:
        path.write_bytes(b"leftover")
    report = storage.build_database(db, mirror=mirror, progress=False)  # the next build cleans up too
    assert sorted(report.removed_temporaries) == sorted(stale)
    assert all(p.exists() for p in others)
