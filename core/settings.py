"""Where scaleplan keeps its files and reads its sources: one settings object, resolved once.

Resolution order for every field: an explicit argument (the CLI's flags), then the
environment, then the default. The result is a frozen :class:`Settings` that the CLI passes
down to every command and to the dashboard (as script arguments); nothing else in scaleplan
reads these environment variables.

=====================  ==========================  =====================================================
field                  environment                 default
=====================  ==========================  =====================================================
``data_dir``           ``SCALEPLAN_DATA_DIR``      the per-user data folder (``platformdirs``), e.g.
                                                   ``~/.local/share/scaleplan`` on Linux
``db_path``            ``SCALEPLAN_DB``            ``<data_dir>/scaleplan.duckdb``
``meta_path``          ``SCALEPLAN_META``          ``<data_dir>/meta.duckdb`` (meta-analysis results)
``user_db_path``       ``SCALEPLAN_USER_DB``       ``<data_dir>/user.duckdb`` (saved studies, scenarios;
                                                   never rebuilt: see :mod:`scaleplan.core.userstore`)
``mirror``             ``SCALEPLAN_MIRROR``        none: sources are downloaded at pinned commits
``download_url``       ``SCALEPLAN_DOWNLOAD_URL``  raw GitHub at ``{repository}/{commit}/{path}``
``log_dir``            ``SCALEPLAN_LOG_DIR``       the per-user log folder (``platformdirs``)
=====================  ==========================  =====================================================

``db_explicit`` records whether ``db_path`` was given (``--db`` or ``SCALEPLAN_DB``) rather than
defaulted: only the default location is built on first use; a given path that does not exist is
refused by every command but ``scaleplan data build`` (a mistyped path must not become a new
17 MB database, see :func:`scaleplan.core.cli._common.ensure_database`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["Settings", "resolve_settings", "user_path", "DEFAULT_DOWNLOAD_URL", "APP_NAME"]

APP_NAME = "scaleplan"
LOG_FILE_NAME = "scaleplan.log"
DEFAULT_DOWNLOAD_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"


@dataclass(frozen=True)
class Settings:
    """Resolved locations. Paths are absolute; ``mirror`` is None when sources are downloaded."""

    data_dir: Path
    db_path: Path
    meta_path: Path
    mirror: Path | None
    download_url: str
    log_dir: Path
    user_db_path: Path
    db_explicit: bool = False  # db_path given by --db or SCALEPLAN_DB, not the default under data_dir

    @property
    def log_path(self) -> Path:
        """The log file: tracebacks of internal errors, appended (``<log_dir>/scaleplan.log``)."""
        return self.log_dir / LOG_FILE_NAME

    @property
    def download_dir(self) -> Path:
        """Where downloaded source files are kept between builds (resumable)."""
        return self.data_dir / "downloads"

    def as_argv(self) -> list[str]:
        """These settings as ``--name value`` arguments, to hand them to a child or a script."""
        argv = [
            "--user-db",
            str(self.user_db_path),
            "--data-dir",
            str(self.data_dir),
            *(["--db", str(self.db_path)] if self.db_explicit else []),  # else the same default again
            "--meta",
            str(self.meta_path),
            "--download-url",
            self.download_url,
            "--log-dir",
            str(self.log_dir),
        ]
        if self.mirror is not None:
            argv += ["--mirror", str(self.mirror)]
        return argv


def user_path(value: str | os.PathLike[str]) -> Path:
    """A path as the user typed it, ``~`` expanded (a quoted ``~`` reaches scaleplan unexpanded): the
    one rule for every path a setting or a command's argument names."""
    return Path(value).expanduser()


def _absolute(value: str | os.PathLike[str]) -> Path:
    return user_path(value).resolve()


def resolve_settings(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] | None = None,
    meta: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download_url: str | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    user_db: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting: argument, then ``environ`` (default ``os.environ``), then default."""
    env = os.environ if environ is None else environ

    def pick(arg: str | os.PathLike[str] | None, name: str) -> str | os.PathLike[str] | None:
        return arg if arg not in (None, "") else (env.get(name) or None)

    base = _absolute(pick(data_dir, "SCALEPLAN_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))
    db_value = pick(db, "SCALEPLAN_DB")
    meta_value = pick(meta, "SCALEPLAN_META")
    mirror_value = pick(mirror, "SCALEPLAN_MIRROR")
    user_db_value = pick(user_db, "SCALEPLAN_USER_DB")
    log_value = pick(log_dir, "SCALEPLAN_LOG_DIR") or platformdirs.user_log_dir(APP_NAME)
    return Settings(
        data_dir=base,
        db_path=_absolute(db_value) if db_value else base / "scaleplan.duckdb",
        meta_path=_absolute(meta_value) if meta_value else base / "meta.duckdb",
        mirror=_absolute(mirror_value) if mirror_value else None,
        download_url=str(pick(download_url, "SCALEPLAN_DOWNLOAD_URL") or DEFAULT_DOWNLOAD_URL),
        log_dir=_absolute(log_value),
        user_db_path=_absolute(user_db_value) if user_db_value else base / "user.duckdb",
        db_explicit=bool(db_value),
    )
