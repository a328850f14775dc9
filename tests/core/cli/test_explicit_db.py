"""A database path given with --db / $SCALEPLAN_DB that does not exist is refused (exit 2), not built;
only the default location is built on first use, and `data build` builds wherever it is told."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import pytest

from scaleplan.core import cli, storage
from scaleplan.core.settings import resolve_settings
from tests.helpers import free_port


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Builds are recorded and fail (a refusal must come before any build)."""
    built: list[Path] = []

    def build(path: Path, **_: object) -> None:
        built.append(Path(path))
        raise storage.DatabaseError(f"test: a database would be built at {path}")

    monkeypatch.setattr(storage, "build_database", build)
    return built


def _refused(code: int, err: str, path: Path) -> None:
    assert code == 2, err
    assert err.startswith("scaleplan: error: ") and err.count("\n") == 1
    assert f"there is no database at {path}" in err
    assert f"scaleplan --db {path} data build" in err


def test_a_missing_folder_is_not_created(tmp_path, monkeypatch, no_build, capsys):
    monkeypatch.delenv("SCALEPLAN_DB", raising=False)
    target = tmp_path / "nonexistent" / "x.duckdb"
    code = cli.main(["--db", str(target), "--log-dir", str(tmp_path / "log"), "data", "summary"])
    _refused(code, capsys.readouterr().err, target)
    assert no_build == [] and not (tmp_path / "nonexistent").exists()


def test_a_command_name_taken_as_the_path_creates_no_file(tmp_path, monkeypatch, no_build, capsys):
    # `scaleplan --db fit data summary`: "fit" is read as the database path
    monkeypatch.delenv("SCALEPLAN_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["--db", "fit", "--log-dir", str(tmp_path / "log"), "data", "summary"])
    _refused(code, capsys.readouterr().err, tmp_path / "fit")
    assert no_build == [] and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["fit", "--family", "pythia", "--bootstrap", "0"],
        ["reproduce", "hitchhiker"],
        ["meta", "run", "--quiet", "--limit", "1"],
        ["plan", "--target-params", "70B", "--target-tokens", "1.4T", "--budget-dollars", "1e5", "--accuracy", "5"],
    ],
)
def test_every_reading_command_refuses_a_missing_path_from_the_environment(
    tmp_path, monkeypatch, no_build, capsys, command
):
    target = tmp_path / "typo.duckdb"
    monkeypatch.setenv("SCALEPLAN_DB", str(target))
    code = cli.main(["--meta", str(tmp_path / "meta.duckdb"), "--log-dir", str(tmp_path / "log"), *command])
    _refused(code, capsys.readouterr().err, target)
    assert no_build == [] and not target.exists()


def test_serve_refuses_a_missing_path_before_starting(tmp_path, monkeypatch, no_build, capsys):
    from streamlit.web import bootstrap

    from scaleplan.dashboard import warmup

    def served(*_: object) -> None:
        raise AssertionError("the dashboard was started")

    monkeypatch.setattr(bootstrap, "run", served)
    monkeypatch.setattr(warmup, "start", lambda: None)  # (before the fix) no background work either
    monkeypatch.delenv("SCALEPLAN_DB", raising=False)
    target = tmp_path / "typo.duckdb"
    code = cli.main(["--db", str(target), "--log-dir", str(tmp_path / "log"), "serve", "--port", str(free_port())])
    err = capsys.readouterr().err
    _refused(code, err, target)
    assert "dashboard on" not in err and no_build == [] and not target.exists()


def test_data_build_still_builds_at_a_given_path(tmp_path, monkeypatch, no_build, capsys):
    monkeypatch.delenv("SCALEPLAN_DB", raising=False)
    target = tmp_path / "new" / "x.duckdb"
    code = cli.main(["--db", str(target), "--log-dir", str(tmp_path / "log"), "data", "build", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "a database would be built at" in err and "there is no database" not in err
    assert no_build == [target]


def test_the_default_location_is_still_built_on_first_use(tmp_path, monkeypatch, built_db, capsys):
    """The README's quick start: no --db, no $SCALEPLAN_DB, and `data summary` builds the database."""
    built: list[Path] = []

    def build(path: Path, **_: object) -> types.SimpleNamespace:
        built.append(Path(path))
        shutil.copyfile(built_db, path)  # what a build writes, without the minute it takes
        return types.SimpleNamespace(moved_aside=None, removed_temporaries=[])

    monkeypatch.setattr(storage, "build_database", build)
    monkeypatch.delenv("SCALEPLAN_DB", raising=False)
    monkeypatch.setenv("SCALEPLAN_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    code = cli.main(["--log-dir", str(tmp_path / "log"), "data", "summary", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert built == [tmp_path / "data" / "scaleplan.duckdb"]


def test_whether_the_path_was_given_survives_the_trip_to_the_dashboard(tmp_path):
    from scaleplan.dashboard.common import settings_from_argv

    for given in (None, tmp_path / "mine.duckdb"):
        original = resolve_settings(data_dir=tmp_path, db=given, mirror=tmp_path / "m", environ={})
        assert original.db_explicit is (given is not None)
        assert settings_from_argv(["/somewhere/app.py", *original.as_argv()]) == original
    assert resolve_settings(data_dir=tmp_path, environ={"SCALEPLAN_DB": str(tmp_path / "e.duckdb")}).db_explicit
