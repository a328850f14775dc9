"""Common types for source adapters.

Every adapter turns the files of one public source into four pandas frames with the
columns below (extra columns are not allowed; missing optional values are NaN/None).
An adapter never raises on one malformed row: it skips the row and counts it in
``SourceFrames.bad_rows`` (reason -> count), so the build can report it.

runs
    run_id (str, globally unique, e.g. ``"pythia/pythia-70m"``), family (str),
    model_name (str), architecture (one of ``ARCHITECTURES``), num_params (float, > 0),
    num_params_derived (bool: True when computed from a formula or a name like "7B"
    rather than reported exactly), training_data (str or None), seed (int or None),
    planned_tokens (float or None: total tokens the run was planned to see),
    source_paper (str), domain (str: "language" or "vision"); optionally (``OPTIONAL_RUN_COLUMNS``,
    after those) unique_tokens (float or None: distinct training tokens, which a run seeing more
    tokens repeats over epochs; None when the source does not state it).
observations
    run_id, tokens_seen (float, > 0), flops (float, > 0), flops_derived (bool: True when
    computed as 6*N*D), tokens_derived (bool: True when computed from steps x batch),
    metric (str), value (float, finite).
metrics
    metric (str), kind (one of ``METRIC_KINDS``), higher_is_better (bool),
    domain (str, e.g. "validation loss", "downstream", "training loss").
families
    family (str), default_metric (str: the loss metric used for scaling-law fits, must
    be of kind "loss"), description (str).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from scaleplan.core.laws.formulas import compute_from

ARCHITECTURES = ("decoder", "encoder-decoder", "moe", "ssm")
METRIC_KINDS = ("loss", "perplexity", "accuracy", "error", "other")

RUN_COLUMNS = (
    "run_id",
    "family",
    "model_name",
    "architecture",
    "num_params",
    "num_params_derived",
    "training_data",
    "seed",
    "planned_tokens",
    "source_paper",
    "domain",
)
OBSERVATION_COLUMNS = (
    "run_id",
    "tokens_seen",
    "flops",
    "flops_derived",
    "tokens_derived",
    "metric",
    "value",
)
OPTIONAL_RUN_COLUMNS = ("unique_tokens",)
METRIC_COLUMNS = ("metric", "kind", "higher_is_better", "domain")
DOWNSTREAM_COLUMNS = ("run_id", "tokens_seen", "task", "metric", "shots", "chance", "n_questions", "value")
"""Columns of an adapter's optional ``downstream_evals(mirror)`` frame: one benchmark score of a run's
checkpoint. task (str, as the source spells it), metric (str: "acc", "acc_norm"), shots (int),
chance (float: the score of random guessing, a fraction; 0 for open-ended answers), n_questions
(float: questions scored, NaN when the source does not say), value (a fraction in [0, 1])."""
FAMILY_COLUMNS = ("family", "default_metric", "description")


@dataclass
class SourceFrames:
    """What one adapter read: runs, observations, metrics, families, and skipped rows."""

    name: str
    runs: pd.DataFrame
    observations: pd.DataFrame
    metrics: pd.DataFrame
    families: pd.DataFrame
    bad_rows: Counter[str] = field(default_factory=Counter)

    def validate(self) -> SourceFrames:
        """Check columns and invariants; drop (and count) observation rows that break them."""
        for frame, cols, label in (
            (self.runs, RUN_COLUMNS, "runs"),
            (self.observations, OBSERVATION_COLUMNS, "observations"),
            (self.metrics, METRIC_COLUMNS, "metrics"),
            (self.families, FAMILY_COLUMNS, "families"),
        ):
            if tuple(frame.columns) != cols and not (
                label == "runs" and tuple(frame.columns) == RUN_COLUMNS + OPTIONAL_RUN_COLUMNS
            ):
                raise ValueError(f"{self.name}: {label} columns {list(frame.columns)} != {list(cols)}")
        if self.runs["run_id"].duplicated().any():
            dup = self.runs.loc[self.runs["run_id"].duplicated(), "run_id"].tolist()[:5]
            raise ValueError(f"{self.name}: duplicate run ids {dup}")
        bad_arch = set(self.runs["architecture"]) - set(ARCHITECTURES)
        if bad_arch:
            raise ValueError(f"{self.name}: unknown architectures {bad_arch}")
        if not (self.runs["num_params"] > 0).all():
            raise ValueError(f"{self.name}: non-positive num_params")
        bad_kind = set(self.metrics["kind"]) - set(METRIC_KINDS)
        if bad_kind:
            raise ValueError(f"{self.name}: unknown metric kinds {bad_kind}")
        obs = self.observations
        ok = (
            np.isfinite(obs["value"].to_numpy(dtype=float))
            & (obs["tokens_seen"].to_numpy(dtype=float) > 0)
            & np.isfinite(obs["tokens_seen"].to_numpy(dtype=float))
            & (obs["flops"].to_numpy(dtype=float) > 0)
            & obs["run_id"].isin(self.runs["run_id"]).to_numpy()
            & obs["metric"].isin(self.metrics["metric"]).to_numpy()
        )
        if (~ok).any():
            self.bad_rows["observation failed invariants (non-finite value, tokens<=0, unknown run/metric)"] += int(
                (~ok).sum()
            )
            obs = obs.loc[ok]
        dup = obs.duplicated(["run_id", "tokens_seen", "metric"], keep="first")
        if dup.any():
            self.bad_rows["duplicate (run, tokens_seen, metric): kept the first"] += int(dup.sum())
            obs = obs.loc[~dup]
        self.observations = obs.reset_index(drop=True)
        if self.metrics["metric"].duplicated().any():
            raise ValueError(f"{self.name}: duplicate metric names")
        missing = set(self.families["default_metric"]) - set(self.metrics["metric"])
        if missing:
            raise ValueError(f"{self.name}: family default metrics not in metrics: {missing}")
        return self


def params_from_label(label: str) -> float:
    """Parse a size label like ``"70m"``, ``"1.4B"``, ``"6.9b"``, ``"125M"``, ``"65B"`` into a count."""
    text = str(label).strip().lower().replace(",", "")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
    if text and text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text)


def long_observations(
    wide: pd.DataFrame,
    run_id: str | pd.Series,
    tokens: pd.Series,
    flops: pd.Series,
    metric_columns: dict[str, str],
    *,
    flops_derived: bool | pd.Series,
    tokens_derived: bool | pd.Series,
) -> pd.DataFrame:
    """Melt a wide frame (one column per metric) into OBSERVATION_COLUMNS rows.

    ``metric_columns`` maps a column of ``wide`` to the metric name to store. Rows whose
    value is missing or not a number are dropped (missing cells are not errors).
    """
    base = pd.DataFrame(
        {
            "run_id": run_id if isinstance(run_id, pd.Series) else pd.Series(run_id, index=wide.index),
            "tokens_seen": pd.to_numeric(tokens, errors="coerce"),
            "flops": pd.to_numeric(flops, errors="coerce"),
            "flops_derived": flops_derived
            if isinstance(flops_derived, pd.Series)
            else pd.Series(flops_derived, index=wide.index),
            "tokens_derived": tokens_derived
            if isinstance(tokens_derived, pd.Series)
            else pd.Series(tokens_derived, index=wide.index),
        },
        index=wide.index,
    )
    parts = []
    for column, metric in metric_columns.items():
        values = pd.to_numeric(wide[column], errors="coerce")
        part = base.assign(metric=metric, value=values)
        parts.append(part[values.notna()])
    if not parts:
        return empty_observations()
    return pd.concat(parts, ignore_index=True)[list(OBSERVATION_COLUMNS)]


def empty_observations() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in OBSERVATION_COLUMNS})


def chinchilla_flops(num_params: ArrayLike, tokens_seen: ArrayLike) -> NDArray[np.float64]:
    """Training compute C = 6 * N * D in FLOPs (Kaplan et al. 2020; Hoffmann et al. 2022)."""
    return compute_from(num_params, tokens_seen)


# Chance levels (random guessing, a fraction) of benchmarks the ColPret-derived sources score by accuracy,
# by task name as the adapters spell it: 4 choices for ARC, HellaSwag, MMLU (and LLM360's MMLU category
# groups), OpenBookQA, RACE, MedMCQA, SciQ; 2 for BoolQ, PIQA, WinoGrande, COPA, RTE, SST-2; 3 for SIQA
# and CommitmentBank; 5 for MathQA; 0 for open-ended answers (LAMBADA, TriviaQA, WebQuestions, MBPP).
COMMON_CHANCE = {
    **dict.fromkeys(
        (
            "arc",
            "arc_easy",
            "arc_challenge",
            "hellaswag",
            "mmlu",
            "openbookqa",
            "openbook_qa",
            "openbookqa5",
            "race",
            "race_high",
            "medmcqa",
            "sciq",
        ),
        0.25,
    ),
    **dict.fromkeys(
        (
            "chemistry",
            "computer_science",
            "economic_business",
            "history_and_general",
            "legal_gov",
            "math",
            "medical",
            "other",
            "phsychology",
            "physics",
            "sociology",
        ),
        0.25,
    ),
    **dict.fromkeys(("boolq", "piqa", "winogrande", "copa", "rte", "sst2"), 0.5),
    **dict.fromkeys(("siqa", "commitment_bank"), 1.0 / 3.0),
    "mathqa": 0.2,
    **dict.fromkeys(("lambada_openai", "triviaqa", "webqs", "mbpp"), 0.0),
}


def accuracy_scores(frames: SourceFrames, chance: dict[str, float], shots: int | None = None) -> pd.DataFrame:
    """``DOWNSTREAM_COLUMNS`` rows from a source's accuracy observations ``downstream/<task>[@<shots>]/<metric>``
    whose task has a chance level in ``chance`` (others are left out); shots from the ``@`` suffix, else
    ``shots`` (None: not stated); n_questions NaN (these sources do not say)."""
    kinds = frames.metrics.set_index("metric")["kind"]
    obs = frames.observations
    obs = obs.loc[obs["metric"].map(kinds).eq("accuracy").to_numpy()]
    parts = obs["metric"].str.extract(r"^downstream/(?P<task>[^/@]+)(?:@(?P<shots>\d+))?/(?P<metric>[^/]+)$")
    keep = parts["task"].isin(list(chance)).to_numpy() & obs["value"].between(0.0, 1.0).to_numpy()
    obs, parts = obs.loc[keep], parts.loc[keep]
    stated = pd.to_numeric(parts["shots"], errors="coerce")
    return pd.DataFrame(
        {
            "run_id": obs["run_id"].to_numpy(),
            "tokens_seen": obs["tokens_seen"].to_numpy(dtype=float),
            "task": parts["task"].to_numpy(),
            "metric": parts["metric"].to_numpy(),
            "shots": (stated if shots is None else stated.fillna(shots)).astype("Int64").to_numpy(),
            "chance": parts["task"].map(chance).astype(float).to_numpy(),
            "n_questions": np.nan,
            "value": obs["value"].to_numpy(dtype=float),
        }
    )[list(DOWNSTREAM_COLUMNS)].reset_index(drop=True)
