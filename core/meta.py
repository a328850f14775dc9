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
Dask (``engine="dask"``; pass a scheduler address to run on an existing cluster). The design
space is a :class:`SweepConfig` (from a TOML/JSON file with ``scaleplan meta run --config``).
Each family is read from DuckDB and shaped into arrays once (:class:`FamilyData`), so a
task costs little more than its fit; :func:`map_tasks` spreads any other per-item work
(e.g. a leave-one-family-out evaluation) over the same engines.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import calibration, fitting, laws, storage
from scaleplan.core.errors import UserError
from scaleplan.core.evaluation import absolute_relative_error, target_checkpoints
from scaleplan.core.selection import (
    DEFAULT_MIN_TOKENS,
    MIN_SIZES_TO_SWEEP,
    FamilyCurves,
    FitPoints,
    Selection,
    SelectionError,
    select_points,
    target_of,
    unique_tokens_of,
)

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DEFAULT_CHECKPOINTS = (False, True)  # final_only: all intermediate checkpoints, then final losses only
DEFAULT_CUTOFFS = (DEFAULT_MIN_TOKENS, 0.0)
DEFAULT_WINDOW_SIZES = (3, 4, 6, 8, 12, 16, 24, 32)

RESULTS_SQL = """
CREATE TABLE IF NOT EXISTS sweep_results (
    key VARCHAR PRIMARY KEY, data_version VARCHAR, family VARCHAR, target_run VARCHAR,
    target_params DOUBLE, num_runs INTEGER, max_params_used DOUBLE, min_params_used DOUBLE,
    fraction DOUBLE, final_only BOOLEAN, min_tokens DOUBLE, objective VARCHAR,
    run_ids VARCHAR, n_points INTEGER, status VARCHAR, message VARCHAR,
    E DOUBLE, A DOUBLE, B DOUBLE, alpha DOUBLE, beta DOUBLE,
    predicted_final DOUBLE, actual_final DOUBLE, are_final DOUBLE, are_mean DOUBLE,
    compute_share DOUBLE, fit_seconds DOUBLE,
    num_sizes INTEGER, target_tokens DOUBLE, fit_log_rmse DOUBLE, source_group VARCHAR)
"""
# Columns added after the first release of the table, for core.calibration: appended to an older
# results file on open (ALTER TABLE keeps column order = RESULT_COLUMNS); its ok rows that lack
# them are refitted by the next sweep.
# source_group (core.sources.source_group of the family's adapter) is filled in for stored rows without
# refitting (:func:`run_sweep`).
# ``law`` is the fitted law's name (NULL in files written before it: those rows are Chinchilla's).
ADDED_COLUMNS = (
    ("num_sizes", "INTEGER"),
    ("target_tokens", "DOUBLE"),
    ("fit_log_rmse", "DOUBLE"),
    ("source_group", "VARCHAR"),
    ("law", "VARCHAR"),
)
# Every fitted row's parameters, whatever its law: one row per (task key, parameter). The wide
# columns E, A, B, alpha, beta of sweep_results hold the Chinchilla law's only (what the
# calibration and the findings read); other laws' rows leave them NULL.
PARAMETERS_SQL = """
CREATE TABLE IF NOT EXISTS sweep_parameters (
    key VARCHAR, law VARCHAR, name VARCHAR, value DOUBLE, PRIMARY KEY (key, name))
"""
PARAMETER_COLUMNS = ("key", "law", "name", "value")
CHINCHILLA_COLUMNS = ("E", "A", "B", "alpha", "beta")
RESULT_COLUMNS = (
    "key",
    "data_version",
    "family",
    "target_run",
    "target_params",
    "num_runs",
    "max_params_used",
    "min_params_used",
    "fraction",
    "final_only",
    "min_tokens",
    "objective",
    "run_ids",
    "n_points",
    "status",
    "message",
    "E",
    "A",
    "B",
    "alpha",
    "beta",
    "predicted_final",
    "actual_final",
    "are_final",
    "are_mean",
    "compute_share",
    "fit_seconds",
    "num_sizes",
    "target_tokens",
    "fit_log_rmse",
    "source_group",
    "law",
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
    law: str = "chinchilla"

    def key(self, data_version: str) -> str:
        fields = asdict(self)
        if fields["law"] == "chinchilla":
            del fields["law"]  # Chinchilla's keys are those of the tasks before laws were named
        payload = json.dumps({**fields, "data_version": data_version}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()

    def selection(self) -> Selection:
        """The points this task fits: its runs, the token fraction, final-only and the cutoff."""
        return Selection(
            run_ids=self.run_ids, fraction=self.fraction, final_only=self.final_only, min_tokens=self.min_tokens
        )


class SweepConfigError(UserError, ValueError):
    """A sweep configuration file is unreadable or names invalid values."""


_CHECKPOINT_RULES = {"all": False, "final": True}


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SweepConfig:
    """The sweep's design space: which families and which designs of each.

    Every field has the built-in sweep's default, so a file only names what it changes.
    ``checkpoints`` holds rules: ``"all"`` (every intermediate checkpoint) and/or
    ``"final"`` (each run's final checkpoint only). ``cutoffs`` are token counts: checkpoints
    at or below them are dropped (0 keeps all). ``window_sizes`` are the numbers of
    consecutive model sizes k (at least 3) in a window; ``all_sizes`` adds the window of
    every size up to its end; ``max_windows_end`` caps how many window ends a family gets.
    """

    families: tuple[str, ...] | None = None  # None: every eligible family
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    checkpoints: tuple[str, ...] = ("all", "final")
    cutoffs: tuple[float, ...] = DEFAULT_CUTOFFS
    window_sizes: tuple[int, ...] = DEFAULT_WINDOW_SIZES
    all_sizes: bool = True
    max_windows_end: int = 6
    objective: str = "huber"
    law: str = "chinchilla"  # any of core.laws.loss_laws()

    def plan(self, family: str, curves: pd.DataFrame) -> list[SweepTask]:
        return plan_tasks(
            family,
            curves,
            fractions=self.fractions,
            checkpoints=tuple(_CHECKPOINT_RULES[c] for c in self.checkpoints),
            cutoffs=self.cutoffs,
            max_windows_end=self.max_windows_end,
            window_sizes=self.window_sizes,
            all_sizes=self.all_sizes,
            objective=self.objective,
            law=self.law,
        )

    @classmethod
    def from_mapping(cls, raw: object, source: str = "the sweep configuration") -> SweepConfig:
        """Validate a parsed TOML/JSON object; every problem is a :class:`SweepConfigError`."""
        if not isinstance(raw, dict):
            raise SweepConfigError(f"{source} must be a table/object of settings, got {type(raw).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SweepConfigError(
                f"{source}: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}

        def items(
            name: str, convert: Callable[[Any], object], check: Callable[[object], bool], rule: str
        ) -> tuple[object, ...]:
            value = raw[name]
            if not isinstance(value, list) or not value:
                raise SweepConfigError(f"{source}: {name} must be a non-empty list, got {value!r}")
            for item in value:
                if not check(item):
                    raise SweepConfigError(f"{source}: every entry of {name} must be {rule}, got {item!r}")
            return tuple(dict.fromkeys(convert(item) for item in value))

        if "families" in raw:
            values["families"] = items(
                "families", str, lambda v: isinstance(v, str) and bool(v.strip()), "a family name"
            )
        if "fractions" in raw:
            values["fractions"] = items(
                "fractions", float, lambda v: _is_number(v) and 0 < v <= 1, "a share of training in (0, 1]"
            )
        if "checkpoints" in raw:
            values["checkpoints"] = items(
                "checkpoints", str, lambda v: isinstance(v, str) and v in _CHECKPOINT_RULES, '"all" or "final"'
            )
        if "cutoffs" in raw:
            values["cutoffs"] = items(
                "cutoffs", float, lambda v: _is_number(v) and 0 <= v < float("inf"), "a token count >= 0"
            )
        if "window_sizes" in raw:
            values["window_sizes"] = items(
                "window_sizes", int, lambda v: _is_integer(v) and 3 <= v <= 10_000, "a whole number of model sizes >= 3"
            )
        if "all_sizes" in raw:
            if not isinstance(raw["all_sizes"], bool):
                raise SweepConfigError(f"{source}: all_sizes must be true or false, got {raw['all_sizes']!r}")
            values["all_sizes"] = raw["all_sizes"]
        if "max_windows_end" in raw:
            v = raw["max_windows_end"]
            if not (_is_integer(v) and 1 <= v <= 10_000):
                raise SweepConfigError(f"{source}: max_windows_end must be a whole number >= 1, got {v!r}")
            values["max_windows_end"] = v
        if "objective" in raw:
            if raw["objective"] not in ("huber", "least_squares"):
                raise SweepConfigError(
                    f'{source}: objective must be "huber" or "least_squares", got {raw["objective"]!r}'
                )
            values["objective"] = raw["objective"]
        if "law" in raw:
            if raw["law"] not in laws.loss_laws():
                raise SweepConfigError(
                    f"{source}: law must be one of {', '.join(map(repr, laws.loss_laws()))}, got {raw['law']!r}"
                )
            values["law"] = raw["law"]
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SweepConfig:
        """Read a ``.toml`` or ``.json`` file (see the README's "Scale-out with Dask")."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SweepConfigError(f"cannot read sweep configuration {path}: {error}") from None
        if path.suffix.lower() == ".toml":
            import tomllib

            try:
                raw = tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                raise SweepConfigError(f"{path} is not valid TOML: {error}") from None
            raw = raw.get("sweep", raw) if isinstance(raw.get("sweep"), dict) and len(raw) == 1 else raw
        elif path.suffix.lower() == ".json":
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as error:
                raise SweepConfigError(f"{path} is not valid JSON: {error}") from None
        else:
            raise SweepConfigError(f"sweep configuration must be a .toml or .json file, got {path.name!r}")
        return cls.from_mapping(raw, source=str(path))


def eligible_families(con: duckdb.DuckDBPyConnection, min_sizes: int = MIN_SIZES_TO_SWEEP) -> list[str]:
    """Families whose default metric is a loss and that have at least ``min_sizes`` sizes (the sweep's)."""
    return storage.loss_families(con, min_sizes)


def plan_tasks(
    family: str,
    curves: pd.DataFrame,
    *,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    checkpoints: Iterable[bool] = DEFAULT_CHECKPOINTS,
    cutoffs: Iterable[float] = DEFAULT_CUTOFFS,
    max_windows_end: int = 6,
    window_sizes: Iterable[int] = DEFAULT_WINDOW_SIZES,
    all_sizes: bool = True,
    objective: str = "huber",
    law: str = "chinchilla",
) -> list[SweepTask]:
    """The sweep's tasks for one family: windows of model sizes below the target x options.

    Sizes below the target are sorted; a window is every run whose size lies among the k
    consecutive sizes ending at the j-th one (k >= 3: three sizes are the least that identify
    E, A and alpha; runs of equal size, e.g. seeds or token budgets, come together). To keep large
    families affordable, j takes at most ``max_windows_end`` values spread over the sizes
    (always the largest) and k takes ``window_sizes`` (3, 4, 6, 8, ...) and, with
    ``all_sizes``, "all sizes up to j".
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
        ks = sorted({k for k in window_sizes if 3 <= k <= end + 1} | ({end + 1} if all_sizes else set()))
        for k in ks:
            lo, hi = sizes[end + 1 - k], sizes[end]
            windows.append(tuple(sorted(pool[(pool >= lo) & (pool <= hi)].index)))
    windows = list(dict.fromkeys(windows))
    return [
        SweepTask(family, window, float(p), bool(final), float(cut), objective, law)
        for window in windows
        for p in fractions
        for final in checkpoints
        for cut in cutoffs
    ]


@dataclass(frozen=True, eq=False)
class FamilyData:
    """One family's data, selected from DuckDB and shaped into NumPy arrays once per sweep.

    ``curves`` is the selection-ready :class:`FamilyCurves`; the target (the largest run)
    and its checkpoints in the last 30% of training (where ARE is averaged, see
    :mod:`core.evaluation`) are worked out here once instead of once per design.
    """

    family: str
    curves: FamilyCurves
    target_run: str
    target_params: float
    target_num_params: np.ndarray  # the target's evaluated checkpoints
    target_tokens: np.ndarray
    target_loss: np.ndarray
    source_group: str | None = None  # core.sources.source_group of the family's adapter
    unique_by_run: Mapping[str, float] | None = None  # unique tokens of each run, where the family states them

    def unique_tokens(self, run_ids: np.ndarray) -> np.ndarray | None:
        """Unique tokens of each run in ``run_ids`` (NaN where unknown), None if the family has none."""
        if self.unique_by_run is None:
            return None
        return np.array([self.unique_by_run.get(str(r), np.nan) for r in run_ids], dtype=float)

    @classmethod
    def from_frame(cls, family: str, curves: pd.DataFrame, source_group: str | None = None) -> FamilyData:
        prepared = FamilyCurves.from_frame(curves)
        target = target_of(prepared)
        last = target_checkpoints(curves, target)
        runs = curves["run_id"].drop_duplicates().to_numpy(dtype=object)
        unique = unique_tokens_of(curves, runs)
        return cls(
            family=family,
            curves=prepared,
            target_run=target,
            target_params=float(last["num_params"].iloc[0]),
            target_num_params=last["num_params"].to_numpy(dtype=float),
            target_tokens=last["tokens_seen"].to_numpy(dtype=float),
            target_loss=last["value"].to_numpy(dtype=float),
            source_group=source_group,
            unique_by_run=None if unique is None else dict(zip(map(str, runs), unique.tolist())),
        )


class DesignGroup(NamedTuple):
    """Tasks that select the same design: fitted once (:func:`run_design`).

    ``has_points`` is False for a task whose selection fails (no fit runs; a group of its own).
    """

    tasks: tuple[SweepTask, ...]
    has_points: bool


def group_by_design(tasks: Iterable[SweepTask], data: FamilyData) -> list[DesignGroup]:
    """Tasks grouped by the design they select: same points, in the same order, same objective.

    About half of the grid's tasks select a design another task already selected (a fraction
    or a cutoff that drops no checkpoint of the window, a window whose extra run has no
    checkpoint left). The fitter is deterministic, so a design is fitted once and its
    outcome shared (:func:`run_design`). A task whose selection fails is a group of its own.
    Groups keep the tasks' first-seen order.
    """
    groups: dict[bytes | SweepTask, list[SweepTask]] = {}
    for task in tasks:
        try:
            points = select_points(data.curves, task.selection())
        except SelectionError:
            signature: bytes | SweepTask = task  # no design: a group of its own
        else:
            digest = hashlib.sha1(f"{task.objective}\x1f{task.law}".encode())
            for array in (points.num_params, points.tokens_seen, points.loss):
                digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
            digest.update("\x1f".join(map(str, points.run_ids)).encode())
            signature = digest.digest()
        groups.setdefault(signature, []).append(task)
    return [DesignGroup(tuple(group), isinstance(key, bytes)) for key, group in groups.items()]


def run_design(tasks: Sequence[SweepTask], data: FamilyData, data_version: str) -> list[dict[str, Any]]:
    """One row per task of a group that selects the same design, fitted once.

    The first task's row is :func:`run_task`'s; the others copy its fit and scores and keep
    their own task fields. ``fit_seconds`` is the time spent: the first row's, 0 for the copies.
    """
    first = run_task(tasks[0], data, data_version)
    return [first] + [{**first, **_task_fields(task, data_version), "fit_seconds": 0.0} for task in tasks[1:]]


def _task_fields(task: SweepTask, data_version: str) -> dict[str, Any]:
    """The fields of a result row that describe the task rather than the fitted design."""
    return dict(
        key=task.key(data_version),
        data_version=data_version,
        family=task.family,
        num_runs=len(task.run_ids),
        fraction=task.fraction,
        final_only=task.final_only,
        min_tokens=task.min_tokens,
        objective=task.objective,
        run_ids=json.dumps(task.run_ids),
        law=task.law,
    )


def run_task(task: SweepTask, curves: pd.DataFrame | FamilyData, data_version: str) -> dict[str, Any]:
    """Fit one task; a failed fit is a row with its status and message (never an exception).

    Same protocol as :func:`core.analysis.analyse` with the default target (select, fit,
    ARE over the target's last 30%), on data prepared once per family.
    """
    data = curves if isinstance(curves, FamilyData) else FamilyData.from_frame(task.family, curves)
    row = {**{c: None for c in RESULT_COLUMNS}, **_task_fields(task, data_version), "source_group": data.source_group}
    t0 = time.perf_counter()
    try:
        points = select_points(data.curves, task.selection())
        unique = data.unique_tokens(points.run_ids)
        fit = fitting.fit(
            task.law,
            laws.standard_inputs(points.num_params, points.tokens_seen, unique),
            points.loss,
            run_ids=points.run_ids,
            objective=task.objective,
        )
        target_unique = data.unique_tokens(np.array([data.target_run], dtype=object))
        predicted = np.asarray(fit.predict_at(data.target_num_params, data.target_tokens, target_unique), dtype=float)
        if not (np.isfinite(predicted[-1]) and predicted[-1] > 0):
            raise fitting.DegenerateFitError(f"the fit predicts a non-physical loss ({predicted[-1]}) for the target")
    except (SelectionError, fitting.FitError) as error:
        row.update(status=type(error).__name__, message=str(error)[:300])
    else:
        are = absolute_relative_error(predicted, data.target_loss)
        target_compute = float(laws.compute_from(data.target_num_params[-1], data.target_tokens[-1]))
        row.update(
            status="ok",
            message="",
            target_run=data.target_run,
            target_params=data.target_params,
            n_points=len(points),
            max_params_used=float(points.num_params.max()),
            min_params_used=float(points.num_params.min()),
            **(dict(fit.params) if task.law == "chinchilla" else {}),
            parameters=dict(fit.params),
            predicted_final=float(predicted[-1]),
            actual_final=float(data.target_loss[-1]),
            are_final=float(are[-1]),
            are_mean=float(np.mean(are)),
            compute_share=float(points.compute_flops / target_compute),
            num_sizes=int(np.unique(points.num_params).size),
            target_tokens=float(data.target_tokens[-1]),
            fit_log_rmse=_log_rmse(fit, points, unique),
        )
    row["fit_seconds"] = time.perf_counter() - t0
    return row


def _log_rmse(fit: fitting.FitResult, points: FitPoints, unique_tokens: np.ndarray | None = None) -> float:
    """Root mean square of log(L_fit / L_obs) over the fitted points (dimensionless)."""
    return calibration.log_rmse(fit.predict_at(points.num_params, points.tokens_seen, unique_tokens), points.loss)


def _run_chunk(groups: list[DesignGroup], data: FamilyData, data_version: str) -> list[dict[str, Any]]:
    return [row for group in groups for row in run_design(group.tasks, data, data_version)]


def open_results(meta_path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    meta_path = Path(meta_path)
    if read_only:
        return duckdb.connect(str(meta_path), read_only=True)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(meta_path))
    con.execute(RESULTS_SQL)
    for name, kind in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE sweep_results ADD COLUMN IF NOT EXISTS {name} {kind}")
    con.execute(PARAMETERS_SQL)
    return con


def parameter_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The long table (key, law, name, value) of the fitted parameters of result rows from :func:`run_task`."""
    long = [
        (row["key"], row["law"], name, float(value))
        for row in rows
        for name, value in (row.get("parameters") or {}).items()
    ]
    return pd.DataFrame(long, columns=list(PARAMETER_COLUMNS))


def load_parameters(meta_path: Path, data_version: str | None = None, *, shipped: bool = True) -> pd.DataFrame:
    """Fitted parameters of the stored rows as a long table (key, law, name, value).

    Rows stored without it (the shipped results, files written before laws were named) are
    Chinchilla fits: their parameters are read from the wide columns E, A, B, alpha, beta.
    """
    results = load_results(meta_path, data_version, shipped=shipped)
    stored = pd.DataFrame(columns=list(PARAMETER_COLUMNS))
    if Path(meta_path).exists() and not results.empty:
        con = open_results(meta_path, read_only=True)
        try:
            try:
                stored = con.execute("SELECT key, law, name, value FROM sweep_parameters").df()
            except duckdb.CatalogException:  # a file written before the table existed
                pass
        finally:
            con.close()
    stored = stored[stored["key"].isin(results["key"])]
    ok = results[(results["status"] == "ok") & ~results["key"].isin(stored["key"])]
    legacy = ok[["key", *CHINCHILLA_COLUMNS]].melt(id_vars="key", var_name="name", value_name="value")
    legacy.insert(1, "law", "chinchilla")
    return pd.concat([stored, legacy.dropna(subset=["value"])], ignore_index=True)


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
                    f"not a family with a loss metric and at least {MIN_SIZES_TO_SWEEP} model sizes: {', '.join(unknown)} "
                    f"(eligible: {', '.join(eligible)})"
                )
            names = list(config.families)
        curves_by_family = {name: storage.family_curves(con, name) for name in names}
        source_group_of = storage.family_source_groups(con)
    finally:
        con.close()
    results = open_results(meta_path)
    try:
        for name in names:  # rows stored before the column existed: the group is the family's, no refit
            results.execute(
                "UPDATE sweep_results SET source_group = ? WHERE family = ? AND source_group IS NULL",
                [source_group_of.get(name), name],
            )
        done = {
            r[0]
            for r in results.execute(
                "SELECT key FROM sweep_results WHERE data_version = ? AND (status <> 'ok' OR num_sizes IS NOT NULL)",
                [version],
            ).fetchall()
        }
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
                frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
                results.register("new_rows", frame)
                results.execute("BEGIN TRANSACTION")
                results.execute("INSERT OR REPLACE INTO sweep_results SELECT * FROM new_rows")
                results.register("new_parameters", parameter_rows(rows))
                results.execute("INSERT OR REPLACE INTO sweep_parameters SELECT * FROM new_parameters")
                results.execute("COMMIT")
                results.unregister("new_rows")
                results.unregister("new_parameters")
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


ENGINES = ("joblib", "dask")


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on the cluster at ``scheduler``, else on a local cluster.

    A local cluster runs ``n_workers`` (default: one per core) single-threaded worker
    processes on the loopback interface and is closed on exit; a remote cluster is left up.
    """
    from dask.distributed import Client, LocalCluster  # the "cluster" and "test" extras

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    with (
        LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def map_tasks(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    engine: str = "joblib",
    n_jobs: int = -1,
    scheduler: str | None = None,
    shared: Mapping[str, object] | None = None,
) -> list[Any]:
    """``[fn(item, **shared) for item in items]``, on local cores or a Dask cluster, in order.

    ``fn`` must be importable by the workers (a module-level function) and deterministic for
    the engines to agree. ``shared`` keyword arguments (e.g. a large table every item needs)
    are sent to each worker once rather than with every item. ``engine="joblib"`` runs on
    ``n_jobs`` local processes (1: in this process); ``engine="dask"`` on the cluster at
    ``scheduler`` (``tcp://host:8786``), or on a local cluster when none is given. Exceptions
    raised by ``fn`` propagate.
    """
    items = list(items)
    shared = dict(shared or {})
    if engine == "dask":
        with dask_client(scheduler) as client:
            scattered = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
            futures = client.map(fn, items, pure=False, **scattered)
            gathered: list[Any] = client.gather(futures)
            return gathered
    if engine != "joblib":
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if n_jobs == 1:
        return [fn(item, **shared) for item in items]
    from joblib import Parallel, delayed

    results: list[Any] = Parallel(n_jobs=n_jobs)(delayed(fn)(item, **shared) for item in items)
    return results


def _execute(
    chunks: Sequence[tuple[list[DesignGroup], str]],
    data: Mapping[str, FamilyData],
    version: str,
    n_jobs: int | None,
    engine: str,
    scheduler: str | None,
) -> Iterator[list[dict[str, Any]]]:
    if engine == "dask":
        from dask.distributed import as_completed

        with dask_client(scheduler, None if n_jobs in (None, -1) else n_jobs) as client:
            scattered = {name: client.scatter(family, broadcast=True) for name, family in data.items()}
            futures = [client.submit(_run_chunk, tasks, scattered[name], version, pure=False) for tasks, name in chunks]
            for future in as_completed(futures):
                yield future.result()
        return
    if engine != "joblib":
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    from joblib import Parallel, delayed

    if n_jobs == 1:
        for tasks, name in chunks:
            yield _run_chunk(tasks, data[name], version)
        return
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from parallel(delayed(_run_chunk)(tasks, data[name], version) for tasks, name in chunks)


# ---------------------------------------------------------------------------------------------
# Reading the results


def load_results(meta_path: Path, data_version: str | None = None, *, shipped: bool = True) -> pd.DataFrame:
    """All stored rows (of one data version if given); empty frame if nothing is stored.

    When ``meta_path`` holds no row of ``data_version`` and ``shipped`` is true, the results
    shipped with scaleplan (:func:`shipped_results`) are returned if they were computed for
    that same data version: the dashboard and the CLI are ready on a fresh machine, and a sweep
    of the user's own (``scaleplan meta run``) takes precedence once it exists.
    """
    frame = pd.DataFrame(columns=list(RESULT_COLUMNS))
    if Path(meta_path).exists():
        con = open_results(meta_path, read_only=True)
        try:
            frame = con.execute(
                "SELECT * FROM sweep_results WHERE ?::VARCHAR IS NULL OR data_version = ?", [data_version, data_version]
            ).df()
        finally:
            con.close()
    if frame.empty and shipped and data_version is not None:
        return shipped_results(data_version)
    return _with_law(frame)


# --------------------------------------------------------------------------- shipped results
#: The full sweep's results ship as package data of ``scaleplan.data``, pinned by the sha256 in
#: SHIPPED_INFO (with the data version they were computed for and the command that made them).
SHIPPED_RESULTS = "sweep_results.parquet"
SHIPPED_INFO = "sweep_results.json"


class ShippedResultsError(RuntimeError):
    """The shipped sweep results do not match their pinned checksum."""


def _shipped_file(name: str) -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("scaleplan.data").joinpath(name)))


def shipped_results_info() -> dict[str, Any] | None:
    """The pin of the shipped results: ``data_version``, ``sha256``, ``rows``, ``fitted``, ``command``."""
    path = _shipped_file(SHIPPED_INFO)
    return json.loads(path.read_text()) if path.is_file() else None


def shipped_results(data_version: str) -> pd.DataFrame:
    """The shipped sweep rows if they were computed for ``data_version``; else an empty frame.

    The file's sha256 is checked against its pin first: a modified file raises
    :class:`ShippedResultsError` rather than feeding wrong numbers to the calibration.
    """
    info = shipped_results_info()
    path = _shipped_file(SHIPPED_RESULTS)
    if info is None or info.get("data_version") != data_version or not path.is_file():
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    if hashlib.sha256(path.read_bytes()).hexdigest() != info["sha256"]:
        raise ShippedResultsError(
            f"the shipped sweep results {path} do not match their pinned sha256; "
            "reinstall scaleplan or run `scaleplan meta run`"
        )
    con = duckdb.connect()
    try:
        frame = con.execute("SELECT * FROM read_parquet(?) WHERE data_version = ?", [str(path), data_version]).df()
    finally:
        con.close()
    return _with_law(frame[[c for c in RESULT_COLUMNS if c in frame.columns]])


def _with_law(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows stored before laws were named (no or a NULL ``law``) are Chinchilla fits."""
    frame = frame.copy()
    frame["law"] = frame["law"].fillna("chinchilla") if "law" in frame.columns else "chinchilla"
    return frame


def export_results(
    meta_path: Path, data_version: str, dest_dir: Path, *, content_digests: dict[str, str] | None = None
) -> dict[str, Any]:
    """Write the stored rows of ``data_version`` as the shippable artifact and its pin into ``dest_dir``.

    ``scaleplan meta export --to data`` after a full ``scaleplan meta run`` recomputes what ships.
    The pin records the database's per-source ``content_digests`` (a test compares them with a
    fresh build: an adapter whose output changed without a new ``VERSION`` fails it) and the
    Python/NumPy/SciPy versions the fits ran on (fitted minima move slightly between them).
    """
    frame = load_results(meta_path, data_version, shipped=False)
    if frame.empty:
        raise ValueError(f"no stored results of data version {data_version[:12]} in {meta_path}")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / SHIPPED_RESULTS
    frame.sort_values("key").reset_index(drop=True).to_parquet(target, compression="zstd", index=False)
    info = {
        "data_version": data_version,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "rows": int(len(frame)),
        "fitted": int((frame["status"] == "ok").sum()),
        "command": "scaleplan meta run --jobs 2 && scaleplan meta export --to data",
        "content_digests": dict(sorted((content_digests or {}).items())),
        "environment": _environment(),
    }
    (dest_dir / SHIPPED_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info


def _environment() -> dict[str, str]:
    import platform

    import scipy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}


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


@dataclass(frozen=True)
class SweepCounts:
    """Headline counts of a sweep's rows; every page that states them uses this one definition."""

    fits: int  # rows (tasks) in the sweep, successful or not
    succeeded: int  # rows with status "ok"
    families: int  # families with at least one successful fit (the ones any average is over)
    families_tried: int  # families with at least one row


def sweep_counts(results: pd.DataFrame) -> SweepCounts:
    """Fits, successful fits and families of the sweep ``results`` (rows of :func:`load_results`)."""
    ok = results[results["status"] == "ok"]
    return SweepCounts(
        fits=int(len(results)),
        succeeded=int(len(ok)),
        families=int(ok["family"].nunique()),
        families_tried=int(results["family"].nunique()),
    )
