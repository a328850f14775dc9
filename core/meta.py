"""Meta-analysis: how accurate are scaling-law fits on the real collection?

For every family with at least 3 model sizes and a loss metric, the target is its
largest run and the sweep fits the Chinchilla law on many choices of small runs::

    window of runs   (max size used j, number of runs k: the k largest runs <= size j)
    x fraction p     of training used (tokens <= p * longest chosen run)
    x checkpoints    all intermediate ones, or final only
    x cutoff         drop checkpoints <= 10B tokens, or keep them

recording ARE on the target (mean over its last 30% of checkpoints) and the compute
share. Results go to a DuckDB table in a separate file (the collection database is
read-only); each row is keyed by a hash of its task and the data version, so a rerun
skips what is stored and an interrupted sweep resumes. Rows are inserted one complete
batch per transaction. Work is spread over cores with joblib, or over a cluster with
Dask (``engine="dask"``; pass a scheduler address to run on an existing cluster).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import fitting, storage
from scaleplan.core.analysis import analyse
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, Selection, SelectionError

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)

RESULTS_SQL = """
CREATE TABLE IF NOT EXISTS sweep_results (
    key VARCHAR PRIMARY KEY, data_version VARCHAR, family VARCHAR, target_run VARCHAR,
    target_params DOUBLE, num_runs INTEGER, max_params_used DOUBLE, min_params_used DOUBLE,
    fraction DOUBLE, final_only BOOLEAN, min_tokens DOUBLE, objective VARCHAR,
    run_ids VARCHAR, n_points INTEGER, status VARCHAR, message VARCHAR,
    E DOUBLE, A DOUBLE, B DOUBLE, alpha DOUBLE, beta DOUBLE,
    predicted_final DOUBLE, actual_final DOUBLE, are_final DOUBLE, are_mean DOUBLE,
    compute_share DOUBLE, fit_seconds DOUBLE,
    num_sizes INTEGER, target_tokens DOUBLE, fit_log_rmse DOUBLE)
