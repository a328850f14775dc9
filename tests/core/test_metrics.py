"""scaleplan.core.metrics: every family's default metric has a plain name and a unit."""

from __future__ import annotations

import doctest

from scaleplan.core import metrics
from scaleplan.core.metrics import metric_label


def test_doctests():
    assert doctest.testmod(metrics).failed == 0


def test_pythia_default_metric_says_which_loss():
    label = metric_label("zero-shot/lambada_openai/log_ppl", "loss")
    assert label.name == "LAMBADA last-word loss, zero-shot" and label.unit == "nats/word"
    assert metric_label("val/c4_val/loss", "loss").title == "Validation loss on C4 (nats/token)"
    assert metric_label("colpret/downstream/avg17/err", "error").unit == "fraction wrong"


def test_every_default_metric_of_the_collection_is_in_plain_words(con):
    rows = con.execute("""SELECT DISTINCT f.default_metric, m.kind FROM families f
                          JOIN metrics m ON m.metric = f.default_metric""").fetchall()
    assert len(rows) > 20
    for metric, kind in rows:
        label = metric_label(metric, kind)
        assert label.name != metric and "/" not in label.name and "_" not in label.name, metric
        assert label.unit in ("nats/token", "nats/word", "fraction wrong", "fraction correct"), metric


def test_unknown_ids_fall_back_to_the_id_and_the_kind_unit():
    assert metric_label("something/odd", "accuracy").title == "something/odd (fraction correct)"
    assert metric_label("x", None).unit == "value"


def test_every_metric_of_the_collection_is_in_plain_words(con):
    """Not only the defaults: every metric a page can offer has a name without ids or underscores."""
    rows = con.execute("SELECT metric, kind FROM metrics").fetchall()
    assert len(rows) > 500
    raw = [m for m, kind in rows if "/" in metric_label(m, kind).name or "_" in metric_label(m, kind).name]
    assert raw == []


def test_units_follow_the_measure_not_only_the_kind():
    # stored with kind "loss", but measured in bits per byte
    assert metric_label("val/wikitext/bpb", "loss").unit == "bits/byte"
    assert metric_label("colpret/val/paloma_ptb/loss_upper95", "other").title == (
        "Upper 95% bound of the validation loss on Paloma's Penn Treebank (nats/token)"
    )
