"""Coverage of the in-study backtest interval (core.backtest) on the collection's own runs, per source group.

The collection's calibration covers targets larger than every fitted run. The backtest interval is for
targets inside the fitted sizes: a size already trained, on more tokens. Protocol, per family with at
least three sizes (its default loss metric):

* every run but the largest (at most ``--targets`` per family, spread over the sizes) is a target at its
  final checkpoint: N_t x D_t, compute C_t = 6 N_t D_t;
* the fit uses every point of the family with compute <= C_t / ``--reach`` (the target's earlier
  checkpoints and the other runs' cheaper ones; at most ``--max-points`` checkpoints per run, log-spaced);
  a target whose N exceeds every fitted N is skipped (the collection's calibration answers it);
* the Chinchilla law is fitted on those points, the backtest interval computed from them alone, and the
  target's measured loss checked against it at 80% and 90%.

Nothing of one family is used for another, so the check is held out by construction; it is reported per
source group (storage.source_group) and in total. Last line: one JSON object.

    .venv/bin/python benchmarks/bench_backtest_coverage.py [--reach 3] [--targets 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaleplan.core import backtest, fitting, laws, settings, storage  # noqa: E402
from scaleplan.core.calibration import PredictionInterval  # noqa: E402

LEVELS = (0.8, 0.9)


def _thin(curves: pd.DataFrame, max_points: int) -> pd.DataFrame:
    parts = []
    for _, run in curves.groupby("run_id", sort=False):
        if len(run) > max_points:
            keep = np.unique(np.round(np.geomspace(1, len(run), max_points)).astype(int) - 1)
            run = run.iloc[keep]
        parts.append(run)
    return pd.concat(parts, ignore_index=True)


def family_targets(curves: pd.DataFrame, reach: float, targets: int, max_points: int) -> list[dict[str, object]]:
    curves = curves.dropna(subset=["num_params", "tokens_seen", "value"])
    curves = curves[(curves["value"] > 0) & (curves["tokens_seen"] > 0)]
    sizes = np.sort(curves["num_params"].unique())
    if sizes.size < 3:
        return []
    finals = curves.sort_values("tokens_seen").groupby("run_id").tail(1)
    finals = finals[finals["num_params"] < sizes[-1]].sort_values("num_params")
    if len(finals) > targets:
        finals = finals.iloc[np.unique(np.linspace(0, len(finals) - 1, targets).round().astype(int))]
    points = _thin(curves, max_points)
    compute = 6.0 * points["num_params"] * points["tokens_seen"]
    rows: list[dict[str, object]] = []
    for target in finals.itertuples():
        n_t, d_t, actual = float(target.num_params), float(target.tokens_seen), float(target.value)
        fit_points = points[compute <= 6.0 * n_t * d_t / reach]
        if len(fit_points) < backtest.MIN_POINTS or fit_points["num_params"].nunique() < 2:
            continue
        if n_t > fit_points["num_params"].max():
            continue  # larger than every fitted run: the collection's calibration covers it
        n, d, loss = (fit_points[c].to_numpy(float) for c in ("num_params", "tokens_seen", "value"))
        try:
            fit = fitting.fit("chinchilla", laws.standard_inputs(n, d), loss, run_ids=fit_points["run_id"].to_numpy())
        except fitting.FitError:
            continue
        predicted = float(fit.predict_at(n_t, d_t))
        scores = backtest.backtest_scores(n, d, loss, fit_points["run_id"].to_numpy())
        row: dict[str, object] = {"run_id": target.run_id, "are": abs(predicted / actual - 1)}
        for level in LEVELS:
            interval = backtest.backtest_interval(predicted, n_t, d_t, scores, level)
            if isinstance(interval, PredictionInterval):
                row[f"covered_{level}"] = interval.low <= actual <= interval.high
                row[f"width_{level}"] = interval.relative_width
            else:
                row[f"covered_{level}"] = None
                row["refused"] = interval.reason
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reach", type=float, default=3.0, help="target compute / largest fitted compute (default 3)")
    parser.add_argument("--targets", type=int, default=4, help="targets per family (default 4)")
    parser.add_argument("--max-points", type=int, default=25, help="checkpoints per run at most (default 25)")
    args = parser.parse_args()
    resolved = settings.resolve_settings()
    if storage.database_status(resolved.db_path) != "ok":
        storage.build_database(resolved.db_path, mirror=resolved.mirror, progress=False)
    con = storage.connect(resolved.db_path)
    groups = storage.family_source_groups(con)
    started = time.perf_counter()
    rows = []
    for family in storage.list_families(con)["family"]:
        for row in family_targets(storage.family_curves(con, family), args.reach, args.targets, args.max_points):
            rows.append({"family": family, "group": groups[family], **row})
    frame = pd.DataFrame(rows)
    per_group = []
    for group, part in frame.groupby("group"):
        answered = part[part["covered_0.9"].notna()]
        per_group.append(
            {
                "group": group,
                "families": int(part["family"].nunique()),
                "targets": len(part),
                "answered": len(answered),
                "realised_80": None if answered.empty else round(float(answered["covered_0.8"].astype(bool).mean()), 3),
                "realised_90": None if answered.empty else round(float(answered["covered_0.9"].astype(bool).mean()), 3),
                "median_width_90": None if answered.empty else round(float(answered["width_0.9"].median()), 3),
                "median_are": round(float(part["are"].median()), 4),
            }
        )
    answered = frame[frame["covered_0.9"].notna()]
    print(f"{'group':<16}{'fam':>4}{'targets':>8}{'answered':>9}{'80%':>7}{'90%':>7}{'width90':>9}{'ARE':>8}")
    for g in per_group:
        print(
            f"{g['group']:<16}{g['families']:>4}{g['targets']:>8}{g['answered']:>9}{g['realised_80'] or '-':>7}"
            f"{g['realised_90'] or '-':>7}{g['median_width_90'] or '-':>9}{g['median_are']:>8}"
        )
    total = {
        "reach": args.reach,
        "targets": len(frame),
        "answered": len(answered),
        "refused": int(len(frame) - len(answered)),
        "realised_80": round(float(answered["covered_0.8"].astype(bool).mean()), 3),
        "realised_90": round(float(answered["covered_0.9"].astype(bool).mean()), 3),
        "median_width_90": round(float(answered["width_0.9"].median()), 3),
        "groups": per_group,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
