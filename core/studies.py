"""A lab's own scaling studies, kept in the user's store (:mod:`scaleplan.core.userstore`).

A study is one uploaded file of runs, validated (:func:`scaleplan.core.formats.parse_runs`) and
stored under a name the user chose, with the file's sha256, the upload time (UTC), the format and
the column mapping, and its rows. It survives restarts and every rebuild of the collection's
database, which lives in another file and is never touched here.

Tables (created on first use, never dropped) and every statement on them are in the user store's
layer (:data:`scaleplan.core.userstore.STUDY_TABLES_SQL` and its study functions):

``studies``      one row per study: study_id, name (unique), sha256, filename, format, uploaded_at,
                 mapping (JSON list of [scaleplan column, file column]), num_runs, num_rows
``study_rows``   the validated rows: study_id, row_index, run_id, run_name, seed, num_params,
                 tokens_seen, loss, step, flops, schedule, final_of_schedule

Every statement is parameterised; a study's name is a value, never part of SQL or of a path.
Writes run in one transaction: a failed save leaves the store as it was.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import analysis, calibration, fitting, formats, isoflop, userdata, userstore
from scaleplan.core.errors import UserError
from scaleplan.core.formats import ColumnMapping, ParsedRuns
from scaleplan.core.isoflop import Allocation, IsoflopAnalysis
from scaleplan.core.laws.formulas import compute_from

__all__ = [
    "MAX_NAME_LENGTH",
    "RenamedStudy",
    "Study",
    "StudyError",
    "StudyInfo",
    "check_name",
    "delete_study",
    "export_csv",
    "list_studies",
    "load_study",
    "rename_study",
    "save_study",
    "sha256_of",
]

MAX_NAME_LENGTH = 80
ROW_COLUMNS = (
    "run_id",
    "run_name",
    "seed",
    "num_params",
    "tokens_seen",
    "value",
    "step",
    "flops",
    "schedule",
    "final_of_schedule",
)


class StudyError(UserError):
    """A study that does not exist, a name already taken or not usable."""


@dataclass(frozen=True)
class StudyInfo:
    """One stored study's record (no rows). ``uploaded_at`` is UTC."""

    name: str
    sha256: str
    filename: str
    format: str
    uploaded_at: _dt.datetime
    mapping: ColumnMapping
    num_runs: int
    num_rows: int


@dataclass(frozen=True)
class Study:
    """A stored study with its rows: ``table`` has :data:`ROW_COLUMNS` (``value`` is the loss)."""

    info: StudyInfo
    table: pd.DataFrame

    @property
    def name(self) -> str:
        return self.info.name


