"""``scaleplan runs``: your own scaling studies, stored in the user store (``--user-db``).

``runs add FILE --name NAME`` validates and stores a file of runs (CSV, long format with steps,
Parquet or a W&B export); ``runs list``; ``runs show NAME [--target-flops C | --predict-n N
--predict-d D] [--json]`` prints approach 2 (isoFLOP), approach 3 and the published laws'
compute-optimal split and the prediction with its calibrated interval; ``runs rename OLD NEW``;
``runs export NAME --to FILE``; ``runs remove NAME`` deletes that study only.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from scaleplan.core import formats, studies, units, userdata
from scaleplan.core.cli import _common, _names
from scaleplan.core.cli._common import CLIError
from scaleplan.core.settings import Settings

FILE_INPUTS = formats.Inputs(
    tokens_per_step="with --tokens-per-step, e.g. --tokens-per-step 4194304",
    num_params="with --params, e.g. --params 'my-run=410M'",
)
"""How the commands that read a runs file (``runs add``, ``fit --runs``) let a person give what it lacks."""


def run_size(item: str) -> tuple[str, float]:
    """An argparse ``type`` for ``--params RUN=N``: the run's name and its parameters (7B, 350M, 1.3e9, ...).

    The size is read by :func:`scaleplan.core.units.parse_number` and must be a finite count within
    the uploads' limits (:data:`scaleplan.core.userdata.PLAUSIBLE`).
    """
    run, sep, text = (part.strip() for part in item.rpartition("="))
    if not sep or not run or not text:
        raise argparse.ArgumentTypeError(f"write RUN=N, e.g. 'my-run=410M'; got {item!r}")
    try:
        value = units.parse_number(text, name="the size")
    except units.NumberSyntaxError:
        raise argparse.ArgumentTypeError(
            f"{item!r}: cannot read the size {text!r}; give a number of parameters like 410M, 1.3B or 1.3e9"
        ) from None
    low, high = userdata.PLAUSIBLE["num_params"]
    if not math.isfinite(value) or not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{item!r}: the size must be a number of parameters from {low:g} to {high:g}, e.g. {run}=410M"
        )
    return run, value


SMALL_TOKENS_PER_STEP = 1000
"""Below this many tokens per step (a batch of one short sequence) a value is more likely a count typed
without its suffix (2.5 for 2.5M): it is used, with a warning."""


def tokens_per_step(text: str) -> float:
    """An argparse ``type`` for ``--tokens-per-step``: a number of tokens (suffixes as everywhere, 2M),
    at least 1: a step trains on whole tokens (batch size x sequence length)."""
    value = _common.number(positive=True, example="2M")(text)
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is below 1 token per step; give the batch size x sequence length in tokens, like 2M"
        )
    return value


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """The options for a runs file that lacks tokens or sizes (a W&B export): one definition for every command."""
    parser.add_argument(
        "--tokens-per-step",
        type=tokens_per_step,
        help="tokens per step (batch size x sequence length), for files that count steps (W&B exports)",
    )
    parser.add_argument(
        "--params",
        action="append",
        type=run_size,
        metavar="RUN=N",
        help="a W&B run's size when its name lacks it, e.g. 'my-run=1.3B' (repeat for each run)",
    )


def read_runs_file(path_text: str, args: argparse.Namespace) -> tuple[formats.ParsedRuns, bytes]:
    """Read and validate a runs file with the :func:`add_file_options` given; the left-out rows'
    first messages go to stderr. Returns the parsed runs and the file's bytes."""
    path = Path(path_text)
    if not path.is_file():
        raise CLIError(f"no such file: {path}")
    data = path.read_bytes()
    per_step = args.tokens_per_step
    if per_step is not None and per_step < SMALL_TOKENS_PER_STEP:
        print(
            f"warning: --tokens-per-step {per_step:g} is {formats.per_step_text(per_step)}; a step is usually "
            f"millions of tokens (batch size x sequence length): did you mean {per_step:g}M?",
            file=sys.stderr,
        )
    sizes = dict(args.params or [])
    if len(sizes) < len(args.params or []):
        twice = sorted({run for run, _ in args.params if [r for r, _ in args.params].count(run) > 1})
        raise CLIError(f"--params gives the size of {', '.join(map(repr, twice))} more than once; give each run once")
    parsed = formats.parse_runs(data, tokens_per_step=per_step, num_params=sizes, inputs=FILE_INPUTS)
    check_file_options(parsed, path.name, per_step, sizes)
    for message in parsed.messages[:10]:
        print(f"warning: {message}", file=sys.stderr)
    return parsed, data


