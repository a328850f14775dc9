"""Benchmark: a task interval's held-out errors recomputed on every call (before) or read from the cache (after).

Before :mod:`core.downstream_cache`, every ``scaleplan plan --task`` / ``fit --task`` and every call of
``core.task_prediction.held_out_quantile`` rebuilt ``scaleplan reproduce downstream``'s report
(:func:`core.reproduce_downstream.downstream_report`) for the interval's conformal quantile. In one run,
under the same conditions:

* in process: ``downstream_report(con)``, what each call cost before (with its counts of link fits
  and BFGS minimisations); then ``held_out_quantile`` with an empty cache folder (computes and writes
  the file), from the file (a new process's first call) and from memory (every later call);
* the CLI, as subprocesses: ``plan --task arc_easy --json`` and ``fit --family pythia --task
  zero-shot/arc_easy --json``, each with ``XDG_CACHE_HOME`` a new empty folder (the report is computed:
  the old behaviour, plus one file write) and then with that folder kept (the file's hit). Their stdout
  must be byte-identical cold and warm, and the quantile the same from every path.

Medians over ``--repeats``. Run: ``.venv/bin/python benchmarks/bench_task.py [--repeats 3]`` (about a
minute per repeat on a quiet 2-core machine). Uses the database at ``SCALEPLAN_DB`` /
``SCALEPLAN_DATA_DIR`` (built from the mirror if missing). BLAS is pinned to one thread unless set.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _environment import describe  # noqa: E402  (the script's own folder is on sys.path)

PLAN = ["plan", "--target-params", "7e9", "--target-tokens", "140e9", "--budget-dollars", "100000"]
PLAN += ["--accuracy", "5", "--task", "arc_easy", "--json"]
FIT = ["fit", "--family", "pythia", "--task", "zero-shot/arc_easy", "--json"]
FAMILY = "overtrain-rpj"  # the family whose interval plan --task arc_easy states


def _timed(call):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def in_process(repeats: int) -> tuple[dict[str, float], dict[str, int], bool]:
    """Median seconds of the report and of held_out_quantile cold / file / memory; counts; same quantile."""
    from scipy import optimize

    from scaleplan.core import downstream, downstream_cache, reproduce_downstream, storage, task_prediction
    from scaleplan.core.settings import resolve_settings

    settings = resolve_settings()
    if storage.database_status(settings.db_path) != "ok":
        storage.build_database(settings.db_path, mirror=settings.mirror, progress=False)
    con = storage.connect(settings.db_path)
    counts = {"fit_link": 0, "bfgs": 0}
    fit_link, minimize = downstream.fit_link, optimize.minimize

    def counted_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
        counts["fit_link"] += 1
        return fit_link(*args, **kwargs)

    def counted_minimize(*args, **kwargs):  # type: ignore[no-untyped-def]
        counts["bfgs"] += 1
        return minimize(*args, **kwargs)

    downstream.fit_link, optimize.minimize = counted_fit, counted_minimize  # type: ignore[assignment]
    try:
        reproduce_downstream.downstream_report(con)
    finally:
        downstream.fit_link, optimize.minimize = fit_link, minimize  # type: ignore[assignment]
    times: dict[str, list[float]] = {"report": [], "cold": [], "file": [], "memory": []}
    quantiles = set()
    original = downstream_cache.default_cache_dir
    try:
        for _ in range(repeats):
            seconds, _report = _timed(lambda: reproduce_downstream.downstream_report(con))
            times["report"].append(seconds)
            with tempfile.TemporaryDirectory() as folder:
                downstream_cache.default_cache_dir = lambda: Path(folder)  # type: ignore[assignment]
                for name in ("cold", "file", "memory"):
                    if name != "memory":
                        downstream_cache.clear_memory()
                    seconds, (q, _basis) = _timed(lambda: task_prediction.held_out_quantile(con, FAMILY))
                    times[name].append(seconds)
                    quantiles.add(q)
    finally:
        downstream_cache.default_cache_dir = original  # type: ignore[assignment]
        downstream_cache.clear_memory()
        con.close()
    return {k: statistics.median(v) for k, v in times.items()}, counts, len(quantiles) == 1


def cli(argv: list[str], repeats: int) -> tuple[float, float, bool]:
    """Median seconds of ``scaleplan argv`` with an empty cache folder and with a warm one; same stdout."""
    cold, warm, outputs = [], [], set()
    command = [sys.executable, "-m", "scaleplan.core.cli", *argv]
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "XDG_CACHE_HOME": folder}
            for times in (cold, warm):
                start = time.perf_counter()
                done = subprocess.run(command, env=env, capture_output=True, check=True)
                times.append(time.perf_counter() - start)
                outputs.add(done.stdout)
    return statistics.median(cold), statistics.median(warm), len(outputs) == 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds, counts, same_q = in_process(args.repeats)
    plan_cold, plan_warm, plan_same = cli(PLAN, args.repeats)
    fit_cold, fit_warm, fit_same = cli(FIT, args.repeats)
    print(f"task interval's held-out errors, median of {args.repeats} repeats; OPENBLAS_NUM_THREADS=1")
    print(
        f"downstream_report(con): {seconds['report']:.2f} s, {counts['fit_link']} link fits, "
        f"{counts['bfgs']} BFGS minimisations"
    )
    header = f"{'what':<58} | {'before s':>9} | {'after s':>8} | {'speed-up':>8} | same output"
    print(header)
    print("-" * len(header))
    rows = [
        (f"held_out_quantile({FAMILY!r}), a new process's first", seconds["cold"], seconds["file"], same_q),
        (f"held_out_quantile({FAMILY!r}), a later call", seconds["cold"], seconds["memory"], same_q),
        ("scaleplan plan ... --task arc_easy --json", plan_cold, plan_warm, plan_same),
        ("scaleplan fit --family pythia --task zero-shot/arc_easy", fit_cold, fit_warm, fit_same),
    ]
    for what, before, after, same in rows:
        print(f"{what:<58} | {before:>9.3f} | {after:>8.3f} | {before / after:>7.1f}x | {'yes' if same else 'NO'}")
    print(
        "before: the report computed (an empty cache folder: what every call did before core.downstream_cache, "
        "plus one file write); after: the cache file (CLI, first in-process call) or memory"
    )
    load = os.getloadavg()
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; on {describe()}")
    summary = {
        "report_s": round(seconds["report"], 3),
        "link_fits": counts["fit_link"],
        "bfgs": counts["bfgs"],
        "quantile_cold_s": round(seconds["cold"], 3),
        "quantile_file_s": round(seconds["file"], 4),
        "quantile_memory_s": round(seconds["memory"], 4),
        "plan_task_cold_s": round(plan_cold, 3),
        "plan_task_warm_s": round(plan_warm, 3),
        "fit_task_cold_s": round(fit_cold, 3),
        "fit_task_warm_s": round(fit_warm, 3),
        "same_output": same_q and plan_same and fit_same,
    }
    print(json.dumps(summary))
    return 0 if summary["same_output"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