"""
# Columns added after the first release of the table, for core.calibration: appended to an older
# results file on open (ALTER TABLE keeps column order = RESULT_COLUMNS); its ok rows that lack
# them are refitted by the next sweep.
ADDED_COLUMNS = (("num_sizes", "INTEGER"), ("target_tokens", "DOUBLE"), ("fit_log_rmse", "DOUBLE"))
RESULT_COLUMNS = (
    "key", "data_version", "family", "target_run", "target_params", "num_runs", "max_params_used",
    "min_params_used", "fraction", "final_only", "min_tokens", "objective", "run_ids", "n_points",
    "status", "message", "E", "A", "B", "alpha", "beta", "predicted_final", "actual_final",
    "are_final", "are_mean", "compute_share", "fit_seconds", "num_sizes", "target_tokens", "fit_log_rmse",
)


@dataclass(frozen=True)
class SweepTask:
    """One fit of the sweep: a family, the runs to use and how much of them."""

    family: str
    run_ids: tuple[str, ...]
    fraction: float
    final_only: bool
    min_tokens: float
    objective: str = "huber"

    def key(self, data_version: str) -> str:
        payload = json.dumps({**asdict(self), "data_version": data_version}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()


def eligible_families(con: duckdb.DuckDBPyConnection, min_sizes: int = 3) -> list[str]:
    """Families whose default metric is a loss and that have at least ``min_sizes`` sizes."""
    rows = con.execute("""
        SELECT f.family FROM families f JOIN metrics m ON m.metric = f.default_metric
        JOIN runs r USING (family)
        WHERE m.kind = 'loss' GROUP BY f.family HAVING count(DISTINCT r.num_params) >= ?
        ORDER BY f.family""", [min_sizes]).fetchall()
    return [r[0] for r in rows]


def plan_tasks(family: str, curves: pd.DataFrame, *, fractions: Iterable[float] = DEFAULT_FRACTIONS,
               checkpoints: Iterable[bool] = (False, True), cutoffs: Iterable[float] = (DEFAULT_MIN_TOKENS, 0.0),
               max_windows_end: int = 6) -> list[SweepTask]:
    """The sweep's tasks for one family: windows of model sizes below the target x options.

    Sizes below the target are sorted; a window is every run whose size lies among the k
    consecutive sizes ending at the j-th one (k >= 3: three sizes are the least that identify
    E, A and alpha; runs of equal size, e.g. seeds or token budgets, come together). To keep large
    families affordable, j takes at most ``max_windows_end`` values spread over the sizes
    (always the largest) and k takes 2, 3, 4, 6, 8, ... and "all sizes up to j".
    """
    from scaleplan.core.selection import target_of

    target = target_of(curves)
    target_params = curves.loc[curves["run_id"] == target, "num_params"].iloc[0]
    pool = curves[curves["num_params"] < target_params].groupby("run_id")["num_params"].first()
    sizes = np.sort(pool.unique())
    if sizes.size < 3:
        return []
    ends = np.unique(np.linspace(2, sizes.size - 1, min(max_windows_end, sizes.size - 2)).round().astype(int))
    windows: list[tuple[str, ...]] = []
    for end in ends:
        ks = sorted({k for k in (3, 4, 6, 8, 12, 16, 24, 32) if k <= end + 1} | {end + 1})
        for k in ks:
            lo, hi = sizes[end + 1 - k], sizes[end]
            windows.append(tuple(sorted(pool[(pool >= lo) & (pool <= hi)].index)))
    windows = list(dict.fromkeys(windows))
    return [SweepTask(family, window, float(p), bool(final), float(cut))
            for window in windows for p in fractions for final in checkpoints for cut in cutoffs]


def run_task(task: SweepTask, curves: pd.DataFrame, data_version: str) -> dict:
    """Fit one task; a failed fit is a row with its status and message (never an exception)."""
    row = {c: None for c in RESULT_COLUMNS}
    row.update(key=task.key(data_version), data_version=data_version, family=task.family,
               num_runs=len(task.run_ids), fraction=task.fraction, final_only=task.final_only,
               min_tokens=task.min_tokens, objective=task.objective, run_ids=json.dumps(task.run_ids))
    selection = Selection(run_ids=task.run_ids, fraction=task.fraction, final_only=task.final_only,
                          min_tokens=task.min_tokens)
    t0 = time.perf_counter()
    try:
        result = analyse(curves, selection, objective=task.objective)
    except (SelectionError, fitting.FitError) as error:
        row.update(status=type(error).__name__, message=str(error)[:300])
    else:
        ev = result.evaluation
        row.update(status="ok", message="", target_run=result.target_run, target_params=result.target_params,
                   n_points=len(result.points), max_params_used=float(result.points.num_params.max()),
                   min_params_used=float(result.points.num_params.min()), **result.fit.params,
                   predicted_final=ev.predicted_final, actual_final=ev.actual_final, are_final=ev.are_final,
                   are_mean=ev.are_mean, compute_share=ev.compute_share,
                   num_sizes=int(np.unique(result.points.num_params).size), target_tokens=result.target_tokens,
                   fit_log_rmse=_log_rmse(result))
    row["fit_seconds"] = time.perf_counter() - t0
    return row


def _log_rmse(result) -> float:
    """Root mean square of log(L_fit / L_obs) over the fitted points (dimensionless)."""
    points = result.points
    fitted = result.fit.predict(points.num_params, points.tokens_seen)
    return float(np.sqrt(np.mean(np.log(fitted / points.loss) ** 2)))


def _run_chunk(tasks: list[SweepTask], curves: pd.DataFrame, data_version: str) -> list[dict]:
    return [run_task(task, curves, data_version) for task in tasks]


def open_results(meta_path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    meta_path = Path(meta_path)
    if read_only:
        return duckdb.connect(str(meta_path), read_only=True)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(meta_path))
    con.execute(RESULTS_SQL)
    for name, kind in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE sweep_results ADD COLUMN IF NOT EXISTS {name} {kind}")
    return con


@dataclass
class SweepReport:
    planned: int
    skipped: int
    fitted: int
    failed: int
    seconds: float


def run_sweep(db_path: Path, meta_path: Path, *,
              families: Iterable[str] | None = None, fractions: Iterable[float] = DEFAULT_FRACTIONS,
              n_jobs: int = -1, engine: str = "joblib",
              scheduler: str | None = None, chunk_size: int = 64, limit: int | None = None,
              progress: bool = True, on_progress: Callable[[int, int], None] | None = None) -> SweepReport:
    """Run (or resume) the sweep; store every finished row in ``meta_path``.

    ``engine`` is ``"joblib"`` (local cores, ``n_jobs``) or ``"dask"`` (a Dask cluster at
    ``scheduler``, or a local one). ``limit`` caps the number of new fits (for a quick run).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    con = storage.connect(db_path)
    try:
        version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
        names = list(families) if families is not None else eligible_families(con)
        curves_by_family = {name: storage.family_curves(con, name) for name in names}
    finally:
        con.close()
    results = open_results(meta_path)
    try:
        done = {r[0] for r in results.execute(
            "SELECT key FROM sweep_results WHERE data_version = ? AND (status <> 'ok' OR num_sizes IS NOT NULL)",
            [version]).fetchall()}
        chunks, planned, skipped = [], 0, 0
        for name, curves in curves_by_family.items():
            if curves.empty:
                continue
            tasks = plan_tasks(name, curves, fractions=fractions)
            planned += len(tasks)
            todo = [t for t in tasks if t.key(version) not in done]
            skipped += len(tasks) - len(todo)
            for i in range(0, len(todo), chunk_size):
                chunks.append((todo[i: i + chunk_size], name))
        if limit is not None:
            kept, count = [], 0
            for tasks, name in chunks:
                if count >= limit:
                    break
                kept.append((tasks[: limit - count], name))
                count += len(kept[-1][0])
            chunks = kept
        total = sum(len(t) for t, _ in chunks)
        fitted = failed = 0
        with tqdm(total=total, desc="meta-analysis fits", unit="fit", disable=not progress) as bar:
            for rows in _execute(chunks, curves_by_family, version, n_jobs, engine, scheduler):
                frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
                results.register("new_rows", frame)
                results.execute("BEGIN TRANSACTION")
                results.execute("INSERT OR REPLACE INTO sweep_results SELECT * FROM new_rows")
                results.execute("COMMIT")
                results.unregister("new_rows")
                fitted += int((frame["status"] == "ok").sum())
                failed += int((frame["status"] != "ok").sum())
                bar.update(len(rows))
                if on_progress:
                    on_progress(fitted + failed, total)
    finally:
        results.close()
    return SweepReport(planned=planned, skipped=skipped, fitted=fitted, failed=failed,
                       seconds=time.perf_counter() - t0)