def check_file_options(
    parsed: formats.ParsedRuns, filename: str, per_step: float | None, sizes: dict[str, float]
) -> None:
    """Refuse ``--tokens-per-step`` and ``--params`` where the file made no use of them (it gives its
    tokens or sizes itself), and a ``--params`` run the file does not have (listing its runs), rather
    than let a flag be ignored without a word."""
    tokens_source = parsed.mapping.source_of("tokens_seen") or ""
    if per_step is not None and not tokens_source.endswith(formats.per_step_text(per_step)):
        raise CLIError(
            f"--tokens-per-step {units.format_count(per_step)} is not used: {filename} gives its tokens ({tokens_source}); "
            "leave --tokens-per-step out"
        )
    if not sizes:
        return
    if parsed.format != "wandb":
        raise CLIError(
            f"--params is not used: {filename} gives each run's size ({parsed.mapping.source_of('num_params')}); "
            "--params is for a W&B export whose run names lack the size; leave it out"
        )
    runs = [str(r) for r in dict.fromkeys(parsed.table["run_name"])]
    for run in sizes:
        if run not in runs:
            hint = _names.did_you_mean(run, runs)
            raise CLIError(
                f"--params {run}=...: {filename} has no run {run!r}"
                + (f" ({hint})" if hint else "")
                + f"; its runs are {', '.join(runs[:12])}{', ...' if len(runs) > 12 else ''}"
            )


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    parsed, data = read_runs_file(args.file, args)
    info = studies.save_study(
        settings.user_db_path,
        args.name,
        parsed,
        sha256=studies.sha256_of(data),
        filename=Path(args.file).name,
        replace=args.replace,
    )
    print(
        f"stored study {info.name!r}: {userdata.count_of(info.num_runs, 'run')}, "
        f"{userdata.count_of(info.num_rows, 'row')} ({info.format}) in {settings.user_db_path}"
    )
    for ours, theirs in info.mapping.pairs:
        print(f"  {ours:<18} <- {theirs}")
    if parsed.rejected_rows:
        print(f"{userdata.count_of(parsed.rejected_rows, 'row')} left out (the first are listed above)")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = studies.list_studies(settings.user_db_path)
    if args.json:
        _common.print_json(
            [
                {
                    "name": s.name,
                    "sha256": s.sha256,
                    "filename": s.filename,
                    "format": s.format,
                    "uploaded_at": s.uploaded_at.isoformat(),
                    "runs": s.num_runs,
                    "rows": s.num_rows,
                    "mapping": s.mapping.as_dict(),
                }
                for s in rows
            ]
        )
        return 0
    if not rows:
        print(f"no studies stored in {settings.user_db_path} (add one with `scaleplan runs add FILE --name NAME`)")
        return 0
    for s in rows:
        print(
            f"{s.name}\t{userdata.count_of(s.num_runs, 'run')}\t{userdata.count_of(s.num_rows, 'row')}\t{s.format}\t"
            f"{s.uploaded_at:%Y-%m-%d %H:%M} UTC\t"
            f"sha256 {s.sha256[:12]}\t{s.filename}"
        )
    return 0


