"""Budget planning: what a study of small runs costs, what it buys, and how to train the target.

Pure functions (NumPy/pandas only), used by the dashboard's budget planner and the CLI.

Units: N (``num_params``) in parameters, D (``tokens``) in tokens, C (``*_flops``) in FLOPs
with the dense-transformer estimate C = 6 N D, money in US dollars, time in GPU-hours.

* **GPU cost model.** A GPU delivers ``peak_flops_per_gpu * mfu`` useful FLOP/s (model FLOPs
  utilisation, MFU, is the share of the peak a real training run achieves; 35-45% is usual for
  dense transformers on H100s), so

      FLOPs     = gpu_hours * 3600 * peak_flops_per_gpu * mfu
      gpu_hours = dollars / dollars_per_gpu_hour

  :func:`study_compute_budget` goes from money or GPU-hours to FLOPs and
  :func:`compute_cost` back.
* **Study designs.** :func:`study_designs` spans a real design space (sizes up to a sensible
  share of the target; tokens by a fixed tokens-per-parameter, a fraction of the target's tokens
  or an isoFLOP grid; seeds; runs kept inside the collection's tokens-per-parameter range).
  :func:`plan_study` prices each design, asks the calibrated error model
  (:class:`core.calibration.Calibration`) for the median, 80th and 90th percentile of ARE and
  picks the cheapest design whose 80th percentile meets the goal within the budget
  (:func:`choose`), returning a typed :class:`StudyPlan`.
* **Compute-optimal allocation.** :func:`compute_optimal_table` gives N*, D* under several
  laws (published: :data:`HOFFMANN2022`, :data:`BESIROGLU2024`; fitted ones via
  :func:`fitted_law`), each with an interval from its parameter uncertainty, and
  :func:`disagreement_warning` says when they differ by more than 2x.
* **Over-training.** :func:`overtraining_tradeoff` shows, at a fixed training budget C, what
  training a smaller model for longer (token multiplier M = D / N) costs in loss and downstream
  error and saves at inference (2 N FLOPs per generated token); :func:`summarise_overtraining`
  places the target on it under the selected law.
* :func:`recommendation` turns the typed results into a few plain sentences.

One module per job (this package re-exports their public names, so ``planning.X`` keeps working):
``inputs`` (limits, :class:`PlanningError`, input checks), ``cost`` (the GPU cost model), ``designs``
(the design space), ``assessment`` (expected ARE, the pick, :class:`StudyPlan`), ``candidates`` (runs
you enter), ``next_rung`` (what to add to a stored study), ``seeds``, ``reference`` (published and
fitted laws, compute-optimal allocation), ``overtraining`` and ``recommendation`` (the plain text).
"""

from __future__ import annotations

