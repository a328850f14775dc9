"""A user's own training runs: the columns, the CSV cell reader and row-by-row validation.

The columns a runs file may have are :data:`COLUMN_SPECS` (the one list: the readers, the error
messages and the Your runs page's column table use it). Header names are case-insensitive, with
spaces and hyphens read as underscores and the aliases of each spec; any other column is not
used (:data:`OTHER_COLUMNS`). Files are read by :func:`scaleplan.core.formats.parse_runs` (every
column, alias and format), which brings them to :data:`CORE_COLUMNS` and validates the rows with
:func:`validate_rows`; :func:`read_text_rows` is its one reader of delimited text.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleplan.core import exports, units
from scaleplan.core.errors import UserError


@dataclass(frozen=True)
class ColumnSpec:
    """A column a runs file may have: its ``name``, whether it is ``required``, the other header
    names read as it (``aliases``, lower case, underscores) and what it holds (``meaning``, with units)."""

    name: str
    required: bool
    meaning: str
    aliases: tuple[str, ...] = ()


COLUMN_SPECS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "num_params",
        True,
        "parameters N of the model (1e3 to 1e15), e.g. 160000000, 1.6e8 or 160M",
        ("params", "n_params", "nparams", "parameters", "num_parameters", "n", "model_size"),
    ),
    ColumnSpec(
        "tokens_seen",
        True,
        "tokens D seen at this checkpoint (1 to 1e17), e.g. 2e10 or 20B; a file that counts steps gives step and tokens per step instead",
        ("tokens", "d", "n_tokens", "num_tokens", "train_tokens", "tokens_trained"),
    ),
    ColumnSpec(
        "loss",
        True,
        "loss at this checkpoint (> 0, at most 1e4), e.g. nats/token",
        ("train_loss", "val_loss", "eval_loss", "validation_loss", "final_loss"),
    ),
    ColumnSpec(
        "run_name",
        False,
        "groups checkpoints into runs (default: one run per N)",
        ("run", "name", "model", "run_id"),
    ),
    ColumnSpec("seed", False, "integer seed: the same run_name with another seed is another run", ("random_seed",)),
    ColumnSpec(
        "step",
        False,
        "training step (>= 0); without tokens_seen, tokens_seen = step x tokens per step",
        ("_step", "steps", "iteration", "iter", "global_step"),
    ),
    ColumnSpec(
        "tokens_per_step",
        False,
        "tokens per step (batch size x sequence length, > 0) on every row, to turn step into tokens_seen",
        ("batch_tokens", "batch_size_tokens"),
    ),
    ColumnSpec(
        "flops",
        False,
        "training compute up to this checkpoint, FLOPs (> 0); groups runs into isoFLOP budgets (default 6 N D)",
        ("compute", "c", "compute_flops", "train_flops", "training_flops"),
    ),
    ColumnSpec(
        "schedule",
        False,
        "the learning-rate schedule, free text: a length (cosine-20B) says how much of it a run reached "
        "(a run that stops short of it ends mid-schedule unless final_of_schedule says true); constant never ends",
        ("lr_schedule", "scheduler"),
    ),
    ColumnSpec(
        "final_of_schedule",
        False,
        "true for the checkpoint at the end of its run's learning-rate schedule (true/false, yes/no, 1/0; "
        "an empty cell is false, the safe side: a run whose last checkpoint is not true gets the wider "
        "mid-schedule interval)",
        ("is_final", "end_of_schedule", "final_checkpoint"),
    ),
)
REQUIRED_COLUMNS = tuple(c.name for c in COLUMN_SPECS if c.required)
CORE_COLUMNS = ("num_params", "tokens_seen", "loss", "run_name", "seed")
"""The columns every format is brought to (:func:`scaleplan.core.formats.parse_runs`) before :func:`validate_rows`."""
OTHER_COLUMNS = (
    "Other columns are not used: the table of the columns read from your file lists them as ignored, "
    "and a saved study does not keep them"
)


def columns_text() -> str:
    """The columns of :data:`COLUMN_SPECS` in one phrase for messages:
    ``"num_params, tokens_seen, loss (required); run_name, seed, ... (optional)"``."""
    required = ", ".join(c.name for c in COLUMN_SPECS if c.required)
    optional = ", ".join(c.name for c in COLUMN_SPECS if not c.required)
    return f"{required} (required); {optional} (optional)"


MAX_UPLOAD_MB = 20
"""The one upload limit, in MB of 1,000,000 bytes.