def _target(args: argparse.Namespace, study: studies.Study) -> studies.StudyTarget:
    if args.target_flops is not None and (args.predict_n is not None or args.predict_d is not None):
        raise CLIError(
            "--target-flops and --predict-n/--predict-d are alternatives: give the target as a compute budget "
            "(--target-flops C) or as a size and tokens (--predict-n N --predict-d D), not both"
        )
    if args.target_flops is not None:
        return studies.StudyTarget(compute_flops=args.target_flops)
    if args.predict_n is not None or args.predict_d is not None:
        return studies.StudyTarget(num_params=args.predict_n, tokens=args.predict_d)
    return studies.default_target(study.table)


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.level < 1:
        raise CLIError(f"--level must be between 0 and 1 (e.g. 0.9), got {args.level}")
    study = studies.load_study(settings.user_db_path, args.name)
    target = _target(args, study)
    cal, missing = _common.load_calibration(settings)
    report = studies.analyse_study(study.table, target, calibration_model=cal, level=args.level)
    doc: dict[str, Any] = report.as_dict()
    doc["study"] = {
        "name": study.info.name,
        "sha256": study.info.sha256,
        "uploaded_at": study.info.uploaded_at.isoformat(),
        "format": study.info.format,
        "runs": study.info.num_runs,
        "rows": study.info.num_rows,
        "mapping": study.info.mapping.as_dict(),
    }
    if report.prediction is not None and report.prediction.interval is None:
        doc["prediction"]["interval"] = {"level": args.level, "low": None, "high": None, "refused": missing}
    if args.json:
        _common.print_json(doc)
        return 0
    print_report(doc)
    return 0


def _params(value: float) -> str:
    """A parameter count in three significant digits without its unit word: 81.2M, 2.74B."""
    return units.format_params(value, unit=False, decimals=2)


def optimal_row_text(row: dict[str, Any], *, unit: bool = True) -> str:
    """One compute-optimal row of a study report (``compute_optimal``): "label: N=2.62B params (2.16B -
    3.18B, 80% interval), D=191B tokens" (``unit``: N with its unit word, as :func:`units.format_params`);
    ``runs show`` and ``fit --runs`` print it."""
    band = (
        f"{_params(row['num_params_low'])} - {_params(row['num_params_high'])}, {units.format_level(row['level'])} interval"
        if row["has_interval"]
        else "no interval"
    )
    return (
        f"{row['label']}: N={units.format_params(row['num_params'], unit=unit, decimals=2)} ({band}), "
        f"D={units.format_tokens(row['tokens'], decimals=2)}"
    )


def print_report(doc: dict[str, Any]) -> None:
    """The human-readable form of :meth:`scaleplan.core.studies.StudyReport.as_dict` (shared with ``fit --runs``)."""
    target = doc["target"]
    if target["num_params"] is not None:
        print(
            f"target: N={units.format_params(target['num_params'], decimals=2)}, "
            f"D={units.format_tokens(target['tokens'], decimals=2)}, "
            f"C={units.format_flops(target['compute_flops'], decimals=2)} ({target['given_as']})"
        )
    prediction = doc["prediction"]
    if prediction is None:
        print(f"prediction: none ({doc['prediction_problem']})")
    else:
        interval = prediction["interval"] or {}
        if interval.get("low") is not None:
            note = f"{units.format_level(interval['level'])} calibrated interval {interval['low']:.4f} - {interval['high']:.4f}"
        else:
            note = interval.get("refused") or "no calibrated interval"
        print(f"predicted loss ({prediction['fit']}): {prediction['loss']:.4f}  ({note})")
    iso = doc["isoflop"]
    if iso is None:
        print(f"isoFLOP analysis (approach 2): none ({doc['isoflop_problem']})")
    else:
        print(f"isoFLOP analysis (approach 2): N*(C) = {iso['coefficient_G']:.4g} C^{iso['exponent_a']:.4f}")
        for b in iso["budgets"]:
            if b["optimal_params"] is None:
                print(f"  C={units.format_flops(b['compute_flops'])}: {b['sizes']} sizes, no minimum")
            else:
                band = (
                    f"{_params(b['optimal_params_low'])} - {_params(b['optimal_params_high'])}"
                    if b["optimal_params_low"] is not None
                    else "no interval"
                )
                print(
                    f"  C={units.format_flops(b['compute_flops'])}: {b['sizes']} sizes, "
                    f"N*={_params(b['optimal_params'])} ({band}), loss {b['optimal_loss']:.4f}"
                )
    print(f"compute-optimal split of {units.format_flops(target['compute_flops'], decimals=2)}:")
    for row in doc["compute_optimal"]:
        print(f"  {optimal_row_text(row, unit=False)}, {row['tokens_per_param']:.1f} tokens/param")
    for warning in doc["warnings"]:
        print(f"warning: {warning}")