from scaleplan.core.planning.assessment import (
    AREModel,
    AssessedDesign,
    ExpectedARE,
    StudyPlan,
    assess_designs,
    choose,
    pareto_frontier,
    plan_study,
)
from scaleplan.core.planning.candidates import (
    MAX_CANDIDATE_RUNS,
    MAX_RUN_SEEDS,
    RUN_COLUMNS,
    assess_candidate,
    candidate_design,
    design_runs,
    read_runs_file,
)
from scaleplan.core.planning.cost import (
    ComputeCost,
    CostModel,
    compute_cost,
    cost_model_problems,
    study_compute_budget,
    training_flops,
)
from scaleplan.core.planning.designs import (
    COMPUTE_OPTIMAL_MULTIPLIER,
    CUSTOM_RULE,
    DEFAULT_ISOFLOP_GRIDS,
    DEFAULT_MAX_SIZE_SHARE,
    DEFAULT_MIN_SIZE,
    DEFAULT_NUM_RUNS,
    DEFAULT_PARTIAL_TARGET_FRACTIONS,
    DEFAULT_SEEDS,
    DEFAULT_SIZE_SPANS,
    DEFAULT_TARGET_FRACTIONS,
    DEFAULT_TOKENS_PER_PARAM,
    DEFAULT_TPP_RANGE,
    ISOFLOP_BUDGET_STEP,
    ISOFLOP_SIZE_SPREAD,
    PARTIAL_TARGET_REFUSAL,
    PARTIAL_TARGET_RULE,
    TOKEN_RULES,
    StudyDesign,
    collection_tokens_per_param,
    study_designs,
)
from scaleplan.core.planning.inputs import (
    DEFAULT_DOLLARS_PER_GPU_HOUR,
    DEFAULT_MFU,
    DEFAULT_MFU_PERCENT,
    FLOPS_PER_PARAM_TOKEN,
    H100_BF16_DENSE_FLOPS,
    MAX_DOLLARS,
    MAX_FLOPS,
    MAX_GPU_HOURS,
    MAX_PARAMS,
    MAX_PEAK_FLOPS,
    MAX_PRICE,
    MAX_TOKENS,
    MIN_COUNT,
    MIN_MFU,
    MIN_PEAK_FLOPS,
    MIN_PRICE,
    SECONDS_PER_HOUR,
    PlanningError,
    parse_quantity,
)
from scaleplan.core.planning.next_rung import (
    NEXT_BUDGET_FACTORS,
    NEXT_BUDGET_SIZES,
    NEXT_SIZE_FACTORS,
    NextRung,
    RungAddition,
    next_rung,
    next_rung_text,
    study_design,
)
from scaleplan.core.planning.overtraining import (
    DEFAULT_MULTIPLIERS,
    INFERENCE_CHANGE,
    INFERENCE_FLOPS_PER_PARAM_TOKEN,
    MAX_MULTIPLIER,
    OvertrainingSummary,
    inference_change_text,
    multiplier_text,
    overtraining_choice,
    overtraining_or_reason,
    overtraining_tradeoff,
    summarise_overtraining,
)
from scaleplan.core.planning.recommendation import (
    BUDGET_EXCESS_REMARK,
    PLANNER_HELD_OUT,
    PLANNER_HELD_OUT_WORST,
    STUDY_SHARE_REMARK,
    UNSPENT_SHARE,
    budget_remarks,
    plain_accuracy,
    recommendation,
    refusal_counts,
    refusal_text,
    support_text,
)
from scaleplan.core.planning.reference import (
    BESIROGLU2024,
    BESIROGLU2024_SE,
    CHINCHILLA_NAMES,
    DEFAULT_LAW,
    DEFAULT_LAW_BOOT,
    DEFAULT_LAW_REASON,
    DISAGREEMENT_FACTOR,
    FAMILY_LAW_COVERAGE,
    FAMILY_LAW_PREFIX,
    GADRE_LAWS,
    HOFFMANN2022,
    INTERVAL_LEVEL,
    N_INTERVAL_SAMPLES,
    PUBLISHED_INTERVAL_SOURCE,
    PUBLISHED_LAWS,
    ComputeOptimal,
    ReferenceLaw,
    all_laws,
    collection_laws,
    compute_optimal_table,
    disagreement,
    disagreement_warning,
    family_law,
    family_law_coverage_text,
    fitted_law,
    optimal_allocation,
    published_law,
)
from scaleplan.core.planning.seeds import (
    SEEDS_NOTE,
    SeedEvidence,
    seed_evidence,
)

