"""``scaleplan fit``: fit L(N, D) on a family's smaller runs or on your own runs, predict a target."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from scaleplan.core import analysis, backtest, calibration, fitting, formats, laws, storage, studies, units
from scaleplan.core.cli import _common, _names
from scaleplan.core.cli import runs as runs_cli
from scaleplan.core.cli._common import CLIError
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, Selection, SelectionError
from scaleplan.core.settings import Settings
from scaleplan.core.userdata import RunsTableError, default_min_tokens

MAX_BOOTSTRAP = 10_000  # replicates: beyond this the bootstrap takes hours and its percentiles do not move


def _calibration(settings: Settings, law: str) -> tuple[calibration.Calibration | None, str]:
    """The calibration for a fit of ``law``: the stored sweep's for Chinchilla, none for another law."""
    refused = calibration.law_refusal(law)
    if refused is not None:
        return None, refused
    return _common.load_calibration(settings)


def _interval_json(result: analysis.Analysis, level: float, missing: str) -> dict[str, Any]:
    if result.interval is None:
        return {"level": level, "low": None, "high": None, "method": calibration.METHOD, "refused": missing}
    if isinstance(result.interval, calibration.Refusal):
        return result.interval.as_dict(level)
    return result.interval.as_dict()


def _bootstrap_json(result: analysis.Analysis) -> dict[str, Any] | None:
    boot = result.bootstrap
    if boot is None:
        return None
    return {
        "replicates": boot.n_boot,
        "failed": boot.n_failed,
        "failures": dict(boot.failures),
        "scheme": boot.scheme,
        "band_90": list(result.band) if result.band else None,
        "note": "parameter uncertainty only (resampled data); the calibrated interval is the one to use",
    }


def _analysis_json(result: analysis.Analysis, level: float = 0.9, missing: str = "") -> dict[str, Any]:
    ev = result.evaluation
    return {
        "target": {"run": result.target_run, "num_params": result.target_params, "tokens": result.target_tokens},
        "law": result.fit.law.name,
        "params": dict(result.fit.params),
        "fixed": list(result.fit.fixed),
        "objective": result.fit.objective,
        "points": len(result.points),
        "runs": list(result.points.runs["run_id"]),
        "prediction": result.predicted_loss,
        "interval": _interval_json(result, level, missing),
        # the largest fitted size predicted by a refit without it (core.fitting.hold_out_largest_size; None:
        # too few sizes or points), a feature of the collection's calibrated interval
        "largest_size_backtest": None
        if result.largest_size is None
        else {
            "num_params": result.largest_size.num_params,
            "tokens": result.largest_size.tokens,
            "predicted": result.largest_size.predicted,
            "observed": result.largest_size.observed,
            "log_error": result.largest_size.log_error,
        },
        "warnings": [{"kind": w.kind, "message": w.message} for w in result.warnings],
        "bootstrap": _bootstrap_json(result),
        "actual": ev.actual_final if ev else None,
        "are_final": ev.are_final if ev else None,
        "are_mean_last_30pct": ev.are_mean if ev else None,
        "compute_share": result.compute_share,
    }


