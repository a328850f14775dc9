"""The ``scaleplan`` command line: data, serve, fit, reproduce.

Errors a user can cause (a bad path, a corrupt file, a fit that cannot work) end with
a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from core.manifest import PROJECT_ROOT, DataSourceError

EXIT_USER_ERROR = 2


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _db_path(args) -> Path:
    return Path(args.db or os.environ.get("SCALEPLAN_DB") or _default_db()).resolve()


def _default_db() -> Path:
    from core.storage import DEFAULT_DB_PATH
    return DEFAULT_DB_PATH


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _open_db(args):
    """Open the database read-only, building it first when missing, stale or corrupt."""
    from core import storage
    db = _db_path(args)
    status = storage.database_status(db)
    if status != "ok":
        print(f"database {status} at {db}: building it (this takes under a minute)...", file=sys.stderr)
        storage.build_database(db, mirror=getattr(args, "mirror", None), progress=not getattr(args, "quiet", False))
    return storage.connect(db)


# ---------------------------------------------------------------------------------------------
# data

def cmd_data_build(args) -> int:
    from core import storage
    db = _db_path(args)
    status = storage.database_status(db)
    if status == "ok" and not args.force:
        print(f"database is up to date at {db} (use --force to rebuild)")
        return 0
    report = storage.build_database(db, mirror=args.mirror, progress=not args.quiet)
    print(f"built {db} in {report.seconds:.1f} s (was: {status})")
    for name, info in report.per_source.items():
        bad = sum(info["bad_rows"].values())
        if bad:
            print(f"  {name}: skipped {bad} malformed rows: " +
                  "; ".join(f"{n} x {r}" for r, n in info["bad_rows"].items()))
    return 0


def cmd_data_summary(args) -> int:
    from core import storage
    con = _open_db(args)
    try:
        result = storage.summary(con)
    finally:
        con.close()
    if args.json:
        _print_json(result)
        return 0
    header = f"{'source':<24}{'models':>8}{'families':>10}{'observations':>14}{'metrics':>9}{'checkpoints':>13}{'bad rows':>10}"
    print(header)
    print("-" * len(header))
    for s in result["sources"]:
        print(f"{s['source']:<24}{s['models']:>8}{s['families']:>10}{s['observations']:>14,}{s['metrics']:>9}"
              f"{s['checkpoints']:>13,}{s['bad_rows']:>10}")
    print("-" * len(header))
    print(f"{'total (distinct)':<24}{result['models']:>8}{result['families']:>10}{result['observations']:>14,}"
          f"{result['metrics']:>9}{result['checkpoints']:>13,}{result['bad_rows']:>10}")
    return 0


# ---------------------------------------------------------------------------------------------
# serve

def cmd_serve(args) -> int:
    from core import storage
    db = _db_path(args)
    status = storage.database_status(db)
    if status != "ok":
        print(f"database {status} at {db}: building it first...", file=sys.stderr)
        storage.build_database(db, mirror=args.mirror, progress=True)
    env = dict(os.environ, SCALEPLAN_DB=str(db))
    if args.mirror:
        env["SCALEPLAN_MIRROR"] = str(Path(args.mirror).resolve())
    command = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboard" / "app.py"),
               "--server.port", str(args.port), "--server.address", args.address,
               "--server.headless", "true" if args.headless else "false",
               "--browser.gatherUsageStats", "false"]
    print(f"scaleplan dashboard on http://{args.address}:{args.port}", file=sys.stderr)
    try:
        return subprocess.call(command, env=env, cwd=str(PROJECT_ROOT))
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scaleplan", description="Plan pretraining budgets with scaling laws.")
    parser.add_argument("--db", help="database file (default: $SCALEPLAN_DB or data/scaleplan.duckdb)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build and inspect the database").add_subparsers(dest="data_command", required=True)
    build = data.add_parser("build", help="build (or rebuild) the database from the sources")
    build.add_argument("--mirror", help="local mirror of the sources (default: $SCALEPLAN_MIRROR, else download)")
    build.add_argument("--force", action="store_true", help="rebuild even if the database is up to date")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(func=cmd_data_build)
    summ = data.add_parser("summary", help="counts per source and in total")
    summ.add_argument("--json", action="store_true", help="one JSON object")
    summ.add_argument("--mirror", help="mirror to build from if the database must be built")
    summ.add_argument("--quiet", action="store_true")
    summ.set_defaults(func=cmd_data_summary)

    serve = sub.add_parser("serve", help="launch the dashboard")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--address", default="localhost")
    serve.add_argument("--mirror", help="mirror to build from if the database must be built")
    serve.add_argument("--headless", action="store_true", help="do not open a browser")
    serve.set_defaults(func=cmd_serve)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


#: Registration hooks for commands defined in other modules (fit, reproduce).
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: list[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CLIError, DataSourceError, ValueError, OSError, RuntimeError) as error:
        print(f"scaleplan: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR


def _load_extra_commands() -> None:
    if _EXTRA_COMMANDS:
        return
    from core import commands

    _EXTRA_COMMANDS.extend(commands.REGISTER)


if __name__ == "__main__":
    sys.exit(main())
