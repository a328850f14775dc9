"""scaleplan fit --metric: a metric the family does not report as a loss is named, with the ones it does."""

from __future__ import annotations

import json

from scaleplan.core import storage
from scaleplan.core.cli import main


def _run(built_db, capsys, *extra):
    code = main(["--db", str(built_db), "fit", "--family", "pythia", "--bootstrap", "0", *extra])
    return code, capsys.readouterr()


def _listed(err: str) -> list[str]:
    return [name.removesuffix(" (its default)") for name in err.split("loss metrics: ", 1)[1].strip().split(", ")]


def test_an_unknown_metric_is_named_with_the_familys_loss_metrics(built_db, capsys):
    code, out = _run(built_db, capsys, "--metric", "nope")
    assert code == 2 and out.out == "" and out.err.count("\n") == 1, out.err
    assert "no metric 'nope'" in out.err and "has no observations" not in out.err
    listed = _listed(out.err)
    con = storage.connect(built_db)
    try:
        default = storage.list_families(con).set_index("family").loc["pythia", "default_metric"]
    finally:
        con.close()
    assert listed[0] == default and f"{default} (its default)" in out.err
    for metric in listed:  # each one listed is one fit takes
        code, fitted = _run(built_db, capsys, "--metric", metric, "--json")
        assert code == 0, fitted.err
        assert json.loads(fitted.out)["points"] > 0


def test_an_accuracy_metric_is_not_fitted_as_a_loss(built_db, capsys):
    code, out = _run(built_db, capsys, "--metric", "zero-shot/piqa/acc")
    assert code == 2 and out.out == ""
    assert "an accuracy metric of 'pythia', not a loss" in out.err and "zero-shot/lambada_openai/log_ppl" in out.err


def test_an_unknown_family_is_named_with_the_closest_names(built_db, capsys):
    code = main(["--db", str(built_db), "fit", "--family", "pythia-dedup", "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "no family 'pythia-dedup'" in err and "pythia-deduped" in err
    assert "has no observations" not in err
    code = main(["--db", str(built_db), "fit", "--family", "zzz", "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "no family 'zzz'" in err and "scaleplan data summary" in err
