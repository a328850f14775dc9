"""Coverage of the interval a user's own isoFLOP sweep gets for a larger target, on synthetic sweeps of
known laws: with the fit's own estimation error (core.calibration.with_estimation_error) and without it
(the collection's calibration alone), side by side in one run.

Protocol (after the independent check of 2026-12-07, helper review8): four Chinchilla-form laws (Hoffmann
et al. 2022; Besiroglu et al. 2024; two drawn within published ranges with compute-optimal points at 5-100
tokens per parameter); per sweep 3-5 compute budgets half a decade apart from 1e17-3e18 FLOPs, 4-7 sizes
spanning +-0.5 decade around each budget's optimum (centred within +-0.1 decade), multiplicative seed noise
of 0.5-2% per run. Every budget below the largest is fitted as `scaleplan fit --runs` fits (core.analysis
with the shipped sweep's calibration, all points, no cutoff); the target is the true law's compute-optimal
size at 10x and 100x the largest budget; the truth is the noiseless law there. A target inside the fitted
sizes gets the in-study backtest's interval instead and is counted apart. Last line: one JSON object.

    .venv/bin/python benchmarks/bench_user_intervals.py [--sweeps 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaleplan.core import analysis, calibration, meta  # noqa: E402
from scaleplan.core.selection import Selection  # noqa: E402

LAWS = {
    "hoffmann": (1.69, 406.4, 410.7, 0.34, 0.28),
    "besiroglu": (1.82, 482.0, 2085.0, 0.35, 0.37),
    "rand1": (2.013, 561.0, 2350.0, 0.367, 0.381),
    "rand2": (1.765, 290.0, 779.0, 0.337, 0.327),
}
LEVELS = (0.8, 0.9)
MULTIPLES = (10, 100)


def _loss(law, n, d):
    e, a, b, alpha, beta = law
    return e + a / n**alpha + b / d**beta


def _optimum(law, compute):
    """N*(C) = G (C / 6)^(beta / (alpha + beta)), G = (alpha A / (beta B))^(1 / (alpha + beta))."""
    _, a, b, alpha, beta = law
    return (alpha * a / (beta * b)) ** (1 / (alpha + beta)) * (compute / 6) ** (beta / (alpha + beta))


def _sweep(law, rng):
    budgets_n, sizes, noise = int(rng.integers(3, 6)), int(rng.integers(4, 8)), float(rng.uniform(0.005, 0.02))
    first, step = 10 ** rng.uniform(17, 18.5), 10 ** rng.uniform(0.4, 0.6)
    budgets = [first * step**k for k in range(budgets_n)]
    rows = []
    for b, compute in enumerate(budgets[:-1]):  # the largest budget is the one to predict beyond
        centre = _optimum(law, compute) * math.exp(rng.normal(0, 0.1 * math.log(10)))
        for s, n in enumerate(centre * np.logspace(-0.5, 0.5, sizes)):
            d = compute / (6 * n)
            rows.append((f"b{b}-s{s}", n, d, _loss(law, n, d) * math.exp(rng.normal(0, noise))))
    frame = pd.DataFrame(rows, columns=["run_id", "num_params", "tokens_seen", "value"])
    return frame.assign(run_name=frame["run_id"], seed=0), budgets, noise


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p, z = k / n, 1.96
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    info = meta.shipped_results_info()
    if info is None:
        raise SystemExit("no shipped sweep results")
    cal = calibration.fit_calibration(meta.shipped_results(info["data_version"]))
    names = list(LAWS)
    records = []
    t0 = time.perf_counter()
    for i in range(args.sweeps):
        law = LAWS[names[i % len(names)]]
        rng = np.random.default_rng(args.seed * 100_003 + i)
        runs, budgets, noise = _sweep(law, rng)
        for multiple in MULTIPLES:
            compute = multiple * budgets[-1]
            n_t = _optimum(law, compute)
            d_t = compute / (6 * n_t)
            result = analysis.analyse(
                runs,
                Selection(min_tokens=0),
                target_params=n_t,
                target_tokens=d_t,
                calibration=cal,
                check_identifiability=False,
            )
            truth = _loss(law, n_t, d_t)
            if not isinstance(result.interval, calibration.PredictionInterval):
                records.append({"case": f"{multiple}x", "answered": False})
                continue
            without = dataclasses.replace(result.features, prediction_log_se=None)
            for level in LEVELS:
                for rule, features in (("with", result.features), ("without", without)):
                    interval = cal.interval(result.predicted_loss, features, level)
                    assert isinstance(interval, calibration.PredictionInterval)
                    records.append(
                        {
                            "case": f"{multiple}x",
                            "answered": True,
                            "level": level,
                            "rule": rule,
                            "noise": noise,
                            "covered": bool(interval.low <= truth <= interval.high),
                            "width": (interval.high - interval.low) / interval.predicted,
                        }
                    )
    frame = pd.DataFrame(records)
    answered = frame[frame["answered"]]
    summary = []
    print(f"{args.sweeps} synthetic sweeps, {time.perf_counter() - t0:.0f} s; truth = the noiseless law at the target")
    print(f"{'target':>7} {'level':>5} {'rule':>8} {'designs':>7} {'realised':>9} {'95% CI':>15} {'median width':>12}")
    for (case, level, rule), group in answered.groupby(["case", "level", "rule"], sort=True):
        k, n = int(group["covered"].sum()), len(group)
        low, high = _wilson(k, n)
        width = float(group["width"].median())
        print(f"{case:>7} {level:>5.0%} {rule:>8} {n:>7} {k / n:>9.1%} [{low:.3f}, {high:.3f}] {width:>12.3f}")
        summary.append(
            {"target": case, "level": level, "rule": rule, "designs": n, "realised": k / n, "median_rel_width": width}
        )
    refused = int((~frame["answered"]).sum())
    print(f"not given the collection's interval (target inside the fitted sizes: the backtest's): {refused}")
    print(json.dumps({"sweeps": args.sweeps, "levels": summary, "not_collection_interval": refused}))


if __name__ == "__main__":
    main()
