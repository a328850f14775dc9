"""``scaleplan scenario``: named what-if scenarios of the budget planner, saved and compared.

    scaleplan scenario save --name NAME [--study STUDY --law fit:STUDY] [--replace] <the flags of scaleplan plan>
    scaleplan scenario list [--json]
    scaleplan scenario compare NAME NAME ... [--json]
    scaleplan scenario rename OLD NEW
    scaleplan scenario duplicate NAME NEW
    scaleplan scenario remove NAME

Scenarios live in the user store (``--user-db``, default ``<data folder>/user.duckdb``), never in
the collection's database, so they survive a restart and ``scaleplan data build --force``. Their
outcomes are planned again each time from today's data (:mod:`scaleplan.core.scenarios`).
``compare --json`` prints a ``scenarios`` list, each with its ``inputs`` and the ``pick`` and
``average_accuracy`` objects of ``scaleplan plan --json`` (the target's predicted 17-task average
accuracy with its 90% interval, or the refusal and its reason).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import duckdb

from scaleplan.core import planning, scenarios, storage
from scaleplan.core.cli import _common
from scaleplan.core.cli import plan as plan_cli
from scaleplan.core.cli._common import CLIError
from scaleplan.core.settings import Settings


def inputs_from_args(args: argparse.Namespace) -> scenarios.PlanInputs:
    """The flags of ``scaleplan plan`` as :class:`~scaleplan.core.scenarios.PlanInputs`."""
    if (args.budget_dollars is None) == (args.budget_gpu_hours is None):
        raise CLIError("give the study budget with exactly one of --budget-dollars or --budget-gpu-hours")
    if args.target_flops is not None and (args.target_params is not None or args.target_tokens is not None):
        raise CLIError("give either --target-flops or --target-params with --target-tokens, not both")
    if args.target_flops is None and (args.target_params is None or args.target_tokens is None):
        raise CLIError("give --target-params and --target-tokens, or --target-flops")
    mfu, goal, notes = plan_cli.percent_flags(args)  # percent, a fraction converted with a note
    for note in notes:
        print(f"scaleplan: note: {note}", file=sys.stderr)
    plan_cli.check_law_name(args.law)
    return scenarios.PlanInputs(
        target_params=args.target_params,
        target_tokens=args.target_tokens,
        target_flops=args.target_flops,
        budget_dollars=args.budget_dollars,
        budget_gpu_hours=args.budget_gpu_hours,
        dollars_per_gpu_hour=args.dollars_per_gpu_hour,
        peak_flops_per_gpu=args.peak_flops,
        mfu=mfu.fraction,
        accuracy_percent=goal.percent,
        law=args.law,
        study=args.study,
    )


def evaluate_all(
    named: list[tuple[str, scenarios.PlanInputs]], settings: Settings, *, quiet: bool = False, n_boot: int | None = None
) -> list[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable]:
    """Plan each (name, inputs) on the collection database, fitting each distinct law set once and
    each distinct (target, law)'s 17-task average accuracy once."""
    lookup = scenarios.study_lookup(settings.user_db_path)
    boot = planning.DEFAULT_LAW_BOOT if n_boot is None else n_boot
    with _common.open_db(settings, quiet=quiet) as con:
        version = storage.stored_data_version(con)
        if version is None:
            raise storage.DatabaseError(f"{settings.db_path} records no data version; run `scaleplan data build`")
        calibration, why = _common.load_calibration(settings, version=version, noun="expected accuracy")
        accuracy = scenarios.average_accuracy_for(con)
        contexts: dict[tuple[str | None, str | None], scenarios.PlanningContext | str] = {}
        out: list[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable] = []
        for name, inputs in named:
            key = (inputs.study, inputs.law_family)
            if key not in contexts:
                contexts[key] = scenarios.load_context(
                    con, inputs, calibration=calibration, calibration_message=why, study_curves=lookup, n_boot=boot
                )
            context = contexts[key]
            if isinstance(context, str):
                out.append(scenarios.ScenarioUnavailable(name=name, inputs=inputs, reason=context))
            else:
                out.append(scenarios.evaluate(name, inputs, context, accuracy=accuracy))
    return out


def plan_result(outcome: scenarios.ScenarioOutcome) -> dict[str, Any]:
    """The outcome in the shape of ``scaleplan plan``'s result, for its JSON."""
    return {
        "plan": outcome.plan,
        "laws": outcome.compute_optimal,
        "optimum": outcome.optimum,
        "overtraining": outcome.overtraining,
        "overtraining_note": outcome.overtraining_note,
        "problems": dict(outcome.problems),
        "selected": outcome.selected_law,
        "cost": outcome.inputs.cost_model,
        "target_flops": outcome.target_flops,
        "average_accuracy": outcome.average_accuracy,
    }


