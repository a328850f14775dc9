"""``scaleplan data build`` and ``scaleplan data summary``."""

from __future__ import annotations

import argparse

from scaleplan.core.cli import _common
from scaleplan.core.settings import Settings


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from scaleplan.core import storage

    status = storage.database_status(settings.db_path)
    if status == "ok" and not args.force:
        print(f"database is up to date at {settings.db_path} (use --force to rebuild)")
        return _refresh_sweep(args, settings)
    report = storage.build_database(
        settings.db_path,
        mirror=settings.mirror,
        download_dir=settings.download_dir,
        download_url=settings.download_url,
        progress=not args.quiet,
    )
    print(f"built {settings.db_path} in {report.seconds:.1f} s (was: {status})")
    for name, info in report.per_source.items():
        bad = sum(info["bad_rows"].values())
        if bad:
            print(
                f"  {name}: skipped {bad} malformed rows: "
                + "; ".join(f"{n} x {r}" for r, n in info["bad_rows"].items())
            )
    return _refresh_sweep(args, settings)


def _refresh_sweep(args: argparse.Namespace, settings: Settings) -> int:
    """With ``--sweep``: run (or resume) the meta-analysis sweep into ``settings.meta_path``.

    Without it nothing runs: the full sweep's results for this data version ship with scaleplan
    (``meta.shipped_results``), so the planner and the calibrated intervals work at once; the
    sweep takes many minutes on 2 cores (``benchmarks/bench_sweep.py``).
    """
    from scaleplan.core import meta

    if not args.sweep:
        version = _common.data_version(settings)
        shipped = meta.shipped_results_info() or {}
        if meta.load_results(settings.meta_path, version, shipped=False).empty:
            where = (
                "the results shipped with scaleplan are used"
                if shipped.get("data_version") == version
                else "no shipped results match this data: run `scaleplan meta run` for the planner"
            )
            print(f"meta-analysis: none computed on this machine; {where}")
        return 0
    report = meta.run_sweep(settings.db_path, settings.meta_path, n_jobs=-1, progress=not args.quiet)
    ran = report.fitted + report.failed
    print(
        f"meta-analysis sweep at {settings.meta_path}: {report.planned} designs, {report.skipped} already stored, "
        f"{ran} run ({report.fitted} fitted) in {report.seconds:.1f} s"
    )
    return 0


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from scaleplan.core import storage

    with _common.open_db(settings, quiet=args.quiet) as con:
        result = storage.summary(con)
    if args.json:
        _common.print_json(result.as_dict())
        return 0
    header = (
        f"{'source':<24}{'runs':>8}{'families':>10}{'observations':>14}{'metrics':>9}"
        f"{'checkpoints':>13}{'bad rows':>10}{'downstream':>12}"
    )
    print(header)
    print("-" * len(header))
    for s in result.sources:
        print(
            f"{s.source:<24}{s.runs:>8,}{s.families:>10}{s.observations:>14,}{s.metrics:>9}"
            f"{s.checkpoints:>13,}{s.bad_rows:>10,}{s.downstream_evals:>12,}"
        )
    print("-" * len(header))
    print(
        f"{'total (distinct)':<24}{result.models:>8,}{result.families:>10}{result.observations:>14,}"
        f"{result.metrics:>9}{result.checkpoints:>13,}{result.bad_rows:>10,}{result.downstream_evals:>12,}"
    )
    for s in result.sources:
        if s.added_runs:  # values on another source's runs: counted there, once
            print(f"{s.source}: adds {s.added_metrics} metrics to {s.added_runs:,} runs of {', '.join(s.added_to)}")
    print(
        "runs: the runs each source provides (each counted once); "
        "downstream: benchmark scores with their task, shots, chance level and question count "
        "(the downstream_evals table; sources with downstream_evals in core/sources)"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = sub.add_parser("data", help=_common.COMMAND_HELP["data"]).add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
    build = data.add_parser(
        "build", parents=[_common.settings_parent()], help="build (or rebuild) the database from the sources"
    )
    build.add_argument("--force", action="store_true", help="rebuild even if the database is up to date")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.add_argument(
        "--sweep",
        action="store_true",
        help="also run the meta-analysis sweep on this machine (many minutes on 2 cores); "
        "without it the results shipped with scaleplan are used",
    )
    build.set_defaults(func=cmd_build)
    summary = data.add_parser("summary", parents=[_common.settings_parent()], help="counts per source and in total")
    summary.add_argument("--json", action="store_true", help="one JSON object")
    summary.add_argument("--quiet", action="store_true", help="no progress bars if a build is needed")
    summary.set_defaults(func=cmd_summary)