Streamlit's upload box counts a "MB" as 1,000,000 bytes on most platforms (1,048,576 on others),
and its server's ``server.maxUploadSize`` as 1,048,576: so the limit is stated in decimal MB,
checked here on the bytes received (the same check for the CLI and the page), and Streamlit's
own limits, set from this number (``scaleplan serve``, ``.streamlit/config.toml``), are never
lower, so no file is refused by one and accepted by another.
"""
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000
MAX_UPLOAD_TEXT = f"{MAX_UPLOAD_MB} MB ({MAX_UPLOAD_BYTES:,} bytes)"  # how every message and help text states it
MAX_ROWS = 1_000_000
MAX_MESSAGES = 50
MAX_LOSS = 1e4
"""Largest uploaded loss accepted (nats/token; a uniform guess over 10**4000 tokens): beyond it the value is
not a language-model loss (a perplexity, a typo), and the fit's log-residuals would be meaningless."""

TEMPLATE_CSV = (
    "run_name,seed,num_params,tokens_seen,loss\n"
    "small-70m,0,70000000,20000000000,3.21\n"
    "small-70m,0,70000000,40000000000,3.12\n"
    "mid-160m,0,160000000,20000000000,2.95\n"
    "mid-160m,0,160000000,40000000000,2.86\n"
    "big-410m,0,410000000,20000000000,2.71\n"
    "big-410m,0,410000000,40000000000,2.62\n"
)


PLAUSIBLE: dict[str, tuple[float, float]] = {
    # [low, high] of each uploaded value; parameters and tokens share the planner's limits (core.units).
    "num_params": (units.MIN_COUNT, units.MAX_PARAMS),
    "tokens_seen": (1.0, units.MAX_TOKENS),
    "loss": (0.0, MAX_LOSS),
}

UPLOAD_WARMUP_SHARE = 0.1
PAPER_MIN_TOKENS = 10e9  # the Hitchhiker protocol's cutoff (core.selection.DEFAULT_MIN_TOKENS)


def default_min_tokens(table: pd.DataFrame) -> float:
    """The default early-checkpoint cutoff for fits of uploaded runs, in tokens.

    ``min(10B, 0.1 x D_short)`` where D_short is the furthest checkpoint (tokens_seen) of the
    shortest uploaded run: checkpoints at or below it are dropped. The paper's fixed 10B cutoff
    removes the warm-up of runs trained on hundreds of billions of tokens; most uploaded runs
    stop before 10B tokens and would have nothing left. Scaled to the runs' own length it
    drops the first 10% of the shortest run and always keeps every run's final checkpoint (so
    an isoFLOP sweep of final losses stays whole).
    """
    if table is None or len(table) == 0:
        return PAPER_MIN_TOKENS
    shortest = float(table.groupby("run_id")["tokens_seen"].max().min())
    return min(PAPER_MIN_TOKENS, UPLOAD_WARMUP_SHARE * shortest)


