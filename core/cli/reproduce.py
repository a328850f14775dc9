"""``scaleplan reproduce``: the papers' headline results on our data."""

from __future__ import annotations

import argparse
import math

import pandas as pd

from scaleplan.core import meta, reproduce
from scaleplan.core.cli import _common
from scaleplan.core.settings import Settings


def _ensure_meta(args: argparse.Namespace, settings: Settings) -> pd.DataFrame:
    version = _common.data_version(settings)
    # resumes; a no-op when the sweep is complete
    meta.run_sweep(settings.db_path, settings.meta_path, n_jobs=args.jobs, progress=not args.quiet)
    return meta.load_results(settings.meta_path, version)


def cmd_reproduce(args: argparse.Namespace, settings: Settings) -> int:
    if args.paper == "overtraining":
        con = _common.open_db(settings)
        try:
            rows = reproduce.overtraining(con)
        finally:
            con.close()
        if args.json:
            _common.print_json(rows)
            return 0
        print("Gadre et al. (ICLR 2025): fit on 0.011-0.411B runs (M=20) + 0.011B M=320, C4 eval loss;"
              " paper: ~1% relative error on loss")
        print(f"{'dataset':<8}{'target':<11}{'quantity':<12}{'predicted':>10}{'actual':>10}{'rel.err':>9}"
              f"{'x fit compute':>15}")
        for r in rows:
            print(f"{r['dataset']:<8}{r['target']:<11}{r['quantity']:<12}{r['predicted']:>10.4f}{r['actual']:>10.4f}"
                  f"{r['rel_error']:>9.2%}{r['fit_compute_ratio']:>15.0f}")
        return 0
    results = _ensure_meta(args, settings)
    con = _common.open_db(settings)
    try:
        report = reproduce.hitchhiker_report(results, con)
    finally:
        con.close()
    if args.json:
        _common.print_json(report)
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
    rep = sub.add_parser("reproduce", parents=[_common.settings_parent()], help="reproduce a paper's headline results")
    rep.add_argument("paper", choices=("overtraining", "hitchhiker"))
    rep.add_argument("--json", action="store_true")
    rep.add_argument("--jobs", type=int, default=-1)
    rep.add_argument("--quiet", action="store_true")
    rep.set_defaults(func=cmd_reproduce)


