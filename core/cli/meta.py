"""``scaleplan meta run``: the meta-analysis sweep (resumable)."""

from __future__ import annotations

import argparse

from scaleplan.core import meta
from scaleplan.core.cli import _common
from scaleplan.core.settings import Settings


def cmd_meta_run(args: argparse.Namespace, settings: Settings) -> int:
    _common.ensure_database(settings, quiet=args.quiet)
    report = meta.run_sweep(settings.db_path, settings.meta_path,
                            families=args.family or None, n_jobs=args.jobs, engine=args.engine,
                            scheduler=args.scheduler, limit=args.limit, progress=not args.quiet)
    print(f"planned {report.planned} fits, {report.skipped} already stored; ran {report.fitted + report.failed} "
          f"({report.fitted} fitted, {report.failed} could not be fitted) in {report.seconds:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    meta_cmd = sub.add_parser("meta", help="the meta-analysis sweep").add_subparsers(dest="meta_command", required=True)
    run = meta_cmd.add_parser("run", parents=[_common.settings_parent()], help="run or resume the sweep")
    run.add_argument("--family", action="append", help="only these families (repeatable)")
    run.add_argument("--jobs", type=int, default=-1, help="parallel workers (default: all cores)")
    run.add_argument("--engine", choices=("joblib", "dask"), default="joblib")
    run.add_argument("--scheduler", help="Dask scheduler address for a cluster")
    run.add_argument("--limit", type=int, help="at most this many new fits")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=cmd_meta_run)

