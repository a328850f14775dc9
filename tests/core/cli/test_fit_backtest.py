"""scaleplan fit: the family's own backtest (refit without the largest size) is in the JSON and, next to
the collection's calibrated interval, in the text, as one number."""

from __future__ import annotations

import json
import math
import re

from scaleplan.core.cli import main


def test_fit_reports_how_far_its_largest_size_is_missed(built_db, capsys):
    base = ["--db", str(built_db), "fit", "--family", "chinchilla", "--bootstrap", "0"]
    assert main([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    error = doc["backtest_log_error"]
    assert error is not None and 0 < error < 0.5 and doc["interval"]["low"] is not None
    assert main(base) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("note: Refitted without its largest size"))
    shown = float(re.search(r"by ([0-9.]+)%", line).group(1))
    assert shown == round(100 * math.expm1(error), 1 if math.expm1(error) >= 0.01 else 2)
