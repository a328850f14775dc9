"""``scaleplan plan``: the budget planner's numbers for scripts and reports.

    scaleplan plan (--target-params N --target-tokens D | --target-flops C)
                   (--budget-dollars X | --budget-gpu-hours H) [--dollars-per-gpu-hour P]
                   [--mfu PCT] [--peak-flops S] --accuracy PCT [--law NAME]
                   [--runs-file FILE] [--task NAME] [--json]

MFU and --accuracy are in percent, with or without a % sign (5 and 5% are 5 percent; a bare fraction
such as 0.4 is read as 40% with a note). --runs-file
prices your own runs (CSV: num_params, tokens or tokens_per_param, seeds) with the same calibrated
error model as the generated designs. --task NAME states the target's predicted accuracy on a
downstream task (a link fitted on collection runs that score it: the study runs do not exist yet);
without it the recommendation states Gadre et al.'s 17-task average accuracy.

The same core calls as the dashboard's Budget planner: the designs with their cost and expected
ARE, the pick, compute-optimal N and D under every law (with intervals) and the over-training
table under the selected law.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scaleplan.core import planning, storage, task_prediction, units
from scaleplan.core.cli import _common, _names
from scaleplan.core.cli._common import CLIError
from scaleplan.core.planning.overtraining import multiplier_text, overtraining_or_reason
from scaleplan.core.planning.recommendation import support_text
from scaleplan.core.settings import Settings
from scaleplan.core.units import format_count, format_dollars, format_flops, format_percent

SHOWN_DESIGNS = 12


def _target(args: argparse.Namespace, selected: planning.ReferenceLaw) -> tuple[float, float]:
    if args.target_flops is not None:
        if args.target_params is not None or args.target_tokens is not None:
            raise CLIError("give either --target-flops or --target-params with --target-tokens, not both")
        opt = planning.optimal_allocation(selected, args.target_flops)
        return opt.num_params, opt.tokens
    if args.target_params is None or args.target_tokens is None:
        raise CLIError("give --target-params and --target-tokens, or --target-flops")
    planning.training_flops(args.target_params, args.target_tokens)  # validates
    return float(args.target_params), float(args.target_tokens)


def check_law_name(law_name: str) -> str | None:
    """The collection family a ``fit:<family>`` law names (None for a published or Gadre et al.'s law);
    an unknown law is refused naming the laws (and the closest, :func:`_names.did_you_mean`)."""
    prefix = planning.FAMILY_LAW_PREFIX
    if law_name.startswith(prefix):
        return law_name[len(prefix) :]
    known = planning.PUBLISHED_LAWS + tuple(planning.GADRE_LAWS)
    if law_name not in known:
        hint = _names.did_you_mean(law_name, known)
        raise CLIError(f"unknown law {law_name!r}{f' ({hint})' if hint else ''}; choose from {_law_names()}")
    return None


def check_family_law(
    con: Any, law_name: str, *, user_db_path: Path, study: str | None = None, saving: bool = False
) -> None:
    """Refuse a ``fit:<name>`` law whose name is no collection family when no study source is given
    (``study``), before the fit fails with "no observations for this family and metric": a stored
    study of that name needs its study (``--study NAME``, which ``scenario save`` takes and ``plan``
    does not: its hint says so); another name gets the closest families (did-you-mean)."""
    family = check_law_name(law_name)
    if family is None or study is not None:
        return
    families = storage.list_families(con)["family"].astype(str).tolist()
    if family in families:
        return
    from scaleplan.core import studies

    stored = {s.name for s in studies.list_studies(user_db_path)}
    if family in stored:
        how = (
            f"add --study {family}"
            if saving
            else f"add --study {family} by saving it as a scenario (`scaleplan scenario save --name NAME --study "
            f"{family} --law {law_name} ...`, then `scaleplan scenario compare NAME`): plan takes no study"
        )
        raise CLIError(
            f"--law {law_name}: {family!r} is one of your stored studies, not a collection family, and a fit: law "
            f"on a study needs its study: {how}"
        )
    close = _names.close_names(family, families)
    hint = (
        f"did you mean {', '.join(planning.FAMILY_LAW_PREFIX + c for c in close)}?"
        if close
        else ("`scaleplan data summary` lists the families")
    )
    raise CLIError(f"--law {law_name}: the collection has no family {family!r} ({hint})")


def both_token_columns_note(path: str) -> None:
    """Say which column gives a candidate run's tokens when ``--runs-file`` has both ``tokens`` and
    ``tokens_per_param`` (:func:`core.planning.candidate_design`'s rule: tokens, the ratio only in a row
    whose tokens are empty), so a disagreeing ratio is not taken for the one used."""
    try:
        header = pd.read_csv(path, nrows=0, dtype=str, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return  # an unreadable file is planning.read_runs_file's to name
    columns = {str(c).strip().lower() for c in header.columns}
    if {"tokens", "tokens_per_param"} <= columns:
        print(
            f"scaleplan: note: --runs-file {path} gives both tokens and tokens_per_param: each run's tokens "
            "column is used, its tokens_per_param only where the tokens are empty",
            file=sys.stderr,
        )


def _law_names() -> str:
    return ", ".join(planning.PUBLISHED_LAWS + tuple(planning.GADRE_LAWS)) + f", {planning.FAMILY_LAW_PREFIX}<family>"


LOW_MFU_PERCENT = 10.0
"""An --mfu below this many percent, typed without a % sign, gets a note: runs reach 30-50% MFU, so 1 is
more likely a fraction (1 = 100%) or a slip than 1%."""


def read_percent_flag(value: object, *, name: str) -> units.Percent:
    """A percentage flag by the one percentage rule (:func:`core.units.read_percent`), a trailing % allowed:
    "5%" is 5 percent. The % sign says the number is in percent, so it is never taken for a fraction
    ("0.5%" is half a percent, where a bare 0.5 is read as 50% with a note)."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not text.endswith("%"):
        return units.read_percent(value, name=name)
    body = text[:-1]
    reading = units.read_percent(body, name=name)  # the range checks
    return units.Percent(units.parse_number(body, name=name)) if reading.note else reading


def percent_flags(args: argparse.Namespace) -> tuple[units.Percent, units.Percent, list[str]]:
    """--mfu and --accuracy read by :func:`read_percent_flag`: both in percent ("5" or "5%"), a fraction
    such as 0.4 or 0.05 converted with a note. Returns (MFU, goal, notes)."""
    mfu = read_percent_flag(args.mfu, name="--mfu")
    goal = read_percent_flag(args.accuracy, name="--accuracy")
    notes = [r.note for r in (mfu, goal) if r.note]
    typed = str(args.mfu).strip()
    if mfu.note is None and not typed.endswith("%") and mfu.percent < LOW_MFU_PERCENT:
        default = planning.DEFAULT_MFU_PERCENT
        notes.append(
            f"--mfu: {typed} was read as {mfu.percent:g}%; --mfu is in percent, and {mfu.percent:g}% prices every "
            f"run {default / mfu.percent:.0f}x dearer than the default {default:g}% (type {mfu.percent:g}% to keep "
            f"it{', or 100 for a fraction of 1' if mfu.percent == 1 else ''})"
        )
    return mfu, goal, notes


def build_plan(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Everything the command prints, as typed results."""
    mfu, goal, notes = percent_flags(args)
    for note in notes:
        print(f"scaleplan: note: {note}", file=sys.stderr)
    cost = planning.CostModel(
        dollars_per_gpu_hour=args.dollars_per_gpu_hour, peak_flops_per_gpu=args.peak_flops, mfu=mfu.fraction
    )
    if (args.budget_dollars is None) == (args.budget_gpu_hours is None):
        raise CLIError("give the study budget with exactly one of --budget-dollars or --budget-gpu-hours")
    budget = cost.budget_dollars(args.budget_dollars, args.budget_gpu_hours)
    law_name = args.law
    family = check_law_name(law_name)
    with _common.open_db(settings, quiet=args.quiet) as con:
        version = storage.stored_data_version(con)
        if version is None:
            raise storage.DatabaseError(f"{settings.db_path} records no data version; run `scaleplan data build`")
        check_family_law(con, law_name, user_db_path=settings.user_db_path)
        collection, problems = planning.collection_laws(con, family=family, n_boot=args.law_boot)
        tpp_range = planning.collection_tokens_per_param(con)
    laws = {law.name: law for law in planning.all_laws(collection)}
    if law_name not in laws:
        raise CLIError(f"the law {law_name} could not be fitted: {problems.get(law_name, 'unknown reason')}")
    selected = laws[law_name]
    n_target, d_target = _target(args, selected)
    calibration, why = _common.load_calibration(settings, version=version, noun="expected accuracy")
    plan = planning.plan_study(
        n_target,
        d_target,
        budget_dollars=budget,
        goal_are=goal.fraction,
        calibration=calibration,
        cost=cost,
        message=why,
        tpp_range=tpp_range,
    )
    candidate = None
    if args.runs_file is not None:
        both_token_columns_note(args.runs_file)
        candidate = planning.assess_candidate(
            planning.read_runs_file(args.runs_file), n_target, d_target, calibration=calibration, cost=cost
        )
    rung = None
    if args.from_study is not None:
        from scaleplan.core import studies

        try:
            study = studies.load_study(settings.user_db_path, args.from_study)
        except studies.StudyError as error:
            raise CLIError(f"--from-study: {error}") from None
        rung = planning.next_rung(
            planning.study_design(study.table),
            n_target,
            d_target,
            calibration=calibration,
            cost=cost,
            budget_dollars=budget,
            goal_are=goal.fraction,
        )
    target_flops = planning.training_flops(n_target, d_target)
    table = planning.compute_optimal_table(list(laws.values()), target_flops)
    optimum = next((row for row in table if row.law == law_name), None)
    overtraining, overtraining_note = overtraining_or_reason(selected, n_target, d_target)
    with _common.open_db(settings, quiet=True) as con:
        average = task_prediction.target_average_accuracy(con, n_target, d_target, law_name)
        task = None
        if args.task is not None:
            try:
                task = task_prediction.target_task_accuracy(con, args.task, n_target, d_target, law_name)
            except task_prediction.TaskNotFound as error:
                labels = [t for f in task_prediction.PLAN_TASK_FAMILIES for t in task_prediction.family_tasks(con, f)]
                if isinstance(error, task_prediction.AmbiguousTask):  # its message names the choices
                    labels = []
                raise CLIError(_names.with_hint(str(error), args.task, labels)) from None
    return {
        "plan": plan,
        "laws": table,
        "optimum": optimum,
        "overtraining": overtraining,
        "overtraining_note": overtraining_note,
        "problems": problems,
        "selected": selected,
        "cost": cost,
        "target_flops": target_flops,
        "target_from_compute": args.target_flops is not None,
        "notes": notes,
        "candidate": candidate,
        "next_rung": rung,
        "average_accuracy": average,
        "task": task,
    }


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    plan: planning.StudyPlan = result["plan"]
    picked = plan.picked

    def design(a: planning.AssessedDesign) -> dict[str, Any]:
        e = a.expected
        return {
            "sizes": list(a.design.sizes),
            "tokens": list(a.design.tokens),
            "seeds": a.design.seeds,
            "token_rule": a.design.token_rule,
            "rule_value": a.design.rule_value,
            "study_flops": a.design.study_flops,
            "cost_dollars": a.cost.dollars,
            "gpu_hours": a.cost.gpu_hours,
            "are_median": None if e is None else e.median,
            "are_p80": None if e is None else e.p80,
            "are_p90": None if e is None else e.p90,
            "fits": 0 if e is None else e.fits,
            "families": 0 if e is None else e.families,
            "thin_support": True if e is None else e.thin_support,
            "refusal": a.refusal,
            "plain_accuracy": None if e is None else planning.plain_accuracy(e),
        }

    def runs(a: planning.AssessedDesign) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = planning.design_runs(a.design, result["cost"]).to_dict(orient="records")
        return records

    candidate: planning.AssessedDesign | None = result.get("candidate")
    rung: planning.NextRung | None = result.get("next_rung")
    o: planning.OvertrainingSummary | None = result["overtraining"]
    average: task_prediction.TargetAccuracy | None = result.get("average_accuracy")
    task: task_prediction.TargetAccuracy | None = result.get("task")
    return {
        "next_rung": None
        if rung is None
        else {
            "study": {**design(rung.existing), "runs": runs(rung.existing)},
            "additions": [
                {
                    "kind": a.kind,
                    "label": a.label,
                    **design(a.after),
                    "added_runs": planning.design_runs(a.added, result["cost"]).to_dict(orient="records"),
                }
                for a in rung.additions
            ],
            "pick": rung.pick,
            "meets_goal": rung.meets_goal,
            "recommendation": planning.next_rung_text(rung),
        },
        "target": {"num_params": plan.target_params, "tokens": plan.target_tokens, "flops": result["target_flops"]},
        "budget_dollars": plan.budget_dollars,
        "accuracy": plan.goal_are,
        "accuracy_percent": plan.goal_are * 100,
        "mfu_percent": result["cost"].mfu * 100,
        "notes": result.get("notes", []),
        "pick": None if picked is None else {**design(picked), "meets_goal": plan.meets_goal, "runs": runs(picked)},
        "candidate": None
        if candidate is None
        else {
            **design(candidate),
            "description": candidate.design.describe(),
            "runs": runs(candidate),
            "seeds_note": planning.SEEDS_NOTE if max(candidate.design.seeds_per_run) > 1 else None,
        },
        "budget_to_meet": plan.budget_to_meet,
        "message": plan.message,
        "designs": [
            design(a) | {"within_budget": a.cost.dollars <= plan.budget_dollars, "frontier": i in plan.frontier}
            for i, a in enumerate(plan.designs)
        ],
        "law": result["selected"].name,
        "compute_optimal": [
            {
                "law": r.law,
                "num_params": r.num_params,
                "tokens": r.tokens,
                "num_params_low": r.num_params_low,
                "num_params_high": r.num_params_high,
                "tokens_low": r.tokens_low,
                "tokens_high": r.tokens_high,
                "level": r.level,
                "has_interval": r.has_interval,
                "source": r.source,
            }
            for r in result["laws"]
        ],
        "laws_disagree": planning.disagreement_warning(
            result["laws"], target_from_compute=result.get("target_from_compute", False)
        ),
        "default_law_reason": planning.DEFAULT_LAW_REASON,
        "laws_not_fitted": result["problems"],
        "overtraining": None
        if o is None
        else {
            "law": o.law,
            "target_multiplier": o.target_multiplier,
            "optimal_multiplier": o.optimal_multiplier,
            "table": o.table.to_dict(orient="records"),
        },
        "overtraining_note": result.get("overtraining_note"),
        "average_accuracy": None if average is None else average.as_dict(),
        "task": None if task is None else task.as_dict(),
        "recommendation": planning.recommendation(plan, result["optimum"], o, _accuracy(result)),
    }


def _accuracy(result: dict[str, Any]) -> task_prediction.TargetAccuracy | None:
    """The accuracy the recommendation states: the task's with --task, else the 17-task average (None for a
    result that computed neither, e.g. a saved scenario's)."""
    chosen: task_prediction.TargetAccuracy | None = result.get("task") or result.get("average_accuracy")
    return chosen


def print_text(result: dict[str, Any]) -> None:
    plan: planning.StudyPlan = result["plan"]
    print(
        f"Target: {format_count(plan.target_params)} parameters, {format_count(plan.target_tokens)} tokens "
        f"({format_flops(result['target_flops'])}); study budget {format_dollars(plan.budget_dollars)}; "
        f"accuracy needed {format_percent(plan.goal_are)} ARE (80th percentile)"
    )
    print("\nStudy designs within the budget (Pareto frontier; * = pick):")
    shown = [i for i in plan.frontier if plan.designs[i].cost.dollars <= plan.budget_dollars][-SHOWN_DESIGNS:]
    if plan.pick is not None and plan.pick not in shown:
        shown.append(plan.pick)
    print(f"  {'':2}{'cost':>10}{'ARE med':>9}{'ARE p80':>9}{'ARE p90':>9}{'support':>19}  design")
    for i in shown:
        a = plan.designs[i]
        e = a.expected
        support = f"{e.fits:,} fits/{e.families} fam" if e else "none"
        print(
            f"  {'*' if i == plan.pick else ' ':2}{format_dollars(a.cost.dollars):>10}"
            f"{format_percent(e.median) if e else '-':>9}{format_percent(e.p80) if e else '-':>9}"
            f"{format_percent(e.p90) if e else '-':>9}  {support:>17}  {a.design.describe()}"
        )
    if not shown:
        print("  (none)")
    if plan.picked is not None:
        print("\nThe pick, run by run:")
        _print_runs(planning.design_runs(plan.picked.design, result["cost"]))
    candidate: planning.AssessedDesign | None = result.get("candidate")
    rung: planning.NextRung | None = result.get("next_rung")
    if rung is not None:
        print("\nThe next rung of your study (cost of the added runs; expected ARE of the target after adding them):")
        for i, addition in enumerate(rung.additions):
            after = addition.after.expected
            print(
                f"  {'*' if i == rung.pick else ' ':2}{format_dollars(addition.cost.dollars):>10}"
                f"{format_percent(after.median) if after else '-':>9}"
                f"{format_percent(after.p80) if after else '-':>9}  {addition.label}"
            )
        print("  " + planning.next_rung_text(rung))
    if candidate is not None:
        e = candidate.expected
        print(f"\nYour candidate runs: {candidate.design.describe()}")
        print(
            f"  cost {format_dollars(candidate.cost.dollars)} ({format_count(candidate.cost.gpu_hours)} GPU-hours); "
            + (
                f"expected ARE {format_percent(e.median)} median, {format_percent(e.p80)} 80th percentile, "
                f"{format_percent(e.p90)} 90th ({support_text(e)}" + (", thin support)" if e.thin_support else ")")
                if e is not None
                else f"no expected ARE: {candidate.refusal}"
            )
        )
        if e is not None:
            print(f"  {planning.plain_accuracy(e)}")
        _print_runs(planning.design_runs(candidate.design, result["cost"]))
        if max(candidate.design.seeds_per_run) > 1:
            print(f"  {planning.SEEDS_NOTE}")
    print(f"\nCompute-optimal allocation at {format_flops(result['target_flops'])} (80% intervals):")
    for r in result["laws"]:
        interval = (
            f"[{format_count(r.num_params_low)}-{format_count(r.num_params_high)}]"
            if r.has_interval
            else "[no interval]"
        )
        print(
            f"  {r.law:<22}N = {format_count(r.num_params):>6} {interval}  D = {format_count(r.tokens):>6}  "
            f"({multiplier_text(r.tokens_per_param)} tokens/param)"
        )
        print(f"  {'':<22}interval: {r.source}")
    for name, problem in result["problems"].items():
        print(f"  {name:<22}not fitted: {problem}")
    warning = planning.disagreement_warning(result["laws"], target_from_compute=result["target_from_compute"])
    if warning:
        print(f"\nWarning: {warning}")
    print(f"  {planning.DEFAULT_LAW_REASON}")
    o: planning.OvertrainingSummary | None = result["overtraining"]
    if o is None:
        print(f"\n{result['overtraining_note']}")
    else:
        print(
            f"\nOver-training at the target's compute under {o.law} (* = the target; inference cost vs compute-optimal):"
        )
        print(f"  {'':2}{'M':>9}{'N':>9}{'D':>9}{'loss':>8}{'+loss':>8}{'inference cost':>17}")
        for row in o.table.itertuples():
            print(
                f"  {'*' if row.target else ' ':2}{multiplier_text(row.multiplier):>9}{format_count(row.num_params):>9}"
                f"{format_count(row.tokens):>9}{row.loss:>8.3f}{row.loss_increase:>+8.3f}"
                f"{planning.inference_change_text(row.inference_saved):>17}"
            )
    print("\n" + planning.recommendation(plan, result["optimum"], o, _accuracy(result)))


def _print_runs(runs: pd.DataFrame) -> None:
    print(f"  {'parameters':>11}{'tokens':>9}{'tokens/param':>14}{'seeds':>7}{'GPU-hours':>11}{'cost':>10}")
    for row in runs.itertuples():
        print(
            f"  {format_count(row.num_params):>11}{format_count(row.tokens):>9}{row.tokens_per_param:>14.3g}"
            f"{row.seeds:>7}{format_count(row.gpu_hours):>11}{format_dollars(row.cost_dollars):>10}"
        )


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    result = build_plan(args, settings)
    if args.json:
        _common.print_json(as_json(result))
    else:
        print_text(result)
    return 0


def _number(text: str) -> float:
    try:
        return planning.parse_quantity(text, name="the value")
    except planning.PlanningError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _dollars(example: str) -> Callable[[str], float]:
    """An argparse ``type`` for an amount in US dollars: the CLI's number syntax
    (:func:`core.planning.parse_quantity`: 20000, 20k, 1.5M) with a leading $ allowed ("$1M"), above $0."""

    def parse(text: str) -> float:
        body = text.strip()
        body = body[1:].strip() if body.startswith("$") else body
        try:
            value = units.parse_number(body, name="the amount")
        except units.NumberSyntaxError:
            raise argparse.ArgumentTypeError(
                f"cannot read {text!r}; give an amount in dollars like {example}"
            ) from None
        if value <= 0:
            raise argparse.ArgumentTypeError(
                f"must be more than $0, got {format_dollars(value)}; give an amount in dollars like {example}"
            )
        try:
            return planning.parse_quantity(body, name="the amount")  # finite, within the limits
        except planning.PlanningError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _percent(example: str) -> Callable[[str], str]:
    """An argparse ``type`` for a percentage flag: the CLI's one number syntax (core.units.parse_number),
    a trailing % allowed; the text is kept for :func:`read_percent_flag`, which checks the range."""
    number = _common.number(example=example)

    def parse(text: str) -> str:
        body = text.strip()
        try:
            number(body[:-1] if body.endswith("%") else body)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"cannot read {text!r}; give a percentage like {example}") from None
        return text

    return parse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        parents=[_common.settings_parent()],
        help=_common.COMMAND_HELP["plan"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target-params", type=_number, help="target model's parameters N (e.g. 70e9 or 70B)")
    p.add_argument("--target-tokens", type=_number, help="target's training tokens D (e.g. 1.4e12)")
    p.add_argument(
        "--target-flops",
        type=_number,
        help="target's training compute C in FLOPs (N, D = the selected law's compute-optimal split)",
    )
    p.add_argument("--budget-dollars", type=_dollars("20000 or 20k"), help="study budget in US$ (e.g. 20k or $1M)")
    p.add_argument("--budget-gpu-hours", type=_number, help="study budget in GPU-hours")
    p.add_argument(
        "--dollars-per-gpu-hour",
        type=_dollars("2.5 or $2.50"),
        default=planning.DEFAULT_DOLLARS_PER_GPU_HOUR,
        help="price (default %(default)s)",
    )
    p.add_argument(
        "--mfu",
        type=_percent("40 or 40%"),
        default=planning.DEFAULT_MFU_PERCENT,
        help="model FLOPs utilisation in percent (default %(default)g; 40 or 40%%; a fraction such as 0.4 is read "
        "as 40%% with a note)",
    )
    p.add_argument(
        "--peak-flops",
        type=_number,
        default=planning.H100_BF16_DENSE_FLOPS,
        help="peak FLOP/s per GPU (default %(default).3g, H100 bf16 dense)",
    )
    p.add_argument(
        "--accuracy",
        type=_percent("5 or 5%"),
        required=True,
        help="accuracy needed: ARE in percent (e.g. 5 or 5%%; a fraction such as 0.05 is read as 5%% with a note)",
    )
    p.add_argument(
        "--runs-file",
        default=None,
        metavar="FILE",
        help="your candidate runs: a CSV with columns num_params, tokens (or tokens_per_param) and seeds, one row "
        "per run; priced and assessed in a 'candidate' object beside the pick",
    )
    p.add_argument(
        "--from-study",
        default=None,
        metavar="NAME",
        help="plan the next rung of a stored study (scaleplan runs add): new budgets, new sizes, seeds, each priced "
        "with the target's expected ARE after adding it",
    )
    p.add_argument(
        "--task",
        default=None,
        metavar="NAME",
        help="state the target's predicted accuracy on this downstream task (e.g. arc_easy, zero-shot/piqa) with "
        "its 90%% interval or the refusal and its reason: the target's loss and a chance-floor sigmoid link "
        "fitted on collection runs that score the task (the reference law's family, else overtrain-rpj, "
        "else Pythia)",
    )
    p.add_argument("--law", default=planning.DEFAULT_LAW, help=f"reference law: {_law_names()} (default %(default)s)")
    p.add_argument("--law-boot", type=int, default=planning.DEFAULT_LAW_BOOT, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_plan)
