"""The file formats a lab has for its own runs, read into one validated table.

Formats (detected from the file's content, not its name):

``csv``
    One row per checkpoint (long format): a run's size, the tokens it has seen at that
    checkpoint and its loss. A run with one row is a final loss only (an isoFLOP sweep).
``parquet``
    The same columns in a Parquet file (read with pyarrow).
``wandb``
    A Weights & Biases "export panel data" CSV, as the collection's own adapters read them
    (:mod:`scaleplan.core.sources._wandb`): a ``Step`` column and one column per series named
    ``"<run> - <metric>"`` with ``__MIN``/``__MAX`` envelope copies (dropped). The export has no
    model size or tokens: the size comes from the run's name (``410m``, ``1.3B``) or from
    ``num_params`` given by the caller, and tokens = step x ``tokens_per_step``.

The columns, required and optional, are :data:`scaleplan.core.userdata.COLUMN_SPECS`. Column
names are matched case-insensitively, spaces and hyphens read as underscores, with the aliases of
:data:`ALIASES` (``params``, ``n_params``, ``tokens``, ``D``, ...); other columns are not used. The
mapping from the file's header to scaleplan's columns comes back with the table
(:class:`ColumnMapping`, the unused columns as ``ignored``) so that it can be shown before anything
is fitted.

Every row is validated by :func:`scaleplan.core.userdata.validate_rows` (one source of truth for
what a usable row is); this module only brings the formats to its columns and checks the optional
ones. Every mistake raises :class:`FormatError`, a :class:`~scaleplan.core.userdata.RunsTableError`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleplan.core import units, userdata
from scaleplan.core.userdata import RunsTableError

__all__ = [
    "ALIASES",
    "FORMATS",
    "ColumnMapping",
    "FormatError",
    "Inputs",
    "ParsedRuns",
    "detect_format",
    "match_columns",
    "parse_runs",
    "size_from_name",
]

FORMATS = ("csv", "parquet", "wandb")

#: scaleplan's column -> the header names read as it (after lower-casing; spaces and hyphens as ``_``):
#: its own name, then the aliases of :data:`scaleplan.core.userdata.COLUMN_SPECS`.
ALIASES: Mapping[str, tuple[str, ...]] = {c.name: (c.name, *c.aliases) for c in userdata.COLUMN_SPECS}
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0", ""})
_PARQUET_MAGIC = b"PAR1"
_WANDB_STEP = "Step"
_SIZE_IN_NAME = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([kmbt])(?![a-z])", re.IGNORECASE)
_SIZE_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


class FormatError(RunsTableError):
    """The file cannot be read in its format (a malformed Parquet or W&B export, an ambiguous header)."""


@dataclass(frozen=True)
class Inputs:
    """Where a person gives what a file lacks, as the messages name it (a CLI flag, a page's box).

    ``tokens_per_step`` ends the sentence "give the tokens per step (batch size x sequence length) ...",
    e.g. ``"with --tokens-per-step, e.g. --tokens-per-step 4194304"``; ``num_params`` ends "give each
    run's size ..." (None: the caller has no way to give sizes, so the message says how to put them
    in the runs' names instead).
    """

    tokens_per_step: str = "e.g. 4194304"
    num_params: str | None = None


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the file became which of scaleplan's: ``pairs`` of (scaleplan column, file column).

    A derived column names its rule instead of a file column, e.g. ``("tokens_seen", "step x 4,194,304")``.
    """

    pairs: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        return dict(self.pairs)

    def source_of(self, column: str) -> str | None:
        return self.as_dict().get(column)

    def table(self) -> pd.DataFrame:
        """Rows of (scaleplan column, from the file) for display, ignored file columns last."""
        rows = [(ours, theirs) for ours, theirs in self.pairs]
        rows += [("(ignored)", column) for column in self.ignored]
        return pd.DataFrame(rows, columns=["scaleplan column", "from your file"])


@dataclass(frozen=True)
class ParsedRuns:
    """A validated upload in any format.

    ``table`` has run_id, run_name, seed, num_params, tokens_seen, value (the loss) and, when the
    file gave them, step, flops (FLOPs), schedule, final_of_schedule (bool). ``messages`` are the
    rejected rows (``"line 5: loss is not a number"``, the line of the file), ``rejected_rows`` their count.
    """

    table: pd.DataFrame
    mapping: ColumnMapping
    format: str
    messages: tuple[str, ...]
    rejected_rows: int

    @property
    def num_runs(self) -> int:
        return int(self.table["run_id"].nunique())

    @property
    def runs(self) -> userdata.RunsTable:
        return userdata.RunsTable(table=self.table, messages=self.messages, rejected_rows=self.rejected_rows)


def _normalise(name: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def match_columns(columns: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Map a header to scaleplan's columns: ``({scaleplan column: file column}, ignored file columns)``.

    An exact name wins over an alias (a file with ``tokens`` and ``tokens_seen`` uses
    ``tokens_seen``). Raises :class:`FormatError` when two file columns that would map to one of
    scaleplan's columns are the same name, or two aliases of one column remain; columns scaleplan
    does not use may repeat a name (two ``note`` columns), and are listed once among the ignored.
    """
    normal = [_normalise(c) for c in columns]
    known = {a for aliases in ALIASES.values() for a in aliases}
    repeated = sorted({n for n in normal if n in known and normal.count(n) > 1})
    if repeated:
        raise FormatError(
            f"the header repeats a column name ({', '.join(repeated[:5])}); give each column its own name"
        )
    mapping: dict[str, str] = {}
    for ours, aliases in ALIASES.items():
        hits = [columns[normal.index(a)] for a in aliases if a in normal]
        if not hits:
            continue
        if _normalise(hits[0]) != ours and len(hits) > 1:
            raise FormatError(
                f"columns {', '.join(map(repr, hits))} could each be {ours}; rename the one to use as {ours!r}"
            )
        mapping[ours] = hits[0]
    used = set(mapping.values())
    return mapping, tuple(dict.fromkeys(c for c in columns if c not in used))


def detect_format(data: bytes) -> str:
    """``parquet`` (magic bytes), ``wandb`` (a ``Step`` column and ``"<run> - <metric>"`` columns) or ``csv``.

    The header is the one the CSV reader finds (:func:`scaleplan.core.userdata.header_cells`: its
    decoding, the comments and quoted notes above it skipped), so the format is judged on the row
    that is read as the header.
    """
    if data[:4] == _PARQUET_MAGIC:
        return "parquet"
    cells = userdata.header_cells(data) or ()
    if _WANDB_STEP in cells and any(" - " in c for c in cells):
        return "wandb"
    return "csv"


def size_from_name(name: str) -> float | None:
    """The parameter count written in a run's name (``pythia-410m`` -> 4.1e8, ``olmo-1.3B`` -> 1.3e9), or None.

    The last size in the name counts (``7b-run-from-1b`` is ambiguous and gives the last one: 1e9).
    """
    found = _SIZE_IN_NAME.findall(name)
    if not found:
        return None
    number, unit = found[-1]
    return float(number) * _SIZE_SCALE[unit.lower()]


def _read_csv_rows(data: bytes) -> userdata.TextRows:
    """The file's cells as text with their lines (userdata's one CSV reader), mistakes as :class:`FormatError`."""
    try:
        return userdata.read_text_rows(data)
    except FormatError:
        raise
    except RunsTableError as error:
        raise FormatError(str(error)) from None


def _read_parquet_frame(data: bytes) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise FormatError(
            f"the Parquet file cannot be read ({str(error)[:120]}); export it again, or save the table as CSV"
        ) from None
    if table.num_rows == 0:
        raise FormatError(userdata.HEADER_ONLY)
    if table.num_rows > userdata.MAX_ROWS:
        raise FormatError(f"the file has more than {userdata.MAX_ROWS:,} rows")
    frame = table.to_pandas()
    # Everything as text, like a CSV, so that one validator judges every row; floats keep all digits.
    return pd.DataFrame(
        {
            str(c): frame[c].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(v))
            if frame[c].dtype.kind == "f"
            else frame[c].astype("string").fillna("").astype(str)
            for c in frame.columns
        }
    )


def per_step_text(tokens_per_step: float) -> str:
    """How a mapping names tokens computed from steps: "2,097,152 tokens per step", "2.5 tokens per step"
    (every digit the number has, never rounded to a whole number: 2.5 is not written "2")."""
    return f"{tokens_per_step:,.15g} tokens per step"


def _wandb_frame(
    rows: userdata.TextRows,
    *,
    tokens_per_step: float | None,
    num_params: Mapping[str, float] | None,
    inputs: Inputs,
) -> tuple[pd.DataFrame, dict[str, str], tuple[int, ...], tuple[str, ...]]:
    """A W&B panel export in long form: run_name, step, tokens_seen, num_params, loss (as text).

    Also returns each long row's line in the file and the column it came from (for messages).
    """
    wide = rows.frame
    wide_lines = np.asarray(rows.lines, dtype=np.int64)
    series = [
        c
        for c in wide.columns
        if c != _WANDB_STEP and " - " in c and not c.endswith("__MIN") and not c.endswith("__MAX")
    ]
    if not series:
        raise FormatError("the W&B export has no '<run> - <metric>' column next to Step")
    names = [str(c) for c in wide.columns]
    repeated = sorted({c for c in [_WANDB_STEP, *series] if names.count(c) > 1})
    if repeated:
        # Two columns of one run's series (or two Step columns): which one holds the run is not known.
        raise FormatError(
            f"the W&B export has more than one column named {', '.join(map(repr, repeated[:5]))}; "
            "export each run once (one Step column, one '<run> - <metric>' column per run)"
        )
    metrics = {c.rsplit(" - ", 1)[1].strip() for c in series}
    if len(metrics) > 1:
        raise FormatError(
            f"the W&B export plots several metrics ({', '.join(sorted(metrics)[:4])}); export one loss metric per file"
        )
    if tokens_per_step is None or not np.isfinite(tokens_per_step) or tokens_per_step <= 0:
        raise FormatError(
            "a W&B export counts steps, not tokens: give the tokens per step (batch size x sequence length) "
            + inputs.tokens_per_step
        )
    sizes = dict(num_params or {})
    parts = []
    lines: list[int] = []
    context: list[str] = []
    missing = []
    for column in series:
        run = column.rsplit(" - ", 1)[0].strip()
        size = sizes.get(run, size_from_name(run))
        if size is None:
            missing.append(run)
            continue
        step = userdata.read_numbers(wide[_WANDB_STEP])
        keep = wide[column].str.strip() != ""
        parts.append(
            pd.DataFrame(
                {
                    "run_name": run,
                    "step": wide.loc[keep, _WANDB_STEP],
                    "tokens_seen": (step[keep] * tokens_per_step).map(lambda v: "" if np.isnan(v) else repr(float(v))),
                    "num_params": repr(float(size)),
                    "loss": wide.loc[keep, column],
                }
            )
        )
        lines += wide_lines[keep.to_numpy()].tolist()
        context += [f"column {column}"] * int(keep.sum())
    if missing:
        how = (
            f"give each run's size {inputs.num_params}"
            if inputs.num_params
            else "put each run's size in its name (e.g. 'my-run-410m') before the export, or upload a CSV with a "
            "num_params column"
        )
        raise FormatError(
            f"the size of run(s) {', '.join(map(repr, missing[:5]))} is not in their name (e.g. '410m', '1.3B'): {how}"
        )
    frame = pd.concat(parts, ignore_index=True)
    mapping = {
        "run_name": "<run> of each '<run> - <metric>' column",
        "step": _WANDB_STEP,
        "tokens_seen": f"Step x {per_step_text(tokens_per_step)}",
        "num_params": "the size in the run's name" if not sizes else "given per run",
        "loss": f"the '{metrics.pop()}' columns",
    }
    return frame, mapping, tuple(lines), tuple(context)


def _to_bool(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(values, bad): ``true/yes/1`` and ``false/no/0/empty`` (case-insensitive); anything else is bad."""
    lowered = text.str.strip().str.lower()
    return lowered.isin(_TRUE), ~(lowered.isin(_TRUE) | lowered.isin(_FALSE))


def _canonical(
    frame: pd.DataFrame, tokens_per_step: float | None
) -> tuple[pd.DataFrame, dict[str, str], tuple[str, ...]]:
    """Rename a CSV/Parquet frame to scaleplan's columns; tokens from steps when only steps are given.

    Returns the renamed frame, the mapping and the file's columns that were not used.
    """
    mapping, ignored = match_columns(list(frame.columns))
    out = pd.DataFrame({ours: frame[theirs].astype(str) for ours, theirs in mapping.items()})
    if "tokens_seen" not in out and "step" in out:
        per_step = tokens_per_step
        if per_step is None and "tokens_per_step" in out:
            per_step_values = userdata.read_numbers(out["tokens_per_step"])
            if per_step_values.isna().any() or (per_step_values <= 0).any():
                raise FormatError("the tokens_per_step column must be a positive number on every row")
            step = userdata.read_numbers(out["step"])
            out["tokens_seen"] = (step * per_step_values).map(lambda v: "" if np.isnan(v) else repr(float(v)))
            mapping["tokens_seen"] = f"{mapping['step']} x {mapping['tokens_per_step']}"
        elif per_step is None or not np.isfinite(per_step) or per_step <= 0:
            pass  # no tokens: parse_runs says so, after any other missing column
        else:
            step = userdata.read_numbers(out["step"])
            out["tokens_seen"] = (step * per_step).map(lambda v: "" if np.isnan(v) else repr(float(v)))
            mapping["tokens_seen"] = f"{mapping['step']} x {per_step_text(per_step)}"
    out = out.drop(columns=["tokens_per_step"], errors="ignore")
    mapping.pop("tokens_per_step", None)
    return out, mapping, ignored


def _extras(canonical: pd.DataFrame, where: list[str]) -> pd.DataFrame:
    """The optional columns checked: step (>= 0), flops (> 0, finite), schedule (text), final_of_schedule (bool).

    Raises :class:`FormatError` naming the first bad rows by ``where`` (each row's ``"line 5"``).
    """
    out = pd.DataFrame(index=canonical.index)
    for column in ("step", "flops"):
        if column not in canonical:
            continue
        text = canonical[column].str.strip()
        values = userdata.read_numbers(text)
        bad = (text != "") & (values.isna() | ~np.isfinite(values) | (values < 0 if column == "step" else values <= 0))
        if bad.any():
            rule = "a number >= 0" if column == "step" else "a positive number of FLOPs, e.g. 1e19"
            raise FormatError(f"{column} must be {rule} (or empty); see {_first(where, bad)}")
        out[column] = values.astype(float)
    if "schedule" in canonical:
        out["schedule"] = canonical["schedule"].str.strip()
    if "final_of_schedule" in canonical:
        values, bad = _to_bool(canonical["final_of_schedule"])
        if bad.any():
            raise FormatError(f"final_of_schedule must be true or false (yes/no, 1/0); see {_first(where, bad)}")
        out["final_of_schedule"] = values
    return out


def _first(where: list[str], bad: pd.Series) -> str:
    """The first five bad rows' places, e.g. ``line 5, line 9``."""
    return ", ".join([w for w, b in zip(where, bad.to_numpy(), strict=True) if b][:5])


def parse_runs(
    data: bytes | str,
    *,
    tokens_per_step: float | None = None,
    num_params: Mapping[str, float] | None = None,
    inputs: Inputs = Inputs(),
) -> ParsedRuns:
    """Read runs in any of :data:`FORMATS` and validate every row.

    ``tokens_per_step`` turns steps into tokens (W&B exports, files with ``step`` only);
    ``num_params`` gives a W&B run's size when its name does not; ``inputs`` names where the caller
    lets a person give them, for the messages. Raises :class:`FormatError` (a
    :class:`~scaleplan.core.errors.UserError`) with a plain message when nothing usable remains.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    kind = detect_format(data)
    refused: tuple[tuple[int, str], ...] = ()
    hash_lines: frozenset[int] = frozenset()  # rows starting with # (userdata.HASH_ROW_HINT)
    context: tuple[str, ...] | None = None
    unit = "line"
    if kind == "wandb":
        rows = _read_csv_rows(data)
        refused, hash_lines = rows.refused, rows.hash_lines
        canonical, mapping, lines, context = _wandb_frame(
            rows, tokens_per_step=tokens_per_step, num_params=num_params, inputs=inputs
        )
        ignored: tuple[str, ...] = ()
        given = [str(c) for c in canonical.columns]
    else:
        if kind == "parquet":
            frame = _read_parquet_frame(data)
            lines, unit = tuple(range(1, len(frame) + 1)), "row"  # no lines: the data row, first = 1
        else:
            rows = _read_csv_rows(data)
            frame, lines, refused, hash_lines = rows.frame, rows.lines, rows.refused, rows.hash_lines
        given = [str(c) for c in frame.columns]  # the file's own names, before aliases rename them
        canonical, mapping, ignored = _canonical(frame, tokens_per_step)
    missing = [c for c in userdata.REQUIRED_COLUMNS if c not in canonical]
    if missing == ["tokens_seen"] and "step" in canonical:
        raise FormatError(
            "the file gives steps but not tokens: add a tokens_seen column, a tokens_per_step column, "
            "or give the tokens per step (batch size x sequence length) " + inputs.tokens_per_step
        )
    if missing:
        also = "; ".join(f"{c} also as {', '.join(ALIASES[c][1:4])}" for c in missing)
        found = given[:10]
        raise FormatError(
            f"missing required column(s): {', '.join(missing)} ({also}); found: {', '.join(found) or 'none'}. "
            f"The columns are {userdata.columns_text()}"
        )
    where = [f"{unit} {line}" + (f" ({context[i]})" if context is not None else "") for i, line in enumerate(lines)]
    extras = _extras(canonical, where)
    core_columns = [c for c in userdata.CORE_COLUMNS if c in canonical]
    try:
        validated = userdata.validate_rows(
            canonical[core_columns], lines, refused=refused, unit=unit, context=context, hash_lines=hash_lines
        )
    except FormatError:
        raise
    except RunsTableError as error:
        raise FormatError(str(error)) from None
    table = validated.table
    if len(extras.columns):
        # Bring the optional columns back by the row's key: validate_rows keeps the first of
        # duplicate (run, tokens_seen) rows, so the first extra of each key matches it.
        keys = pd.DataFrame(
            {
                "run_name": canonical["run_name"].str.strip() if "run_name" in canonical else "",
                "num_params": userdata.read_numbers(canonical["num_params"]),
                "tokens_seen": userdata.read_numbers(canonical["tokens_seen"]),
                "seed": pd.to_numeric(canonical["seed"].str.strip(), errors="coerce")
                if "seed" in canonical
                else np.nan,
            }
        )
        keys["run_name"] = keys["run_name"].where(keys["run_name"] != "", "N=" + keys["num_params"].map(_g4))
        joined = pd.concat([keys, extras], axis=1).drop_duplicates(["run_name", "seed", "tokens_seen"], keep="first")
        table = table.merge(joined.drop(columns="num_params"), on=["run_name", "seed", "tokens_seen"], how="left")
    pairs = tuple((ours, mapping[ours]) for ours in ALIASES if ours in mapping)
    return ParsedRuns(
        table=table.reset_index(drop=True),
        mapping=ColumnMapping(pairs=pairs, ignored=ignored),
        format=kind,
        messages=validated.messages,
        rejected_rows=validated.rejected_rows,
    )


def _g4(value: float) -> str:
    return f"{value:.4g}"


# --------------------------------------------------------------------------- what the rows are
MIN_MEASURED_FRACTION = 0.1
"""The shortest share of training the collection's designs fitted on (the sweep's ``fraction`` 0.1)."""

_HORIZON = re.compile(r"(\d[\d.,_]*(?:e[+-]?\d+)?\s*[kmgbtp]?)\s*(?:tokens?)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ScheduleReach:
    """Runs whose losses were measured before their learning-rate schedule ended.

    ``fraction`` is the share of their schedule those runs reached, the design's share of training
    for the calibration (the collection's designs that fitted only the first part of training, whose
    intermediate checkpoints are mid-schedule, are what it compares them with): the lower median
    over the mid-schedule runs of last tokens seen / the schedule's length in tokens (from a
    ``schedule`` like ``cosine-20B``), each share within [:data:`MIN_MEASURED_FRACTION`, 1]. A run
    whose schedule gives no length (``constant``, ``unknown``, a missing ``schedule``) counts at
    :data:`MIN_MEASURED_FRACTION`, the shortest share the collection measured: a run of unknown
    reach is never taken to have reached more, so the interval is never narrower than what is known
    supports (with no length given at all, ``fraction`` is that minimum).
    """

    mid_schedule_runs: int
    runs: int
    fraction: float
    known_horizon: bool  # at least one mid-schedule run gives its schedule's length
    without_length: int = 0  # mid-schedule runs whose schedule gives no length (counted at MIN_MEASURED_FRACTION)

    @property
    def message(self) -> str:
        shortest = ""
        if not self.known_horizon:
            reached = "their schedules' length is not given"
            shortest = " (the shortest it measured)"
        elif self.without_length:
            which = "1 that gives" if self.without_length == 1 else f"{self.without_length} that give"
            reached = (
                f"they reached a median {self.fraction:.0%} of their schedules, counting the {which} no "
                f"schedule length at {MIN_MEASURED_FRACTION:.0%}, the shortest share the collection measured"
            )
        else:
            reached = f"they reached a median {self.fraction:.0%} of their schedules"
        return (
            f"{self.mid_schedule_runs} of {self.runs} runs have no final-of-schedule loss ({reached}): losses "
            "measured before the learning rate has decayed lie above what the finished schedule reaches, so the "
            f"interval is the one the collection measured for fits on the first {self.fraction:.0%} of "
            f"training{shortest}; give each run's end-of-schedule loss (final_of_schedule = true) for a tighter one"
        )


def _horizon_tokens(schedule: object) -> tuple[float, float] | None:
    """The schedule's length in tokens from text like ``cosine-20B`` or ``wsd 1.5e11``, with the
    rounding of how it is written (tokens): half a unit of its last written digit (``20B`` -> 0.5e9,
    ``1.5e11`` -> 0.05e11, ``3.333B`` -> 0.0005e9). None if absent."""
    if not isinstance(schedule, str):
        return None
    found = _HORIZON.search(schedule.strip())
    if found is None:
        return None
    try:
        tokens = units.parse_number(found.group(1))
    except units.NumberSyntaxError:
        return None
    if not (math.isfinite(tokens) and tokens > 0):
        return None
    # The digits before any exponent or suffix ("1.667" of "1.667e10", "20" of "20B"): their last
    # digit's place, times what the exponent and suffix multiply them by, is the written unit.
    mantissa = re.match(r"[\d,_]*(?:\.\d*)?", found.group(1).strip())
    digits = mantissa.group(0).replace(",", "").replace("_", "") if mantissa else ""
    if not digits.strip(".") or float(digits) <= 0:
        return tokens, 0.0
    decimals = len(digits.partition(".")[2])
    return tokens, 0.5 * 10.0**-decimals * tokens / float(digits)


def schedule_reach(table: pd.DataFrame) -> ScheduleReach | None:
    """Which runs of a parsed table (:class:`ParsedRuns` ``.table``) end mid-schedule, or None if none do.

    A run ends mid-schedule when its last checkpoint says ``final_of_schedule`` false, its schedule
    is ``constant`` (no decay to end on), or, when its ``final_of_schedule`` is not stated (no such
    column), its last checkpoint's tokens fall short of its schedule's length (``cosine-20B`` for a
    run that stops at 9.5B tokens) by more than the rounding of how the length is written, half a
    unit of its last digit (``20B`` is 19.5B to 20.5B, so a run ending at 19.998B has reached it). Tables without those columns say nothing: None."""
    if "final_of_schedule" not in table.columns and "schedule" not in table.columns:
        return None
    last = table.sort_values("tokens_seen").groupby("run_id", sort=False).tail(1)
    mid = np.zeros(len(last), dtype=bool)
    stated = np.zeros(len(last), dtype=bool)
    if "final_of_schedule" in last.columns:
        flags = last["final_of_schedule"]
        stated = flags.notna().to_numpy()
        mid |= stated & ~flags.fillna(True).astype(bool).to_numpy()
    if "schedule" in last.columns:
        mid |= last["schedule"].fillna("").astype(str).str.strip().str.lower().str.startswith("constant").to_numpy()
        lengths = [_horizon_tokens(s) or (np.nan, np.nan) for s in last["schedule"]]
        horizons = np.array([h for h, _ in lengths], dtype=float)
        rounding = np.array([r for _, r in lengths], dtype=float)
    else:
        horizons = rounding = np.full(len(last), np.nan)
    tokens = last["tokens_seen"].to_numpy(dtype=float)
    shares = tokens / horizons
    with np.errstate(invalid="ignore"):
        # Short of the length beyond the rounding of how it is written (19.998B of ``cosine-20B`` has
        # reached it, 19B has not); NaN (no length) is not short.
        mid |= ~stated & (tokens < horizons - rounding)
    if not mid.any():
        return None
    shares = shares[mid]
    unknown = np.isnan(shares)
    # A run of unknown reach counts at the shortest share measured; the lower median of an even count
    # is the smaller middle value (never the mean of a known share and an unknown one).
    counted = np.sort(np.clip(np.where(unknown, MIN_MEASURED_FRACTION, shares), MIN_MEASURED_FRACTION, 1.0))
    return ScheduleReach(
        mid_schedule_runs=int(mid.sum()),
        runs=len(last),
        fraction=float(counted[(len(counted) - 1) // 2]),
        known_horizon=bool((~unknown).any()),
        without_length=int(unknown.sum()),
    )
