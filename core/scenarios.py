"""What-if scenarios: the planner's inputs saved under a name, evaluated and compared side by side.

A scenario is one set of planning inputs (:class:`PlanInputs`: target, study budget, GPU price,
peak FLOP/s, MFU, accuracy goal, reference law, study source). Its outcome
(:class:`ScenarioOutcome`) is computed by the planner (:mod:`scaleplan.core.planning`) and never
stored, so a scenario opened after an upgrade or a database rebuild is re-planned on today's data.

Storage: the user's own DuckDB store (:mod:`scaleplan.core.userstore`), table ``scenarios``
(name, the inputs as JSON, created/updated times). The collection's database is a cache rebuilt at
will; the store is never touched by a rebuild, so scenarios survive both a restart and a rebuild.

Units: parameters N and tokens D as counts, compute C = 6 N D in FLOPs, money in US$, GPU time in
GPU-hours, peak throughput in FLOP/s per GPU, MFU and the accuracy goal as fractions (the goal is
the 80th percentile of the expected ARE, |L_hat - L| / L), loss in nats/token, accuracy in
percentage points.

The target's predicted accuracy: Gadre et al.'s 17-task average, 100 (1 - Err(L_hat)) points with
Err(L) = eps - k exp(-gamma L) and L_hat from their L(C, M) on the over-training testbed, and its
90% interval (+-q, q measured leaving one over-training data set out), exactly as the planner states
it: :func:`scaleplan.core.task_prediction.target_average_accuracy`, through :func:`average_accuracy_for`.

Comparison (:func:`compare`): up to :data:`MAX_COMPARED` outcomes; a table of the inputs that
differ and a table of the outcomes (pick, its cost, expected ARE p50/p80, compute-optimal N and D
under each law, the predicted loss with its interval, the predicted 17-task average accuracy with
its interval), every cell formatted by the same functions the brief uses, so the page, the CLI and
the brief show the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import laws, planning, storage, task_prediction, userstore
from scaleplan.core.errors import UserError
from scaleplan.core.units import format_count, format_dollars, format_flops, format_level, format_percent

__all__ = [
    "ScenarioError",
    "MAX_COMPARED",
    "MAX_NAME_LENGTH",
    "SCENARIO_DDL",
    "PlanInputs",
    "Scenario",
    "UnreadableScenario",
    "check_name",
    "source_problem",
    "normalise_study",
    "ensure_scenario_tables",
    "save_scenario",
    "list_scenarios",
    "get_scenario",
    "rename_scenario",
    "duplicate_scenario",
    "delete_scenario",
    "carry_study",
    "PlanningContext",
    "PredictedLoss",
    "ScenarioOutcome",
    "ScenarioUnavailable",
    "predicted_loss",
    "AverageAccuracy",
    "average_accuracy_for",
    "evaluate",
    "AVERAGE_ACCURACY_LABEL",
    "LOSS_LABEL",
    "TOKEN_RULE_LABELS",
    "loss_label",
    "losses_note",
    "ComparisonRow",
    "Comparison",
    "compare",
    "format_loss",
    "accuracy_text",
    "study_lookup",
    "load_context",
]

MAX_COMPARED = 4
TOKEN_RULE_LABELS = {
    "tokens_per_param": "Tokens per parameter (20, 80)",
    "target_fraction": "Fraction of target tokens (10%, 30%)",
    "isoflop": "IsoFLOP grid",
}
"""How each of :data:`core.planning.TOKEN_RULES` is named to a reader (the planner page, the Scenarios
page, the brief)."""
MAX_NAME_LENGTH = 80
INPUTS_FORMAT = "1"
_NAME_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]+$")

SCENARIO_DDL = userstore.SCENARIO_TABLE_SQL  # the table lives in the user store's layer


class ScenarioError(UserError):
    """A scenario name or operation the user asked for cannot be done (missing, taken, too many)."""


# ---------------------------------------------------------------------------------------------
# Inputs


_JSON_TEXT_FIELDS = ("law", "study")
_JSON_FLAG_FIELDS = ("any_tokens_per_param",)


def _json_kind(value: object) -> str:
    """A JSON value's kind in words ("text", "a number", ...)."""
    if isinstance(value, bool):
        return "true/false"
    kinds = {str: "text", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return kinds.get(type(value), "null")


def _json_type_problem(name: str, value: object) -> str | None:
    """What is wrong with a stored input's JSON type (a clause naming what it should be), or None."""
    if value is None and name not in ("law", "token_rules", "any_tokens_per_param"):
        return None
    if name in _JSON_TEXT_FIELDS:
        return None if isinstance(value, str) else f"{_json_kind(value)}, not text"
    if name in _JSON_FLAG_FIELDS:
        return None if isinstance(value, bool) else f"{_json_kind(value)}, not true/false"
    if name == "token_rules":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "not a list of rule names"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok else f"{_json_kind(value)}, not a number"


@dataclass(frozen=True)
class PlanInputs:
    """The planner's inputs, as ``scaleplan plan`` takes them (validated on construction).

    The target is ``target_params`` (N, parameters) with ``target_tokens`` (D, tokens), or
    ``target_flops`` (C, FLOPs: N and D are then the reference law's compute-optimal split). The
    study budget is ``budget_dollars`` (US$) or ``budget_gpu_hours`` (GPU-hours), exactly one.
    ``dollars_per_gpu_hour`` (US$), ``peak_flops_per_gpu`` (FLOP/s) and ``mfu`` (fraction, 0-1)
    make the GPU cost model; ``accuracy_percent`` is the ARE goal in percent (80th percentile).
    ``law`` names the reference law (``hoffmann2022``, ``besiroglu2024``, a Gadre law, or
    ``fit:<family>``); ``study`` is the study source: None for the public collection, or the name
    of a stored study whose runs the ``fit:<study>`` law is fitted on.
    """

    target_params: float | None = None
    target_tokens: float | None = None
    target_flops: float | None = None
    budget_dollars: float | None = None
    budget_gpu_hours: float | None = None
    dollars_per_gpu_hour: float = planning.DEFAULT_DOLLARS_PER_GPU_HOUR
    peak_flops_per_gpu: float = planning.H100_BF16_DENSE_FLOPS
    mfu: float = planning.DEFAULT_MFU
    accuracy_percent: float = 5.0
    law: str = planning.DEFAULT_LAW
    study: str | None = None
    token_rules: tuple[str, ...] = planning.TOKEN_RULES
    any_tokens_per_param: bool = False

    def __post_init__(self) -> None:
        if self.target_flops is not None:
            if self.target_params is not None or self.target_tokens is not None:
                raise planning.PlanningError("give the target as N and D, or as compute C, not both")
            flops = float(self.target_flops)
            if not (math.isfinite(flops) and 0 < flops <= planning.MAX_FLOPS):
                raise planning.PlanningError(
                    f"the target compute must be in (0, {planning.MAX_FLOPS:.0e}] FLOPs, got {self.target_flops!r}"
                )
        else:
            if self.target_params is None or self.target_tokens is None:
                raise planning.PlanningError("give the target's parameters N and tokens D, or its compute C")
            planning.training_flops(self.target_params, self.target_tokens)  # validates N and D
        self.cost_model.budget_dollars(self.budget_dollars, self.budget_gpu_hours)  # validates the budget
        if not (isinstance(self.accuracy_percent, int | float) and 0 < self.accuracy_percent <= 100):
            raise planning.PlanningError(
                f"the accuracy needed is an ARE in percent in (0, 100], got {self.accuracy_percent!r}"
            )
        if not self.law or not isinstance(self.law, str):
            raise planning.PlanningError("the reference law is missing")
        unknown = [r for r in self.token_rules if r not in planning.TOKEN_RULES]
        if unknown or not self.token_rules:
            raise planning.PlanningError(
                f"token rules must be some of {', '.join(planning.TOKEN_RULES)}, got {', '.join(self.token_rules)}"
            )
        if self.study is not None and not str(self.study).strip():
            raise planning.PlanningError("the study source is an empty name; leave it out for the collection")

    @property
    def cost_model(self) -> planning.CostModel:
        return planning.CostModel(
            dollars_per_gpu_hour=self.dollars_per_gpu_hour, peak_flops_per_gpu=self.peak_flops_per_gpu, mfu=self.mfu
        )

    @property
    def study_budget_dollars(self) -> float:
        """The study budget in US$ (a GPU-hour budget times the price)."""
        return self.cost_model.budget_dollars(self.budget_dollars, self.budget_gpu_hours)

    @property
    def goal_are(self) -> float:
        """The accuracy goal as a fraction (ARE at the 80th percentile)."""
        return float(self.accuracy_percent) / 100

    @property
    def law_family(self) -> str | None:
        """The family (or study) of a ``fit:<family>`` law, else None."""
        prefix = planning.FAMILY_LAW_PREFIX
        return self.law[len(prefix) :] if self.law.startswith(prefix) else None

    @property
    def source_label(self) -> str:
        return "the public collection" if self.study is None else f"stored study {self.study}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PlanInputs:
        """The inputs stored as ``text`` (:meth:`to_json`). Raises ValueError when ``text`` is not a
        JSON object, TypeError or a UserError when its values are not inputs this scaleplan plans."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"the stored inputs are a JSON {type(raw).__name__}, not an object")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}  # a newer scaleplan's extra fields are ignored
        for name, value in values.items():
            problem = _json_type_problem(name, value)
            if problem is not None:
                raise TypeError(f"{name} is {problem}")
        if "token_rules" in values:
            values["token_rules"] = tuple(values["token_rules"])
        return cls(**values)

    def rows(self) -> tuple[tuple[str, str], ...]:
        """The inputs as (label with unit, formatted value) pairs, in the order a person reads them."""
        if self.target_flops is not None:
            target = f"compute {format_flops(self.target_flops)} (compute-optimal split under the law)"
        else:
            target = f"{format_count(self.target_params)} params, {format_count(self.target_tokens)} tokens"
        budget = (
            format_dollars(self.budget_dollars)
            if self.budget_dollars is not None
            else f"{format_count(self.budget_gpu_hours)} GPU-hours ({format_dollars(self.study_budget_dollars)})"
        )
        return (
            ("Target", target),
            ("Study budget", budget),
            ("Price per GPU-hour", f"${self.dollars_per_gpu_hour:g}/GPU-hour"),
            ("Peak throughput per GPU", f"{self.peak_flops_per_gpu / 1e12:g} TFLOP/s"),
            ("MFU", format_percent(self.mfu, 0 if round(self.mfu * 100, 6).is_integer() else 1)),
            ("Accuracy needed (ARE, 80th pct.)", f"{self.accuracy_percent:g}%"),
            ("Reference law", self.law),
            ("Study source", self.source_label),
            ("Token rules", "; ".join(TOKEN_RULE_LABELS.get(r, r) for r in self.token_rules)),
            ("Runs outside the collection's tokens/param range", "allowed" if self.any_tokens_per_param else "no"),
        )


# ---------------------------------------------------------------------------------------------
# Storage


@dataclass(frozen=True)
class Scenario:
    """A saved scenario: its ``name``, its ``inputs`` and when it was created and last changed (UTC, ISO 8601)."""

    name: str
    inputs: PlanInputs
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class UnreadableScenario:
    """A saved scenario whose stored inputs cannot be read (damaged, or not inputs this scaleplan
    plans): listed by ``name`` with the ``problem`` (a clause without a full stop), kept exactly as
    stored; it can be removed or saved over (``--replace``), never opened. Times as in :class:`Scenario`."""

    name: str
    problem: str
    created_at: str
    updated_at: str

    @property
    def note(self) -> str:
        """What a listing says of it, with what to do (one sentence, no full stop)."""
        return (
            f"unreadable: {self.problem}; it is kept as stored: remove it (scaleplan scenario remove "
            f"{shlex.quote(self.name)}) or save a scenario over it under that name (--replace)"
        )


def check_name(name: object) -> str:
    """A scenario name: 1 to :data:`MAX_NAME_LENGTH` printable characters, stripped. Else ScenarioError."""
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError("the scenario name is empty; give a name such as 'baseline $20k'")
    text = name.strip()
    if len(text) > MAX_NAME_LENGTH:
        raise ScenarioError(f"the scenario name is {len(text)} characters long; use at most {MAX_NAME_LENGTH}")
    if not _NAME_PATTERN.match(text):
        raise ScenarioError("the scenario name contains control characters (a line break, a tab); remove them")
    return text


def source_problem(inputs: PlanInputs, *, flags: bool = False) -> str | None:
    """Why ``inputs``' reference law and study source cannot be planned together, with what to change
    (naming the CLI's ``--law`` / ``--study`` when ``flags``; a page's reader has no flags); None when
    they can.

    The planner's rule (:func:`load_context`): a study source is planned through its own law only,
    ``fit:<study>``, the Chinchilla law fitted on the study's runs instead of a collection family's.
    With any other law the scenario would not plan (``fit:<family>``: that family is not fitted) or
    would silently ignore the study (a published or Gadre et al.'s law).
    """
    if inputs.study is None:
        return None
    own = planning.FAMILY_LAW_PREFIX + inputs.study
    if inputs.law == own:
        return None
    if inputs.law_family is not None:
        why = (
            f"the law {inputs.law} is fitted on the collection's family {inputs.law_family}, but with the study "
            f"source {inputs.study!r} the planner fits the study's runs instead, as the law {own}"
        )
    else:
        why = (
            f"the study source {inputs.study!r} has no effect with the law {inputs.law}: the planner uses a "
            f"study's runs only through its own law, {own}"
        )
    if flags:
        return (
            f"{why}; use the law {own} (--law {shlex.quote(own)}) to plan from the study's runs, or no study "
            f"source (leave out --study) to plan with {inputs.law} on the public collection"
        )
    return (
        f"{why}; plan from the study's runs with the law {own}, or without the study source to plan with "
        f"{inputs.law} on the public collection"
    )


def _study_name(name: object) -> str | None:
    """``name`` as stored studies name themselves (:func:`scaleplan.core.studies.check_name`), or None
    when it is no usable study name."""
    from scaleplan.core import studies

    try:
        return studies.check_name(name) if isinstance(name, str) else None
    except studies.StudyError:
        return None


def normalise_study(inputs: PlanInputs) -> PlanInputs:
    """``inputs`` with its study source named as the stored study is
    (:func:`scaleplan.core.studies.check_name`: Unicode NFC, surrounding spaces dropped), and its
    law ``fit:<study>``, when it names that study, likewise; unchanged without a study source.

    So a scenario saved with ``--study " my sweep "`` refers to the study ``my sweep``. Raises
    :class:`scaleplan.core.studies.StudyError` for a name no study can have (too long, control
    characters).
    """
    from scaleplan.core import studies

    if inputs.study is None:
        return inputs
    study = studies.check_name(inputs.study)
    law = inputs.law
    if inputs.law_family is not None and _study_name(inputs.law_family) == study:
        law = planning.FAMILY_LAW_PREFIX + study
    if (study, law) == (inputs.study, inputs.law):
        return inputs
    return dataclasses.replace(inputs, study=study, law=law)


def ensure_scenario_tables(con: duckdb.DuckDBPyConnection) -> None:
    userstore.ensure_tables(con, SCENARIO_DDL)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _row_to_scenario(row: Sequence[Any]) -> Scenario | UnreadableScenario:
    """A stored row (name, inputs_json, created_at, updated_at) as a scenario, or as unreadable."""
    try:
        inputs = PlanInputs.from_json(row[1])
    except json.JSONDecodeError:
        return UnreadableScenario(row[0], "its stored inputs are not valid JSON (damaged)", row[2], row[3])
    except (UserError, TypeError, ValueError) as error:
        return UnreadableScenario(row[0], f"its stored inputs cannot be planned ({error})", row[2], row[3])
    return Scenario(name=row[0], inputs=inputs, created_at=row[2], updated_at=row[3])


def save_scenario(
    con: duckdb.DuckDBPyConnection,
    name: str,
    inputs: PlanInputs,
    *,
    replace: bool = False,
    how_to_replace: str = "--replace",
) -> Scenario:
    """Store ``inputs`` under ``name``. A taken name raises ScenarioError unless ``replace`` (its message
    says to choose another name or replace it with ``how_to_replace``, the caller's control for it); so
    do a law and a study source that cannot be planned together (:func:`source_problem`). The study
    source is stored as the study names itself (:func:`normalise_study`)."""
    name = check_name(name)
    inputs = normalise_study(inputs)
    problem = source_problem(inputs)
    if problem is not None:
        raise ScenarioError(f"scenario {name!r} cannot be planned: {problem}")
    ensure_scenario_tables(con)
    now = _now()
    if userstore.has_scenario(con, name):
        if not replace:
            raise ScenarioError(
                f"a scenario named {name!r} exists already; choose another name or replace it ({how_to_replace})"
            )
        userstore.update_scenario_inputs(con, name, inputs.to_json(), INPUTS_FORMAT, now)
    else:
        userstore.insert_scenario(con, name, inputs.to_json(), INPUTS_FORMAT, now)
    return get_scenario(con, name)


def list_scenarios(con: duckdb.DuckDBPyConnection) -> tuple[Scenario | UnreadableScenario, ...]:
    """Every saved scenario, by name; one whose stored inputs cannot be read is listed as an
    :class:`UnreadableScenario` (kept, never an error: the others stay usable)."""
    if not userstore.is_read_only(con):
        ensure_scenario_tables(con)
    return tuple(_row_to_scenario(r) for r in userstore.scenario_rows(con))


def _stored_row(con: duckdb.DuckDBPyConnection, name: str) -> Sequence[Any]:
    """The stored row of the scenario ``name``; ScenarioError naming the saved ones when there is none."""
    name = check_name(name)
    row = userstore.scenario_row(con, name)
    if row is None:
        saved = [s.name for s in list_scenarios(con)]
        known = f"saved: {', '.join(saved)}" if saved else "none is saved yet (scaleplan scenario save --name NAME)"
        raise ScenarioError(f"no scenario named {name!r}; {known}")
    return row


def get_scenario(con: duckdb.DuckDBPyConnection, name: str) -> Scenario:
    """The scenario ``name``; ScenarioError naming the saved ones when there is none, and saying
    why (:attr:`UnreadableScenario.note`) when its stored inputs cannot be read."""
    scenario = _row_to_scenario(_stored_row(con, name))
    if isinstance(scenario, UnreadableScenario):
        raise ScenarioError(f"scenario {scenario.name!r} cannot be opened: {scenario.note}")
    return scenario


def rename_scenario(con: duckdb.DuckDBPyConnection, old: str, new: str) -> Scenario:
    """Give the scenario ``old`` the name ``new`` (which must be free)."""
    scenario = get_scenario(con, old)
    new = check_name(new)
    if new == scenario.name:
        return scenario
    if userstore.has_scenario(con, new):
        raise ScenarioError(f"a scenario named {new!r} exists already; choose another name")
    userstore.set_scenario_name(con, scenario.name, new, _now())
    return get_scenario(con, new)


def duplicate_scenario(con: duckdb.DuckDBPyConnection, name: str, new: str) -> Scenario:
    """A copy of the scenario ``name`` under the free name ``new`` (a taken one is never overwritten)."""
    scenario = get_scenario(con, name)
    new = check_name(new)
    if userstore.has_scenario(con, new):
        raise ScenarioError(
            f"a scenario named {new!r} exists already; give the copy another name, or delete {new!r} first "
            f"(scaleplan scenario remove {shlex.quote(new)})"
        )
    return save_scenario(con, new, scenario.inputs)


def carry_study(inputs_json: str, old: str, new: str) -> str | None:
    """A saved scenario's stored inputs with its study source ``old`` renamed ``new`` (and its law
    ``fit:<old>``, the study's, renamed ``fit:<new>``), or None when the scenario does not use the
    study ``old`` or its stored inputs are not JSON (left as stored: :func:`list_scenarios` lists it
    as unreadable, and one damaged row does not block the rename). Study names are compared as :func:`scaleplan.core.studies.check_name` reads them.

    Works on the JSON as stored: fields this scaleplan does not know (a newer one's) are kept.
    :func:`scaleplan.core.studies.rename_study` applies it to every scenario in the rename's transaction.
    """

    def same(name: object) -> bool:
        return _study_name(name) == old

    try:
        raw = json.loads(inputs_json)
    except (ValueError, TypeError):  # unreadable inputs are left as they are (listed as unreadable)
        return None
    if not isinstance(raw, dict) or not same(raw.get("study")):
        return None
    raw["study"] = new
    law = raw.get("law")
    prefix = planning.FAMILY_LAW_PREFIX
    if isinstance(law, str) and law.startswith(prefix) and same(law[len(prefix) :]):
        raw["law"] = prefix + new
    return json.dumps(raw, sort_keys=True)


def delete_scenario(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Delete the scenario ``name`` (only it), an unreadable one too."""
    userstore.remove_scenario(con, _stored_row(con, name)[0])


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class PlanningContext:
    """What the planner needs besides the inputs: the laws, the error model, the collection's range.

    ``laws``: every reference law available (published, Gadre et al.'s, the family's or study's
    fit); ``problems``: by law name, why a law could not be fitted; ``calibration``: the
    calibrated error model (None: ``calibration_message`` says why); ``tpp_range``: the tokens
    per parameter the collection spans; ``data_version``: the collection database's version.
    """

    laws: tuple[planning.ReferenceLaw, ...]
    problems: Mapping[str, str]
    calibration: planning.AREModel | None
    calibration_message: str | None
    tpp_range: tuple[float, float] | None
    data_version: str


@dataclass(frozen=True)
class PredictedLoss:
    """The target's loss under ``law`` (nats/token): ``value`` at the law's parameters, and the
    ``low``/``high`` quantiles at ``level`` over its parameter samples (None: the law has none), or,
    ``calibrated``, the calibrated interval of a law fitted on runs."""

    law: str
    value: float
    low: float | None
    high: float | None
    level: float
    calibrated: bool = False  # the Fit page's calibrated interval (a law fitted on runs), not parameter samples

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None and self.high > self.low


def predicted_loss(
    law: planning.ReferenceLaw,
    num_params: float,
    tokens: float,
    *,
    level: float = planning.INTERVAL_LEVEL,
    calibration: planning.AREModel | None = None,
) -> PredictedLoss:
    """L(N, D) = E + A / N^alpha + B / D^beta under ``law`` (nats/token), with its central ``level`` interval.

    A law fitted on runs here (``law.fit_basis``) with a ``calibration`` gets the calibrated interval of
    the Fit page and ``fit`` (:func:`core.analysis.design_features` of its fit at this target, the same
    model and refusals): one interval for one prediction on every screen. Otherwise, or where the
    calibration refuses the design, the interval of the same formula over the law's parameter samples."""
    from scaleplan.core import analysis
    from scaleplan.core.calibration import Calibration, PredictionInterval
    from scaleplan.core.selection import Selection

    p = law.params
    value = float(laws.chinchilla_loss(num_params, tokens, p["E"], p["A"], p["B"], p["alpha"], p["beta"]))
    basis = law.fit_basis
    if basis is not None and basis.features is not None and isinstance(calibration, Calibration):
        fitted = basis.features  # the fit's own selection (cutoff, share of training, final only)
        selection = Selection(final_only=fitted.final_only, fraction=fitted.fraction, min_tokens=fitted.min_tokens)
        features = analysis.design_features(basis.fit, basis.points, selection, num_params, tokens)
        interval = calibration.interval(value, features, level)
        if isinstance(interval, PredictionInterval):
            return PredictedLoss(law.name, value, interval.low, interval.high, level, calibrated=True)
    low = high = None
    if law.samples is not None and len(law.samples):
        s = np.asarray(law.samples, dtype=float)
        with np.errstate(all="ignore"):
            values = laws.chinchilla_loss(num_params, tokens, s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4])
        values = values[np.isfinite(values)]
        if len(values):
            tail = (1 - level) / 2
            lo, hi = np.quantile(values, [tail, 1 - tail])
            low, high = float(min(lo, value)), float(max(hi, value))
    return PredictedLoss(law=law.name, value=value, low=low, high=high, level=level)


@dataclass(frozen=True)
class ScenarioOutcome:
    """What the planner answers for one scenario.

    ``target_params`` (N), ``target_tokens`` (D) and ``target_flops`` (C = 6 N D) are the target
    actually planned (for a compute target: the law's compute-optimal split); ``plan`` is the
    study plan (designs, pick, frontier); ``compute_optimal`` has N* and D* under every law at C;
    ``optimum`` is the selected law's row; ``loss`` the target's predicted loss under the selected
    law; ``average_accuracy`` the target's predicted 17-task average accuracy (points, with its
    interval, or the refusal and its reason; None when the scenario was planned without the
    collection's database to fit it on); ``recommendation`` the planner's sentences from the same
    objects.
    """

    name: str
    inputs: PlanInputs
    data_version: str
    target_params: float
    target_tokens: float
    target_flops: float
    plan: planning.StudyPlan
    selected_law: planning.ReferenceLaw
    compute_optimal: tuple[planning.ComputeOptimal, ...]
    optimum: planning.ComputeOptimal | None
    overtraining: planning.OvertrainingSummary | None  # None when it cannot be computed (``overtraining_note``)
    loss: PredictedLoss
    problems: Mapping[str, str]
    recommendation: str
    average_accuracy: task_prediction.TargetAccuracy | None = None
    overtraining_note: str | None = None  # why the over-training table is left out, when it is
    available: bool = field(default=True, init=False)

    @property
    def pick(self) -> planning.AssessedDesign | None:
        return self.plan.picked

    @property
    def frontier(self) -> tuple[tuple[float, float], ...]:
        """The cost-vs-accuracy frontier: (cost in US$, expected ARE p80 as a fraction), cheapest first."""
        return tuple(
            (self.plan.designs[i].cost.dollars, self.plan.designs[i].are_p80)
            for i in self.plan.frontier
            if self.plan.designs[i].expected is not None
        )


@dataclass(frozen=True)
class ScenarioUnavailable:
    """A saved scenario that cannot be planned now (its study was deleted, its law cannot be fitted)."""

    name: str
    inputs: PlanInputs
    reason: str
    available: bool = field(default=False, init=False)


def target_of(inputs: PlanInputs, law: planning.ReferenceLaw) -> tuple[float, float]:
    """The target's (N, D): as given, or the compute-optimal split of C under ``law``."""
    if inputs.target_flops is not None:
        opt = planning.optimal_allocation(law, inputs.target_flops)
        return opt.num_params, opt.tokens
    assert inputs.target_params is not None and inputs.target_tokens is not None
    return float(inputs.target_params), float(inputs.target_tokens)


AverageAccuracy = Callable[[float, float, str], "task_prediction.TargetAccuracy | None"]
"""The target's predicted 17-task average accuracy from its parameters N, tokens D and reference law
(None: it cannot be computed, e.g. the collection's database cannot be read)."""


def average_accuracy_for(con: duckdb.DuckDBPyConnection) -> AverageAccuracy:
    """:func:`scaleplan.core.task_prediction.target_average_accuracy` on the collection database
    ``con`` (the planner's rule), memoised per (N, D, law): scenarios of one comparison that share a
    target and a law fit Gadre et al.'s laws once. Use it while ``con`` is open."""
    known: dict[tuple[float, float, str], task_prediction.TargetAccuracy] = {}

    def lookup(num_params: float, tokens: float, law: str) -> task_prediction.TargetAccuracy:
        key = (float(num_params), float(tokens), law)
        if key not in known:
            known[key] = task_prediction.target_average_accuracy(con, num_params, tokens, law)
        return known[key]

    return lookup


def evaluate(
    name: str, inputs: PlanInputs, context: PlanningContext, *, accuracy: AverageAccuracy | None = None
) -> ScenarioOutcome | ScenarioUnavailable:
    """Plan ``inputs`` with the planner's public functions; a law that is missing from ``context``
    gives a :class:`ScenarioUnavailable` that says why instead of raising. ``accuracy`` (e.g.
    :func:`average_accuracy_for`) gives the target's predicted 17-task average accuracy, which the
    outcome carries and its recommendation states as the planner's does; without it there is none.

    Nothing of an outcome is stored: a scenario saved by an older scaleplan is planned anew, its
    accuracy included."""
    by_name = {law.name: law for law in context.laws}
    selected = by_name.get(inputs.law)
    if selected is None:
        why = context.problems.get(inputs.law, "it is not one of the available laws")
        return ScenarioUnavailable(name=name, inputs=inputs, reason=f"the law {inputs.law} cannot be used: {why}")
    n, d = target_of(inputs, selected)
    plan = planning.plan_study(
        n,
        d,
        budget_dollars=inputs.study_budget_dollars,
        goal_are=inputs.goal_are,
        calibration=context.calibration,
        cost=inputs.cost_model,
        message=context.calibration_message,
        token_rules=inputs.token_rules,
        tpp_range=None if inputs.any_tokens_per_param else context.tpp_range,
    )
    target_flops = planning.training_flops(n, d)
    table = planning.compute_optimal_table(list(context.laws), target_flops)
    optimum = next((row for row in table if row.law == inputs.law), None)
    # As the planner: a target the over-training table cannot describe (beyond 1M tokens per parameter)
    # still plans, without the table.
    overtraining, overtraining_note = planning.overtraining_or_reason(selected, n, d)
    average = None if accuracy is None else accuracy(n, d, inputs.law)
    return ScenarioOutcome(
        name=name,
        inputs=inputs,
        data_version=context.data_version,
        target_params=n,
        target_tokens=d,
        target_flops=target_flops,
        plan=plan,
        selected_law=selected,
        compute_optimal=table,
        optimum=optimum,
        overtraining=overtraining,
        loss=predicted_loss(selected, n, d, calibration=context.calibration),
        problems=dict(context.problems),
        recommendation=planning.recommendation(plan, optimum, overtraining, average),
        average_accuracy=average,
        overtraining_note=overtraining_note,
    )


# ---------------------------------------------------------------------------------------------
# Comparison


def format_loss(value: float | None) -> str:
    """A loss in nats/token with three decimals."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f} nats/token"


LOSS_LABEL = "Predicted target loss under the reference law (nats/token, the law's training data)"
"""The comparison row of the target's loss under each scenario's reference law: the loss of the data
that law was fitted on, not the loss the 17-task accuracy is read at (:func:`losses_note`)."""


def loss_label(law: str) -> str:
    """'Predicted target loss under besiroglu2024 (nats/token, the law's training data)'."""
    return f"Predicted target loss under {law} (nats/token, the law's training data)"


def loss_text(loss: PredictedLoss) -> str:
    """'2.345 nats/token under besiroglu2024 (80% interval 2.301-2.402)'."""
    value = f"{format_loss(loss.value)} under {loss.law}"
    if not loss.has_interval:
        return f"{value} (no interval)"
    assert loss.low is not None and loss.high is not None
    kind = " calibrated" if loss.calibrated else ""
    return f"{value} ({format_level(loss.level)}{kind} interval {loss.low:.3f}-{loss.high:.3f})"


def _accuracy_loss(accuracy: task_prediction.TargetAccuracy) -> str:
    """' at overtrain-rpj's val/c4_val/loss 2.159' (the loss it is read at, predicted; empty without one)."""
    if accuracy.predicted_loss is None:
        return ""
    return f" at {accuracy.family}'s {accuracy.loss_metric} {accuracy.predicted_loss:.3f}"


def losses_note(loss: PredictedLoss, accuracy: task_prediction.TargetAccuracy | None) -> str:
    """Which predicted loss is which: the reference law's (on its training data), and the one the
    17-task accuracy is read at when that is another metric of other runs."""
    text = f"{loss_label(loss.law)}: {loss_text(loss).replace(' under ' + loss.law, '', 1)}."
    if accuracy is not None and accuracy.predicted_loss is not None and not accuracy.refused:
        text += (
            f" The 17-task average accuracy is read at another loss: {accuracy.predicted_loss:.3f}, the "
            f"{accuracy.loss_metric} of {accuracy.family}'s runs predicted by their own law (an accuracy link maps "
            f"one loss metric to accuracy, so it is not read at the {loss.law} loss)."
        )
    return text


def accuracy_text(accuracy: task_prediction.TargetAccuracy | None) -> str:
    """'61.5 points (90% interval 58.9-64.1)', with the interval's note when the target's compute lies
    beyond the runs its coverage was measured on; the refusal's reason; 'n/a' when none was computed."""
    if accuracy is None:
        return "n/a"
    if accuracy.refused or accuracy.predicted_points is None:
        return f"no prediction: {accuracy.message}"
    points = f"{accuracy.predicted_points:.1f} points{_accuracy_loss(accuracy)}"
    if accuracy.lower_points is None or accuracy.upper_points is None:
        return f"{points} (no interval)"
    note = f"; {accuracy.beyond_reach}" if accuracy.beyond_reach else ""
    return f"{points} ({accuracy.interval_label} {accuracy.lower_points:.1f}-{accuracy.upper_points:.1f}{note})"


def pick_text(outcome: ScenarioOutcome) -> str:
    pick = outcome.pick
    return "no design within the budget" if pick is None else pick.design.describe()


def pick_cost_text(outcome: ScenarioOutcome) -> str:
    pick = outcome.pick
    if pick is None:
        return "n/a"
    return f"{format_dollars(pick.cost.dollars)} ({format_count(pick.cost.gpu_hours)} GPU-hours)"


def are_text(outcome: ScenarioOutcome, quantile: str) -> str:
    pick = outcome.pick
    if pick is None or pick.expected is None:
        return "n/a"
    return format_percent(pick.expected.median if quantile == "p50" else pick.expected.p80)


def optimum_text(row: planning.ComputeOptimal | None) -> str:
    """'N* 33B params [21B-52B], D* 3.0T tokens' (80% interval on N)."""
    if row is None:
        return "not fitted"
    interval = f" [{format_count(row.num_params_low)}-{format_count(row.num_params_high)}]" if row.has_interval else ""
    return f"N* {format_count(row.num_params)} params{interval}, D* {format_count(row.tokens)} tokens"


AVERAGE_ACCURACY_LABEL = "Predicted 17-task average accuracy (points)"
"""The comparison row of the target's predicted accuracy over Gadre et al.'s 17 tasks."""


@dataclass(frozen=True)
class ComparisonRow:
    """One row of a comparison table: ``label`` (with its unit) and one formatted value per scenario."""

    label: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """Scenarios side by side: ``inputs`` (only the inputs that differ; all of them for one
    scenario) and ``outcomes`` (pick, cost, expected ARE, target loss, 17-task average accuracy, N* and
    D* per law)."""

    scenarios: tuple[ScenarioOutcome | ScenarioUnavailable, ...]
    inputs: tuple[ComparisonRow, ...]
    outcomes: tuple[ComparisonRow, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scenarios)

    def table(self, which: str = "outcomes") -> pd.DataFrame:
        rows = self.inputs if which == "inputs" else self.outcomes
        return pd.DataFrame([[r.label, *r.values] for r in rows], columns=["", *self.names])


def outcome_rows(outcomes: Sequence[ScenarioOutcome | ScenarioUnavailable]) -> tuple[ComparisonRow, ...]:
    """The outcome rows of :class:`Comparison`, one value per scenario ("unavailable: why" for the missing)."""

    def each(fn: Callable[[ScenarioOutcome], str]) -> tuple[str, ...]:
        return tuple(fn(o) if isinstance(o, ScenarioOutcome) else f"unavailable: {o.reason}" for o in outcomes)

    rows = [
        ComparisonRow(
            "Target planned (N, D)",
            each(lambda o: f"{format_count(o.target_params)} params, {format_count(o.target_tokens)} tokens"),
        ),
        ComparisonRow("Target compute C = 6ND", each(lambda o: format_flops(o.target_flops))),
        ComparisonRow("Study budget (US$)", each(lambda o: format_dollars(o.plan.budget_dollars))),
        ComparisonRow("Pick (study design)", each(pick_text)),
        ComparisonRow("Pick's cost (US$, GPU-hours)", each(pick_cost_text)),
        ComparisonRow("Expected ARE p50 (%)", each(lambda o: are_text(o, "p50"))),
        ComparisonRow("Expected ARE p80 (%)", each(lambda o: are_text(o, "p80"))),
        ComparisonRow(
            "Meets the goal", each(lambda o: "n/a" if o.pick is None else ("yes" if o.plan.meets_goal else "no"))
        ),
        ComparisonRow(LOSS_LABEL, each(lambda o: loss_text(o.loss))),
        ComparisonRow(AVERAGE_ACCURACY_LABEL, each(lambda o: accuracy_text(o.average_accuracy))),
    ]
    law_names: list[str] = []
    for o in outcomes:
        if isinstance(o, ScenarioOutcome):
            law_names += [r.law for r in o.compute_optimal if r.law not in law_names]

    def optimum_under(law: str) -> Callable[[ScenarioOutcome], str]:
        return lambda o: optimum_text(next((r for r in o.compute_optimal if r.law == law), None))

    for law in law_names:
        rows.append(ComparisonRow(f"Compute-optimal under {law} (80% interval on N)", each(optimum_under(law))))
    return tuple(rows)


def compare(outcomes: Sequence[ScenarioOutcome | ScenarioUnavailable]) -> Comparison:
    """Up to :data:`MAX_COMPARED` scenarios side by side (ScenarioError for none or too many)."""
    if not outcomes:
        raise ScenarioError("choose at least one scenario to compare")
    if len(outcomes) > MAX_COMPARED:
        raise ScenarioError(f"compare at most {MAX_COMPARED} scenarios at once, got {len(outcomes)}")
    names = [o.name for o in outcomes]
    if len(set(names)) != len(names):
        raise ScenarioError("a scenario is named twice in the comparison; name each once")
    input_rows = [o.inputs.rows() for o in outcomes]
    inputs = []
    for i, (label, _) in enumerate(input_rows[0]):
        values = tuple(rows[i][1] for rows in input_rows)
        if len(outcomes) == 1 or len(set(values)) > 1:
            inputs.append(ComparisonRow(label, values))
    return Comparison(scenarios=tuple(outcomes), inputs=tuple(inputs), outcomes=outcome_rows(outcomes))


# ---------------------------------------------------------------------------------------------
# Loading the context


StudyCurves = Callable[[str], "pd.DataFrame | None"]
"""Looks a stored study up by name: its curves (run_id, num_params, tokens_seen, value), or None
when there is no such study (deleted)."""


def no_stored_studies(name: str) -> pd.DataFrame | None:
    """The study lookup when this scaleplan has no stored studies: every study is missing."""
    return None


def study_lookup(user_db_path: Path) -> StudyCurves:
    """How a scenario's stored study is found: :func:`scaleplan.core.studies.load_study` in the user
    store at ``user_db_path``, its rows as curves (run_id, model_name, num_params, tokens_seen,
    flops = 6 N D, value: the loss), or None when the study is gone."""
    from scaleplan.core import studies

    def lookup(name: str) -> pd.DataFrame | None:
        try:
            table = studies.load_study(user_db_path, name).table
        except studies.StudyError:
            return None
        curves = table.rename(columns={"run_name": "model_name"})[
            ["run_id", "model_name", "num_params", "tokens_seen", "value"]
        ].copy()
        curves["flops"] = planning.FLOPS_PER_PARAM_TOKEN * curves["num_params"] * curves["tokens_seen"]
        return curves.sort_values(["num_params", "run_id", "tokens_seen"], ignore_index=True)

    return lookup


def load_context(
    con: duckdb.DuckDBPyConnection,
    inputs: PlanInputs,
    *,
    calibration: planning.AREModel | None,
    calibration_message: str | None,
    study_curves: StudyCurves = no_stored_studies,
    n_boot: int = planning.DEFAULT_LAW_BOOT,
) -> PlanningContext | str:
    """The laws for ``inputs`` fitted on the collection database ``con`` (or the study's runs), or
    a sentence saying why the scenario cannot be planned (its stored study is gone, its law and study
    source do not go together: :func:`source_problem`)."""
    problem = source_problem(inputs)
    if problem is not None:
        return problem
    version = storage.stored_data_version(con) or "unknown"
    family = inputs.law_family
    curves = None
    if inputs.study is not None:
        curves = study_curves(inputs.study)
        if curves is None:
            return (
                f"its study source, the stored study {inputs.study!r}, no longer exists (deleted, or renamed "
                "before renaming carried a study's scenarios along); `scaleplan runs list` shows the stored studies: "
                "save the scenario again with one of them as its study source"
            )
        family = inputs.study
    collection, problems = planning.collection_laws(con, family=family, curves=curves, n_boot=n_boot)
    return PlanningContext(
        laws=planning.all_laws(collection),
        problems=problems,
        calibration=calibration,
        calibration_message=calibration_message,
        tpp_range=planning.collection_tokens_per_param(con),
        data_version=version,
    )
