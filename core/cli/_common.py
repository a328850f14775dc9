"""What every command group shares: settings flags, user errors, JSON output, the database."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from scaleplan.core.errors import UserError
from scaleplan.core.settings import Settings, resolve_settings

EXIT_USER_ERROR = 2
EXIT_BUG = 1


class CLIError(UserError):
    """A user-facing error: printed as one line, exit status 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    # Every typed mistake of the user's derives from UserError (core.errors); OSError is a bad
    # path or permission. ValueError and RuntimeError in general are *not* here: an unexpected
    # one is a bug and keeps its traceback.
    return (UserError, OSError)


def add_settings_arguments(parser: argparse.ArgumentParser, *, suppress_defaults: bool = False) -> None:
    """The flags that override settings (then the environment, then defaults).

    They are accepted before the command (``scaleplan --db X fit ...``) and after it
    (``scaleplan data build --mirror M``); the subcommand's copy has no default of its own, so
    it only overrides what was given.
    """
    group = parser.add_argument_group("locations (flag, else environment variable, else default)")
    default = argparse.SUPPRESS if suppress_defaults else None
    group.add_argument(
        "--data-dir",
        default=default,
        help="folder for the database and results ($SCALEPLAN_DATA_DIR; default: the per-user data folder)",
    )
    group.add_argument(
        "--db", default=default, help="database file ($SCALEPLAN_DB; default <data-dir>/scaleplan.duckdb)"
    )
    group.add_argument(
        "--meta", default=default, help="meta-analysis results file ($SCALEPLAN_META; default <data-dir>/meta.duckdb)"
    )
    group.add_argument(
        "--mirror", default=default, help="local mirror of the sources ($SCALEPLAN_MIRROR; default: download)"
    )
    group.add_argument(
        "--user-db",
        default=default,
        help="saved studies and scenarios ($SCALEPLAN_USER_DB; default <data-dir>/user.duckdb; never rebuilt)",
    )
    group.add_argument("--download-url", default=default, help=argparse.SUPPRESS)
    group.add_argument("--log-dir", default=default, help="folder for the error log ($SCALEPLAN_LOG_DIR)")


def settings_parent() -> argparse.ArgumentParser:
    """A parent parser that gives a subcommand the settings flags (``parents=[...]``)."""
    parent = argparse.ArgumentParser(add_help=False)
    add_settings_arguments(parent, suppress_defaults=True)
    return parent


def settings_from_args(args: argparse.Namespace) -> Settings:
    return resolve_settings(
        data_dir=args.data_dir,
        db=args.db,
        meta=args.meta,
        mirror=args.mirror,
        download_url=args.download_url,
        log_dir=args.log_dir,
        user_db=getattr(args, "user_db", None),
    )


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def ensure_database(settings: Settings, *, quiet: bool = False) -> None:
    """Build the database when it is missing, stale or corrupt (with a note on stderr)."""
    from scaleplan.core import storage

    status = storage.database_status(settings.db_path)
    if status != "ok":
        print(f"database {status} at {settings.db_path}: building it (this takes under a minute)...", file=sys.stderr)
        storage.build_database(
            settings.db_path,
            mirror=settings.mirror,
            download_dir=settings.download_dir,
            download_url=settings.download_url,
            progress=not quiet,
        )


@contextmanager
def open_db(settings: Settings, *, quiet: bool = False) -> Iterator:
    """A read-only connection for a ``with`` block, building the database first when needed."""
    from scaleplan.core import storage

    ensure_database(settings, quiet=quiet)
    con = storage.connect(settings.db_path)
    try:
        yield con
    finally:
        con.close()


def data_version(settings: Settings) -> str:
    with open_db(settings) as con:
        return con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]


def content_digests(settings: Settings) -> dict[str, str]:
    """The database's per-source content digests (:func:`scaleplan.core.storage.content_digests`)."""
    from scaleplan.core import storage

    with open_db(settings) as con:
        return storage.content_digests(con)


def load_calibration(settings: Settings):
    """The calibration learned on the whole stored sweep, or None and why not (never builds anything); used by
    ``fit`` and ``runs show``."""
    from pathlib import Path

    import duckdb

    from scaleplan.core import calibration, storage

    # Without a sweep of this machine's own, meta.load_results falls back to the shipped results.
    if not Path(settings.db_path).is_file():
        return None, "no calibrated interval: the database has not been built (run `scaleplan data build`)"
    try:
        con = storage.connect(settings.db_path)
        try:
            version = storage.stored_data_version(con)
        finally:
            con.close()
        return calibration.load_calibration(settings.meta_path, version), ""
    except calibration.CalibrationError as error:
        return None, f"no calibrated interval: {error}"
    except duckdb.Error as error:
        return None, f"no calibrated interval: the results cannot be read ({error})"
