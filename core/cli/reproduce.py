"""``scaleplan reproduce``: the papers' headline results on our data."""

from __future__ import annotations

import argparse
import math

import pandas as pd

from scaleplan.core import calibration, meta, planning, reproduce, storage
from scaleplan.core.cli import _common
from scaleplan.core.settings import Settings


def _ensure_meta(args: argparse.Namespace, settings: Settings) -> pd.DataFrame:
    version = _common.data_version(settings)
    if args.sweep:  # resumes; a no-op when the sweep is complete
        meta.run_sweep(settings.db_path, settings.meta_path, n_jobs=args.jobs, progress=not args.quiet)
    return meta.load_results(settings.meta_path, version)


def _seeds(settings: Settings) -> planning.SeedEvidence:
    """What extra seeds buy, measured on the collection's multi-seed families (none: no gain measured)."""
    with _common.open_db(settings, quiet=True) as con:
        return planning.seed_evidence(storage.seed_replicates(con), len(storage.list_families(con)))


def _calibration_report(args: argparse.Namespace, results: pd.DataFrame, settings: Settings) -> int:
    if results.empty:
        raise _common.CLIError("no meta-analysis results: run `scaleplan meta run` first")
    holdout = args.holdout
    try:
        frame = calibration.leave_one_out(results, holdout)
    except calibration.CalibrationError as error:
        raise _common.CLIError(str(error)) from None
    report = calibration.summarise(frame, holdout=holdout)
    seeds = _seeds(settings)
    if args.json:
        _common.print_json(calibration.report_json(report) | {"seeds": seeds.as_dict()})
        return 0
    unit = "source group" if holdout == "source" else "family"
    print(
        f"Leave-one-{unit.replace(' ', '-')}-out calibration: {report.cells:,} designs of {report.families} families "
        f"in {report.groups} source groups, each predicted with a calibration learned without its {unit}."
    )
    print(
        f"method: {calibration.METHOD}; baseline: one global conformal quantile of |log(predicted/actual)| "
        f"learned on the other {unit}s\n"
    )
    print(
        f"{'nominal':>8} {'realised':>9} {'designs':>8} {'median rel. width':>18}   {'baseline':>9} "
        f"{'median rel. width':>18}"
    )
    for ours, base in zip(report.levels, report.baseline):
        print(
            f"{ours.nominal:>8.0%} {ours.realised:>9.1%} {ours.cells:>8,} {ours.median_rel_width:>18.3f}   "
            f"{base.realised:>9.1%} {base.median_rel_width:>18.3f}"
        )
    reasons = ", ".join(f"{count} {kind}" for kind, count in report.refusal_reasons.items())
    print(
        f"\nrefused (no calibrated interval, outside what the collection covers): {report.refused:,} of "
        f"{report.cells:,} ({report.refused / max(report.cells, 1):.1%})" + (f": {reasons}" if reasons else "")
    )
    planner = ", ".join(f"p{p.nominal * 100:.0f} {p.realised:.1%}" for p in report.planner)
    print(
        f"planner's expected ARE (same model, before any fit): share of held-out designs at or under {planner} "
        f"({report.planner_refused:,} refused)"
    )
    print(f"seeds: {seeds.statement}")
    print("\nCoverage at 90% per held-out source group (worst first):")
    print(_coverage_table(report.per_group))
    print("\nCoverage at 90% per family (worst first):")
    print(_coverage_table(report.per_family))
    print("\nCoverage at 90% per design feature:")
    print(_coverage_table(report.per_feature))
    if report.per_schedule is not None and not report.per_schedule.empty:
        print(
            "\nCoverage at 90% by the share of the schedule the fitted runs reached (the first share of every "
            "run's checkpoints: mid-schedule losses), per source group (designs in brackets):"
        )
        print(_schedule_table(report.per_schedule))
    return 0


def _schedule_table(frame: pd.DataFrame) -> str:
    """Source groups (rows) x schedule share (columns): realised coverage at 90% and the design count."""
    cells = frame.assign(cell=[f"{c:.0%} ({n})" for c, n in zip(frame["covered_90"], frame["designs"])])
    table = cells.pivot(index="group", columns="schedule", values="cell").fillna("")
    text: str = table.rename_axis(index="source group", columns=None).to_string()
    return text


def _coverage_table(frame: pd.DataFrame) -> str:
    """A per-family or per-feature coverage frame as text: percentages, widths, plain headers."""

    def pct(value: float | None) -> str:
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"

    shown = frame.assign(
        covered_90=frame["covered_90"].map(pct),
        base_covered_90=frame["base_covered_90"].map(pct),
        width_90=frame["width_90"].map(lambda v: f"{v:.3f}"),
        **({"planner_80": frame["planner_80"].map(pct)} if "planner_80" in frame else {}),
    )
    text: str = shown.rename(
        columns={
            "covered_90": "ours",
            "base_covered_90": "baseline",
            "width_90": "median width",
            "planner_80": "planner p80",
        }
    ).to_string(index=False)
    return text