def _task_json(settings: Settings, family: str, task: str, result: analysis.Analysis, level: float) -> dict[str, Any]:
    """The two-step accuracy prediction of ``task`` at the fit's predicted loss (core.task_prediction).

    A task the study runs cannot support is an answer, not a mistake: ``refused`` with the refusal's
    ``reason`` (a :data:`core.downstream.REFUSAL_RULES` key) and ``message``. A task the family does not
    score is the user's mistake (:class:`CLIError`, exit 2)."""
    from scaleplan.core import downstream, task_prediction

    points = result.points
    with _common.open_db(settings) as con:
        target = result.target_run if result.evaluation is not None else None
        args = (con, family, task, points.run_ids, points.tokens_seen, points.loss, result.predicted_loss)
        try:
            task_prediction.predict_task(*args, target_run=target, level=level)  # refusals first: cheap
            q, basis = task_prediction.held_out_quantile(con, family, level)
            pred = task_prediction.predict_task(*args, target_run=target, quantile=q, level=level, quantile_basis=basis)
        except task_prediction.TaskNotFound as error:
            names = (
                [] if isinstance(error, task_prediction.AmbiguousTask) else task_prediction.family_tasks(con, family)
            )
            raise CLIError(_names.with_hint(str(error), task, names)) from None
        except downstream.TaskRefused as error:
            return {
                "task": task,
                "refused": True,
                "reason": error.reason,
                "message": str(error),
                "predicted_points": None,
                "low_points": None,
                "high_points": None,
                "level": level,
            }
    link = pred.link
    return {
        "task": pred.task,
        "refused": False,
        "reason": None,
        "message": None,
        "shots": pred.shots,
        "chance_points": 100 * pred.chance,
        "predicted_points": pred.predicted_points,
        "low_points": pred.lower_points,
        "high_points": pred.upper_points,
        "level": level,
        "interval_basis": pred.interval_note,
        "actual_points": pred.actual_points,
        "link": {
            "formula": "acc = c + (a - c) / (1 + exp(-k (L0 - L)))",
            "k_per_nat": link.k,
            "ceiling_points": 100 * link.ceiling,
            "ceiling_fitted": link.ceiling_fitted,
            "L0_nats": link.x0,
            "dispersion": link.dispersion,
            "study_points": int(link.x.size),
            "study_runs": link.check.runs,
        },
    }


def unknown_family(con: Any, family: str) -> None:
    """Raise :class:`CLIError` when the collection holds no family ``family``, naming the closest
    names (or how to list them)."""
    names = storage.list_families(con)["family"].astype(str).tolist()
    if family in names:
        return
    hint = _names.did_you_mean(family, names) or "`scaleplan data summary` lists them"
    raise CLIError(f"the collection has no family {family!r} ({len(names)} families; {hint})")


def suffix_hint(value: float, low: float, high: float = units.MAX_PARAMS) -> str:
    """ "; did you mean 7B?" when ``value`` is a bare small whole number (below 1,000) that an M or B
    suffix would put at or above ``low`` (and at most ``high``), else "": a size typed without its suffix."""
    if not (1 <= value < 1000 and value == int(value)):
        return ""
    options = [f"{int(value)}{suffix}" for scale, suffix in ((1e6, "M"), (1e9, "B")) if low <= value * scale <= high]
    return f"; did you mean {' or '.join(options)}?" if options else ""


def target_size_note(target_params: float, sizes: Any, *, hint: bool = True, compute_ratio: float | None = None) -> str:
    """Where a target of ``target_params`` parameters lies against your runs' sizes (parameters), or ""
    when it is larger than every run (the ordinary upward extrapolation): inside their range, an
    interpolation in model size; below the smallest, a downward extrapolation (with
    :func:`suffix_hint`'s "did you mean 7B?" when the number looks like a size typed without its suffix,
    unless ``hint`` is False: the output says sizes take a suffix already). ``compute_ratio``: the
    target's compute over your most expensive run's (6 N D), said when the target reaches beyond it."""
    low, high = float(min(sizes)), float(max(sizes))
    if target_params > high:
        return ""
    if target_params >= low:
        reach = (
            f", but an extrapolation to {units.format_ratio(compute_ratio)} the compute of your most expensive run"
            if compute_ratio is not None and compute_ratio > 1
            else ""
        )
        return f"the target lies inside the size range of your runs: an interpolation in model size{reach}"
    return (
        f"the target ({units.format_params(target_params)}) lies below every run (smallest "
        f"{units.format_params(low)}): a downward extrapolation in model size"
        + (suffix_hint(target_params, low) if hint else "")
    )


def says_sizes_take_a_suffix(text: str) -> bool:
    """Whether ``text`` carries core's hint that sizes take a suffix (:func:`core.units.suffix_hint`,
    whatever its example), so that one output gives one such hint, not core's and :func:`suffix_hint`'s."""
    opening = units.suffix_hint(0, example="").rstrip(")")  # " (sizes take a suffix: "
    return opening in text