def sha256_of(data: bytes) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def check_name(name: object) -> str:
    """The study name, stripped; raises :class:`StudyError` for an empty, too long or control-character name."""
    text = unicodedata.normalize("NFC", str(name if name is not None else "")).strip()
    if not text:
        raise StudyError("the study needs a name, e.g. 'isoflop-sweep-v1'")
    if len(text) > MAX_NAME_LENGTH:
        raise StudyError(f"the study name is {len(text)} characters long; use at most {MAX_NAME_LENGTH}")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise StudyError("the study name contains control characters (tabs, line breaks); use plain text")
    return text


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the store with the study tables created."""
    con: duckdb.DuckDBPyConnection = userstore.open_user_store(path)
    try:
        userstore.ensure_tables(con, userstore.STUDY_TABLES_SQL)
    except duckdb.Error as error:
        con.close()
        raise userstore.UserStoreError(f"cannot create the study tables in {path}: {error}") from error
    return con


def _info(row: tuple[Any, ...]) -> StudyInfo:
    name, sha, filename, kind, uploaded_at, mapping, num_runs, num_rows = row
    pairs = tuple((str(a), str(b)) for a, b in json.loads(mapping))
    if isinstance(uploaded_at, _dt.datetime) and uploaded_at.tzinfo is not None:
        uploaded_at = uploaded_at.astimezone(_dt.UTC)
    return StudyInfo(
        name=name,
        sha256=sha,
        filename=filename or "",
        format=kind,
        uploaded_at=uploaded_at,
        mapping=ColumnMapping(pairs=pairs),
        num_runs=int(num_runs),
        num_rows=int(num_rows),
    )


def save_study(
    path: Path,
    name: str,
    parsed: ParsedRuns,
    *,
    sha256: str,
    filename: str = "",
    replace: bool = False,
    now: _dt.datetime | None = None,
) -> StudyInfo:
    """Store ``parsed`` as study ``name`` in the user store at ``path``; return its record.

    An existing study of that name is an error unless ``replace`` (then it is replaced in the same
    transaction). Nothing else in the store changes.
    """
    name = check_name(name)
    table = parsed.table
    rows = pd.DataFrame({c: table[c] if c in table else None for c in ROW_COLUMNS})
    rows = rows.rename(columns={"value": "loss"})
    rows.insert(0, "row_index", np.arange(len(rows), dtype=np.int64))
    for column in ("seed", "step", "flops"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(float)
    rows["schedule"] = rows["schedule"].astype(object).where(rows["schedule"].notna(), None)
    rows["final_of_schedule"] = rows["final_of_schedule"].astype(object).where(rows["final_of_schedule"].notna(), None)
    uploaded_at = now or _dt.datetime.now(_dt.UTC)
    mapping = json.dumps([list(pair) for pair in parsed.mapping.pairs])
    record = (name, sha256, filename, parsed.format, uploaded_at, mapping, parsed.num_runs, len(rows))
    con = _connect(path)
    try:
        stored = userstore.write_study(con, record, rows, replace=replace)
    finally:
        con.close()
    if stored is None:
        raise StudyError(f"a study named {name!r} exists already; choose another name or replace it")
    return _info(stored)


def list_studies(path: Path) -> tuple[StudyInfo, ...]:
    """Every stored study, newest upload first (none when the store does not exist yet)."""
    con = userstore.open_user_store(path, read_only=True)
    try:
        rows = userstore.study_records(con)
    finally:
        con.close()
    return tuple(_info(r) for r in rows)


def _missing(name: str, path: Path) -> StudyError:
    return StudyError(f"no study named {name!r} in {path}; `scaleplan runs list` shows the stored studies")


def load_study(path: Path, name: str) -> Study:
    """The stored study ``name`` with its rows in upload order."""
    name = check_name(name)
    con = userstore.open_user_store(path, read_only=True)
    try:
        found = userstore.study_with_rows(con, name)
    finally:
        con.close()
    if found is None:
        raise _missing(name, path)
    record, table = found
    table = table.dropna(axis="columns", how="all").reindex(columns=[c for c in ROW_COLUMNS if c in table])
    for column in ("step", "flops", "schedule", "final_of_schedule"):
        if column in table and table[column].isna().all():
            table = table.drop(columns=column)
    if "seed" not in table:
        table["seed"] = np.nan
    table = table[[c for c in ROW_COLUMNS if c in table]]
    return Study(info=_info(record), table=table)


@dataclass(frozen=True)
class RenamedStudy:
    """What :func:`rename_study` did: the study's record under its new name (``info``), the name it
    had (``old_name``, as :func:`check_name` reads it) and ``scenarios_carried``, the number of saved
    scenarios (:mod:`scaleplan.core.scenarios`) planned on the study, which now name it ``info.name``."""

    info: StudyInfo
    old_name: str
    scenarios_carried: int

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def scenarios_text(self) -> str:
        """The carried scenarios in words, as the CLI and the page state them: ``2 saved scenarios
        follow it``, ``1 saved scenario follows it``, ``no saved scenario uses it``."""
        if self.scenarios_carried == 0:
            return "no saved scenario uses it"
        verb = "follows" if self.scenarios_carried == 1 else "follow"
        return f"{userdata.count_of(self.scenarios_carried, 'saved scenario')} {verb} it"


def rename_study(path: Path, old: str, new: str) -> RenamedStudy:
    """Rename a study; the new name must be free.

    The scenarios saved against it (:mod:`scaleplan.core.scenarios`, study source ``old``) are carried
    along in the same transaction (:func:`scaleplan.core.scenarios.carry_study`: their study source and
    their ``fit:<old>`` law name ``new``), so they still open and plan, and counted
    (:attr:`RenamedStudy.scenarios_carried`); a failure leaves the study and every scenario as they were.
    """
    from scaleplan.core import scenarios

    old, new = check_name(old), check_name(new)
    carried = 0

    def carry(text: str) -> str | None:
        nonlocal carried
        rewritten = scenarios.carry_study(text, old, new)
        carried += rewritten is not None  # None: the scenario does not plan on this study
        return rewritten

    con = _connect(path)
    try:
        if not userstore.has_study(con, old):
            raise _missing(old, path)
        if new != old and userstore.has_study(con, new):
            raise StudyError(f"a study named {new!r} exists already; choose another name")
        record = userstore.set_study_name(con, old, new, rewrite_scenario=carry)
    finally:
        con.close()
    assert record is not None
    return RenamedStudy(info=_info(record), old_name=old, scenarios_carried=carried)


def delete_study(path: Path, name: str, *, how_to_force: str | None = None) -> int:
    """Delete one study and its rows; every other study stays. Returns the number of saved scenarios
    that were planned on it (counted as :func:`rename_study` counts them:
    :func:`scaleplan.core.scenarios.carry_study`), which are now unavailable.

    With ``how_to_force`` (the caller's control to delete anyway, e.g. ``"--force"``), a study that saved
    scenarios use is refused instead (:class:`StudyError` naming how many and which, and
    ``how_to_force``) and nothing is deleted."""
    from scaleplan.core import scenarios

    name = check_name(name)
    con = _connect(path)
    try:
        if not userstore.has_study(con, name):
            raise _missing(name, path)
        using = [
            row[0] for row in userstore.scenario_rows(con) if scenarios.carry_study(row[1], name, name) is not None
        ]
        if using and how_to_force is not None:
            shown = ", ".join(map(repr, using[:5])) + (", ..." if len(using) > 5 else "")
            verb = "plans" if len(using) == 1 else "plan"
            raise StudyError(
                f"{userdata.count_of(len(using), 'saved scenario')} ({shown}) {verb} on the study {name!r} and "
                f"would become unavailable; remove those scenarios first, or remove the study anyway ({how_to_force})"
            )
        removed = userstore.remove_study(con, name)
    finally:
        con.close()
    if not removed:
        raise _missing(name, path)
    return len(using)


def export_csv(study: Study) -> bytes:
    """The study's rows as a CSV that :func:`scaleplan.core.formats.parse_runs` reads back unchanged.

    Columns: run_name, seed, num_params, tokens_seen, loss and the optional columns the study has.
    Numbers keep every digit (``repr``), so a re-upload stores the same values; text that a
    spreadsheet would run as a formula gets a leading ``'`` (:func:`scaleplan.core.userdata.protect_text`),
    which the upload drops again.
    """
    table = study.table.rename(columns={"value": "loss"})
    columns = ["run_name", "seed", "num_params", "tokens_seen", "loss"] + [
        c for c in ("step", "flops", "schedule", "final_of_schedule") if c in table
    ]
    out = table[columns].copy()
    if out["seed"].isna().all():
        out = out.drop(columns="seed")
    else:
        out["seed"] = out["seed"].map(lambda s: "" if pd.isna(s) else str(int(s)))
    for column in ("num_params", "tokens_seen", "loss", "step", "flops"):
        if column in out:
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else repr(float(v)))
    if "final_of_schedule" in out:
        out["final_of_schedule"] = out["final_of_schedule"].map(lambda v: "" if pd.isna(v) else str(bool(v)).lower())
    # Run names and schedules are the user's text: a spreadsheet must not run them as formulas
    # (core.exports). Only those: a seed of -1 is a number, and '-1 would not read back as one.
    for column in ("run_name", "schedule"):
        if column in out:
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else userdata.protect_text(str(v)))
    text: str = out.to_csv(index=False)
    return text.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# What a study says about a target


FINAL_LOSS_FIT = "approach 3 on the final losses (one point per run)"
"""The fit behind a study's compute-optimal split: L(N, D) on each run's final loss (:func:`isoflop.approach3_allocation`)."""

CHECKPOINT_FIT = "the checkpoint fit (L(N, D) on every checkpoint above the cutoff)"
"""The fit behind a study's predicted loss: L(N, D) on the runs' checkpoints (:func:`analysis.analyse`), a
different fit from :data:`FINAL_LOSS_FIT`."""


def checkpoint_fit_label(num_points: int) -> str:
    """The name of the predicted loss's fit with its point count: 'checkpoint fit on 16 points'."""
    return f"checkpoint fit on {num_points:,} point{'s' if num_points != 1 else ''}"


@dataclass(frozen=True)
class StudyTarget:
    """A target: ``num_params`` N and ``tokens`` D, or a budget ``compute_flops`` C (FLOPs).

    For a budget, N and D of the prediction are approach 3's compute-optimal split of C (approach
    2's when approach 3 cannot be fitted).
    """

    num_params: float | None = None
    tokens: float | None = None
    compute_flops: float | None = None

    def __post_init__(self) -> None:
        given = (self.num_params is not None, self.tokens is not None)
        if self.compute_flops is None and not all(given):
            raise StudyError("give the target as N and D (parameters and tokens) or as a compute budget in FLOPs")
        if self.compute_flops is not None and any(given):
            raise StudyError("give the target either as N and D or as a compute budget, not both")
        for label, value in (("N", self.num_params), ("D", self.tokens), ("the compute budget", self.compute_flops)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise StudyError(f"{label} must be a positive number, got {value}")

    @property
    def flops(self) -> float:
        """C of the target: the budget, or 6 N D."""
        if self.compute_flops is not None:
            return float(self.compute_flops)
        assert self.num_params is not None and self.tokens is not None
        return float(compute_from(self.num_params, self.tokens))


DEFAULT_TARGET_FACTOR = 100.0
"""The default target of a study: this many times its largest run's compute (the next budgets a lab asks about)."""


def default_target(table: pd.DataFrame) -> StudyTarget:
    """The target a study is analysed for when none is given (Your runs page and ``scaleplan runs show``):
    a compute budget of :data:`DEFAULT_TARGET_FACTOR` times the largest run's C = 6 N D, rounded up to one
    significant digit (1.2e20 -> 2e20 FLOPs) so that the page's field shows it exactly."""
    largest = float(np.max(compute_from(table["num_params"].to_numpy(float), table["tokens_seen"].to_numpy(float))))
    budget = DEFAULT_TARGET_FACTOR * largest
    exponent = math.floor(math.log10(budget))
    # a budget already of one digit (1e20, up to float round-off) stays itself rather than becoming 2e20
    digit = math.ceil(budget / 10.0**exponent * (1 - 1e-12))
    if digit == 10:
        digit, exponent = 1, exponent + 1
    # parsed from its text, so it is the very number the page's field reads back (9 * 10.0**22 is not)
    return StudyTarget(compute_flops=float(f"{digit}e{exponent}"))


@dataclass(frozen=True)
class StudyReport:
    """Everything the Your runs page and ``scaleplan runs show`` print for one target.

    ``prediction``: approach 3's analysis at (N, D) with its calibrated interval (None and
    ``prediction_problem`` when it cannot be made). ``isoflop``: approach 2 (None and
    ``isoflop_problem`` when the runs are not an isoFLOP sweep). ``allocations``: approach 2,
    approach 3 and the published laws at C. ``warnings``: approach 2's and approach 3's, as text.
    """

    target: StudyTarget
    num_params: float | None
    tokens: float | None
    prediction: analysis.Analysis | None
    prediction_problem: str
    isoflop: IsoflopAnalysis | None
    isoflop_problem: str
    allocations: tuple[Allocation, ...]
    warnings: tuple[str, ...]
    level: float

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready values (the CLI's ``--json``)."""
        pred = self.prediction
        interval: dict[str, object] | None = None
        found = pred.interval if pred is not None else None
        if isinstance(found, calibration.Refusal):
            interval = found.as_dict(self.level)
        elif found is not None:
            interval = found.as_dict()
        iso = self.isoflop
        return {
            "target": {
                "num_params": self.num_params,
                "tokens": self.tokens,
                "compute_flops": self.target.flops
                if self.num_params is None or self.tokens is None
                else float(compute_from(self.num_params, self.tokens)),
                "given_as": "budget" if self.target.compute_flops is not None else "N and D",
            },
            "prediction": None
            if pred is None
            else {
                "loss": pred.predicted_loss,
                "interval": interval,
                "params": dict(pred.fit.params),
                "fit": checkpoint_fit_label(len(pred.points)),
            },
            "prediction_problem": self.prediction_problem or None,
            "isoflop": None
            if iso is None
            else {
                "coefficient_G": iso.coefficient,
                "exponent_a": iso.exponent,
                "tokens_exponent_b": iso.tokens_exponent,
                "budgets": [
                    {
                        "compute_flops": b.compute_flops,
                        "sizes": b.num_sizes,
                        "optimal_params": b.optimal_params,
                        "optimal_params_low": b.optimal_params_low,
                        "optimal_params_high": b.optimal_params_high,
                        "optimal_tokens": b.optimal_tokens,
                        "optimal_loss": b.optimal_loss,
                        "bracketed": b.bracketed,
                    }
                    for b in iso.budgets
                ],
            },
            "isoflop_problem": self.isoflop_problem or None,
            "compute_optimal": [a.as_dict() for a in self.allocations],
            "warnings": list(self.warnings),
            "level": self.level,
        }


def analyse_study(
    table: pd.DataFrame,
    target: StudyTarget,
    *,
    calibration_model: calibration.Calibration | None = None,
    level: float = 0.9,
    allocation_level: float = 0.8,
    n_boot: int = 400,
    approach3_boot: int = 50,
    tolerance: float | None = None,
) -> StudyReport:
    """Approach 2 and approach 3 on a study's runs, the compute-optimal split of the target's C under
    both and the published laws, and approach 3's prediction at the target with its calibrated interval.

    Problems the data cannot answer (no isoFLOP budgets, a fit that fails) become ``*_problem``
    sentences, not errors: the rest of the report still stands.
    """
    from scaleplan.core.selection import Selection, SelectionError

    columns = ["run_id", "num_params", "tokens_seen", "value"]
    table_for_fit = table[columns]
    final = isoflop.final_runs(table)
    warnings: list[str] = []
    left_out = sorted(
        run.removeprefix("upload/")  # the run as the file names it (userdata's run ids: upload/<run>[/seed<k>])
        for run in set(table["run_id"].astype(str)) - set(final["run_id"].astype(str))
    )
    if left_out:  # runs that mark no end of schedule while others do: not isoFLOP points (isoflop.final_runs)
        shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        warnings.append(
            f"{userdata.count_of(len(left_out), 'run')} ({shown}) mark no checkpoint as the end of the schedule "
            "while other runs do (final_of_schedule true; an empty cell is false), so approach 2 and approach 3 "
            "leave them out: mark each run's end-of-schedule checkpoint true"
        )
    iso, iso_problem = None, ""
    try:
        iso = isoflop.fit_isoflop(
            final["num_params"],
            final["value"],
            final["compute_flops"],
            tokens=final["tokens_seen"],
            n_boot=n_boot,
            level=allocation_level,
            tolerance=isoflop.DEFAULT_TOLERANCE if tolerance is None else tolerance,
        )
        warnings += [w.message for w in iso.warnings]
        far = isoflop.extrapolation_warning(iso, target.flops)
        if far is not None:
            warnings.append(far.message)
    except isoflop.IsoflopError as error:
        iso_problem = str(error)
    three = None
    try:
        three, _ = isoflop.approach3_allocation(final, target.flops, n_boot=approach3_boot, level=allocation_level)
    except fitting.FitError as error:
        warnings.append(f"{FINAL_LOSS_FIT[:1].upper() + FINAL_LOSS_FIT[1:]} could not be fitted: {error}")
    if three is not None and not three.has_interval and approach3_boot:
        warnings.append(
            "approach 3's compute-optimal N has no interval: refitting the law on resampled runs did not move it "
            "(too few runs for five parameters, or every replicate failed)"
        )
    allocations = isoflop.compare_allocations(iso, three, target.flops, level=allocation_level)
    if target.compute_flops is not None:
        split = three if three is not None else (allocations[0] if iso is not None else None)
        n_t = split.num_params if split is not None else None
        d_t = split.tokens if split is not None else None
    else:
        n_t, d_t = target.num_params, target.tokens
    prediction, problem = None, ""
    if n_t is None or d_t is None:
        problem = (
            f"neither of your runs' own fits gives a compute-optimal split of the budget ({FINAL_LOSS_FIT} and "
            "approach 2's isoFLOP minima both failed, see below), so there is no (N, D) to predict at; the published "
            "laws' rows in the table are not fitted on your runs. Give the target as model size and tokens to "
            f"predict with {CHECKPOINT_FIT}"
        )
    else:
        try:
            prediction = analysis.analyse(
                table_for_fit,
                Selection(min_tokens=userdata.default_min_tokens(table)),
                target_params=n_t,
                target_tokens=d_t,
                calibration=calibration_model,
                level=level,
                schedule=formats.schedule_reach(table),
            )
            warnings += [w.message for w in prediction.warnings]
        except (SelectionError, fitting.FitError) as error:
            problem = str(error)
    return StudyReport(
        target=target,
        num_params=n_t,
        tokens=d_t,
        prediction=prediction,
        prediction_problem=problem,
        isoflop=iso,
        isoflop_problem=iso_problem,
        allocations=allocations,
        warnings=tuple(warnings),
        level=level,
    )