def count_of(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and its noun in the right number: ``1 run``, ``2 runs``, ``1,000 checkpoints``."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def sentence(text: str) -> str:
    """``text`` with a capital first letter for the start of a sentence, unless it starts with a column's
    name (``tokens_seen must be ...``, ``final_of_schedule ...``), which keeps its spelling."""
    first = text.split(" ", 1)[0].rstrip(":,;.")
    if "_" in first or first in {c.name for c in COLUMN_SPECS}:
        return text
    return text[:1].upper() + text[1:]


def too_large_message(size_bytes: int) -> str:
    """Why a file of ``size_bytes`` is refused (bytes, the unit nobody reads differently)."""
    return (
        f"the file is {size_bytes:,} bytes; the limit is {MAX_UPLOAD_TEXT}. Use fewer checkpoints "
        "(every few hundred steps is plenty for a fit)"
    )


class RunsTableError(UserError, ValueError):
    """The uploaded table cannot be used at all (wrong columns, not a CSV, too large, empty)."""


@dataclass(frozen=True)
class RunsTable:
    """Validated runs: ``table`` has run_id, run_name, seed, num_params, tokens_seen, value."""

    table: pd.DataFrame
    messages: tuple[str, ...]  # one per rejected row (capped), e.g. "line 5: loss is not a number"
    rejected_rows: int

    @property
    def num_runs(self) -> int:
        return int(self.table["run_id"].nunique())


NOT_TEXT = (
    "this is not a text file: it looks like a spreadsheet, archive, image or other binary file. "
    "Save your table as CSV (comma-separated text, e.g. File > Save as > CSV in a spreadsheet) "
    "and use that file"
)
NOT_A_TABLE = (
    "the file could not be read as a table: use one header row, then one row per checkpoint, "
    f"with values separated by commas, semicolons, tabs or |; the columns are {columns_text()}"
)
HEADER_ONLY = "the file has a header row but no data rows: add one row per checkpoint below the header"
_MAX_CONTROL_SHARE = 0.01  # text files have (almost) no control characters; binary decoded as Latin-1 has ~20%


def _control_share(text: str) -> float:
    """The share of control characters other than tab and line breaks in the first 64k characters."""
    sample = text[:65536]
    if not sample:
        return 0.0
    controls = sum(1 for c in sample if (ord(c) < 32 and c not in "\t\n\r") or 127 <= ord(c) < 160 or c == "\ufffd")
    return controls / len(sample)


def _decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), UTF-16 (with BOM, or ASCII-only) or Latin-1.

    Raises :class:`RunsTableError` with :data:`NOT_TEXT` for binary files (NUL bytes outside
    UTF-16, or more than 1% control characters).
    """
    text = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:65536]:
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise RunsTableError(NOT_TEXT) from None
        sample = text[:4096]
        if "\x00" in text or (sample and sum(c.isascii() for c in sample) < 0.8 * len(sample)):
            raise RunsTableError(NOT_TEXT)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")  # e.g. a CSV exported by an older spreadsheet
    if _control_share(text) > _MAX_CONTROL_SHARE:
        raise RunsTableError(NOT_TEXT)
    return text.lstrip("\ufeff")


def unprotect_text(cell: str) -> str:
    """A cell as the user wrote it, without the ``'`` a spreadsheet-safe export put before it.

    The inverse of :func:`protect_text`: one leading ``'`` is dropped when what follows starts with
    a formula character (:data:`scaleplan.core.exports.FORMULA_PREFIXES`) or another ``'``, so an
    exported ``'=baseline`` or ``'-1`` reads back as ``=baseline`` and ``-1``.
    """
    if cell.startswith("'") and cell[1:].startswith((*exports.FORMULA_PREFIXES, "'")):
        return cell[1:]
    return cell


def protect_text(cell: str) -> str:
    """A text cell for a CSV that spreadsheets open: ``'`` before text a spreadsheet would run as a
    formula (:func:`scaleplan.core.exports.neutralise_cell`), and before text that
    :func:`unprotect_text` would change, so that reading the file back gives ``cell`` again."""
    if exports.neutralise_cell(cell) != cell or unprotect_text(cell) != cell:
        return "'" + cell
    return cell


COMMENT_RULE = (
    "lines starting with # are comments above the header row, and below it when nothing else is on "
    "the line (or only empty cells, as a spreadsheet saves a note); any other line starting with # is "
    "read as a row"
)
"""Which lines of a runs file are comments (:func:`_is_comment`), as the page and the messages state it.

