"""Issue 25: CSV exports neutralise spreadsheet formulas (OWASP's list of leading characters)."""

from __future__ import annotations

import csv
import io

import pandas as pd

from scaleplan.core.exports import csv_bytes, neutralise_formulas

HOSTILE = ["=cmd|' /C calc'!A0", '+HYPERLINK("http://x","y")', "@SUM(A1:A9)", "-2+3", "\t=1", "\r=1"]


def test_every_formula_prefix_is_neutralised_and_plain_text_and_numbers_are_kept():
    frame = pd.DataFrame({"run": HOSTILE + ["pythia-70m"], "loss": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert rows[0] == ["run", "loss"]
    cells = [row[0] for row in rows[1:]]
    assert cells[:-1] == ["'" + text for text in HOSTILE]
    assert cells[-1] == "pythia-70m"
    assert rows[1][1] == "-1.5"  # a negative number stays a number


def test_column_names_and_string_dtypes_are_covered():
    frame = pd.DataFrame({"=bad": pd.Series(["=x"], dtype="string"), "ok": pd.Categorical(["@y"])})
    out = neutralise_formulas(frame)
    assert list(out.columns) == ["'=bad", "ok"]
    assert out.iloc[0].tolist() == ["'=x", "'@y"]
    assert frame.iloc[0, 0] == "=x"  # the input is not changed
