"""CSV files written for people: every cell that a spreadsheet would run as a formula is neutralised.

A spreadsheet opening a CSV treats a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula (OWASP, "CSV injection"): a run named ``=cmd|' /C calc'!A0`` would
run a command. :func:`neutralise_formulas` prefixes such text cells with a single quote, which
every spreadsheet shows as text; numbers are left as numbers (a negative number is not text). Every
CSV scaleplan writes goes through :func:`csv_bytes`.

>>> neutralise_formulas(pd.DataFrame({"run": ["=1+1", "ok", "-x"], "loss": [-1.5, 2.0, 3.0]}))["run"].tolist()
["'=1+1", 'ok', "'-x"]
"""

from __future__ import annotations

import csv

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "neutralise_cell", "neutralise_formulas", "csv_bytes"]

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet read a cell as a formula."""


def neutralise_cell(value: object) -> object:
    """``value`` with a leading ``'`` when it is text starting like a formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) cannot run as spreadsheet formulas."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            out[column] = series.map(neutralise_cell).astype(object)
        elif isinstance(series.dtype, pd.CategoricalDtype):
            out[column] = series.astype(object).map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """``frame`` as UTF-8 CSV with every formula neutralised (:func:`neutralise_formulas`).

    Text cells are quoted (a carriage return inside a cell would otherwise end the row for
    readers that accept old Mac line ends); numbers are not.
    """
    text: str = neutralise_formulas(frame).to_csv(index=index, quoting=csv.QUOTE_NONNUMERIC)
    return text.encode("utf-8")
