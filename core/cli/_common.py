"""What every command group shares: settings flags, user errors, JSON output, the database."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaleplan.core import units
from scaleplan.core.errors import UserError
from scaleplan.core.settings import Settings, resolve_settings
from scaleplan.core.settings import user_path as user_path  # the one ~ rule, for every path argument

if TYPE_CHECKING:
    import duckdb

    from scaleplan.core.calibration import Calibration

EXIT_USER_ERROR = 2
EXIT_BUG = 1

#: The command groups in help order, each with its one-line help; module ``scaleplan.core.cli.<name>``
#: registers the group's full parser (``register(subparsers)``) with this help.
COMMAND_HELP: dict[str, str] = {
    "data": "build and inspect the database",
    "serve": "launch the dashboard",
    "fit": "fit a scaling law and predict a target",
    "meta": "the meta-analysis sweep",
    "reproduce": "reproduce a paper's headline results",
    "plan": "plan a scaling-law study within a budget (the Budget planner's numbers)",
    "runs": "your own stored scaling studies",
    "scenario": "save, list, compare and remove named what-if scenarios of the budget planner",
    "brief": "a decision brief (PDF, PowerPoint) of one saved scenario or a comparison",
}


class CLIError(UserError):
    """A user-facing error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one change: a value that starts like a negative number ("-70B", "-5", "-.5")
    is a value, not an option, so ``--target-params -70B`` gets the flag's own message
    ("must be a positive number") instead of "expected one argument"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> Any:  # noqa: D102 - argparse's hook; one line, exit 2
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # noqa: D102
        # argparse hands a subcommand's unknown arguments up to the top parser, which reports them as its
        # own ("see `scaleplan --help`"): the innermost parser that had some is noted, and reports them.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not hasattr(parsed, _EXTRAS_OWNER):
            setattr(parsed, _EXTRAS_OWNER, self)
        return parsed, extras

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # noqa: D102
        """As argparse's, with an unknown argument reported by the (sub)command that was given it, whose
        help the message points to (``scaleplan scenario list --quiet``: `scaleplan scenario list --help`)."""
        parsed, extras = self.parse_known_args(args, namespace)
        owner = vars(parsed).pop(_EXTRAS_OWNER, self)
        if extras:
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


#: The namespace attribute naming the parser an unknown argument was given to (:class:`Parser`).
_EXTRAS_OWNER = "_scaleplan_unrecognized_by"


def number(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    integer: bool = False,
    example: str = "7e9 or 7B",
) -> Callable[[str], float]:
    """An argparse ``type`` for every numeric flag: :func:`core.units.parse_number`'s syntax
    (suffixes 7B, 1.4T, commas), finite, within the limits; the message quotes what was typed."""

    def parse(text: str) -> float:
        try:
            value = units.parse_number(text, name="the value")
        except units.NumberSyntaxError:
            raise argparse.ArgumentTypeError(f"cannot read {text!r}; give a number like {example}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a number like {example}")
        if integer and value != int(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a whole number like {example}")
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be a positive number, like {example}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is below {minimum:g}; give a number like {example}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} is above {maximum:g}; give a number like {example}")
        return int(value) if integer else value

    return parse


def check_results_file(path: Path) -> None:
    """Refuse a meta-analysis results file (``--meta``) that exists but is not a DuckDB database of
    sweep results: scaleplan neither reads it as one nor writes into it."""
    from scaleplan.core import storage

    path = Path(path)
    if not path.exists():
        return
    # A results file being written by a running sweep is locked (has_table gives None): not refused.
    if path.is_dir() or not storage.is_duckdb_file(path) or storage.has_table(path, "sweep_results") is False:
        raise CLIError(
            f"--meta {path} is not a scaleplan results file (meta-analysis sweep); scaleplan will not use or "
            "write over it. Give another path with --meta (or $SCALEPLAN_META), or move that file away"
        )


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


#: The location flags (``add_settings_arguments``) that name a path, by their ``args`` attribute.
LOCATION_FLAGS = {
    "data_dir": "--data-dir",
    "db": "--db",
    "meta": "--meta",
    "mirror": "--mirror",
    "user_db": "--user-db",
    "log_dir": "--log-dir",
}


def check_location_flags(args: argparse.Namespace) -> None:
    """Refuse a location flag given an empty value (``--db ""``, often an unset shell variable): it would
    otherwise mean "not given" and silently use the environment's or the default location."""
    for attribute, flag in LOCATION_FLAGS.items():
        if getattr(args, attribute, None) == "":
            raise CLIError(f"{flag} is empty; give it a path, or leave the flag out to use the default location")


def check_log_dir(settings: Settings) -> None:
    """Refuse an error-log folder (``--log-dir`` / ``$SCALEPLAN_LOG_DIR``) that is a file or lies under
    one, before the command runs: an internal error could not be logged there."""
    folder = settings.log_dir
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == folder else f"is inside {existing}, which is a file"
        raise CLIError(
            f"--log-dir {folder} {where}, not a folder; give a folder for the error log with --log-dir "
            "(or $SCALEPLAN_LOG_DIR)"
        )


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


