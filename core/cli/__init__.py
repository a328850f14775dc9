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
import logging
import os
import sys
import traceback
from pathlib import Path

from scaleplan.core.cli import _common
from scaleplan.core.cli._common import EXIT_BUG, EXIT_USER_ERROR, CLIError

__all__ = ["main", "build_parser", "CLIError", "EXIT_USER_ERROR", "EXIT_BUG"]

#: The command-group modules, in help order; each has ``register(subparsers)``.
COMMAND_GROUPS = ("data", "serve", "fit", "meta", "reproduce", "plan", "runs", "scenario", "brief")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _common.Parser(prog="scaleplan", description="Plan pretraining budgets with scaling laws.")
    _common.add_settings_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_GROUPS:
        importlib.import_module(f"scaleplan.core.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The fits are many small L-BFGS problems: BLAS worker threads only add wake-up latency
    # (tens of ms on a busy 2-core machine). Set for this process before NumPy is imported by
    # the command modules, unless the user chose otherwise; importing scaleplan changes nothing.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a mistake in the arguments (2, one line on stderr)
        return int(stop.code or 0)
    settings = _common.settings_from_args(args)
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
        log_file = _write_traceback(settings.log_dir, argv if argv is not None else sys.argv[1:])
        print(
            f"scaleplan: internal error ({type(sys.exc_info()[1]).__name__}); the traceback is in {log_file}. "
            "Please include that file when you report the problem.",
            file=sys.stderr,
        )
        return EXIT_BUG


def _write_traceback(log_dir: Path, argv: list[str]) -> Path:
    """Append the current exception's traceback to ``<log_dir>/scaleplan.log``; return the path."""
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "scaleplan.log"
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {_dt.datetime.now().isoformat(timespec='seconds')} scaleplan {' '.join(argv)}\n")
            log.write(traceback.format_exc())
        return path
    except OSError:
        logging.getLogger("scaleplan").exception("could not write the log file")
        traceback.print_exc()
        return Path("(stderr: no writable log folder)")


if __name__ == "__main__":
    sys.exit(main())
