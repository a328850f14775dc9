"""scaleplan.core.settings: argument, then environment, then default, resolved once."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from scaleplan.core.settings import DEFAULT_DOWNLOAD_URL, resolve_settings


def test_defaults_live_in_the_per_user_data_folder():
    settings = resolve_settings(environ={})
    expected = Path(platformdirs.user_data_dir("scaleplan")).resolve()
    assert settings.data_dir == expected
    assert settings.db_path == expected / "scaleplan.duckdb"
    assert settings.meta_path == expected / "meta.duckdb"
    assert settings.mirror is None
    assert settings.download_url == DEFAULT_DOWNLOAD_URL


def test_environment_overrides_defaults_and_arguments_override_environment(tmp_path):
    env = {
        "SCALEPLAN_DATA_DIR": str(tmp_path / "env-data"),
        "SCALEPLAN_DB": str(tmp_path / "env.duckdb"),
        "SCALEPLAN_MIRROR": str(tmp_path / "env-mirror"),
    }
    from_env = resolve_settings(environ=env)
    assert from_env.data_dir == tmp_path / "env-data"
    assert from_env.db_path == tmp_path / "env.duckdb"
    assert from_env.meta_path == tmp_path / "env-data" / "meta.duckdb"  # follows the data folder
    assert from_env.mirror == tmp_path / "env-mirror"

    from_args = resolve_settings(db=tmp_path / "arg.duckdb", mirror=str(tmp_path / "arg-mirror"), environ=env)
    assert from_args.db_path == tmp_path / "arg.duckdb"
    assert from_args.mirror == tmp_path / "arg-mirror"
    assert from_args.data_dir == tmp_path / "env-data"


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = resolve_settings(db="x.duckdb", environ={})
    assert settings.db_path == tmp_path / "x.duckdb"


def test_settings_round_trip_through_script_arguments(tmp_path):
    """What ``serve`` hands the dashboard as script arguments resolves to the same settings."""
    from scaleplan.dashboard.common import settings_from_argv

    original = resolve_settings(data_dir=tmp_path, mirror=tmp_path / "m", environ={})
    again = settings_from_argv(["/somewhere/app.py", *original.as_argv()])
    assert again == original
    # arguments of another runner (pytest under AppTest) are not the app's
    assert settings_from_argv(["pytest", "--db", "/nope"]).db_path != Path("/nope")


def test_importing_scaleplan_changes_no_environment_variable():
    import os
    import subprocess
    import sys

    code = (
        "import os; before = dict(os.environ); import scaleplan.core, scaleplan.core.fitting, "
        "scaleplan.core.storage; print(sorted(set(os.environ.items()) ^ set(before.items())))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