def print_json(obj: object) -> None:
    """Valid JSON on stdout: NaN and infinities become ``null`` (JSON has no NaN)."""
    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))


def jsonable(value: object) -> object:
    """``value`` with NumPy scalars and arrays as Python values, non-finite floats as None, other
    unknown objects as their text."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return None
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def missing_database_message(db_path: Path) -> str:
    """Why a database path given with ``--db`` / ``$SCALEPLAN_DB`` that does not exist is not built
    on first use, and the command that builds it there (one line)."""
    import shlex

    return (
        f"there is no database at {db_path} (given with --db or $SCALEPLAN_DB); scaleplan builds one on first use "
        "only at its default location, so a mistyped path does not become a new database. Check the path, or "
        f"build the database there with `scaleplan --db {shlex.quote(str(db_path))} data build`"
    )


def ensure_database(settings: Settings, *, quiet: bool = False) -> None:
    """Build the database when it is missing, stale or corrupt (with a note on stderr).

    A missing database is built only at the default location: a path given explicitly
    (``settings.db_explicit``) that does not exist raises :class:`CLIError`
    (:func:`missing_database_message`); ``scaleplan data build`` builds it there. Every command that
    reads the database comes through here, ``serve`` too (it would otherwise build at a mistyped path,
    or serve pages offering to).
    """
    from scaleplan.core import storage

    status = storage.database_status(settings.db_path)
    if status == "foreign":
        raise storage.DatabaseError(storage.foreign_file_message(settings.db_path))
    if status == "missing" and settings.db_explicit:
        raise CLIError(missing_database_message(settings.db_path))
    if status != "ok":
        print(f"database {status} at {settings.db_path}: building it (this takes under a minute)...", file=sys.stderr)
        report = storage.build_database(
            settings.db_path,
            mirror=settings.mirror,
            download_dir=settings.download_dir,
            download_url=settings.download_url,
            progress=not quiet,
        )
        describe_build(report)


def describe_build(report: Any) -> None:
    """Tell the user on stderr what a build moved aside or cleaned up."""
    if report.moved_aside is not None:
        print(f"note: the unreadable database was moved aside to {report.moved_aside}", file=sys.stderr)
    for path in report.removed_temporaries:
        print(f"note: removed {path}, left by an interrupted build", file=sys.stderr)


@contextmanager
def open_db(settings: Settings, *, quiet: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for a ``with`` block, building the database first when needed."""
    from scaleplan.core import storage

    ensure_database(settings, quiet=quiet)
    con = storage.connect(settings.db_path)
    try:
        yield con
    finally:
        con.close()


def data_version(settings: Settings) -> str:
    from scaleplan.core import storage

    with open_db(settings) as con:
        version = storage.stored_data_version(con)
    if version is None:
        raise storage.DatabaseError(f"{settings.db_path} records no data version; run `scaleplan data build`")
    return version


def content_digests(settings: Settings) -> dict[str, str]:
    """The database's per-source content digests (:func:`scaleplan.core.storage.content_digests`)."""
    from scaleplan.core import storage

    with open_db(settings) as con:
        return storage.content_digests(con)


def load_calibration(
    settings: Settings, *, version: str | None = None, noun: str = "calibrated interval"
) -> tuple[Calibration | None, str]:
    """The calibration learned on the whole stored sweep, or None and why not (never builds anything): the
    one loader of ``fit``, ``runs show``, ``plan`` and ``scenario``. ``version`` is the database's data
    version when the caller has read it already (else it is read here); ``noun`` is what the caller goes
    without ("calibrated interval"; the planner's "expected accuracy"), the first words of the reason,
    "no <noun>: ...". A results file that cannot be used leaves the rest of the command usable."""
    from pathlib import Path

    import duckdb

    from scaleplan.core import calibration, storage
    from scaleplan.core.meta import store as meta_store

    without = f"no {noun}"
    # Without a sweep of this machine's own, meta.load_results falls back to the shipped results.
    try:
        if version is None:
            if not Path(settings.db_path).is_file():
                return None, f"{without}: the database has not been built (run `scaleplan data build`)"
            con = storage.connect(settings.db_path)
            try:
                version = storage.stored_data_version(con)
            finally:
                con.close()
            if version is None:
                return None, f"{without}: the database records no data version (run `scaleplan data build`)"
        return calibration.load_calibration(settings.meta_path, version), ""
    except calibration.CalibrationError as error:
        return None, f"{without}: {error}"
    except meta_store.ResultsDamagedError as error:  # before duckdb.Error and OSError: it is both
        return None, f"{without}: {error}"
    except storage.FileInUseError as error:  # before duckdb.Error: the results file's is one too
        which = "the database" if isinstance(error, storage.DatabaseInUseError) else "the results file"
        reason = storage.in_use_reason(error.path, error.pid)
        return None, f"{without}: {which} {reason}; close that program and run this again for the {noun}"
    except duckdb.Error as error:
        return None, f"{without}: the results cannot be read ({error})"
    except OSError as error:  # an unreadable results file (permissions): the rest of the command goes on
        return None, f"{without}: {error}"