def outcome_json(outcome: scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable) -> dict[str, Any]:
    inputs = dataclasses.asdict(outcome.inputs)
    if isinstance(outcome, scenarios.ScenarioUnavailable):
        return {"name": outcome.name, "inputs": inputs, "available": False, "reason": outcome.reason, "pick": None}
    plan_json = plan_cli.as_json(plan_result(outcome))
    loss = outcome.loss
    return {
        "name": outcome.name,
        "inputs": inputs,
        "available": True,
        "data_version": outcome.data_version,
        "target": plan_json["target"],
        "budget_dollars": plan_json["budget_dollars"],
        "pick": plan_json["pick"],
        "budget_to_meet": plan_json["budget_to_meet"],
        "frontier": [{"cost_dollars": c, "are_p80": p} for c, p in outcome.frontier],
        "predicted_loss": {
            "law": loss.law,
            "value": loss.value,
            "low": loss.low,
            "high": loss.high,
            "level": loss.level,
        },
        "compute_optimal": plan_json["compute_optimal"],
        "average_accuracy": plan_json["average_accuracy"],
        "recommendation": plan_json["recommendation"],
        "message": plan_json["message"],
    }


def comparison_json(comparison: scenarios.Comparison) -> dict[str, Any]:
    return {
        "scenarios": [outcome_json(o) for o in comparison.scenarios],
        "inputs_that_differ": [{"label": r.label, "values": list(r.values)} for r in comparison.inputs],
        "outcomes": [{"label": r.label, "values": list(r.values)} for r in comparison.outcomes],
    }