Below the header a comment holds one value at most, and no usable row has fewer than two (a loss and
its tokens or step), so the rule never drops a row that could have been used: a run named ``#1-big``
whose optional trailing cells are left out is read as a row, and a note with a separator in it is
read as a row too and listed among the rejected rows with its line (:data:`HASH_ROW_HINT`)."""
HASH_ROW_HINT = "(it starts with # but holds other values, so it is read as a row, not as a comment)"


@dataclass(frozen=True)
class TextRows:
    """A delimited text file read as cells, each row with the line of the file it starts on.

    ``frame`` holds the cells as text (``""`` where a row is short), one column per header name,
    with a RangeIndex; ``lines[i]`` is the 1-based line of the file where row ``i`` starts (the
    header's line is ``header_line``), each cell without the ``'`` a spreadsheet-safe export put
    before it (:func:`unprotect_text`). Blank lines and comment lines (:data:`COMMENT_RULE`) are
    skipped but counted. ``refused`` are the rows that were not read: (line, reason) of a row with
    more non-empty fields than the header. ``hash_lines`` are the lines of the rows (read or
    refused) whose first cell starts with ``#``, for :data:`HASH_ROW_HINT`.
    """

    frame: pd.DataFrame
    lines: tuple[int, ...]
    header_line: int
    refused: tuple[tuple[int, str], ...] = ()
    hash_lines: frozenset[int] = frozenset()


def _starts_with_hash(record: list[str]) -> bool:
    return bool(record) and record[0].lstrip().startswith("#")


def _is_comment(record: list[str], header_read: bool) -> bool:
    """Whether a record is a comment line (:data:`COMMENT_RULE`): its first cell starts with ``#`` and
    it comes before the header, or no other cell holds a value."""
    return _starts_with_hash(record) and (not header_read or not any(cell.strip() for cell in record[1:]))


def _is_blank(record: list[str]) -> bool:
    return not record or (len(record) == 1 and not record[0].strip())


def _table_text(text: str) -> tuple[str, str]:
    """A decoded file's text as the CSV reader is given it, and its delimiter (``,``, ``;``, tab or ``|``).

    Line ends become ``\\n`` (old Mac line ends would break the CSV reader). Above the header a comment
    is a whole line: those lines are emptied before the CSV reader sees them, so that a quote in a note
    cannot open a value that swallows the file, and are kept as empty lines so that the lines of the
    rows stay those of the file.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    above = 0
    file_lines = text.split("\n")
    while above < len(file_lines) and (not file_lines[above].strip() or file_lines[above].lstrip().startswith("#")):
        above += 1
    body = "\n".join(file_lines[above:])
    try:
        sep = csv.Sniffer().sniff(body[:4096], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    return "\n" * above + body, sep


HEADER_SAMPLE_BYTES = 65536
"""How much of a file :func:`header_cells` reads to find its header (bytes)."""


def header_cells(data: bytes) -> tuple[str, ...] | None:
    """The header row's cells, each stripped, as :func:`read_text_rows` finds them: decoded the same
    way, past the blank and comment records above it (:data:`COMMENT_RULE`; a quoted note over several
    lines is one record), quotes read. Only the first :data:`HEADER_SAMPLE_BYTES` bytes are read.

    None when no header is found there (an empty or binary file, one the CSV reader cannot read, a
    header further down): :func:`read_text_rows` says what is wrong. For telling formats apart
    (:func:`scaleplan.core.formats.detect_format`) without reading the whole file.
    """
    try:
        text, sep = _table_text(_decode(data[:HEADER_SAMPLE_BYTES]))
        for record in csv.reader(io.StringIO(text), delimiter=sep, skipinitialspace=True):
            if not _is_blank(record) and not _is_comment(record, header_read=False):
                return tuple(unprotect_text(cell).strip() for cell in record)
    except (RunsTableError, csv.Error):
        return None
    return None


DECIMAL_COMMA_CELL = r"^(\s*[+-]?\d+),(\d+(?:[eE][+-]?\d+)?\s*)$"
"""A number cell written with a decimal comma (3,5374; -0,5; 1,2e-3), read as a decimal in ';' files."""


def read_text_rows(data: bytes | str) -> TextRows:
    """Read a CSV (commas, semicolons, tabs or bars; any of :func:`_decode`'s encodings) as text cells.

    Raises :class:`RunsTableError` when the file is too large, empty, binary, has no data row, more
    than :data:`MAX_ROWS` rows, or cannot be read as a table.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_UPLOAD_BYTES:
        raise RunsTableError(too_large_message(len(data)))
    text = _decode(data)
    if not text.strip():
        raise RunsTableError("the file is empty")
    text, sep = _table_text(text)
    reader = csv.reader(io.StringIO(text), delimiter=sep, skipinitialspace=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    refused: list[tuple[int, str]] = []
    hash_lines: set[int] = set()
    end = 0  # the last line of the previous record
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if _is_blank(record):
                continue
            if _is_comment(record, header is not None):
                continue
            cells = [unprotect_text(cell) for cell in record]
            if header is None:
                header = [cell.strip() or f"(column {i + 1})" for i, cell in enumerate(cells)]
                header_line = start
                continue
            width = len(header)
            if _starts_with_hash(record):
                hash_lines.add(start)
            if len(cells) > width:
                given = max(i for i, cell in enumerate(cells) if cell.strip() or i < width) + 1
                if given > width:  # values beyond the header's columns, not just trailing separators
                    refused.append(
                        (
                            start,
                            f"{given} values for {width} columns, not read "
                            + (
                                HASH_ROW_HINT
                                if start in hash_lines
                                else "(a separator inside a value, e.g. 1,000? write 1000 or quote it)"
                            ),
                        )
                    )
                    if len(rows) + len(refused) > MAX_ROWS:
                        break
                    continue
                cells = cells[:width]  # empty cells after the last column (a trailing separator)
            rows.append(cells + [""] * (width - len(cells)))
            lines.append(start)
            if len(rows) + len(refused) > MAX_ROWS:
                break
    except csv.Error:
        raise RunsTableError(NOT_A_TABLE) from None
    if header is None:
        raise RunsTableError("the file has only comment lines (starting with #): add a header row and data rows")
    if not rows and not refused:
        raise RunsTableError(HEADER_ONLY)
    if len(rows) + len(refused) > MAX_ROWS:
        raise RunsTableError(f"the file has more than {MAX_ROWS:,} rows")
    frame = pd.DataFrame(rows, columns=header, dtype=object).astype(str)  # the dtype of read_csv(dtype=str)
    if sep == ";":
        # A decimal-comma locale's spreadsheet separates cells by ';' and writes 3,5374 for 3.5374: such a
        # number is a decimal, never 3,538 -> 3538 by the thousands rule (only a number cell is touched).
        frame = frame.replace(DECIMAL_COMMA_CELL, r"\1.\2", regex=True)
    return TextRows(
        frame=frame,
        lines=tuple(lines),
        header_line=header_line,
        refused=tuple(refused),
        hash_lines=frozenset(hash_lines),
    )


def read_numbers(cells: pd.Series) -> pd.Series:
    """Text cells of a runs file as numbers, by the command line's and the planner's one number rule
    (:func:`core.units.parse_number`): 160000000, 1.6e8, 160M, 1.5B, 2T, 2,000,000 and 1_000 all read, so
    ``scaleplan fit --runs`` and ``scaleplan plan --runs-file`` read the same cell alike. An empty or
    unreadable cell is NaN (:func:`validate_rows` says which); the range is the caller's to check."""
    text = cells.astype(str).str.strip()
    # Plain numbers in one vectorised pass (what parse_number reads them as); only the rest, cells with a
    # suffix or thousands separators, cell by cell.
    numbers = pd.to_numeric(text.str.replace("_", "", regex=False).str.replace(" ", "", regex=False), errors="coerce")
    rest = numbers.isna() & (text != "")
    if not rest.any():
        return numbers
    numbers = numbers.astype(float)
    numbers[rest] = [_number_or_nan(cell) for cell in text[rest]]
    return numbers


def _number_or_nan(cell: str) -> float:
    try:
        return units.parse_number(cell)
    except units.NumberSyntaxError:
        return float("nan")


def validate_rows(
    raw: pd.DataFrame,
    lines: tuple[int, ...],
    *,
    refused: tuple[tuple[int, str], ...] = (),
    unit: str = "line",
    context: tuple[str, ...] | None = None,
    hash_lines: frozenset[int] = frozenset(),
) -> RunsTable:
    """Validate rows of text cells (columns num_params, tokens_seen, loss and optionally run_name, seed).

    ``lines[i]`` numbers row ``i`` in the messages (``"line 5: loss is not a number"``; ``unit`` is
    ``"row"`` for a file without lines, e.g. Parquet); ``context[i]``, when given, is added to its
    messages in brackets (a W&B export's run). ``refused`` are rows the reader could not read
    (counted as rejected, listed with the others in line order). A rejected row whose line is in
    ``hash_lines`` (its first cell starts with ``#``) is told why it was read as a row (:data:`HASH_ROW_HINT`).
    Raises :class:`RunsTableError` when no row is usable.
    """
    raw = raw.reset_index(drop=True)
    if len(raw) != len(lines) or (context is not None and len(context) != len(lines)):
        raise ValueError("validate_rows needs one line number (and context) per row")

    def located(i: int, problem: str) -> str:
        where = f" ({context[i]})" if context is not None else ""
        return f"{unit} {lines[i]}: {problem}{where}"

    numbers = {c: read_numbers(raw[c]) for c in REQUIRED_COLUMNS}
    problems = pd.Series("", index=raw.index, dtype=object)
    for column, values in numbers.items():
        text_col = raw[column].str.strip()
        not_number = values.isna()
        non_finite = ~not_number & ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        non_positive = ~not_number & ~non_finite & (values <= 0)
        problems[not_number & (text_col == "")] += f"{column} is empty; "
        problems[not_number & (text_col != "")] += f"{column} is not a number; "
        problems[non_finite] += f"{column} is not finite; "
        problems[non_positive] += f"{column} must be > 0; "
        low, high = PLAUSIBLE[column]
        in_range = ~not_number & ~non_finite & ~non_positive
        problems[in_range & (values > high)] += f"{column} is above {high:.0e}, beyond any realistic run; "
        problems[in_range & (values < low)] += f"{column} is below {low:.0e}, below any realistic run; "
    seed = pd.Series(np.nan, index=raw.index)
    if "seed" in raw.columns:
        seed_text = raw["seed"].str.strip()
        seed = pd.to_numeric(seed_text, errors="coerce")
        bad_seed = (seed_text != "") & (seed.isna() | (seed % 1 != 0))
        problems[bad_seed] += "seed must be an integer; "
    ok = problems == ""
    listed = sorted(
        [(line, f"{unit} {line}: {reason}") for line, reason in refused]
        + [
            (lines[i], located(i, p.rstrip("; ") + (f" {HASH_ROW_HINT}" if lines[i] in hash_lines else "")))
            for i, p in problems[~ok].items()
        ],
        key=lambda pair: pair[0],
    )
    messages = tuple(message for _, message in listed[:MAX_MESSAGES])
    rejected = len(refused) + int((~ok).sum())
    if not ok.any():
        read = len(raw) + len(refused)
        more = rejected - 5
        raise RunsTableError(
            f"no row can be used ({read:,} row{'s' if read != 1 else ''} read): "
            + "; ".join(messages[:5])
            + (f"; and {more:,} more" if more > 0 else "")
        )
    names = raw["run_name"].str.strip() if "run_name" in raw.columns else pd.Series("", index=raw.index)
    n = numbers["num_params"]
    names = names.where(names != "", "N=" + n.map(lambda v: f"{v:.4g}"))
    table = pd.DataFrame(
        {
            "run_name": names,
            "seed": seed,
            "num_params": n,
            "tokens_seen": numbers["tokens_seen"],
            "value": numbers["loss"],
        }
    )[ok]
    table["run_id"] = (
        "upload/" + table["run_name"] + table["seed"].map(lambda s: "" if np.isnan(s) else f"/seed{int(s)}")
    )
    inconsistent = table.groupby("run_id")["num_params"].nunique()
    if (inconsistent > 1).any():
        bad = ", ".join(inconsistent[inconsistent > 1].index.str.removeprefix("upload/")[:5])
        raise RunsTableError(f"run(s) {bad} have more than one num_params; give each size its own run_name")
    dup = table.duplicated(["run_id", "tokens_seen"], keep="first")
    first = (  # the kept row of each repeat (only needed, and only computed, when there are repeats)
        table.index.to_series().groupby([table["run_id"], table["tokens_seen"]], sort=False).transform("first")
        if dup.any()
        else None
    )

    def duplicate(i: int) -> str:
        assert first is not None
        kept = int(first[i])
        if table.at[i, "value"] == table.at[kept, "value"]:
            return located(i, "duplicate of an earlier row (same run and tokens_seen), ignored")
        return located(  # a conflicting repeat: say which loss is used, never drop a different value silently
            i,
            f"same run and tokens_seen as {unit} {lines[kept]} but another loss ({units.format_number(table.at[i, 'value'])} "
            f"against {units.format_number(table.at[kept, 'value'])}); the first is used, check which is right",
        )

    extra = tuple(duplicate(i) for i in table.index[dup][: max(0, MAX_MESSAGES - len(messages))])
    table = table[~dup]
    table = table[["run_id", "run_name", "seed", "num_params", "tokens_seen", "value"]].reset_index(drop=True)
    return RunsTable(table=table, messages=messages + extra, rejected_rows=rejected + int(dup.sum()))