def check_target(con: Any, family: str, target: str) -> str:
    """The run id ``--target`` names in ``family``: as typed, or with the family's prefix added when
    that is one of its runs (``pythia-12b`` -> ``pythia/pythia-12b``, with a note on stderr). Raises
    :class:`CLIError` for a run of another family (naming it) or no run at all, listing the family's
    run ids (and the closest, :func:`_names.did_you_mean`)."""
    runs = storage.list_runs(con)
    ids = runs.loc[runs["family"] == family, "run_id"].astype(str).tolist()
    if target in ids or not ids:
        return target
    prefixed = f"{family}/{target}"
    if prefixed in ids:
        print(f"note: --target {target} read as {prefixed}, a run of {family}", file=sys.stderr)
        return prefixed
    listed = ", ".join(ids[:15]) + (f", ... ({len(ids)} runs)" if len(ids) > 15 else "")
    elsewhere = runs.loc[runs["run_id"].astype(str) == target, "family"].astype(str).tolist()
    if elsewhere:
        raise CLIError(
            f"--target {target}: that run is in the family {elsewhere[0]!r}, not {family!r}; give --family "
            f"{elsewhere[0]}, or a run of {family}: {listed}"
        )
    hint = _names.did_you_mean(target, ids)
    raise CLIError(
        f"--target {target}: family {family!r} has no run {target!r}{f' ({hint})' if hint else ''}; its runs: {listed}"
    )


def check_metric(con: Any, family: str, metric: str) -> None:
    """Refuse a ``--metric`` that ``family`` does not report as a loss (:class:`CLIError` naming it and
    listing the family's loss metrics, its default first): L(N, D) is fitted on a loss in nats/token.
    An unknown family passes (the caller names it: :func:`unknown_family`)."""
    metrics = storage.family_metrics(con, [family])
    if metrics.empty:
        return
    usable = metrics[(metrics["kind"] == "loss") | metrics["is_default"]]
    if metric in set(usable["metric"]):
        return
    names = [f"{m} (its default)" if default else str(m) for m, default in zip(usable["metric"], usable["is_default"])]
    valid = f"give one of its loss metrics: {', '.join(names)}" if names else "it reports no loss metric"
    found = metrics[metrics["metric"] == metric]
    if found.empty:
        raise CLIError(f"--metric {metric}: family {family!r} has no metric {metric!r}; {valid}")
    kind = str(found["kind"].iloc[0])
    raise CLIError(
        f"--metric {metric}: that is {'an' if kind[0] in 'aeiou' else 'a'} {kind} metric of {family!r}, not a loss, "
        f"and the law is fitted on a loss (nats/token); {valid}"
    )


def parse_borrow(items: list[str], law_name: str = "chinchilla") -> dict[str, float]:
    """``--borrow NAME=VALUE`` items as {name: value}, each checked against the law's parameters and bounds.

    Raises :class:`CLIError` quoting the item as typed: an unknown name, a value that is not a
    finite number, or one outside the parameter's range (Chinchilla: E, A, B > 0; alpha, beta in (0, 2]).
    """
    law = laws.get(law_name)  # an unknown name is a UserError (argparse's choices catch it first)
    bounds = law.defaults()
    names = tuple(law.param_names)
    fixed: dict[str, float] = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name or not text:
            raise CLIError(f"--borrow {item}: write NAME=VALUE, e.g. --borrow alpha=0.34")
        if name not in names:
            raise CLIError(f"--borrow {item}: there is no parameter {name!r}; choose from {', '.join(names)}")
        try:
            value = units.parse_number(text, name=f"--borrow {name}")
        except units.NumberSyntaxError:
            raise CLIError(f"--borrow {item}: {text!r} is not a number; give e.g. {name}=0.34") from None
        low, high = bounds[name].min, bounds[name].max
        if not math.isfinite(value):
            raise CLIError(f"--borrow {item}: the value must be a finite number, e.g. {name}=0.34")
        if value <= 0 or value < low or value > high:
            allowed = f"in (0, {high:g}]" if math.isfinite(high) else "greater than 0"
            raise CLIError(f"--borrow {item}: {name} must be {allowed}; you gave {text}")
        if name in fixed:
            raise CLIError(f"--borrow {name} is given more than once; give each parameter once")
        fixed[name] = value
    return fixed


