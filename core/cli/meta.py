"""``scaleplan meta run`` (the meta-analysis sweep: resumable, local cores or a Dask cluster) and
``scaleplan meta export`` (write it as the results that ship with scaleplan)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from scaleplan.core import meta
from scaleplan.core.cli import _common, _names
from scaleplan.core.settings import Settings


def cmd_meta_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.jobs == 0 or args.jobs < -1:
        raise _common.CLIError(f"--jobs must be a positive number of workers or -1 (all cores), got {args.jobs}")
    if args.limit is not None and args.limit < 1:
        raise _common.CLIError(f"--limit must be at least 1, got {args.limit}")
    if args.scheduler is not None and args.engine != "dask":
        raise _common.CLIError("--scheduler needs --engine dask")
    if args.scheduler is not None:
        meta.check_scheduler_address(args.scheduler)
    config = _config(args)
    _common.ensure_database(settings, quiet=args.quiet)
    try:
        report = meta.run_sweep(
            settings.db_path,
            settings.meta_path,
            families=args.family or None,
            n_jobs=args.jobs,
            engine=args.engine,
            scheduler=args.scheduler,
            limit=args.limit,
            progress=not args.quiet,
            config=config,
        )
    except meta.SweepConfigError as error:
        raise _common.CLIError(_with_family_hints(str(error), settings, args.family or _families(config))) from None
    except ImportError as error:
        if args.engine == "dask":
            raise _common.CLIError(
                f"the Dask engine needs dask[distributed] (pip install 'scaleplan[cluster]'): {error}"
            ) from None
        raise
    print(
        f"planned {report.planned} fits, {report.skipped} already stored; ran {report.fitted + report.failed} "
        f"({report.fitted} fitted, {report.failed} could not be fitted; {report.designs} distinct designs) "
        f"in {report.seconds:.1f} s"
    )
    return 0


def _config(args: argparse.Namespace) -> meta.SweepConfig | None:
    """The sweep configuration of ``--config`` (None: the built-in sweep), ``--family`` overriding its families."""
    try:
        config = meta.SweepConfig.from_file(_common.user_path(args.config)) if args.config else None
    except meta.SweepConfigError as error:
        raise _common.CLIError(str(error)) from None
    return config


def _families(config: meta.SweepConfig | None) -> Sequence[str] | None:
    return None if config is None else config.families


def _with_family_hints(message: str, settings: Settings, families: Sequence[str] | None) -> str:
    """``message`` with the closest eligible family of each named family the sweep does not cover
    (:func:`_names.did_you_mean`, as for runs, tasks and laws): "Pythia" gets "did you mean pythia?"."""
    from scaleplan.core import storage

    if not families:
        return message
    con = storage.connect(settings.db_path)
    try:
        eligible = meta.eligible_families(con)
    finally:
        con.close()
    unknown = [name for name in dict.fromkeys(families) if name not in eligible]
    if len(unknown) == 1:
        return _names.with_hint(message, unknown[0], eligible)
    hints = [f"{name}: {hint}" for name in unknown if (hint := _names.did_you_mean(name, eligible))]
    return f"{message} ({'; '.join(hints)})" if hints else message


def cmd_meta_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write this machine's full sweep as the results that ship with scaleplan (parquet + sha256 pin).

    Refused when ``--to`` holds files that are not scaleplan's export (even with ``--force``), and,
    without ``--force``, when the sweep of the configuration (built-in, or ``--config``) is not
    complete or has fewer fitted designs than the export it would replace."""
    import dataclasses

    if args.to == "":
        raise _common.CLIError("--to is empty; give the folder to write the export into (the project's data/)")
    dest = _common.user_path(args.to)
    if dest.exists() and not dest.is_dir():
        raise _common.CLIError(
            f"--to {args.to} is a file, not a folder; give the folder to write {meta.SHIPPED_RESULTS} and "
            f"{meta.SHIPPED_INFO} into (the project's data/)"
        )
    if dest.is_dir():
        meta.existing_export(dest)  # a foreign file there: refused before the sweep is planned
    config = _config(args) or meta.SweepConfig()
    if args.family:
        config = dataclasses.replace(config, families=tuple(args.family))
    version = _common.data_version(settings)  # builds the database when needed
    try:
        planned = None if args.force else meta.planned_keys(settings.db_path, config)[1]
        info = meta.export_results(
            settings.meta_path,
            version,
            dest,
            content_digests=_common.content_digests(settings),
            planned=planned,
            force=args.force,
        )
    except meta.SweepConfigError as error:
        raise _common.CLIError(_with_family_hints(str(error), settings, config.families)) from None
    except ValueError as error:
        raise _common.CLIError(f"{error}; run `scaleplan meta run` first") from None
    print(
        f"wrote {info['rows']:,} rows ({info['fitted']:,} fitted) of data version {version[:12]} to "
        f"{dest / meta.SHIPPED_RESULTS} (sha256 {info['sha256'][:12]}...)"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    meta_cmd = sub.add_parser("meta", help=_common.COMMAND_HELP["meta"]).add_subparsers(
        dest="meta_command", required=True
    )
    run = meta_cmd.add_parser("run", parents=[_common.settings_parent()], help="run or resume the sweep")
    run.add_argument("--family", action="append", help="only these families (repeatable; overrides the config file)")
    run.add_argument(
        "--config",
        metavar="FILE",
        help="sweep configuration (.toml or .json): families, fractions, checkpoints, cutoffs, "
        "window_sizes, ... (see the README, 'Scale-out with Dask')",
    )
    run.add_argument(
        "--jobs",
        type=_common.number(integer=True, example="2"),
        default=-1,
        help="parallel workers (default: all cores)",
    )
    run.add_argument(
        "--engine",
        choices=meta.ENGINES,
        default="joblib",
        help="joblib: local cores; dask: a Dask cluster (--scheduler) or a local one",
    )
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://HOST:8786")
    run.add_argument(
        "--limit",
        type=_common.number(integer=True, example="100"),
        help="at most this many new designs (tasks selecting the same points are one)",
    )
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=cmd_meta_run)
    export = meta_cmd.add_parser(
        "export",
        parents=[_common.settings_parent()],
        help="write the stored sweep as the results shipped with scaleplan",
    )
    export.add_argument(
        "--to",
        required=True,
        metavar="FOLDER",
        help="where to write sweep_results.parquet and its pin (the project's data/ folder); "
        "files there that are not scaleplan's export are never written over",
    )
    export.add_argument(
        "--config",
        metavar="FILE",
        help="the sweep configuration the export must be complete for (default: the built-in sweep)",
    )
    export.add_argument("--family", action="append", help="only these families (repeatable; overrides the config file)")
    export.add_argument(
        "--force",
        action="store_true",
        help="export an incomplete sweep, or one with fewer fitted designs than the export it replaces",
    )
    export.set_defaults(func=cmd_meta_export)
