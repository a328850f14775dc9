"""Issue 25: CSV exports neutralise spreadsheet formulas (OWASP's list of leading characters)."""

from __future__ import annotations

import csv
import io
import types

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


def test_a_study_export_neutralises_hostile_run_names():
    from scaleplan.core import formats, studies

    text = b"run_name,num_params,tokens_seen,loss\n" + b"".join(
        f"{name},{n:g},{d:g},{1.7 + 400 / n**0.34 + 410 / d**0.28:.4f}\n".encode()
        for name, n in (("=cmd|' /C calc'!A0", 7e7), ("@SUM(A1)", 1.6e8), ("plain", 4.1e8))
        for d in (2e10, 4e10)
    )
    parsed = formats.parse_runs(text)
    study = types.SimpleNamespace(table=parsed.table)  # export_csv reads only the study's rows
    rows = list(csv.DictReader(io.StringIO(studies.export_csv(study).decode())))
    assert {row["run_name"] for row in rows} == {"'=cmd|' /C calc'!A0", "'@SUM(A1)", "plain"}
