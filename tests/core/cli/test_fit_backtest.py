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
    held = doc["largest_size_backtest"]
    assert held is not None and 0 < held["log_error"] < 0.5 and doc["interval"]["low"] is not None
    assert held["log_error"] == abs(math.log(held["predicted"] / held["observed"]))
    assert main(base) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("note: Refitted without its largest size"))
    shown, side = re.search(r"last loss ([0-9.]+)% (low|high) ", line).groups()
    relative = held["predicted"] / held["observed"] - 1
    assert float(shown) == round(100 * abs(relative), 1 if abs(relative) >= 0.01 else 2)
    assert side == ("low" if relative < 0 else "high")
    assert f"({held['predicted']:.4g} where {held['observed']:.4g} was measured)" in line