def _downstream(args: argparse.Namespace, settings: Settings) -> int:
    from scaleplan.core import reproduce_downstream

    with _common.open_db(settings) as con:
        report = reproduce_downstream.downstream_report(con)
    result = reproduce_downstream.report_json(report)
    if args.json:
        _common.print_json(result)
        return 0

    def num(value: float | None, spec: str = ".1f") -> str:
        return "" if value is None else format(value, spec)

    print(
        "Single-task accuracy of the largest runs, two-step (loss law -> chance-floor sigmoid link, binomial "
        "likelihood, ceiling 1) and direct (the same form in log10 compute); 'ceil.': the two-step link with a "
        "fitted ceiling; points = percentage points. 90% intervals: conformal on the other source's held-out errors."
    )
    print(
        f"{'source':<10}{'task':<44}{'shots':>6}{'targets':>8}{'MAE':>7}{'direct':>8}{'ceil.':>7}{'cov90':>7}  refused"
    )
    for task in result["tasks"]:
        refused = ", ".join(f"{r['family']}: {r['reason']}" for r in task["refused"])
        print(
            f"{task['source']:<10}{task['task'][:43]:<44}{task['shots']:>6}{len(task['targets']):>8}"
            f"{num(task['mean_abs_error_points']):>7}{num(task['direct_mean_abs_error_points']):>8}"
            f"{num(task['free_ceiling_mean_abs_error_points']):>7}"
            f"{num(task['coverage_90'], '.0%'):>7}  {refused}"
        )
    print()
    for source, row in result["average"]["per_source"].items():
        reasons = ", ".join(f"{n} {reason}" for reason, n in row["refusals_by_reason"].items())
        print(
            f"{source}: {row['answered_tasks']} of {row['tasks']} tasks answered ({row['refused_tasks']} refused on "
            f"every family; refusals: {reasons}); {row['answered_targets']} targets: mean absolute error "
            f"{num(row['mean_abs_error_points'])} points (median {num(row['median_abs_error_points'])}, within 2 "
            f"points {num(row['within_2_points'], '.0%')}), direct {num(row['direct_mean_abs_error_points'])}, "
            f"fitted ceiling {num(row['free_ceiling_mean_abs_error_points'])}; "
            f"90% coverage {num(row['coverage_90'], '.1%')}, median width {num(row['median_width_90_points'])} points"
        )
    overall = result["average"]["all"]
    print(
        f"all sources: {overall['answered_targets']} answered targets, mean absolute error "
        f"{num(overall['mean_abs_error_points'])} points; 90% coverage {num(overall['coverage_90'], '.1%')}"
    )
    for row in result["average"]["gadre_17_task_average_error"]:
        print(
            f"Gadre 17-task average error {row['dataset']} {row['target']}: predicted {100 * row['predicted']:.1f}, "
            f"actual {100 * row['actual']:.1f} ({row['abs_error_points']:.1f} points)"
        )
    return 0


def cmd_reproduce(args: argparse.Namespace, settings: Settings) -> int:
    if args.paper == "downstream":
        return _downstream(args, settings)
    if args.paper == "overtraining":
        with _common.open_db(settings) as con:
            rows = reproduce.overtraining(con)
        if args.json:
            _common.print_json(rows)
            return 0
        print(
            "Gadre et al. (ICLR 2025): fit on 0.011-0.411B runs (M=20) + 0.011B M=320, C4 eval loss;"
            " paper: ~1% relative error on loss"
        )
        print(
            f"{'dataset':<8}{'target':<11}{'quantity':<12}{'predicted':>10}{'actual':>10}{'rel.err':>9}"
            f"{'x fit compute':>15}"
        )
        for r in rows:
            print(
                f"{r['dataset']:<8}{r['target']:<11}{r['quantity']:<12}{r['predicted']:>10.4f}{r['actual']:>10.4f}"
                f"{r['rel_error']:>9.2%}{r['fit_compute_ratio']:>15.0f}"
            )
        return 0
    results = _ensure_meta(args, settings)
    if args.paper == "calibration":
        return _calibration_report(args, results, settings)
    with _common.open_db(settings) as con:
        report = reproduce.hitchhiker_report(results, con)
    if args.json:
        _common.print_json(report.as_dict())
        return 0
    for family, grid in report.grids.items():
        print(
            f"\nARE (mean over target's last 30%) by largest size used (rows) x fraction of training "
            f"(columns): {family}"
        )
        frame = pd.DataFrame(
            grid.are, index=[f"{v:.3g}" for v in grid.max_params], columns=[f"{c:g}" for c in grid.fractions]
        )
        print(
            frame.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}").to_string()
        )
    print("\nThe paper's findings on our data:")
    for f in report.findings:
        print(f"- {f.statement.finding}\n    paper: {f.statement.paper}\n    ours:  {f.ours}\n    holds: {f.holds}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rep = sub.add_parser("reproduce", parents=[_common.settings_parent()], help=_common.COMMAND_HELP["reproduce"])
    rep.add_argument(
        "paper",
        choices=("overtraining", "hitchhiker", "calibration", "downstream"),
        help="calibration: held-out coverage of the calibrated interval and of the planner's expected ARE; "
        "downstream: single-task accuracy of the largest over-training and Pythia runs",
    )
    rep.add_argument(
        "--holdout",
        choices=calibration.HOLDOUTS,
        default="source",
        help="calibration: hold out one whole source group (default: what a new lab's runs are) or one family "
        "at a time",
    )
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--jobs", type=_common.number(integer=True, example="2"), default=-1)
    rep.add_argument("--quiet", action="store_true")
    rep.add_argument(
        "--sweep",
        action="store_true",
        help="run or resume the meta-analysis sweep on this machine first (many minutes); by default "
        "the stored results are used, else the ones shipped with scaleplan",
    )
    rep.add_argument("--no-sweep", action="store_true", help=argparse.SUPPRESS)  # the default now; old scripts
    rep.set_defaults(func=cmd_reproduce)
