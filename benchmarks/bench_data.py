"""Data-layer benchmark: full build from the local mirror, and two query latencies.

    python benchmarks/bench_data.py [--mirror ../shared/datasets] [--repeats 50]

Targets: build < 60 s on 2 cores; "all loss observations of one family" < 50 ms median;
"one run's curve" < 10 ms median. Queries are timed on a fresh read-only connection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaleplan.core import storage  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        storage.build_database(db, mirror=args.mirror, progress=False)
        build_s = time.perf_counter() - t0
        con = storage.connect(db)
        rows = con.execute("SELECT count(*) FROM observations").fetchone()[0]
        # The biggest family by loss observations, and its longest run.
        family, metric = con.execute("""
            SELECT o.family, f.default_metric FROM observations o JOIN families f USING (family)
            WHERE o.metric = f.default_metric GROUP BY ALL ORDER BY count(*) DESC LIMIT 1""").fetchone()
        run_id = con.execute(
            """SELECT run_id FROM observations WHERE family = ? AND metric = ?
                                GROUP BY run_id ORDER BY count(*) DESC LIMIT 1""",
            [family, metric],
        ).fetchone()[0]
        n_family = len(storage.family_curves(con, family))
        n_run = len(storage.run_curve(con, run_id, metric))
        family_ms = _median_ms(lambda: storage.family_curves(con, family), args.repeats)
        run_ms = _median_ms(lambda: storage.run_curve(con, run_id, metric), args.repeats)
        # A mid-sized family too (the common case in the dashboard).
        family_ms_pythia = _median_ms(lambda: storage.family_curves(con, "pythia-deduped"), args.repeats)
        con.close()
    print(f"observations in database: {rows:,}")
    print(f"full build from local mirror: {build_s:.2f} s   (target < 60 s)")
    print(f"family loss curves, {family} ({n_family:,} rows): median {family_ms:.2f} ms   (target < 50 ms)")
    print(f"family loss curves, pythia-deduped: median {family_ms_pythia:.2f} ms   (target < 50 ms)")
    print(f"one run's curve, {run_id} ({n_run:,} rows): median {run_ms:.2f} ms   (target < 10 ms)")


if __name__ == "__main__":
    main()