def cmd_rename(args: argparse.Namespace, settings: Settings) -> int:
    renamed = studies.rename_study(settings.user_db_path, args.old, args.new)
    print(f"renamed {renamed.old_name!r} to {renamed.name!r} ({renamed.scenarios_text})")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    study = studies.load_study(settings.user_db_path, args.name)
    data = studies.export_csv(study)
    if args.to is None or args.to == "-":
        sys.stdout.write(data.decode("utf-8"))
        return 0
    out = Path(args.to)
    if out.exists():
        raise CLIError(f"{out} exists; scaleplan does not overwrite files: choose a new name")
    out.write_bytes(data)
    print(f"wrote {study.info.num_rows} rows to {out}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    orphaned = studies.delete_study(settings.user_db_path, args.name, how_to_force=None if args.force else "--force")
    left = (
        f"; {userdata.count_of(orphaned, 'saved scenario')} that used it {'is' if orphaned == 1 else 'are'} "
        "now unavailable"
        if orphaned
        else ""
    )
    print(f"removed study {args.name.strip()!r}; the other studies are unchanged{left}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parent = _common.settings_parent()
    runs = sub.add_parser("runs", parents=[parent], help=_common.COMMAND_HELP["runs"])
    commands = runs.add_subparsers(dest="runs_command", required=True, metavar="RUNS_COMMAND")

    add = commands.add_parser("add", parents=[parent], help="validate and store a file of runs")
    add.add_argument("file", help="CSV, Parquet or W&B export of your runs")
    add.add_argument("--name", required=True, help="the study's name")
    add.add_argument("--replace", action="store_true", help="replace a stored study of that name")
    add_file_options(add)
    add.set_defaults(func=cmd_add)

    listing = commands.add_parser("list", parents=[parent], help="the stored studies")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = commands.add_parser("show", parents=[parent], help="approach 2 and 3 and the prediction for a target")
    show.add_argument("name")
    show.add_argument(
        "--target-flops",
        type=_common.number(positive=True, example="1e23"),
        help="target compute budget, FLOPs (default: 100x the largest run, rounded up to one digit)",
    )
    show.add_argument(
        "--predict-n", type=_common.number(positive=True, example="7B"), help="target parameters N (with --predict-d)"
    )
    show.add_argument(
        "--predict-d", type=_common.number(positive=True, example="1.4T"), help="target tokens D (with --predict-n)"
    )
    show.add_argument(
        "--level",
        type=_common.number(positive=True, example="0.9"),
        default=0.9,
        help="level of the calibrated interval (default 0.9)",
    )
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    rename = commands.add_parser("rename", parents=[parent], help="rename a study")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.set_defaults(func=cmd_rename)

    export = commands.add_parser("export", parents=[parent], help="a study's rows as CSV")
    export.add_argument("name")
    export.add_argument("--to", help="output file (default: standard output); never overwritten")
    export.set_defaults(func=cmd_export)

    remove = commands.add_parser("remove", parents=[parent], help="delete one stored study")
    remove.add_argument("name")
    remove.add_argument(
        "--force", action="store_true", help="remove it even when saved scenarios use it (they become unavailable)"
    )
    remove.set_defaults(func=cmd_remove)
