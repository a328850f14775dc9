"""The fitted objective on every cell of the Hitchhiker sweep grid, and a comparison of two runs.

Every task that the meta-analysis sweep plans (all eligible families x windows of runs x
fraction x checkpoints (all / final only) x cutoff) is fitted with ``fit_chinchilla``
(Huber on log residuals, delta 1e-3) and its objective value written to a CSV, one row per
task key. Recording the fitter's objective before a change to the fitter and comparing after
shows whether the new fitter reaches an equal or lower minimum on every cell.

Run::

    .venv/bin/python benchmarks/sweep_objectives.py record OUT.csv [--jobs 2] [--n-starts K]
    .venv/bin/python benchmarks/sweep_objectives.py compare BEFORE.csv AFTER.csv

``compare`` counts cells, reports the worst difference and lists cells where AFTER is worse
than BEFORE beyond relative 1e-9 of BEFORE (cells that fitted before but fail after also count
as worse). The database is ``SCALEPLAN_DB`` / ``SCALEPLAN_DATA_DIR`` as for the CLI.

Record BEFORE and AFTER in the same environment (same NumPy, SciPy and BLAS). On cells whose
objective has a flat valley, where L-BFGS-B stops depends on the last bits of every sum: the
same fitter (commit e05e772) recorded on two installs differed on 192 of 3,135 fitted cells
beyond relative 1e-9 (by at most 2.1e-9 absolute; 110 lower, 82 higher), and its predicted
final loss by more than 1e-6 relative on 134 cells and by up to 1.4% on 4. The record in
``results/sweep_objectives_after.csv`` was taken with NumPy 2.4.6 and SciPy 1.17.1 on another
2-core machine than ``results/bench_sweep_output.txt``, before the descents ran side by side
(``core.lbfgsb``); that change gives the same objective and parameters to the last bit on one
machine (all 2,360 designs compared), so the record still describes the current fitter there.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

RELATIVE_TOLERANCE = 1e-9


def _fit_chunk(tasks, curves, version, n_starts=None):
    from scaleplan.core import fitting
    from scaleplan.core.selection import SelectionError, select_points

    rows = []
    for task in tasks:
        t0 = time.perf_counter()
        try:
            points = select_points(curves, task.selection())
            extra = {} if n_starts is None else {"n_starts": n_starts}
            fit = fitting.fit_chinchilla(
                points.num_params, points.tokens_seen, points.loss, objective=task.objective, **extra
            )
        except (SelectionError, fitting.FitError) as error:
            rows.append((task.key(version), task.family, type(error).__name__, "", "", time.perf_counter() - t0))
            continue
        rows.append(
            (task.key(version), task.family, "ok", repr(fit.objective_value), len(points), time.perf_counter() - t0)
        )
    return rows


def record(out: Path, jobs: int, n_starts: int | None = None) -> int:
    from joblib import Parallel, delayed

    from scaleplan.core import meta, storage
    from scaleplan.core.settings import resolve_settings

    settings = resolve_settings()
    con = storage.connect(settings.db_path)
    try:
        version = storage.stored_data_version(con)
        curves_by_family = {name: storage.family_curves(con, name) for name in meta.eligible_families(con)}
    finally:
        con.close()
    chunks = []
    for name, curves in curves_by_family.items():
        if curves.empty:
            continue
        tasks = meta.plan_tasks(name, curves)
        chunks += [(tasks[i : i + 64], name) for i in range(0, len(tasks), 64)]
    t0 = time.perf_counter()
    results = Parallel(n_jobs=jobs)(delayed(_fit_chunk)(t, curves_by_family[n], version, n_starts) for t, n in chunks)
    rows = [r for chunk in results for r in chunk]
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["key", "family", "status", "objective", "n_points", "seconds"])
        writer.writerows(rows)
    print(
        f"{len(rows)} tasks ({sum(r[2] == 'ok' for r in rows)} fitted) in {time.perf_counter() - t0:.1f} s "
        f"on {jobs} jobs -> {out}"
    )
    return 0


def _read(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["key"]: row for row in csv.DictReader(fh)}


def compare(before_path: Path, after_path: Path) -> int:
    before, after = _read(before_path), _read(after_path)
    missing = sorted(set(before) ^ set(after))
    worse, newly_failed, newly_fitted = [], [], 0
    worst_abs, worst_rel, worst_key = -math.inf, -math.inf, None
    improved = 0
    compared = 0
    for key, b in before.items():
        a = after.get(key)
        if a is None:
            continue
        if b["status"] == "ok" and a["status"] != "ok":
            newly_failed.append((key, b["family"], a["status"]))
            continue
        if b["status"] != "ok":
            newly_fitted += a["status"] == "ok"
            continue
        compared += 1
        ob, oa = float(b["objective"]), float(a["objective"])
        diff = oa - ob  # > 0: the new fitter is worse
        rel = diff / abs(ob) if ob else (0.0 if diff <= 0 else math.inf)
        if diff > worst_abs:
            worst_abs, worst_rel, worst_key = diff, rel, key
        improved += rel < -RELATIVE_TOLERANCE
        if rel > RELATIVE_TOLERANCE:
            worse.append((rel, diff, key, b["family"]))
    print(f"cells: {len(before)} before, {len(after)} after, {len(missing)} not in both")
    print(f"both fitted: {compared}; newly failing: {len(newly_failed)}; newly fitted: {newly_fitted}")
    print(f"worst (after - before): {worst_abs:.3e} absolute, {worst_rel:.3e} relative (key {worst_key})")
    print(
        f"lower by more than relative {RELATIVE_TOLERANCE:g}: {improved}; "
        f"higher by more than relative {RELATIVE_TOLERANCE:g}: {len(worse)}"
    )
    for rel, diff, key, family in sorted(worse, reverse=True)[:20]:
        print(f"  worse: {family} {key} rel {rel:.3e} abs {diff:.3e}")
    for key, family, status in newly_failed[:20]:
        print(f"  newly failing: {family} {key} {status}")
    return 0 if not worse and not newly_failed and not missing else 1


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--jobs", type=int, default=2)
    rec.add_argument("--n-starts", type=int, help="fit_chinchilla's n_starts (default: its default)")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.out, args.jobs, args.n_starts)
    return compare(args.before, args.after)


if __name__ == "__main__":
    raise SystemExit(main())
