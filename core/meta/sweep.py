"""Running (or resuming) the sweep: plan every eligible family's tasks, skip what is stored, fit the
rest on an engine and store each finished batch (:func:`run_sweep`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from scaleplan.core import storage
from scaleplan.core.meta import store
from scaleplan.core.meta.config import ELIGIBILITY, SweepConfig, SweepConfigError, eligible_families
from scaleplan.core.meta.engines import _execute
from scaleplan.core.meta.run import DesignGroup, FamilyData, group_by_design


@dataclass
class SweepReport:
    planned: int
    skipped: int
    fitted: int
    failed: int
    seconds: float
    designs: int = 0  # distinct designs fitted (tasks selecting the same points share a fit)


def run_sweep(
    db_path: Path,
    meta_path: Path,
    *,
    families: Iterable[str] | None = None,
    fractions: Iterable[float] | None = None,
    n_jobs: int = -1,
    engine: str = "joblib",
    scheduler: str | None = None,
    chunk_size: int = 64,
    limit: int | None = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    config: SweepConfig | None = None,
) -> SweepReport:
    """Run (or resume) the sweep; store every finished row in ``meta_path``.

    The design space is ``config`` (default: the built-in :class:`SweepConfig`);
    ``families`` and ``fractions`` override its fields. ``engine`` is ``"joblib"`` (local
    cores, ``n_jobs``) or ``"dask"`` (the Dask cluster at ``scheduler``, e.g.
    ``tcp://host:8786``, or a local one). ``limit`` caps the number of new designs (for a quick
    run; tasks that select the same points are one design). Each family's data is read from
    DuckDB and shaped into arrays once (:class:`FamilyData`) and shipped to workers once per
    worker; tasks that select the same design share one fit (:func:`group_by_design`),
    ``chunk_size`` designs per unit of work.
    """
    from tqdm.auto import tqdm

    config = config or SweepConfig()
    if families is not None:
        config = replace(config, families=tuple(families))
    if fractions is not None:
        config = replace(config, fractions=tuple(fractions))
    t0 = time.perf_counter()
    version, curves_by_family, source_group_of = _sweep_inputs(db_path, config)
    names = list(curves_by_family)
    results = store.open_results(meta_path)
    try:
        store.fill_source_groups(results, names, source_group_of)
        done = store.finished_keys(results, version)
        chunks: list[tuple[list[DesignGroup], str]] = []
        planned, skipped, budget = 0, 0, limit
        data: dict[str, FamilyData] = {}
        for name, curves in curves_by_family.items():
            if curves.empty:
                continue
            tasks = config.plan(name, curves)
            planned += len(tasks)
            todo = [t for t in tasks if t.key(version) not in done]
            skipped += len(tasks) - len(todo)
            if not todo or budget == 0:
                continue
            data[name] = FamilyData.from_frame(name, curves, source_group_of.get(name))
            # one fit per distinct design; chunk_size designs per chunk sent to a worker
            groups = group_by_design(todo, data[name])
            if budget is not None:  # the limit counts designs, so a shared fit is never split
                groups, budget = groups[:budget], budget - len(groups[:budget])
            for i in range(0, len(groups), chunk_size):
                chunks.append((groups[i : i + chunk_size], name))
        total = sum(len(group.tasks) for groups, _ in chunks for group in groups)
        designs = sum(group.has_points for groups, _ in chunks for group in groups)
        fitted = failed = 0
        with tqdm(total=total, desc="meta-analysis fits", unit="fit", disable=not progress) as bar:
            for rows in _execute(chunks, data, version, n_jobs, engine, scheduler):
                frame = store.store_rows(results, rows)
                fitted += int((frame["status"] == "ok").sum())
                failed += int((frame["status"] != "ok").sum())
                bar.update(len(rows))
                if on_progress:
                    on_progress(fitted + failed, total)
    finally:
        results.close()
    return SweepReport(
        planned=planned,
        skipped=skipped,
        fitted=fitted,
        failed=failed,
        seconds=time.perf_counter() - t0,
        designs=designs,
    )


def _sweep_inputs(db_path: Path, config: SweepConfig) -> tuple[str, dict[str, pd.DataFrame], dict[str, str]]:
    """The database's data version, the curves of every family ``config`` covers (by name) and the
    families' source groups: what :func:`run_sweep` plans and :func:`planned_keys` counts."""
    con = storage.connect(db_path)
    try:
        version = storage.stored_data_version(con)
        if version is None:
            raise storage.DatabaseError(f"{db_path} records no data version; rebuild it with scaleplan data build")
        eligible = eligible_families(con)
        if config.families is None:
            names = eligible
        else:
            unknown = [f for f in config.families if f not in eligible]
            if unknown:
                raise SweepConfigError(
                    f"not a family with {ELIGIBILITY}: {', '.join(unknown)} (eligible: {', '.join(eligible)})"
                )
            names = list(config.families)
        curves_by_family = {name: storage.family_curves(con, name) for name in names}
        source_group_of = storage.family_source_groups(con)
    finally:
        con.close()
    return version, curves_by_family, source_group_of


def planned_keys(db_path: Path, config: SweepConfig | None = None) -> tuple[str, set[str]]:
    """The data version and the keys of every task the sweep of ``config`` (default: the built-in
    :class:`SweepConfig`) plans on the database at ``db_path``: what a complete sweep has stored."""
    version, curves_by_family, _ = _sweep_inputs(db_path, config or SweepConfig())
    keys = {
        task.key(version)
        for name, curves in curves_by_family.items()
        if not curves.empty
        for task in (config or SweepConfig()).plan(name, curves)
    }
    return version, keys