def _store(settings: Settings, *, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    from scaleplan.core.userstore import user_store

    return user_store(settings.user_db_path, read_only=read_only)


def cmd_save(args: argparse.Namespace, settings: Settings) -> int:
    # plan's flags come along, but a scenario stores the planner's inputs, not a candidate file or a
    # study's next rung: refuse them rather than save a scenario that silently dropped them
    for flag, value, use in (
        ("--runs-file", getattr(args, "runs_file", None), "price the candidate runs"),
        ("--from-study", getattr(args, "from_study", None), "price the candidate runs"),
        ("--task", getattr(args, "task", None), "predict the target's accuracy on the task"),
    ):
        if value is not None:
            raise CLIError(
                f"scenario save does not store {flag}: a scenario keeps the planner's inputs (target, budget, "
                f"prices, goal, law, --study); {use} with `scaleplan plan {flag} ...`"
            )
    inputs = scenarios.normalise_study(inputs_from_args(args))  # the study as it names itself
    problem = scenarios.source_problem(inputs, flags=True)  # the planner's rule, before the study is looked up
    if problem is not None:
        raise CLIError(f"scenario {args.name!r} cannot be planned: {problem}")
    if inputs.study is not None and scenarios.study_lookup(settings.user_db_path)(inputs.study) is None:
        raise CLIError(f"no stored study named {inputs.study!r}; `scaleplan runs list` shows the stored studies")
    if inputs.study is None and inputs.law_family is not None:  # a scenario that could never be planned
        with _common.open_db(settings) as con:
            plan_cli.check_family_law(con, inputs.law, user_db_path=settings.user_db_path, saving=True)
    with _store(settings) as con:
        saved = scenarios.save_scenario(con, args.name, inputs, replace=args.replace)
    if args.json:  # the saved scenario as `scenario list --json` lists it
        _common.print_json(scenario_json(saved))
        return 0
    print(f"saved scenario {saved.name!r} in {settings.user_db_path}")
    return 0


def scenario_json(s: scenarios.Scenario | scenarios.UnreadableScenario) -> dict[str, Any]:
    """A saved scenario as ``scenario list --json`` and ``scenario save --json`` print it."""
    return {
        "name": s.name,
        **(
            {"inputs": None, "unreadable": s.problem}
            if isinstance(s, scenarios.UnreadableScenario)
            else {"inputs": dataclasses.asdict(s.inputs)}
        ),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings, read_only=True) as con:
        saved = scenarios.list_scenarios(con)
    if args.json:
        _common.print_json({"scenarios": [scenario_json(s) for s in saved]})
        return 0
    if not saved:
        print("no scenarios saved yet (scaleplan scenario save --name NAME ...)")
    for s in saved:
        if isinstance(s, scenarios.UnreadableScenario):
            print(f"{s.name}: {s.note} (saved {s.updated_at})")
            continue
        values = dict(s.inputs.rows())
        print(
            f"{s.name}: {values['Target']}; budget {values['Study budget']}; goal {values['Accuracy needed (ARE, 80th pct.)']}; "
            f"law {s.inputs.law}; {s.inputs.source_label} (saved {s.updated_at})"
        )
    return 0


def load_named(settings: Settings, names: list[str]) -> list[tuple[str, scenarios.PlanInputs]]:
    if len(names) > scenarios.MAX_COMPARED:
        raise CLIError(f"compare at most {scenarios.MAX_COMPARED} scenarios at once, got {len(names)}")
    with _store(settings, read_only=True) as con:
        named = [(s.name, s.inputs) for s in (scenarios.get_scenario(con, n) for n in names)]
    stored = [name for name, _ in named]
    twice = list(dict.fromkeys(name for name in stored if stored.count(name) > 1))
    if twice:  # before planning: scenarios.compare refuses it too, without the name
        typed = ", ".join(repr(t) for t, name in zip(names, stored) if name in twice)
        raise CLIError(
            f"the scenario {' and '.join(map(repr, twice))} is named more than once ({typed}); name each scenario once"
        )
    return named


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    named = load_named(settings, args.names)
    comparison = scenarios.compare(evaluate_all(named, settings, quiet=args.quiet, n_boot=args.law_boot))
    if args.json:
        _common.print_json(comparison_json(comparison))
        return 0
    print_comparison(comparison)
    return 0


def print_comparison(comparison: scenarios.Comparison) -> None:
    width = max(len(r.label) for r in comparison.inputs + comparison.outcomes)
    for title, rows in (("Inputs that differ", comparison.inputs), ("Outcomes", comparison.outcomes)):
        print(f"{title}:")
        print(f"  {'':<{width}}  " + " | ".join(comparison.names))
        for r in rows:
            print(f"  {r.label:<{width}}  " + " | ".join(r.values))
        print()
    for o in comparison.scenarios:
        text = o.recommendation if isinstance(o, scenarios.ScenarioOutcome) else f"unavailable: {o.reason}"
        print(f"{o.name}: {text}")


def _simple(action: Callable[[Any, str, str], Any], verb: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        with _store(settings) as con:
            action(con, args.name, args.new)
        print(f"{verb} scenario {args.name!r} as {args.new!r}")
        return 0

    return run


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as con:
        scenarios.delete_scenario(con, args.name)
    print(f"removed scenario {args.name!r}")
    return 0


def _plan_parser() -> argparse.ArgumentParser:
    """``scaleplan plan``'s own parser, so ``scenario save`` takes exactly its flags."""
    sub = argparse.ArgumentParser(add_help=False).add_subparsers()
    plan_cli.register(sub)
    return sub.choices["plan"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scenario",
        help=_common.COMMAND_HELP["scenario"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    save = commands.add_parser(
        "save",
        parents=[_plan_parser()],
        conflict_handler="resolve",
        help="save the planner inputs (the flags of scaleplan plan) under a name",
    )
    save.add_argument("--name", required=True, help="the scenario's name (up to 80 characters)")
    save.add_argument(
        "--study",
        default=None,
        help="study source: a stored study's name (default: the collection), planned through its own law: "
        "give --law 'fit:STUDY' with it",
    )
    save.add_argument("--replace", action="store_true", help="replace a scenario of that name")
    save.set_defaults(func=cmd_save)

    listing = commands.add_parser("list", parents=[_common.settings_parent()], help="the saved scenarios")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    comp = commands.add_parser(
        "compare", parents=[_common.settings_parent()], help=f"up to {scenarios.MAX_COMPARED} scenarios side by side"
    )
    comp.add_argument("names", nargs="+", metavar="NAME")
    comp.add_argument("--json", action="store_true", help="print JSON")
    comp.add_argument("--quiet", action="store_true")
    comp.add_argument("--law-boot", type=int, default=planning.DEFAULT_LAW_BOOT, help=argparse.SUPPRESS)
    comp.set_defaults(func=cmd_compare)

    for verb, action, past in (
        ("rename", scenarios.rename_scenario, "renamed"),
        ("duplicate", scenarios.duplicate_scenario, "duplicated"),
    ):
        q = commands.add_parser(verb, parents=[_common.settings_parent()], help=f"{verb} a scenario")
        q.add_argument("name", metavar="NAME")
        q.add_argument("new", metavar="NEW")
        q.set_defaults(func=_simple(action, past))

    rm = commands.add_parser("remove", parents=[_common.settings_parent()], help="delete a saved scenario")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=cmd_remove)


__all__ = ["register", "inputs_from_args", "evaluate_all", "comparison_json", "outcome_json"]