def check_alternatives(args: argparse.Namespace) -> None:
    """Refuse flags that are alternatives given together, or that the chosen source would ignore:
    ``--runs`` with ``--family``/``--target``/``--metric`` (your file is the family and its loss the
    metric), ``--target`` with ``--predict-n``/``--predict-d`` (a run of the family, or a hypothetical
    target)."""
    if args.runs:
        for flag, value in (("--family", args.family), ("--target", args.target), ("--metric", args.metric)):
            if value is not None:
                raise CLIError(
                    f"{flag} {value} is not used with --runs: your file's runs are fitted on their own loss; "
                    f"give --runs FILE or --family F, not both"
                )
    elif args.target is not None and (args.predict_n is not None or args.predict_d is not None):
        raise CLIError(
            f"--target {args.target} and --predict-n/--predict-d are alternatives: give a run of the family with "
            "--target, or a hypothetical target with --predict-n N --predict-d D"
        )


def cmd_fit(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.level < 1:
        raise CLIError(f"--level must be between 0 and 1 (e.g. 0.9), got {args.level}")
    check_alternatives(args)
    fixed = parse_borrow(args.borrow or [], args.law)
    selection_kwargs = dict(
        max_params=args.max_params,
        num_runs=args.num_runs,
        fraction=args.fraction,
        final_only=args.final_only,
        min_tokens=DEFAULT_MIN_TOKENS if args.min_tokens is None else args.min_tokens,
    )
    if not args.runs and (args.tokens_per_step is not None or args.params):
        raise CLIError("--tokens-per-step and --params are for a --runs file (a W&B export); --family needs neither")
    try:
        if args.runs:
            parsed, _ = runs_cli.read_runs_file(args.runs, args)
            table = parsed.runs
            if args.predict_n is None or args.predict_d is None:
                raise CLIError("with --runs give the target as --predict-n N --predict-d D")
            if args.min_tokens is None:  # the same default as the dashboard's Your runs
                selection_kwargs["min_tokens"] = default_min_tokens(table.table)
                print(
                    f"note: checkpoints at or below {units.format_tokens(selection_kwargs['min_tokens'])} are dropped "
                    "(10% of your shortest run, at most 10B; set --min-tokens to change)",
                    file=sys.stderr,
                )
            cal, missing = _calibration(settings, args.law)
            result = analysis.analyse(
                table.table[["run_id", "run_name", "seed", "num_params", "tokens_seen", "value"]],
                Selection(**selection_kwargs),
                target_params=args.predict_n,
                target_tokens=args.predict_d,
                fixed=fixed,
                n_boot=args.bootstrap,
                calibration=cal,
                level=args.level,
                law=args.law,
                schedule=formats.schedule_reach(table.table),
            )
            # After the fit: its refusal may say that sizes take a suffix already (one hint per output).
            hinted = says_sizes_take_a_suffix(str(result.interval) if result.interval is not None else missing)
            runs_flops = laws.compute_from(table.table["num_params"], table.table["tokens_seen"]).max()
            size_note = target_size_note(
                args.predict_n,
                table.table["num_params"],
                hint=not hinted,
                compute_ratio=float(laws.compute_from(args.predict_n, args.predict_d) / runs_flops),
            )
            if size_note:
                print(f"note: {size_note}", file=sys.stderr)
        else:
            if not args.family:
                raise CLIError("give --family F (and optionally --target RUN) or --runs FILE.csv")
            with _common.open_db(settings) as con:
                if args.metric is not None:
                    check_metric(con, args.family, args.metric)
                curves = storage.family_curves(con, args.family, args.metric)
                if curves.empty:
                    unknown_family(con, args.family)
                target = None if args.target is None else check_target(con, args.family, args.target)
            if curves.empty:
                raise CLIError(f"family {args.family!r} has no observations (see `scaleplan data summary`)")
            cal, missing = _calibration(settings, args.law)
            common = dict(fixed=fixed, n_boot=args.bootstrap, calibration=cal, level=args.level, law=args.law)
            if args.predict_n is not None or args.predict_d is not None:
                result = analysis.analyse(
                    curves,
                    Selection(**selection_kwargs),
                    target_params=args.predict_n,
                    target_tokens=args.predict_d,
                    **common,
                )
            else:
                result = analysis.analyse(curves, Selection(target_run=target, **selection_kwargs), **common)
    except (SelectionError, fitting.FitError, RunsTableError) as error:
        raise CLIError(str(error)) from None
    doc = _analysis_json(result, args.level, missing)
    if args.task:
        if args.runs:
            raise CLIError("--task works with --family: your runs file has no downstream scores")
        doc["task"] = _task_json(settings, args.family, args.task, result, args.level)
    if args.runs:
        # The same isoFLOP analysis and compute-optimal split as `scaleplan runs show` and the Your runs page.
        report: dict[str, Any] = studies.analyse_study(
            parsed.table,
            studies.StudyTarget(num_params=args.predict_n, tokens=args.predict_d),
            calibration_model=cal,
            level=args.level,
        ).as_dict()
        doc["isoflop"], doc["isoflop_problem"] = report["isoflop"], report["isoflop_problem"]
        doc["compute_optimal"] = report["compute_optimal"]
        doc["study_warnings"] = [w for w in report["warnings"] if w not in {x["message"] for x in doc["warnings"]}]
    if args.json:
        _common.print_json(doc)
        return 0
    print(
        f"target: {doc['target']['run']}  N={units.format_params(result.target_params, decimals=2)}  "
        f"D={units.format_tokens(result.target_tokens, decimals=2)}"
    )
    share = units.format_share(result.compute_share)  # a percent, or from 1,000% up a factor (12.2x)
    print(
        f"fitted on {doc['points']} points from {len(doc['runs'])} runs "
        f"({share} {'the' if share.endswith('x') else 'of the'} target's compute)"
    )
    if result.compute_share > 1:
        print(f"note: {analysis.ABOVE_TARGET_NOTE}")
    print(f"law: {result.fit.law.formula}")
    print("params: " + ", ".join(f"{k}={units.format_number(v)}" for k, v in doc["params"].items()))
    interval = doc["interval"]
    if interval.get("refused"):
        note = interval["refused"]
    else:
        note = (
            f"{units.format_level(args.level)} interval {units.format_interval(interval['low'], interval['high'], separator=' - ')}; "
            f"{interval['method']}, "
            f"{interval['basis']}"
            + (f" ({calibration.NEW_SOURCE_NOTE})" if args.runs and interval["method"] != backtest.METHOD else "")
        )
    print(f"predicted loss: {doc['prediction']:.4f}  ({note})")
    if evidence := result.backtest_note():
        print(f"note: {evidence}")
    if "task" in doc and doc["task"]["refused"]:
        print(f"no accuracy prediction: {doc['task']['message']}")
    elif "task" in doc:
        t = doc["task"]
        band = (
            f"{units.format_level(t['level'])} interval {t['low_points']:.1f} - {t['high_points']:.1f} points"
            if t["low_points"] is not None
            else "no interval"
        )
        print(
            f"predicted accuracy on {t['task']} ({t['shots']}-shot, chance {t['chance_points']:.0f}): "
            f"{t['predicted_points']:.1f} points ({band}; {t['interval_basis']})"
        )
        if t["actual_points"] is not None:
            print(f"actual accuracy: {t['actual_points']:.1f} points")
    for warning in doc["warnings"]:
        print(f"warning: {warning['message']}")
    if doc["actual"] is not None:
        print(
            f"actual loss: {doc['actual']:.4f}   ARE final {doc['are_final']:.2%}   "
            f"ARE mean over last 30% {doc['are_mean_last_30pct']:.2%}"
        )
    if args.runs:
        if doc["isoflop"] is not None:
            print(
                f"isoFLOP analysis (approach 2): N*(C) = {doc['isoflop']['coefficient_G']:.4g} C^{doc['isoflop']['exponent_a']:.4f}"
            )
        else:
            print(f"isoFLOP analysis (approach 2): none ({doc['isoflop_problem']})")
        print(
            f"compute-optimal split of the target's {units.format_flops(float(laws.compute_from(args.predict_n, args.predict_d)), decimals=2)}:"
        )
        for row in doc["compute_optimal"]:
            print(f"  {runs_cli.optimal_row_text(row)}")
        for warning in doc["study_warnings"]:
            print(f"warning: {warning}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fit = sub.add_parser("fit", parents=[_common.settings_parent()], help=_common.COMMAND_HELP["fit"])
    fit.add_argument("--family", help="family in the database")
    fit.add_argument("--target", help="target run id (default: the family's largest run)")
    fit.add_argument(
        "--metric", help="loss metric (default: the family's); another metric is refused with the family's loss metrics"
    )
    fit.add_argument(
        "--runs",
        help="your own runs: CSV, Parquet or W&B export (num_params, tokens_seen, loss[, run_name, seed, ...])",
    )
    runs_cli.add_file_options(fit)  # for a --runs file that lacks tokens or sizes (W&B)
    count = _common.number(positive=True, maximum=units.MAX_PARAMS)
    fit.add_argument("--predict-n", type=count, help="hypothetical target parameters (e.g. 7B or 7e9)")
    fit.add_argument(
        "--predict-d",
        type=_common.number(positive=True, maximum=units.MAX_TOKENS, example="1.4T"),
        help="hypothetical target tokens (e.g. 1.4T)",
    )
    fit.add_argument("--max-params", type=count, help="use only runs with at most this many parameters (e.g. 1B)")
    fit.add_argument(
        "--num-runs", type=_common.number(integer=True, minimum=1, example="3"), help="use the k smallest runs"
    )
    fit.add_argument(
        "--fraction",
        type=_common.number(positive=True, maximum=1.0, example="0.5"),
        default=1.0,
        help="fraction of training used (0-1]",
    )
    fit.add_argument("--final-only", action="store_true", help="final checkpoints only")
    fit.add_argument(
        "--min-tokens",
        type=_common.number(minimum=0.0, maximum=units.MAX_TOKENS, example="10B"),
        default=None,
        help="drop checkpoints at or below this many tokens (default: 10B, the paper's cutoff; "
        "for --runs, 10%% of your shortest run, at most 10B)",
    )
    fit.add_argument(
        "--law",
        choices=laws.loss_laws(),
        default="chinchilla",
        help="the scaling law to fit (default: chinchilla, L(N, D) = E + A/N^alpha + B/D^beta)",
    )
    fit.add_argument("--borrow", action="append", metavar="NAME=VALUE", help="fix a parameter, e.g. alpha=0.34")
    fit.add_argument(
        "--level",
        type=_common.number(positive=True, example="0.9"),
        default=0.9,
        help="level of the calibrated interval (default 0.9)",
    )
    fit.add_argument(
        "--bootstrap",
        type=_common.number(integer=True, minimum=0, maximum=MAX_BOOTSTRAP, example="100"),
        default=100,
        help=f"bootstrap replicates for parameter uncertainty and its warnings (0: none; at most {MAX_BOOTSTRAP:,})",
    )
    fit.add_argument(
        "--task",
        help="also predict the target's accuracy on this downstream task (e.g. arc_easy, zero-shot/piqa): "
        "the loss fit, then a chance-floor sigmoid link fitted on the study runs. A task the study runs cannot "
        "support (at chance, not monotone in loss, ...) is refused with its reason, printed (--json: task.refused, "
        "task.reason, task.message) next to the loss prediction, exit 0: a refusal is an answer. A task the "
        "family does not score is exit 2",
    )
    fit.add_argument("--json", action="store_true")
    fit.set_defaults(func=cmd_fit)
