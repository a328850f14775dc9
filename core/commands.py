"""CLI commands for the engine: ``fit``, ``meta run`` and ``reproduce``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from core import analysis, fitting, meta, reproduce, storage
from core.selection import DEFAULT_MIN_TOKENS, Selection, SelectionError
from core.userdata import RunsTableError, parse_runs_csv


def _cli():
    from core import cli  # imported lazily: cli imports this module
    return cli


def _analysis_json(result: analysis.Analysis) -> dict:
    ev = result.evaluation
    return {
        "target": {"run": result.target_run, "num_params": result.target_params, "tokens": result.target_tokens},
        "params": dict(result.fit.params),
        "fixed": list(result.fit.fixed),
        "objective": result.fit.objective,
        "converged": result.fit.converged,
        "points": len(result.points),
        "runs": list(result.points.runs["run_id"]),
        "prediction": result.predicted_loss,
        "band_90": list(result.band) if result.band else None,
        "actual": ev.actual_final if ev else None,
        "are_final": ev.are_final if ev else None,
        "are_mean_last_30pct": ev.are_mean if ev else None,
        "compute_share": result.compute_share,
    }


def cmd_fit(args) -> int:
    cli = _cli()
    fixed = {}
    for item in args.borrow or []:
        name, _, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            raise cli.CLIError(f"--borrow expects NAME=VALUE, e.g. alpha=0.34; got {item!r}") from None
    selection_kwargs = dict(max_params=args.max_params, num_runs=args.num_runs, fraction=args.fraction,
                            final_only=args.final_only, min_tokens=args.min_tokens)
    try:
        if args.runs:
            path = Path(args.runs)
            if not path.is_file():
                raise cli.CLIError(f"no such file: {path}")
            table = parse_runs_csv(path.read_bytes())
            for message in table.messages[:10]:
                print(f"warning: {message}", file=__import__("sys").stderr)
            if args.predict_n is None or args.predict_d is None:
                raise cli.CLIError("with --runs give the target as --predict-n N --predict-d D")
            result = analysis.analyse(table.table, Selection(**selection_kwargs), target_params=args.predict_n,
                                      target_tokens=args.predict_d, fixed=fixed, n_boot=args.bootstrap)
        else:
            if not args.family:
                raise cli.CLIError("give --family F (and optionally --target RUN) or --runs FILE.csv")
            con = cli._open_db(args)
            try:
                curves = storage.family_curves(con, args.family, args.metric)
            finally:
                con.close()
            if curves.empty:
                raise cli.CLIError(f"family {args.family!r} has no observations (see `scaleplan data summary`)")
            if args.predict_n is not None or args.predict_d is not None:
                result = analysis.analyse(curves, Selection(**selection_kwargs), target_params=args.predict_n,
                                          target_tokens=args.predict_d, fixed=fixed, n_boot=args.bootstrap)
            else:
                result = analysis.analyse(curves, Selection(target_run=args.target, **selection_kwargs),
                                          fixed=fixed, n_boot=args.bootstrap)
    except (SelectionError, fitting.FitError, RunsTableError) as error:
        raise cli.CLIError(str(error)) from None
    doc = _analysis_json(result)
    if args.json:
        cli._print_json(doc)
        return 0
    print(f"target: {doc['target']['run']}  N={result.target_params:.4g}  D={result.target_tokens:.4g} tokens")
    print(f"fitted on {doc['points']} points from {len(doc['runs'])} runs "
          f"({result.compute_share:.3%} of the target's compute)")
    print("params: " + ", ".join(f"{k}={v:.4g}" for k, v in doc["params"].items()))
    band = f"  (90% band {doc['band_90'][0]:.4f} - {doc['band_90'][1]:.4f})" if doc["band_90"] else ""
    print(f"predicted loss: {doc['prediction']:.4f}{band}")
    if doc["actual"] is not None:
        print(f"actual loss: {doc['actual']:.4f}   ARE final {doc['are_final']:.2%}   "
              f"ARE mean over last 30% {doc['are_mean_last_30pct']:.2%}")
    return 0


def cmd_meta_run(args) -> int:
    cli = _cli()
    db = cli._db_path(args)
    con = cli._open_db(args)
    con.close()
    report = meta.run_sweep(db, Path(args.meta) if args.meta else meta.DEFAULT_META_PATH,
                            families=args.family or None, n_jobs=args.jobs, engine=args.engine,
                            scheduler=args.scheduler, limit=args.limit, progress=not args.quiet)
    print(f"planned {report.planned} fits, {report.skipped} already stored; ran {report.fitted + report.failed} "
          f"({report.fitted} fitted, {report.failed} could not be fitted) in {report.seconds:.1f} s")
    return 0


def _ensure_meta(args) -> pd.DataFrame:
    cli = _cli()
    db = cli._db_path(args)
    con = cli._open_db(args)
    version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
    con.close()
    meta_path = Path(args.meta) if args.meta else meta.DEFAULT_META_PATH
    meta.run_sweep(db, meta_path, n_jobs=args.jobs, progress=not args.quiet)  # resumes; no-op when complete
    return meta.load_results(meta_path, version)


def cmd_reproduce(args) -> int:
    cli = _cli()
    if args.paper == "overtraining":
        con = cli._open_db(args)
        try:
            rows = reproduce.overtraining(con)
        finally:
            con.close()
        if args.json:
            cli._print_json(rows)
            return 0
        print("Gadre et al. (ICLR 2025): fit on 0.011-0.411B runs (M=20) + 0.011B M=320, C4 eval loss;"
              " paper: ~1% relative error on loss")
        print(f"{'dataset':<8}{'target':<11}{'quantity':<12}{'predicted':>10}{'actual':>10}{'rel.err':>9}"
              f"{'x fit compute':>15}")
        for r in rows:
            print(f"{r['dataset']:<8}{r['target']:<11}{r['quantity']:<12}{r['predicted']:>10.4f}{r['actual']:>10.4f}"
                  f"{r['rel_error']:>9.2%}{r['fit_compute_ratio']:>15.0f}")
        return 0
    results = _ensure_meta(args)
    con = cli._open_db(args)
    try:
        report = reproduce.hitchhiker_report(results, con)
    finally:
        con.close()
    if args.json:
        cli._print_json(report)
        return 0
    for family, grid in report["grids"].items():
        print(f"\nARE (mean over target's last 30%) by largest size used (rows) x fraction of training "
              f"(columns): {family}")
        frame = pd.DataFrame(grid["are"], index=[f"{v:.3g}" for v in grid["max_params"]],
                             columns=[f"{c:g}" for c in grid["fractions"]])
        print(frame.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}")
              .to_string())
    print("\nThe paper's findings on our data:")
    for f in report["findings"]:
        print(f"- {f['finding']}\n    paper: {f['paper']}\n    ours:  {f['ours']}\n    holds: {f['holds']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    fit = sub.add_parser("fit", help="fit a scaling law and predict a target")
    fit.add_argument("--family", help="family in the database")
    fit.add_argument("--target", help="target run id (default: the family's largest run)")
    fit.add_argument("--metric", help="loss metric (default: the family's)")
    fit.add_argument("--runs", help="CSV of your own runs (num_params, tokens_seen, loss[, run_name, seed])")
    fit.add_argument("--predict-n", type=float, help="hypothetical target parameters")
    fit.add_argument("--predict-d", type=float, help="hypothetical target tokens")
    fit.add_argument("--max-params", type=float, help="use only runs with at most this many parameters")
    fit.add_argument("--num-runs", type=int, help="use the k smallest runs")
    fit.add_argument("--fraction", type=float, default=1.0, help="fraction of training used (0-1]")
    fit.add_argument("--final-only", action="store_true", help="final checkpoints only")
    fit.add_argument("--min-tokens", type=float, default=DEFAULT_MIN_TOKENS, help="drop checkpoints at or below")
    fit.add_argument("--borrow", action="append", metavar="NAME=VALUE", help="fix a parameter, e.g. alpha=0.34")
    fit.add_argument("--bootstrap", type=int, default=100, help="bootstrap replicates for the band (0: none)")
    fit.add_argument("--json", action="store_true")
    fit.add_argument("--mirror", help=argparse.SUPPRESS)
    fit.set_defaults(func=cmd_fit)

    meta_cmd = sub.add_parser("meta", help="the meta-analysis sweep").add_subparsers(dest="meta_command", required=True)
    run = meta_cmd.add_parser("run", help="run or resume the sweep")
    run.add_argument("--family", action="append", help="only these families (repeatable)")
    run.add_argument("--jobs", type=int, default=-1, help="parallel workers (default: all cores)")
    run.add_argument("--engine", choices=("joblib", "dask"), default="joblib")
    run.add_argument("--scheduler", help="Dask scheduler address for a cluster")
    run.add_argument("--limit", type=int, help="at most this many new fits")
    run.add_argument("--meta", help="results file (default data/meta.duckdb)")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--mirror", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_meta_run)

    rep = sub.add_parser("reproduce", help="reproduce a paper's headline results")
    rep.add_argument("paper", choices=("overtraining", "hitchhiker"))
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--meta", help="meta-analysis results file (default data/meta.duckdb)")
    rep.add_argument("--jobs", type=int, default=-1)
    rep.add_argument("--quiet", action="store_true")
    rep.add_argument("--mirror", help=argparse.SUPPRESS)
    rep.set_defaults(func=cmd_reproduce)


REGISTER = [register]
