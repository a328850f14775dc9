"""`scaleplan meta export` loses nothing: files in --to that are not scaleplan's export are never written
over, an incomplete sweep (or one smaller than the export it replaces) needs --force, and a --to naming a
file gets a message; `meta run --scheduler` with a malformed address is a user error (review 5: B4, A1)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import cli, meta
from tests.helpers import data_version_of, store_results


def _rows(version: str, keys: list[str], fitted: int) -> pd.DataFrame:
    rows = pd.DataFrame({c: [None] * len(keys) for c in meta.RESULT_COLUMNS})
    rows["key"], rows["data_version"], rows["family"] = keys, version, "fam"
    rows["status"] = ["ok"] * fitted + ["SelectionError"] * (len(keys) - fitted)
    rows["num_sizes"] = 4
    rows["predicted_final"] = np.linspace(2.0, 3.0, len(keys))
    return rows


_store = store_results


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture()
def results(tmp_path):
    path = tmp_path / "meta.duckdb"
    _store(path, _rows("v1", ["a", "b", "c"], fitted=2))
    return path


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (meta.SHIPPED_INFO, b'{"mine": 1}\n'),
        (meta.SHIPPED_RESULTS, b"my own notes, not a results table\n"),
        (meta.SHIPPED_INFO, b"not json at all"),
    ],
)
def test_a_folder_with_someone_elses_files_of_those_names_is_left_byte_for_byte(results, tmp_path, name, content):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / name).write_bytes(content)
    before = _digests(folder)
    for force in (False, True):  # --force never writes over a file scaleplan did not write
        with pytest.raises(meta.ExportError, match=f"{name} is not .*will not write over it"):
            meta.export_results(results, "v1", folder, planned={"a", "b", "c"}, force=force)
    assert _digests(folder) == before


def test_a_parquet_file_of_other_columns_is_not_taken_for_an_export(results, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    pd.DataFrame({"key": ["x"], "value": [1.0]}).to_parquet(folder / meta.SHIPPED_RESULTS)
    before = _digests(folder)
    with pytest.raises(meta.ExportError, match="is not scaleplan's sweep export"):
        meta.export_results(results, "v1", folder, planned={"a", "b", "c"})
    assert _digests(folder) == before


def test_an_incomplete_sweep_is_refused_unless_forced(results, tmp_path):
    folder = tmp_path / "out"
    with pytest.raises(meta.ExportError, match=r"incomplete: 2 of the 5 fits it plans are not stored.*--force"):
        meta.export_results(results, "v1", folder, planned={"a", "b", "c", "d", "e"})
    assert not folder.exists() or not any(folder.iterdir())
    info = meta.export_results(results, "v1", folder, planned={"a", "b", "c", "d", "e"}, force=True)
    assert (info["rows"], info["fitted"]) == (3, 2)
    assert sorted(p.name for p in folder.iterdir()) == sorted([meta.SHIPPED_INFO, meta.SHIPPED_RESULTS])


def test_an_export_replaces_scaleplans_own_export_and_not_a_bigger_one(results, tmp_path):
    folder = tmp_path / "out"
    bigger = tmp_path / "bigger.duckdb"
    _store(bigger, _rows("v1", ["a", "b", "c", "d"], fitted=4))
    meta.export_results(bigger, "v1", folder, planned={"a", "b", "c"})
    before = _digests(folder)
    with pytest.raises(meta.ExportError, match="holds an export of 4 fitted designs and this sweep has 2"):
        meta.export_results(results, "v1", folder, planned={"a", "b", "c"})
    assert _digests(folder) == before
    info = meta.export_results(results, "v1", folder, planned={"a", "b", "c"}, force=True)  # its own export
    pin = json.loads((folder / meta.SHIPPED_INFO).read_text())
    assert pin["fitted"] == info["fitted"] == 2
    assert hashlib.sha256((folder / meta.SHIPPED_RESULTS).read_bytes()).hexdigest() == pin["sha256"]
    # a complete sweep of as many fitted designs replaces its own export without --force
    meta.export_results(results, "v1", folder, planned={"a", "b", "c"})


def _cli(tmp_path, capsys, *argv):
    code = cli.main(["--log-dir", str(tmp_path / "log"), "--data-dir", str(tmp_path / "data"), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_meta_export_as_the_readme_says_keeps_the_full_export_it_would_replace(tmp_path, capsys, built_db):
    version = data_version_of(built_db)
    local = tmp_path / "meta.duckdb"
    _store(local, _rows(version, ["k1", "k2", "k3", "k4", "k5"], fitted=0))  # `meta run --limit 5`, unfitted
    data = tmp_path / "project-data"
    data.mkdir()
    for name in (meta.SHIPPED_INFO, meta.SHIPPED_RESULTS):  # the shipped 3,135-design results
        (data / name).write_bytes(meta.shipped.shipped_file(name).read_bytes())
    before = _digests(data)
    code, out, err = _cli(
        tmp_path, capsys, "--db", str(built_db), "--meta", str(local), "meta", "export", "--to", str(data)
    )
    assert code == cli.EXIT_USER_ERROR, err
    assert "incomplete" in err and "5,376 fits" in err and "--force" in err and err.count("\n") == 1
    assert _digests(data) == before
    # --force is the user's explicit choice: scaleplan's own export is then replaced
    code, out, err = _cli(
        tmp_path, capsys, "--db", str(built_db), "--meta", str(local), "meta", "export", "--to", str(data), "--force"
    )
    assert code == 0, err
    assert json.loads((data / meta.SHIPPED_INFO).read_text())["fitted"] == 0
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    code, out, err = _cli(
        tmp_path, capsys, "--db", str(built_db), "--meta", str(local), "meta", "export", "--to", str(a_file)
    )
    assert code == cli.EXIT_USER_ERROR and "is a file, not a folder" in err and "Errno" not in err
    assert a_file.read_text() == "mine\n"


@pytest.mark.parametrize("address", ["notanaddress", "tcp://localhost:abc", "127.0.0.1:8786x", "tcp://host:99999"])
def test_a_malformed_scheduler_address_is_a_user_error(tmp_path, capsys, address):
    code, out, err = _cli(
        tmp_path, capsys, "meta", "run", "--engine", "dask", "--scheduler", address, "--limit", "1", "--quiet"
    )
    assert code == cli.EXIT_USER_ERROR, err
    assert "--scheduler" in err and "tcp://HOST:8786" in err and "internal error" not in err
    assert not (tmp_path / "data").exists()  # refused before anything was built or opened


@pytest.mark.parametrize(
    "address", ["tcp://10.0.0.5:8786", "127.0.0.1:8786", "tls://sched.example.org:8786", "tcp://[::1]:8786"]
)
def test_well_formed_scheduler_addresses_pass(address):
    assert meta.check_scheduler_address(address) == address


def test_a_quoted_tilde_in_to_is_the_home_folder(tmp_path, capsys, built_db, monkeypatch):
    version = data_version_of(built_db)
    local = tmp_path / "meta.duckdb"
    _store(local, _rows(version, ["k1", "k2"], fitted=1))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    argv = ["--db", str(built_db), "--meta", str(local), "meta", "export", "--to", "~/exp", "--force"]
    code, out, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    assert (tmp_path / "home" / "exp" / meta.SHIPPED_RESULTS).is_file() and not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    "dropped", [["backtest_log_error"], ["prediction_log_se", "backtest_log_error"]], ids=["last", "last-two"]
)
def test_an_export_of_an_earlier_release_is_recognised_and_replaced(results, tmp_path, dropped):
    """An export written before the last added columns (backtest_log_error; prediction_log_se before it)
    is scaleplan's own: a new sweep replaces it; a table of other columns still is not."""
    folder = tmp_path / "out"
    meta.export_results(results, "v1", folder, planned={"a", "b", "c"})
    older = pd.read_parquet(folder / meta.SHIPPED_RESULTS).drop(columns=dropped)
    older.to_parquet(folder / meta.SHIPPED_RESULTS)
    pin = json.loads((folder / meta.SHIPPED_INFO).read_text())
    pin["sha256"] = hashlib.sha256((folder / meta.SHIPPED_RESULTS).read_bytes()).hexdigest()
    (folder / meta.SHIPPED_INFO).write_text(json.dumps(pin))
    meta.export_results(results, "v1", folder, planned={"a", "b", "c"})
    assert set(dropped) <= set(pd.read_parquet(folder / meta.SHIPPED_RESULTS).columns)