def _execute(chunks, curves_by_family, version, n_jobs, engine, scheduler) -> Iterator[list[dict]]:
    if engine == "dask":
        from dask.distributed import Client, as_completed  # optional dependency: pip install scaleplan[cluster]

        client = Client(scheduler) if scheduler else Client(processes=True, n_workers=os.cpu_count() or 1)
        try:
            scattered = {name: client.scatter(curves, broadcast=True) for name, curves in curves_by_family.items()}
            futures = [client.submit(_run_chunk, tasks, scattered[name], version, pure=False) for tasks, name in chunks]
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.close()
        return
    if engine != "joblib":
        raise ValueError(f"unknown engine {engine!r}: use 'joblib' or 'dask'")
    from joblib import Parallel, delayed

    if n_jobs == 1:
        for tasks, name in chunks:
            yield _run_chunk(tasks, curves_by_family[name], version)
        return
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from parallel(delayed(_run_chunk)(tasks, curves_by_family[name], version) for tasks, name in chunks)


# ---------------------------------------------------------------------------------------------
# Reading the results

def load_results(meta_path: Path, data_version: str | None = None) -> pd.DataFrame:
    """All stored rows (of one data version if given); empty frame if nothing is stored."""
    if not Path(meta_path).exists():
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    con = open_results(meta_path, read_only=True)
    try:
        return con.execute("SELECT * FROM sweep_results WHERE ?::VARCHAR IS NULL OR data_version = ?",
                           [data_version, data_version]).df()
    finally:
        con.close()


def family_averaged(results: pd.DataFrame, by: list[str], value: str = "are_mean") -> pd.DataFrame:
    """Mean of ``value`` within each family first, then across families (the paper's averaging)."""
    ok = results[results["status"] == "ok"]
    per_family = ok.groupby(by + ["family"], observed=True)[value].mean().reset_index()
    out = per_family.groupby(by, observed=True).agg(value=(value, "mean"), families=("family", "nunique"))
    return out.reset_index().rename(columns={"value": value})


COMPUTE_SHARE_BINS = (0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0, np.inf)
COMPUTE_SHARE_LABELS = ("<0.01%", "0.01-0.1%", "0.1-1%", "1-10%", "10-100%", ">100%")


def with_compute_bins(results: pd.DataFrame) -> pd.DataFrame:
    """Add a categorical ``compute_bin`` column (share of the target's compute)."""
    out = results.copy()
    out["compute_bin"] = pd.cut(out["compute_share"], COMPUTE_SHARE_BINS, labels=COMPUTE_SHARE_LABELS, right=False)
    return out


def expected_are(results: pd.DataFrame, num_runs: int, compute_share: float, fraction: float | None = None,
                 final_only: bool = False) -> dict:
    """What the collection says about the ARE of a plan with ``num_runs`` runs costing ``compute_share``.

    Looks up sweep rows with intermediate checkpoints (unless ``final_only``), the 10B cutoff,
    the same number of runs (up to 2 either side if none) and a compute share within a factor
    3; returns the family-averaged median and 80th percentile of ``are_mean`` and how many
    fits and families support it.
    """
    ok = results[(results["status"] == "ok") & (results["final_only"] == final_only)
                 & (results["min_tokens"] > 0)]
    if fraction is not None:
        ok = ok[np.isclose(ok["fraction"], fraction)]
    for spread in (0, 1, 2):
        near = ok[(ok["num_runs"] - num_runs).abs() <= spread]
        near = near[(near["compute_share"] >= compute_share / 3) & (near["compute_share"] <= compute_share * 3)]
        if near["family"].nunique() >= 2 or (spread == 2 and not near.empty):
            per_family = near.groupby("family")["are_mean"].agg(["median", lambda s: s.quantile(0.8)])
            return {"are_median": float(per_family["median"].mean()),
                    "are_p80": float(per_family.iloc[:, 1].mean()),
                    "fits": int(len(near)), "families": int(per_family.shape[0])}
    return {"are_median": float("nan"), "are_p80": float("nan"), "fits": 0, "families": 0}
