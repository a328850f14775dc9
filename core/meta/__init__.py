"""Meta-analysis: how accurate are scaling-law fits on the real collection?

For every family with a loss metric and at least 4 model sizes (``config.MIN_FAMILY_SIZES``), the
target is its largest run and the sweep fits the Chinchilla law on many choices of the smaller runs
(at least 3 sizes)::

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

One module per job (this package re-exports their public names, so ``meta.X`` keeps working):
``config`` (the design space: :class:`SweepConfig`, :class:`SweepTask`, :func:`plan_tasks`),
``run`` (fitting a task or a design on one family's :class:`FamilyData`), ``engines`` (joblib or
Dask: :func:`map_tasks`), ``sweep`` (:func:`run_sweep`), ``store`` (the results file: its schema
and SQL, :func:`load_results`), ``shipped`` (the results shipped with scaleplan) and ``summaries``
(family averages, compute-share bins, :class:`SweepCounts`).
"""

from __future__ import annotations

from scaleplan.core.meta.config import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_CUTOFFS,
    DEFAULT_FRACTIONS,
    DEFAULT_WINDOW_SIZES,
    ELIGIBILITY,
    MIN_FAMILY_SIZES,
    SweepConfig,
    SweepConfigError,
    SweepTask,
    eligible_families,
    plan_tasks,
)
from scaleplan.core.meta.engines import (
    ENGINES,
    SchedulerAddressError,
    check_scheduler_address,
    dask_client,
    map_tasks,
)
from scaleplan.core.meta.run import (
    DesignGroup,
    FamilyData,
    group_by_design,
    run_design,
    run_task,
)
from scaleplan.core.meta.shipped import (
    SHIPPED_INFO,
    SHIPPED_RESULTS,
    ExportError,
    ShippedResultsError,
    existing_export,
    export_results,
    shipped_results,
    shipped_results_info,
)
from scaleplan.core.meta.store import (
    ADDED_COLUMNS,
    CHINCHILLA_COLUMNS,
    PARAMETER_COLUMNS,
    PARAMETERS_SQL,
    RESULT_COLUMNS,
    RESULTS_SQL,
    ResultsDamagedError,
    ResultsInUseError,
    load_parameters,
    load_results,
    open_results,
    parameter_rows,
)
from scaleplan.core.meta.summaries import (
    COMPUTE_SHARE_BINS,
    COMPUTE_SHARE_LABELS,
    SweepCounts,
    family_averaged,
    sweep_counts,
    with_compute_bins,
)
from scaleplan.core.meta.sweep import (
    SweepReport,
    planned_keys,
    run_sweep,
)

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_CUTOFFS",
    "DEFAULT_FRACTIONS",
    "DEFAULT_WINDOW_SIZES",
    "ELIGIBILITY",
    "MIN_FAMILY_SIZES",
    "SweepConfig",
    "SweepConfigError",
    "SweepTask",
    "eligible_families",
    "plan_tasks",
    "ENGINES",
    "SchedulerAddressError",
    "check_scheduler_address",
    "dask_client",
    "map_tasks",
    "DesignGroup",
    "FamilyData",
    "group_by_design",
    "run_design",
    "run_task",
    "SHIPPED_INFO",
    "SHIPPED_RESULTS",
    "ExportError",
    "ShippedResultsError",
    "existing_export",
    "export_results",
    "shipped_results",
    "shipped_results_info",
    "ADDED_COLUMNS",
    "CHINCHILLA_COLUMNS",
    "PARAMETERS_SQL",
    "PARAMETER_COLUMNS",
    "RESULTS_SQL",
    "RESULT_COLUMNS",
    "ResultsDamagedError",
    "ResultsInUseError",
    "load_parameters",
    "load_results",
    "open_results",
    "parameter_rows",
    "COMPUTE_SHARE_BINS",
    "COMPUTE_SHARE_LABELS",
    "SweepCounts",
    "family_averaged",
    "sweep_counts",
    "with_compute_bins",
    "SweepReport",
    "planned_keys",
    "run_sweep",
]