__all__ = [
    "PlanningError",
    "H100_BF16_DENSE_FLOPS",
    "DEFAULT_DOLLARS_PER_GPU_HOUR",
    "DEFAULT_MFU",
    "MAX_FLOPS",
    "ComputeCost",
    "CostModel",
    "study_compute_budget",
    "cost_model_problems",
    "compute_cost",
    "training_flops",
    "parse_quantity",
    "TOKEN_RULES",
    "StudyDesign",
    "study_designs",
    "CUSTOM_RULE",
    "candidate_design",
    "read_runs_file",
    "design_runs",
    "assess_candidate",
    "RungAddition",
    "NextRung",
    "study_design",
    "next_rung",
    "next_rung_text",
    "SeedEvidence",
    "seed_evidence",
    "collection_tokens_per_param",
    "ExpectedARE",
    "AssessedDesign",
    "StudyPlan",
    "assess_designs",
    "pareto_frontier",
    "choose",
    "plan_study",
    "overtraining_tradeoff",
    "overtraining_choice",
    "OvertrainingSummary",
    "summarise_overtraining",
    "MAX_MULTIPLIER",
    "INFERENCE_CHANGE",
    "inference_change_text",
    "multiplier_text",
    "overtraining_or_reason",
    "HOFFMANN2022",
    "BESIROGLU2024",
    "BESIROGLU2024_SE",
    "DEFAULT_LAW",
    "DEFAULT_LAW_REASON",
    "ReferenceLaw",
    "published_law",
    "fitted_law",
    "ComputeOptimal",
    "optimal_allocation",
    "compute_optimal_table",
    "disagreement",
    "disagreement_warning",
    "recommendation",
    "refusal_counts",
    "refusal_text",
    "support_text",
    "plain_accuracy",
    "PLANNER_HELD_OUT",
    "PLANNER_HELD_OUT_WORST",
    "budget_remarks",
    # also used by the CLI, the pages and the tests as planning.NAME
    "DEFAULT_MFU_PERCENT",
    "SECONDS_PER_HOUR",
    "FLOPS_PER_PARAM_TOKEN",
    "MAX_DOLLARS",
    "MAX_GPU_HOURS",
    "MAX_PEAK_FLOPS",
    "MIN_PEAK_FLOPS",
    "MIN_MFU",
    "MAX_PRICE",
    "MIN_PRICE",
    "MIN_COUNT",
    "MAX_PARAMS",
    "MAX_TOKENS",
    "DEFAULT_MIN_SIZE",
    "DEFAULT_NUM_RUNS",
    "DEFAULT_SEEDS",
    "COMPUTE_OPTIMAL_MULTIPLIER",
    "DEFAULT_TOKENS_PER_PARAM",
    "DEFAULT_TARGET_FRACTIONS",
    "DEFAULT_ISOFLOP_GRIDS",
    "ISOFLOP_BUDGET_STEP",
    "ISOFLOP_SIZE_SPREAD",
    "DEFAULT_SIZE_SPANS",
    "DEFAULT_MAX_SIZE_SHARE",
    "PARTIAL_TARGET_RULE",
    "DEFAULT_PARTIAL_TARGET_FRACTIONS",
    "PARTIAL_TARGET_REFUSAL",
    "DEFAULT_TPP_RANGE",
    "AREModel",
    "MAX_CANDIDATE_RUNS",
    "MAX_RUN_SEEDS",
    "RUN_COLUMNS",
    "NEXT_BUDGET_FACTORS",
    "NEXT_SIZE_FACTORS",
    "NEXT_BUDGET_SIZES",
    "SEEDS_NOTE",
    "PUBLISHED_LAWS",
    "DISAGREEMENT_FACTOR",
    "INTERVAL_LEVEL",
    "PUBLISHED_INTERVAL_SOURCE",
    "N_INTERVAL_SAMPLES",
    "CHINCHILLA_NAMES",
    "GADRE_LAWS",
    "FAMILY_LAW_PREFIX",
    "DEFAULT_LAW_BOOT",
    "collection_laws",
    "FAMILY_LAW_COVERAGE",
    "family_law_coverage_text",
    "family_law",
    "all_laws",
    "DEFAULT_MULTIPLIERS",
    "INFERENCE_FLOPS_PER_PARAM_TOKEN",
    "UNSPENT_SHARE",
    "STUDY_SHARE_REMARK",
    "BUDGET_EXCESS_REMARK",
]
