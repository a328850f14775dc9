"""Your own candidate runs: a runs table or CSV file as a :class:`StudyDesign` (:func:`candidate_design`),
its run-by-run cost (:func:`design_runs`) and its expected ARE (:func:`assess_candidate`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scaleplan.core import units
from scaleplan.core.planning.assessment import AREModel, AssessedDesign, assess_designs
from scaleplan.core.planning.cost import CostModel, training_flops
from scaleplan.core.planning.designs import (
    CUSTOM_RULE,
    StudyDesign,
)
from scaleplan.core.planning.inputs import (
    FLOPS_PER_PARAM_TOKEN,
    MAX_PARAMS,
    MAX_TOKENS,
    MIN_COUNT,
    PlanningError,
    _positive,
)

MAX_CANDIDATE_RUNS = 200
MAX_RUN_SEEDS = 100
RUN_COLUMNS = ("num_params", "tokens", "seeds")
"""The columns of a runs file (``scaleplan plan --runs-file``) and of the page's table: parameters,
tokens (or ``tokens_per_param`` instead) and seeds (optional, default 1)."""


def _cell(value: object, *, row: int, column: str) -> float:
    """One number of a runs table: a number or text such as "150M" (:func:`core.units.parse_number`)."""
    where = f"row {row}, {column}"
    if isinstance(value, str):
        try:
            return units.parse_number(value, name=where)
        except units.NumberSyntaxError as error:
            raise PlanningError(str(error)) from None
    if value is None or isinstance(value, bool):
        raise PlanningError(f"{where} is empty; give a number like 150M or 1.5e8")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PlanningError(f"{where}: cannot read {str(value)[:40]!r}; give a number like 150M") from None
    if math.isnan(number):
        raise PlanningError(f"{where} is empty; give a number like 150M or 1.5e8")
    return number


def candidate_design(runs: pd.DataFrame) -> StudyDesign:
    """The runs a person entered as a design: one row per run, columns ``num_params``, ``tokens`` (or
    ``tokens_per_param``, D = m N, used in a row whose tokens are empty) and optionally ``seeds`` (whole
    number, default 1); cells may be
    numbers or text such as "150M" or "3B". Column names are matched case-insensitively; rows that
    are entirely empty are skipped.

    The cost is sum_i seeds_i * 6 N_i D_i (:attr:`StudyDesign.study_flops`). Raises
    :class:`PlanningError` naming the row and column of the first unusable cell, a missing column,
    no runs or more than :data:`MAX_CANDIDATE_RUNS`.
    """
    if not isinstance(runs, pd.DataFrame):
        raise PlanningError("the runs must be a table with columns num_params, tokens and seeds")
    columns = {str(c).strip().lower(): c for c in runs.columns}
    found = ", ".join(str(c) for c in runs.columns) or "none"
    if "num_params" not in columns or not ({"tokens", "tokens_per_param"} & set(columns)):
        raise PlanningError(
            "the runs need the columns num_params and tokens (or tokens_per_param), and optionally seeds; "
            f"found: {found}"
        )
    frame = runs.rename(columns={v: k for k, v in columns.items()})
    present = [c for c in ("num_params", "tokens", "tokens_per_param", "seeds") if c in frame.columns]
    frame = frame[present].replace("", np.nan)
    frame = frame[~frame.isna().all(axis=1)]
    if frame.empty:
        raise PlanningError("the runs table has no runs; give one row per run (num_params, tokens, seeds)")
    if len(frame) > MAX_CANDIDATE_RUNS:
        raise PlanningError(f"the runs table has {len(frame):,} runs; at most {MAX_CANDIDATE_RUNS} are planned")
    sizes, tokens, seeds = [], [], []
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        n = _cell(record["num_params"], row=number, column="num_params")
        _positive(f"row {number}: num_params", n, MAX_PARAMS, minimum=MIN_COUNT)
        given = record.get("tokens")
        if given is None or (isinstance(given, float) and math.isnan(given)):
            ratio = record.get("tokens_per_param")
            if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
                raise PlanningError(f"row {number}: give its tokens or its tokens_per_param")
            value = _cell(ratio, row=number, column="tokens_per_param")
            _positive(f"row {number}: tokens_per_param", value, 1e6)
            value = value * n
        else:
            value = _cell(given, row=number, column="tokens")
        d = _positive(f"row {number}: tokens", value, MAX_TOKENS, minimum=MIN_COUNT)
        raw_seeds = record.get("seeds")
        if raw_seeds is None or (isinstance(raw_seeds, float) and math.isnan(raw_seeds)):
            k = 1.0
        else:
            k = _cell(raw_seeds, row=number, column="seeds")
        if not (k.is_integer() and 1 <= k <= MAX_RUN_SEEDS):
            raise PlanningError(f"row {number}, seeds: give a whole number from 1 to {MAX_RUN_SEEDS}, got {k:g}")
        training_flops(n, d)  # a run beyond any realistic compute
        sizes.append(n)
        tokens.append(d)
        seeds.append(int(k))
    return StudyDesign(
        sizes=tuple(sizes),
        tokens=tuple(tokens),
        seeds=min(seeds),
        token_rule=CUSTOM_RULE,
        rule_value=float(len(sizes)),
        run_seeds=tuple(seeds) if len(set(seeds)) > 1 else (),
    )


def read_runs_file(path: object) -> StudyDesign:
    """:func:`candidate_design` of a CSV file (columns num_params, tokens or tokens_per_param, seeds).

    Raises :class:`PlanningError` with a plain message for a missing, unreadable or malformed file."""
    from pathlib import Path

    file = Path(str(path))
    if not file.is_file():
        raise PlanningError(f"no runs file at {file}")
    try:
        frame = pd.read_csv(file, dtype=str, skipinitialspace=True, nrows=MAX_CANDIDATE_RUNS + 1)
    except pd.errors.EmptyDataError:
        raise PlanningError(f"the runs file {file.name} is empty; give a header num_params,tokens,seeds") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise PlanningError(f"the runs file {file.name} is not a readable CSV ({first})") from None
    try:
        return candidate_design(frame)
    except PlanningError as error:
        raise PlanningError(f"{file.name}: {error}") from None


def design_runs(design: StudyDesign, cost: CostModel) -> pd.DataFrame:
    """The run-by-run list of a design: num_params, tokens, tokens_per_param, seeds, flops (all seeds,
    6 N D per seed), gpu_hours and cost_dollars of each run; the costs add up to the design's."""
    n = np.asarray(design.sizes, dtype=float)
    d = np.asarray(design.tokens, dtype=float)
    k = np.asarray(design.seeds_per_run, dtype=int)
    flops = k * FLOPS_PER_PARAM_TOKEN * n * d
    hours = flops / (cost.flops_per_dollar * cost.dollars_per_gpu_hour)
    return pd.DataFrame(
        {
            "num_params": n,
            "tokens": d,
            "tokens_per_param": d / n,
            "seeds": k,
            "flops": flops,
            "gpu_hours": hours,
            "cost_dollars": hours * cost.dollars_per_gpu_hour,
        }
    )


def assess_candidate(
    design: StudyDesign,
    target_params: float,
    target_tokens: float,
    *,
    calibration: AREModel | None,
    cost: CostModel,
) -> AssessedDesign:
    """Cost and expected ARE of one design (runs you entered), from the same calibrated model and the
    same refusals as every generated design (:func:`assess_designs`)."""
    return assess_designs([design], target_params, target_tokens, calibration=calibration, cost=cost)[0]
