"""Benchmark: the full meta-analysis sweep, every fit computed, on ``--jobs`` local cores.

Builds the database from the local mirror into a temporary folder (not timed) unless
``--db`` names an existing one, then times ``meta.run_sweep`` into an empty results file,
so every planned fit is computed (nothing is skipped as already stored). Target: the full
sweep in under 60 s with ``--jobs 2``.

Run: ``.venv/bin/python benchmarks/bench_sweep.py --jobs 2 [--db PATH] [--limit N]``

The last line is one JSON object ``{"fits": ..., "fitted": ..., "wall_s": ..., "jobs": ...}``:
fits = tasks run, fitted = tasks that gave a fit (the rest are designs the protocol
rejects, e.g. no checkpoint left after the cutoff), wall_s = wall-clock seconds of
``run_sweep`` (reading the data, planning, fitting, storing).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny arrays: BLAS threads only contend

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _environment import describe  # noqa: E402  (the script's own folder is on sys.path)

TARGET_S = 60.0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from scaleplan.core import meta, storage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--db", type=Path, help="an existing scaleplan database (default: build one)")
    parser.add_argument("--limit", type=int, help="only the first N fits")
    args = parser.parse_args(argv)
    mirror = os.environ.get("SCALEPLAN_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "bench.duckdb"
            storage.build_database(db, mirror=mirror, progress=False)
        t0 = time.perf_counter()
        report = meta.run_sweep(db, Path(tmp) / "meta.duckdb", n_jobs=args.jobs, limit=args.limit, progress=False)
        wall = time.perf_counter() - t0
        per_fit = meta.load_results(Path(tmp) / "meta.duckdb")["fit_seconds"]
    ran = report.fitted + report.failed
    load = os.getloadavg()
    print(
        f"meta-analysis sweep: {ran} of {report.planned} planned fits ({report.fitted} fitted, "
        f"{report.failed} rejected by the protocol; {report.designs} distinct designs, each fitted once) "
        f"on {args.jobs} jobs: {wall:.1f} s wall "
        f"(target < {TARGET_S:.0f} s for the full sweep)"
    )
    per_fit = per_fit[per_fit > 0]  # tasks that reused an identical design's fit record 0 s
    print(
        f"  per fitted design (select + fit + score, in the worker): median {per_fit.median() * 1e3:.1f} ms, "
        f"90th percentile {per_fit.quantile(0.9) * 1e3:.1f} ms, sum {per_fit.sum():.1f} s"
    )
    print(f"  load average during the run (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"  on {describe()}")
    print(json.dumps({"fits": ran, "fitted": report.fitted, "wall_s": round(wall, 2), "jobs": args.jobs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
