"""The ``scaleplan`` command line, one module per command group.

=================  ===========================================================
module             commands
=================  ===========================================================
``data``           ``data build``, ``data summary``
``serve``          ``serve``
``fit``            ``fit``
``meta``           ``meta run``
``reproduce``      ``reproduce overtraining|hitchhiker``
``plan``           ``plan`` (the budget planner)
``runs``           ``runs add|list|show|rename|export|remove`` (your stored studies)
``scenario``       ``scenario save|list|compare|rename|duplicate|remove``
``brief``          ``brief`` (a decision brief: PDF and PowerPoint)
=================  ===========================================================

Settings (database, results file, mirror, ...) are resolved once in :func:`main` from the
global flags, then the environment, then defaults (:mod:`scaleplan.core.settings`), and passed
to every command. Errors a user can cause end with a one-line message on stderr and exit
status 2. Anything else is a bug: its traceback goes to a log file, whose path is printed,
and the exit status is 1.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import traceback
from collections.abc import Collection
from pathlib import Path
from typing import Any

from scaleplan.core.cli import _common
from scaleplan.core.cli._common import EXIT_BUG, EXIT_USER_ERROR, CLIError

__all__ = ["main", "build_parser", "CLIError", "EXIT_USER_ERROR", "EXIT_BUG"]

#: The command-group modules, in help order; each has ``register(subparsers)``.
COMMAND_GROUPS = tuple(_common.COMMAND_HELP)


def build_parser(groups: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With ``groups``, only those command groups get their full parser (and
    their modules, which import NumPy, pandas, SciPy, ..., are imported); the others are listed with their
    one-line help only, which is all ``scaleplan --help`` and a mistyped command need."""
    import importlib

    parser = _common.Parser(prog="scaleplan", description="Plan pretraining budgets with scaling laws.")
    _common.add_settings_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in _common.COMMAND_HELP.items():
        if groups is None or name in groups:
            importlib.import_module(f"scaleplan.core.cli.{name}").register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


class _CommandFinder(argparse.ArgumentParser):
    """Finds the command group in a command line (the global flags may come first, with their values)."""

    def error(self, message: str) -> Any:  # noqa: D102 - argparse's hook: the real parser reports it
        raise ValueError(message)


def command_group(argv: list[str] | None) -> str | None:
    """The command group ``argv`` asks for (``scaleplan --db X fit ...`` -> "fit"), None when it names none."""
    finder = _CommandFinder(add_help=False)
    _common.add_settings_arguments(finder)
    finder.add_argument("command", nargs="?")
    try:
        known, _ = finder.parse_known_args(argv)
    except ValueError:
        return None
    return known.command if known.command in _common.COMMAND_HELP else None


def main(argv: list[str] | None = None) -> int:
    # The fits are many small L-BFGS problems: BLAS worker threads only add wake-up latency
    # (tens of ms on a busy 2-core machine). Set for this process before NumPy is imported by
    # the command modules, unless the user chose otherwise; importing scaleplan changes nothing.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Only the asked command's modules are imported: `scaleplan --help` and `scaleplan data summary` need
    # neither SciPy nor the dashboard's dependencies.
    group = command_group(argv if argv is not None else sys.argv[1:])
    parser = build_parser(groups=() if group is None else (group,))
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a mistake in the arguments (2, one line on stderr)
        return int(stop.code or 0)
    try:
        _common.check_location_flags(args)
        settings = _common.settings_from_args(args)
        _common.check_log_dir(settings)
    except _common.user_errors() as error:
        print(f"scaleplan: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        _common.check_results_file(settings.meta_path)
        status = int(args.func(args, settings) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`scaleplan ... | head`): what was wanted has been read. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _common.user_errors() as error:
        print(f"scaleplan: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:  # noqa: BLE001 - a bug: keep its traceback, tell the user where it is
        log_file = _write_traceback(settings.log_path, argv if argv is not None else sys.argv[1:])
        print(
            f"scaleplan: internal error ({type(sys.exc_info()[1]).__name__}); the traceback is in {log_file}. "
            "Please include that file when you report the problem.",
            file=sys.stderr,
        )
        return EXIT_BUG


def _write_traceback(log_path: Path, argv: list[str]) -> Path:
    """Append the current exception's traceback to ``log_path`` (``Settings.log_path``); return it."""
    failure = traceback.format_exc()
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        path = log_path
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {_dt.datetime.now().isoformat(timespec='seconds')} scaleplan {' '.join(argv)}\n")
            log.write(failure)
        return path
    except OSError as error:
        # One traceback on stderr, the command's (not this OSError's, chained to it a second time).
        print(f"scaleplan: could not write the log file {log_path}: {error.strerror or error}", file=sys.stderr)
        print(failure, file=sys.stderr, end="")
        return Path("(stderr: no writable log folder)")


if __name__ == "__main__":
    sys.exit(main())
